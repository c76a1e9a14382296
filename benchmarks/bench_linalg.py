"""nl.linalg against scikit-learn's ``randomized_svd`` (default call), the issue's anchor.

Targets (issue 4), all as ratios to the anchor in the same run:

- dense 20000 x 2000, sigma_j = 1/j, k = 50: spectral error <= 1.01 x scikit-learn's,
  Frobenius error <= scikit-learn's + 0.001, time <= 0.5 x;
- scipy.sparse CSR 100000 x 20000, 2e6 nonzeros, k = 50: the same rule;
- PiSSA on a 4096 x 4096 float32 matrix, r = 16, one thread: residual within 1.0005 x the
  optimal, under 0.3 s;
- ``tol=`` mode: chosen rank within 10 % of the smallest sufficient rank.

``track_*_error`` report errors relative to the optimum (1 = the truncated SVD), so the
accuracy rule reads off the ``impl`` columns; ``TimeRatio.track_time_ratio`` gives the
numlab / scikit-learn time ratio from interleaved rounds in one process (robust to the
load of a shared machine); ``time_*`` give absolute times.

By hand: ``python -m benchmarks.bench_linalg`` from the repository root prints them all.
"""

from __future__ import annotations

import time

import numpy as np

from .common import cached, single_thread, sync, warm_up

K = 50
PISSA_RANK = 16


# --------------------------------------------------------------------------- data


def _make_dense(m, n):
    """U diag(1/j) V^T with random orthonormal U (m, n), V (n, n)."""
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = 1.0 / np.arange(1, n + 1)
    return (U * s) @ V.T, s


SPARSE_SHAPE = (100000, 20000)
SPARSE_NNZ = 2_000_000


def _make_sparse():
    """Uniform [0, 1) values at 2e6 uniformly random positions (duplicates summed)."""
    import scipy.sparse as sp

    (m, n), nnz = SPARSE_SHAPE, SPARSE_NNZ
    rng = np.random.default_rng(0)
    rows = rng.integers(0, m, nnz)
    cols = rng.integers(0, n, nnz)
    A = sp.coo_matrix((rng.random(nnz), (rows, cols)), shape=(m, n)).tocsr()
    A.sum_duplicates()
    return A


def _sparse_singular_values():
    """Top K+1 singular values of the sparse case (ARPACK, about a minute)."""
    import scipy.sparse.linalg as sla

    A = cached("linalg-sparse-1e5x2e4", _make_sparse)
    return np.sort(sla.svds(A, k=K + 1, tol=1e-8, return_singular_vectors=False, rng=0))[::-1]


def _make_weight(n, spikes):
    """A weight-like matrix: Gaussian bulk (MP law) plus ``spikes`` strong directions."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    for i in range(spikes):
        u = rng.standard_normal(n)
        v = rng.standard_normal(n)
        W += (20.0 / (i + 1)) * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    W = W.astype(np.float32)
    return W, np.linalg.svd(W.astype(np.float64), compute_uv=False)


def dense_or_sparse(case):
    """(A, sigma_{k+1}, optimal Frobenius error of rank k) for ``case``."""
    if case == "dense":
        A, s = cached("linalg-dense-1overj", _make_dense, 20000, 2000)
        return A, s[K], float(np.sqrt(np.sum(s[K:] ** 2)))
    A = cached("linalg-sparse-1e5x2e4", _make_sparse)
    s = cached("linalg-sparse-1e5x2e4-svals", _sparse_singular_values)
    total = float(A.multiply(A).sum())
    return A, s[K], float(np.sqrt(total - np.sum(s[:K] ** 2)))


# --------------------------------------------------------------------------- implementations


def _numlab(method):
    def run(A, k, rng=0):
        import numlab as nl

        return nl.linalg.randomized_svd(A, k, method=method, rng=rng)

    return run


def _sklearn(A, k, rng=0):
    from sklearn.utils.extmath import randomized_svd

    return randomized_svd(A, k, random_state=rng)


IMPLS = {"numlab": _numlab("subspace"), "numlab-krylov": _numlab("krylov"), "sklearn": _sklearn}


def _errors(A, U, S, Vt):
    """(spectral, Frobenius) norm of A - U S Vt, without forming it for sparse A."""
    import scipy.sparse.linalg as sla

    U, S, Vt = (np.asarray(x, dtype=np.float64) for x in (U, S, Vt))

    def mv(x):
        x = np.ravel(x)
        return A @ x - U @ (S * (Vt @ x))

    def rmv(y):
        y = np.ravel(y)
        return A.T @ y - Vt.T @ (S * (U.T @ y))

    op = sla.LinearOperator(A.shape, matvec=mv, rmatvec=rmv, dtype=np.float64)
    spectral = float(sla.svds(op, k=1, tol=1e-6, return_singular_vectors=False, rng=0)[0])
    # ||A - U S Vt||_F^2 = ||A||_F^2 - 2 tr(S U^T A V) + ||S||^2, with U^T A V small (k x k).
    UtAV = (A.T @ U).T @ Vt.T
    normA2 = float(A.multiply(A).sum()) if hasattr(A, "multiply") else float(np.sum(A * A))
    frob2 = normA2 - 2 * float(np.sum(S * np.diag(UtAV))) + float(np.sum(S * S))
    return spectral, float(np.sqrt(max(frob2, 0.0)))


# --------------------------------------------------------------------------- benchmarks


class _RandomizedSVD:
    params = list(IMPLS)
    param_names = ["impl"]
    timeout = 600
    number = 1
    repeat = (1, 3, 60.0)
    case = ""

    def setup(self, impl):
        self.A, self.sigma_next, self.frob_opt = dense_or_sparse(self.case)
        self.fn = IMPLS[impl]
        warm_up(self.fn, self.A[:2000] if self.case == "dense" else self.A[:5000], 10)

    def time_svd(self, impl):
        sync(self.fn(self.A, K))

    def track_spectral_error(self, impl):
        return _errors(self.A, *self.fn(self.A, K))[0] / self.sigma_next

    def track_frobenius_error(self, impl):
        return _errors(self.A, *self.fn(self.A, K))[1] / self.frob_opt

    track_spectral_error.unit = "x optimal"
    track_frobenius_error.unit = "x optimal"


class DenseRandomizedSVD(_RandomizedSVD):
    """20000 x 2000 dense float64, sigma_j = 1/j, k = 50."""

    case = "dense"


class SparseRandomizedSVD(_RandomizedSVD):
    """100000 x 20000 CSR float64, 2e6 uniform nonzeros, k = 50."""

    case = "sparse"


class PissaInit:
    """PiSSA on a 4096 x 4096 float32 weight-like matrix, r = 16, one thread."""

    params = ["numlab", "sklearn"]
    param_names = ["impl"]
    timeout = 600

    def setup(self, impl):
        single_thread()
        self.W, s = cached("linalg-pissa-weight", _make_weight, 4096, 8)
        self.optimal = float(np.sqrt(np.sum(s[PISSA_RANK:] ** 2)))
        warm_up(self.run, impl)

    def run(self, impl):
        if impl == "numlab":
            import numlab as nl

            return nl.linalg.pissa_init(self.W, PISSA_RANK, rng=0)[2]
        U, S, Vt = _sklearn(self.W, PISSA_RANK)
        root = np.sqrt(S)
        return self.W - (U * root) @ (root[:, None] * Vt)

    def time_pissa(self, impl):
        sync(self.run(impl))

    def track_residual_ratio(self, impl):
        return float(np.linalg.norm(self.run(impl).astype(np.float64))) / self.optimal

    track_residual_ratio.unit = "x optimal"


class TimeRatio:
    """numlab time / scikit-learn time: medians of interleaved rounds in one process.

    Both run on one BLAS thread: on a small shared machine multi-threaded BLAS is
    oversubscribed and its spin-waiting, not the algorithms, decides the times.
    """

    params = ["dense", "sparse", "pissa"]
    param_names = ["case"]
    timeout = 900
    rounds = 3

    def setup(self, case):
        single_thread()
        if case == "pissa":
            bench = PissaInit()
            bench.setup("numlab")
            self.pair = (lambda: bench.run("numlab"), lambda: bench.run("sklearn"))
        else:
            A = dense_or_sparse(case)[0]
            self.pair = (lambda: IMPLS["numlab"](A, K), lambda: IMPLS["sklearn"](A, K))

    def track_time_ratio(self, case):
        times = ([], [])
        for _ in range(self.rounds):
            for fn, bucket in zip(self.pair, times, strict=True):
                t = time.perf_counter()
                sync(fn())
                bucket.append(time.perf_counter() - t)
        return float(np.median(times[0]) / np.median(times[1]))

    track_time_ratio.unit = "x scikit-learn"


def _make_tol_matrix(m, n):
    """U diag(j^-2) V^T: the smallest rank meeting tol is about tol^(-2/3)."""
    rng = np.random.default_rng(1)
    U, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = 1.0 / np.arange(1, n + 1) ** 2
    return (U * s) @ V.T, s


class TolRank:
    """``tol=`` mode on 5000 x 1000, sigma_j = j^-2: chosen rank / smallest sufficient rank
    (target <= 1.1), and the achieved relative error / tol (must be <= 1)."""

    params = [1e-2, 1e-3, 1e-4]
    param_names = ["tol"]
    timeout = 300

    def setup(self, tol):
        self.A, self.s = cached("linalg-tol-j-2", _make_tol_matrix, 5000, 1000)

    def _run(self, tol):
        import numlab as nl

        return nl.linalg.randomized_svd(self.A, 1000, tol=tol, rng=0)

    def track_rank_ratio(self, tol):
        s = self.s
        tails = np.sqrt(np.cumsum((s**2)[::-1])[::-1])  # tails[r] = ||A - A_r||_F
        best = int(np.nonzero(np.append(tails, 0.0) <= tol * tails[0])[0][0])
        return self._run(tol)[1].shape[0] / best

    def track_error_over_tol(self, tol):
        U, S, Vt = self._run(tol)
        return float(np.linalg.norm(self.A - (U * S) @ Vt) / np.linalg.norm(self.s)) / tol

    def time_tol_mode(self, tol):
        self._run(tol)

    track_rank_ratio.unit = "x smallest"
    track_error_over_tol.unit = "x tol"


if __name__ == "__main__":
    for cls in (DenseRandomizedSVD, SparseRandomizedSVD, PissaInit):
        for impl in cls.params:
            bench = cls()
            bench.setup(impl)
            for name in sorted(dir(bench)):
                if name.startswith(("time_", "track_")):
                    t = time.perf_counter()
                    value = getattr(bench, name)(impl)
                    if value is None:  # a time_* benchmark
                        value = time.perf_counter() - t
                    print(f"{cls.__name__}.{name}[{impl}] = {value:.5g}", flush=True)
    for cls in (TimeRatio, TolRank):
        for p in cls.params:
            bench = cls()
            bench.setup(p)
            for name in sorted(dir(bench)):
                if name.startswith("track_"):
                    print(f"{cls.__name__}.{name}[{p}] = {getattr(bench, name)(p):.4g}", flush=True)
