"""nl.linalg.randomized_svd and VerySparseRandomProjection on a Dask cluster, on matrices
larger than the workers' memory.

The matrix is ``A = G @ C`` (m x n float64), ``G`` standard normal (m x r) made block by
block on the workers from a seed (block i from ``default_rng([seed, i])``), ``C =
diag(1/j) V.T`` (r x n, V orthonormal): nothing is stored, every sweep regenerates the
blocks, exactly what a cluster reading from disk does, and recomputing a lost block gives
the same numbers. Default: m = 500,000, n = 500, r = 100, chunks of 10,000 rows (40 MB),
so A is 2.0 GB, against 2 workers x 500 MB memory limit (1 thread each).

The error is exact: ``A.T A = C.T (G.T G) C`` and ``A.T U = C.T (G.T U)`` come from one
regeneration of ``G`` on the client, so ``||A - U S Vt||_2`` is the square root of the top
eigenvalue of an n x n matrix; it is reported relative to sigma_{k+1} (1 = optimal).

Rows (k = 50): numlab's default (``n_iter="auto"``), numlab ``n_iter=1`` (2 sweeps over A,
as many as svd_compressed's default makes), ``dask.array.linalg.svd_compressed`` default
(``n_power_iter=0``; ``compute=True``, its mode for data larger than memory) and with
``n_power_iter=1``, numlab ``method="krylov"`` with ``n_iter=1`` (2 sweeps); numlab on 1
and 2 workers. Throughput per worker = bytes of A read (sweeps x 2.0 GB) / time /
workers. ``--zarr DIR`` reads A from a Zarr store instead (written there first, 1.8 GB,
Zarr's default compressor; each block read is counted as a generated one is).

Measured 2026-12-03 (2-core machine, no other job running; OMP_NUM_THREADS=1;
dask/distributed 2026.8.0, zarr 3.1.6; ``python -m benchmarks.bench_dask --rounds 5
--in-memory-rows 0 --rp-rows 0 [--zarr /path/A.zarr]``), A = 500,000 x 500 = 1.86 GiB,
2 workers x 500 MB, one run per row:

| workers | method | time s, generated | time s, Zarr | err / sigma_51 | sweeps | GB/s/worker |
| --- | --- | --- | --- | --- | --- | --- |
| 2 | numlab auto (default) | 26.6 | 44.6 | 1.0005 | 5 | 0.188 / 0.112 |
| 2 | numlab n_iter=1 | 11.2 | 19.0 | 1.1072 | 2 | 0.179 / 0.105 |
| 2 | svd_compressed default (q=0) | 10.5 | 18.4 | 1.8397 | 2 | 0.190 / 0.109 |
| 2 | svd_compressed q=1 | 17.1 | 31.2 | 1.1348 | 4 | 0.234 / 0.128 |
| 2 | numlab krylov n_iter=1 | 13.1 | 19.2 | 1.0000 | 2 | 0.152 / 0.104 |
| 1 | numlab auto (default) | 43.1 | 75.4 | 1.0005 | 5 | 0.232 / 0.133 |
| 1 | numlab n_iter=1 | 21.4 | 30.1 | 1.1072 | 2 | 0.187 / 0.133 |
| 1 | numlab krylov n_iter=1 | 26.7 | 35.4 | 1.0000 | 2 | 0.150 / 0.113 |

Scaling 1 -> 2 workers: 1.62x / 1.91x / 2.04x (auto / n_iter=1 / krylov, generated
blocks), 1.69x / 1.58x / 1.84x (Zarr). A is exactly of rank 100 (``RANK``), so a
basis of 100 directions or more is exact: Krylov's 2 blocks of 60 reach 1.0000 for that
reason, a matrix of full rank would not.

Interleaved rounds, 2 workers, medians of 5 (``--skip-table --rounds 5 --versus 0``):

| A read from | numlab n_iter=1 | svd_compressed default | time ratio |
| --- | --- | --- | --- |
| generated blocks | 11.2 s, err 1.1072 | 11.7 s, err 1.8397 | 0.96 |
| Zarr store | 16.9 s, err 1.1072 | 17.5 s, err 1.8397 | 0.96 |

So at equal time numlab's 2 sweeps reach 1.107x the optimal spectral error where
svd_compressed's default reaches 1.840x (the issue's equal-time target). Before this
round of work the same pair measured 1.17-1.29x: each block was copied by blockwise's
concatenation, cast twice, and both products ran in float64. Now one task per block and
sweep makes both products, the subspace-finding ones in float32 (the last ``A.T @ Y``
in float64, so the result stays float64-exact for its subspace).

In memory (A = 100,000 x 500 of the same kind, ``measure_in_memory``): numlab on Dask
(synchronous scheduler) 1.0005, numlab on NumPy 1.0005, scikit-learn's randomized_svd
default (n_iter=7) 1.0013 spectral error / sigma_51 (5.6 s, 3.0 s, 3.9 s; the Dask time
includes generating A's blocks in every sweep, the others read a NumPy array).

Random projection (``measure_projection``): ``VerySparseRandomProjection(256,
matrix_free=True).transform`` of X = 200,000 x 2,000 float64 standard normals (2.98 GiB,
chunks of 2,500 rows = 40 MB, block i from ``default_rng([seed, i])`` on the workers)
against 2 workers x 500 MB. The projected blocks (0.4 GB) are reduced on the workers to
the norm ratios ``||R x||^2 / ||x||^2`` (X generated once for both uses), never
gathered; "generate X only" computes X's row norms alone. Throughput per worker = bytes
of X / time / workers. Measured 2026-12-03 (same machine, no other job; OMP_NUM_THREADS=1;
medians of 3, ``python -m benchmarks.bench_dask --skip-table --rounds 0
--in-memory-rows 0 --repeat 3``):

| workers | run | time s | GB/s per worker | reads of each block |
| --- | --- | --- | --- | --- |
| 2 | generate X only | 5.5 | 0.291 | 1 |
| 2 | transform | 13.5 | 0.119 | 1 |
| 1 | generate X only | 10.3 | 0.310 | 1 |
| 1 | transform | 19.7 | 0.163 | 1 |

Scaling 1 -> 2 workers: 1.46x (transform), 1.87x (generation alone). (An earlier run
with two other benchmarks on the two cores measured 1.08x: that measured the load.) The
first block equals the in-memory transform bit for bit; the norm ratios have mean
0.9946, std 0.0891 (Li et al.: sqrt(2/k) = 0.0884). No worker paused or restarted.

By hand: ``python -m benchmarks.bench_dask [--rows M] [--repeat R] [--rp-rows M]
[--zarr DIR] [--workers 2,1]`` from the repository root (``--rp-rows 0`` skips the random
projection). asv:
``DaskRandomizedSVD`` (a smaller matrix, ``NUMLAB_BENCH_DASK_ROWS`` rows, default
100,000, so that asv's repeats stay short) and ``DaskRandomProjection``
(``NUMLAB_BENCH_DASK_RP_ROWS`` rows, default 50,000).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

N_COLS = 500
RANK = 100
CHUNK = 10_000
K = 50
SEED = 0
WORKER_MEMORY = "500MB"


# --------------------------------------------------------------------------- data


def _core(n=N_COLS, r=RANK, seed=SEED):
    """C = diag(1/j) V.T (r x n)."""
    V, _ = np.linalg.qr(np.random.default_rng([seed, 2**31]).standard_normal((n, r)))
    return (V / np.arange(1, r + 1)).T


_CALLS = [0]


def _count_read():
    """Called by every block generation (module-level: workers import it by reference)."""
    _CALLS[0] += 1


def _calls():
    return _CALLS[0]


def _g_block(seed, index, rows, r=RANK):
    return np.random.default_rng([seed, index]).standard_normal((rows, r))


def lazy_matrix(m, n=N_COLS, chunk=CHUNK, seed=SEED):
    """The m x n Dask array A = G C, generated chunk by chunk where it is computed."""
    import dask.array as da

    C = _core(n, seed=seed)

    def make(block_info=None):
        info = block_info[None]
        lo, hi = info["array-location"][0]
        _count_read()
        return _g_block(seed, info["chunk-location"][0], hi - lo) @ C

    nb, rest = divmod(m, chunk)
    chunks = ((chunk,) * nb + ((rest,) if rest else ()), (n,))
    return da.map_blocks(make, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0)))


class Reference:
    """Exact spectrum of A and exact spectral errors, from one regeneration of G."""

    def __init__(self, m, n=N_COLS, chunk=CHUNK, seed=SEED):
        self.m, self.n, self.chunk, self.seed = m, n, chunk, seed
        self.C = _core(n, seed=seed)
        gram = np.zeros((RANK, RANK))
        for i, lo in enumerate(range(0, m, chunk)):
            g = _g_block(seed, i, min(chunk, m - lo))
            gram += g.T @ g
        self.gram = gram
        self.AtA = self.C.T @ gram @ self.C
        self.sigma = np.sqrt(np.clip(np.linalg.eigvalsh(self.AtA)[::-1], 0, None))

    def spectral_error(self, U, S, Vt):
        """||A - U S Vt||_2 / sigma_{k+1}."""
        k = S.shape[0]
        GtU = np.zeros((RANK, k))
        for i, lo in enumerate(range(0, self.m, self.chunk)):
            hi = min(lo + self.chunk, self.m)
            GtU += _g_block(self.seed, i, hi - lo).T @ U[lo:hi]
        AtU = self.C.T @ GtU  # n x k
        cross = (AtU * S) @ Vt  # A.T U S Vt
        E = self.AtA - cross - cross.T + Vt.T @ ((S[:, None] * (U.T @ U)) * S) @ Vt
        top = np.linalg.eigvalsh((E + E.T) / 2)[-1]
        return float(np.sqrt(max(top, 0.0)) / self.sigma[k])


# --------------------------------------------------------------------------- runs


def _cluster(n_workers):
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit=WORKER_MEMORY,
        timeout=120,
    )
    return cluster, distributed.Client(cluster, timeout=120)


def run_numlab(A, n_iter, method="subspace"):
    import numlab as nl

    U, S, Vt = nl.linalg.randomized_svd(A, K, n_iter=n_iter, method=method, rng=1)
    return U, S, Vt


def run_numlab_krylov(A, n_iter):
    return run_numlab(A, n_iter, method="krylov")


def run_svd_compressed(A, n_power_iter):
    """svd_compressed, u gathered block by block as numlab does (a single concatenation
    of the 200 MB u on one worker exceeds its 500 MB limit)."""
    import dask
    import dask.array as da

    u, s, v = da.linalg.svd_compressed(A, K, n_power_iter=n_power_iter, seed=1, compute=True)
    s, v, *blocks = dask.compute(s, v, *u.to_delayed().ravel())
    return np.concatenate(blocks, axis=0), s, v


ROWS = [
    ("numlab auto", run_numlab, "auto"),
    ("numlab n_iter=1", run_numlab, 1),
    ("svd_compressed default (q=0)", run_svd_compressed, 0),
    ("svd_compressed q=1", run_svd_compressed, 1),
    ("numlab krylov n_iter=1", run_numlab_krylov, 1),
]


def write_zarr(m, path):
    """Store A in a Zarr directory (chunks of CHUNK rows, Zarr's default compressor),
    block by block; kept for later runs."""
    import dask
    import dask.array as da

    if not os.path.exists(path):
        with dask.config.set(scheduler="threads"):
            da.to_zarr(lazy_matrix(m), path)
    return path


def _counted(block):
    """A block read from the store, counted as one read (as the generator counts)."""
    _count_read()
    return block


def source(m, zarr_path=None):
    """The lazy A: generated on the workers, or read from the Zarr store at ``zarr_path``."""
    if zarr_path is None:
        return lazy_matrix(m)
    import dask.array as da

    A = da.from_zarr(zarr_path)
    assert A.shape == (m, N_COLS), f"{zarr_path} holds {A.shape}, not {(m, N_COLS)}"
    return A.map_blocks(_counted, dtype=A.dtype)


def measure(m, repeat=1, workers=(2, 1), rows=ROWS, out=print, zarr_path=None):
    from dask.utils import format_bytes

    ref = Reference(m)
    A_bytes = m * N_COLS * 8
    out(f"A: {m} x {N_COLS} float64 = {format_bytes(A_bytes)}; workers x {WORKER_MEMORY}")
    out("| workers | method | time s (median) | spectral err / sigma_k+1 | GB/s per worker |")
    out("| --- | --- | --- | --- | --- |")
    results = {}
    for w in workers:
        cluster, client = _cluster(w)
        try:
            for name, fn, arg in rows:
                if w == 1 and not name.startswith("numlab"):
                    continue
                times = []
                for _ in range(repeat):
                    A = source(m, zarr_path)
                    before = _reads(client)
                    t0 = time.perf_counter()
                    U, S, Vt = fn(A, arg)
                    times.append(time.perf_counter() - t0)
                    sweeps = (_reads(client) - before) / A.numblocks[0]
                err = ref.spectral_error(np.asarray(U), np.asarray(S), np.asarray(Vt))
                t = float(np.median(times))
                rate = sweeps * A_bytes / t / w / 1e9
                results[(w, name)] = (t, err, sweeps)
                out(f"| {w} | {name} | {t:.1f} | {err:.4f} | {rate:.3f} ({sweeps:g} sweeps) |")
        finally:
            client.close(timeout=30)
            cluster.close(timeout=30)
    return results


def _reads(client):
    """Blocks of A generated so far on the workers alive."""
    return sum(client.run(_calls).values())


def measure_pair(m, rounds=3, versus=0, out=print, zarr_path=None):
    """Interleaved rounds on 2 workers: numlab n_iter=1 vs svd_compressed with
    ``n_power_iter=versus`` (0, its default: the same 2 sweeps over A; 1: about the same
    accuracy); the median time ratio is robust to the load of a shared machine."""
    pair = [ROWS[1], ROWS[2 + versus]]
    times = {name: [] for name, _, _ in pair}
    errors = {}
    ref = Reference(m)
    cluster, client = _cluster(2)
    try:
        for _ in range(rounds):
            for name, fn, arg in pair:
                t0 = time.perf_counter()
                U, S, Vt = fn(source(m, zarr_path), arg)
                times[name].append(time.perf_counter() - t0)
                errors[name] = ref.spectral_error(np.asarray(U), np.asarray(S), np.asarray(Vt))
    finally:
        client.close(timeout=30)
        cluster.close(timeout=30)
    (a, _, _), (b, _, _) = pair
    ta, tb = np.median(times[a]), np.median(times[b])
    out(f"Interleaved, {rounds} rounds, 2 workers, A {m} x {N_COLS}:")
    out(f"| {a} | median {ta:.1f} s | err {errors[a]:.4f} |")
    out(f"| {b} | median {tb:.1f} s | err {errors[b]:.4f} |")
    out(f"time ratio numlab / svd_compressed = {ta / tb:.2f}")


def measure_in_memory(m, out=print):
    """Where A fits in memory: scikit-learn's randomized_svd (default) on the same matrix."""
    import dask
    from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

    import numlab as nl

    ref = Reference(m)
    with dask.config.set(scheduler="synchronous"):
        A_lazy = lazy_matrix(m)
        A = A_lazy.compute()
        rows = []
        t0 = time.perf_counter()
        res = nl.linalg.randomized_svd(A_lazy, K, rng=1)
        rows.append(("numlab on Dask (synchronous), auto", time.perf_counter() - t0, res))
    t0 = time.perf_counter()
    res = nl.linalg.randomized_svd(A, K, rng=1)
    rows.append(("numlab on NumPy, auto", time.perf_counter() - t0, res))
    t0 = time.perf_counter()
    res = sk_randomized_svd(A, K, random_state=1)
    rows.append(("scikit-learn default (n_iter=7)", time.perf_counter() - t0, res))
    out(f"In memory, A {m} x {N_COLS}:")
    out("| method | time s | spectral err / sigma_k+1 |")
    out("| --- | --- | --- |")
    for name, t, (U, S, Vt) in rows:
        out(f"| {name} | {t:.1f} | {ref.spectral_error(U, S, Vt):.4f} |")


# --------------------------------------------------------------------------- random projection

RP_FEATURES = 2_000
RP_COMPONENTS = 256
RP_CHUNK = 2_500  # 40 MB blocks


def lazy_features(m, d=RP_FEATURES, chunk=RP_CHUNK, seed=SEED):
    """The m x d Dask array X of standard normals, block i from ``default_rng([seed, i])``:
    made where it is computed, never stored (recomputing a lost block gives the same
    numbers)."""
    import dask.array as da

    def make(block_info=None):
        info = block_info[None]
        lo, hi = info["array-location"][0]
        _count_read()
        rng = np.random.default_rng([seed, info["chunk-location"][0]])
        return rng.standard_normal((hi - lo, d))

    nb, rest = divmod(m, chunk)
    chunks = ((chunk,) * nb + ((rest,) if rest else ()), (d,))
    return da.map_blocks(make, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0)))


def _projection_check(m):
    """Lazy (norm ratios ||R x||^2 / ||x||^2 per row, Y's first block) of the projection
    of ``lazy_features(m)``: the result (m x 256, 0.4 GB at m = 200,000) is reduced on
    the workers, never gathered; X is generated once for both uses."""
    import numlab as nl

    X = lazy_features(m)
    est = nl.random_projection.VerySparseRandomProjection(
        RP_COMPONENTS, matrix_free=True, random_state=1
    ).fit(X)
    Y = est.transform(X)
    return est, (Y * Y).sum(axis=1) / (X * X).sum(axis=1), Y.blocks[0]


def _warm_projection():
    """On each worker: import numlab and scikit-learn, load the projection kernels."""
    import numlab as nl

    X = np.ones((4, RP_FEATURES))
    nl.random_projection.VerySparseRandomProjection(RP_COMPONENTS, random_state=0).fit_transform(X)


def measure_projection(m, repeat=1, workers=(2, 1), out=print):
    """VerySparseRandomProjection.transform of ``lazy_features(m)`` on 1 and 2 workers,
    against generating X alone (its row norms): throughput per worker = bytes of X /
    time / workers."""
    import dask
    from dask.utils import format_bytes

    X_bytes = m * RP_FEATURES * 8
    out(
        f"Random projection: X {m} x {RP_FEATURES} float64 = {format_bytes(X_bytes)} -> "
        f"{RP_COMPONENTS} components (matrix_free); workers x {WORKER_MEMORY}"
    )
    out("| workers | run | time s (median) | GB/s per worker | block reads / block |")
    out("| --- | --- | --- | --- | --- |")
    times = {}
    for w in workers:
        cluster, client = _cluster(w)
        try:
            client.run(_warm_projection)  # imports and kernel loads out of the timings
            for name in ("generate X only", "transform"):
                ts = []
                for _ in range(repeat):
                    before = _reads(client)
                    t0 = time.perf_counter()
                    if name == "transform":
                        est, ratios, first = _projection_check(m)
                        ratios, first = dask.compute(ratios, first)
                    else:
                        X = lazy_features(m)
                        (X * X).sum(axis=1).compute()
                    ts.append(time.perf_counter() - t0)
                    reads = (_reads(client) - before) / -(-m // RP_CHUNK)
                t = float(np.median(ts))
                times[(w, name)] = t
                out(f"| {w} | {name} | {t:.1f} | {X_bytes / t / w / 1e9:.3f} | {reads:g} |")
        finally:
            client.close(timeout=30)
            cluster.close(timeout=30)
    # the blocks are the in-memory transform's, bit for bit; the norms are kept (JL)
    with dask.config.set(scheduler="synchronous"):
        X0 = lazy_features(m).blocks[0].compute()
    exact = np.array_equal(first, est.transform(X0))
    out(
        f"first block identical to the in-memory transform: {exact}; "
        f"||R x||^2 / ||x||^2 over {m} rows: mean {ratios.mean():.4f}, std {ratios.std():.4f} "
        f"(theory sqrt(2/k) = {np.sqrt(2 / RP_COMPONENTS):.4f})"
    )
    for name in ("generate X only", "transform"):
        if (1, name) in times and (2, name) in times:
            out(f"scaling 1 -> 2 workers ({name}): {times[(1, name)] / times[(2, name)]:.2f}x")
    return times


# --------------------------------------------------------------------------- asv


class DaskRandomizedSVD:
    """numlab (default, and ``n_iter=1``: 2 reads of A, as many as the anchor's) vs
    svd_compressed (default) on 2 local worker processes; k = 50."""

    params = ["numlab", "numlab-n_iter=1", "svd_compressed"]
    param_names = ["impl"]
    timeout = 600
    number = 1
    repeat = 3

    def setup_cache(self):
        return int(os.environ.get("NUMLAB_BENCH_DASK_ROWS", 100_000))

    def setup(self, m, impl):
        self.cluster, self.client = _cluster(2)
        self.m = m
        self.fn = {
            "numlab": lambda A: run_numlab(A, "auto"),
            "numlab-n_iter=1": lambda A: run_numlab(A, 1),
            "svd_compressed": lambda A: run_svd_compressed(A, 0),
        }[impl]

    def teardown(self, m, impl):
        self.client.close(timeout=30)
        self.cluster.close(timeout=30)

    def time_svd(self, m, impl):
        self.fn(lazy_matrix(m))

    def track_spectral_error(self, m, impl):
        U, S, Vt = self.fn(lazy_matrix(m))
        return Reference(m).spectral_error(np.asarray(U), np.asarray(S), np.asarray(Vt))


class DaskRandomProjection:
    """VerySparseRandomProjection.transform (matrix-free, 256 components) of a
    ``NUMLAB_BENCH_DASK_RP_ROWS`` x 2,000 matrix (default 50,000) on 2 local workers."""

    timeout = 600
    number = 1
    repeat = 3

    def setup(self):
        self.cluster, self.client = _cluster(2)
        self.m = int(os.environ.get("NUMLAB_BENCH_DASK_RP_ROWS", 50_000))

    def teardown(self):
        self.client.close(timeout=30)
        self.cluster.close(timeout=30)

    def time_transform(self):
        import dask

        _, ratios, _ = _projection_check(self.m)
        dask.compute(ratios)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--in-memory-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--versus", type=int, default=0, choices=(0, 1))
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument(
        "--rp-rows", type=int, default=200_000, help="0 skips the random projection"
    )
    parser.add_argument(
        "--zarr", default=None,
        help="read A from this Zarr directory (written first if missing) instead of "
             "generating its blocks on the workers",
    )
    parser.add_argument("--workers", default="2,1", help="worker counts of the table")
    args = parser.parse_args(argv)
    zarr_path = None if args.zarr is None else write_zarr(args.rows, args.zarr)
    workers = tuple(int(w) for w in args.workers.split(","))
    if not args.skip_table:
        measure(args.rows, repeat=args.repeat, workers=workers, zarr_path=zarr_path)
    if args.rounds:
        measure_pair(args.rows, rounds=args.rounds, versus=args.versus, zarr_path=zarr_path)
    if args.in_memory_rows:
        measure_in_memory(args.in_memory_rows)
    if args.rp_rows:
        measure_projection(args.rp_rows, repeat=args.repeat)


if __name__ == "__main__":
    # run as benchmarks.bench_dask, not __main__: the workers then import the block
    # generator (and its read counter) by reference
    from benchmarks.bench_dask import main as _main

    _main()
