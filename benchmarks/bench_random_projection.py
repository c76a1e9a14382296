"""Very sparse random projection: numlab against scikit-learn's SparseRandomProjection.

Issue 5 targets, on 10,000 sparse rows of 100 nonzeros, 1,000,000 features, 1,000
components: ``fit_transform`` in <= 0.05x scikit-learn's time; distortion
``||Rx - Ry|| / ||x - y||`` over random pairs with mean within 1 +- 0.01 and a spread at
most 15 % above scikit-learn's. The implementation is a parameter, so one run shows the
ratios. (The stored-matrix and matrix-free variants of numlab are both timed.)
"""

import numpy as np
import scipy.sparse

from .common import cached, sync, warm_up

N_SAMPLES = 10_000
N_FEATURES = 1_000_000
NNZ_PER_ROW = 100
N_COMPONENTS = 1_000
N_PAIRS = 2_000


def _make_data(n, d, nnz, seed):
    rng = np.random.default_rng(seed)
    cols = np.empty((n, nnz), dtype=np.int64)
    for i in range(n):
        cols[i] = np.sort(rng.choice(d, nnz, replace=False))
    data = rng.standard_normal(n * nnz)
    indptr = np.arange(0, n * nnz + 1, nnz)
    return scipy.sparse.csr_matrix((data, cols.ravel(), indptr), shape=(n, d))


def _data():
    return cached("rp-sparse-rows", _make_data, N_SAMPLES, N_FEATURES, NNZ_PER_ROW, 0)


def _estimator(implementation, random_state=0):
    if implementation == "sklearn":
        from sklearn.random_projection import SparseRandomProjection

        return SparseRandomProjection(N_COMPONENTS, random_state=random_state)
    from numlab.random_projection import VerySparseRandomProjection

    return VerySparseRandomProjection(
        N_COMPONENTS, matrix_free=implementation == "numlab-matrix-free", random_state=random_state
    )


def distortion(X, Y, n_pairs=N_PAIRS, seed=1):
    """``||Y_i - Y_j|| / ||X_i - X_j||`` over random pairs i != j."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, X.shape[0], (2, 2 * n_pairs))
    keep = i != j
    i, j = i[keep][:n_pairs], j[keep][:n_pairs]
    Y = Y.toarray() if scipy.sparse.issparse(Y) else np.asarray(Y)
    original = np.sqrt(np.asarray((X[i] - X[j]).power(2).sum(axis=1)).ravel())
    return np.linalg.norm(Y[i] - Y[j], axis=1) / original


class FitTransform:
    """Time of ``fit_transform`` (sparse input, default sparse output)."""

    params = ["numlab", "numlab-matrix-free", "sklearn"]
    param_names = ["implementation"]
    timeout = 600
    number = 1
    repeat = (3, 7, 120.0)

    def setup(self, implementation):
        self.X = _data()
        if implementation != "sklearn":
            warm_up(_estimator(implementation).fit_transform, self.X[:50])

    def time_fit_transform(self, implementation):
        sync(_estimator(implementation).fit_transform(self.X))


class Distortion:
    """Mean and standard deviation of the pairwise distance ratio (seeds 0..4 pooled)."""

    params = ["numlab", "numlab-matrix-free", "sklearn"]
    param_names = ["implementation"]
    timeout = 900

    def setup(self, implementation):
        X = _data()
        ratios = [distortion(X, _estimator(implementation, seed).fit_transform(X), seed=seed) for seed in range(3)]
        self.ratios = np.concatenate(ratios)

    def track_distortion_mean(self, implementation):
        return float(self.ratios.mean())

    def track_distortion_std(self, implementation):
        return float(self.ratios.std())

    track_distortion_mean.unit = "ratio"
    track_distortion_std.unit = "ratio"


def interleaved(rounds=5):
    """Ratios from round-robin repeats in one process (``python -m benchmarks.bench_random_projection``)."""
    import time

    X = _data()
    for implementation in ("numlab", "numlab-matrix-free"):
        warm_up(_estimator(implementation).fit_transform, X[:50])
    times = {k: [] for k in ("numlab", "numlab-matrix-free", "sklearn")}
    for r in range(rounds):
        for implementation in times:
            start = time.perf_counter()
            _estimator(implementation, r).fit_transform(X)
            times[implementation].append(time.perf_counter() - start)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    for implementation in ("numlab", "numlab-matrix-free"):
        print(f"{implementation}: {medians[implementation]:.3f} s = {medians[implementation] / medians['sklearn']:.3f}x sklearn")
    print(f"sklearn: {medians['sklearn']:.3f} s")


if __name__ == "__main__":
    interleaved()
