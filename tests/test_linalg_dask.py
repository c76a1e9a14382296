"""nl.linalg.randomized_svd / randomized_range_finder on Dask arrays.

Two schedulers: the synchronous one (in this process; counts how often each block of A
is read) and a ``distributed.LocalCluster`` of 2 worker processes on loopback, started
and shut down by a module fixture, including a worker killed mid-computation.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
from _dask_cluster import worker_killed_after  # noqa: E402

import numlab as nl  # noqa: E402

#: Hard bound on this module: a hung cluster dumps the stacks and exits.
MODULE_TIMEOUT_S = 240

M, N, CHUNK = 3000, 300, 500  # 900,000 entries: below the in-memory float32-pass threshold


def _spectrum_matrix(m=M, n=N, seed=0):
    """A = U diag(1/j) V.T with random orthonormal U, V: sigma_j = 1/j known exactly."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((m, n)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    s = 1.0 / np.arange(1, n + 1)
    return (U * s) @ V.T, s


def _block(seed, n, rows, index, delay=0.0):
    """Row block ``index`` of a seeded matrix (same numbers whoever computes it, and when)."""
    if delay:
        time.sleep(delay)
    rng = np.random.default_rng([seed, index])
    scale = 1.0 / np.arange(1, n + 1)
    mix = np.random.default_rng([seed, 10**6]).standard_normal((n, n)) / np.sqrt(n)
    return (rng.standard_normal((rows, n)) * scale) @ mix


def _seeded(seed, m, n, chunk, delay=0.0):
    """A lazy (m, n) matrix made block by block on the workers from ``seed``."""

    def make(block_info=None):
        info = block_info[None]
        lo, hi = info["array-location"][0]
        return _block(seed, n, hi - lo, info["chunk-location"][0], delay)

    chunks = ((chunk,) * (m // chunk) + ((m % chunk,) if m % chunk else ()), (n,))
    return da.map_blocks(make, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0)))


def _spectral_error(A, U, S, Vt):
    return np.linalg.norm(A - (U * S) @ Vt, 2)




# --------------------------------------------------------------------------- synchronous


def _counting_reads(A):
    """``A`` as a row-chunked Dask array that counts the reads of each block."""
    reads = {}

    def block(block_info=None):
        info = block_info[None]
        i = info["chunk-location"][0]
        reads[i] = reads.get(i, 0) + 1
        lo, hi = info["array-location"][0]
        return A[lo:hi]

    return da.map_blocks(block, chunks=((CHUNK,) * (M // CHUNK), (N,)), dtype=float), reads


@pytest.mark.parametrize("method", ["subspace", "krylov"])
@pytest.mark.parametrize("n_iter", ["auto", 0, 2])
def test_same_as_numpy_and_one_read_per_pass(sync, n_iter, method):
    """The in-memory result (block Krylov: the same Krylov space, to rounding), with one
    sweep over the blocks per power iteration or Krylov block, plus the first."""
    A, _ = _spectrum_matrix()
    Ad, reads = _counting_reads(A)
    U, S, Vt = nl.linalg.randomized_svd(Ad, 20, n_iter=n_iter, method=method, rng=1)
    Un, Sn, Vtn = nl.linalg.randomized_svd(A, 20, n_iter=n_iter, method=method, rng=1)
    assert isinstance(U, np.ndarray) and isinstance(Vt, np.ndarray)
    rtol, atol = (1e-12, 1e-12) if method == "subspace" else (1e-10, 1e-9)
    np.testing.assert_allclose(S, Sn, rtol=rtol)
    np.testing.assert_allclose(U, Un, atol=atol)
    np.testing.assert_allclose(Vt, Vtn, atol=atol)
    passes = set(reads.values())
    assert len(passes) == 1
    if n_iter != "auto":
        assert passes == {n_iter + 1}


def _recording_dtypes(monkeypatch):
    """Record the dtypes of the ``A @ P`` and ``A.T @ Y`` block products of every sweep."""
    from numlab.linalg import _rsvd_dask

    seen = {"Y": [], "Z": []}
    sweep = _rsvd_dask._block_sweep

    def record_sweep(a, p, **kw):
        seen["Y"].append(np.dtype(p.dtype))
        seen["Z"].append(np.dtype(kw["z_dtype"]))
        return sweep(a, p, **kw)

    monkeypatch.setattr(_rsvd_dask, "_block_sweep", record_sweep)
    return seen


@pytest.mark.parametrize("n_iter", [0, 2, "auto"])
def test_mixed_precision_sweeps_exact_projection(sync, monkeypatch, n_iter):
    """A float64 matrix of >= 2**20 entries: Y = A P in float32, the last A.T Y in float64,
    so the result is float64-exact for its subspace and as accurate as in memory."""
    m, chunk, k = 4096, 512, 20
    A, s = _spectrum_matrix(m=m)
    seen = _recording_dtypes(monkeypatch)
    U, S, Vt = nl.linalg.randomized_svd(da.from_array(A, chunks=(chunk, N)), k, n_iter=n_iter,
                                        rng=2)
    blocks = m // chunk
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    sweeps = len(seen["Z"]) // blocks
    assert seen["Y"] == [f32] * (sweeps * blocks)
    last = [f64] * blocks
    assert seen["Z"][-blocks:] == last
    if n_iter == "auto":
        assert seen["Z"] == [f64] * (sweeps * blocks)
    else:
        assert sweeps == n_iter + 1 and seen["Z"][:-blocks] == [f32] * (n_iter * blocks)
    assert U.dtype == S.dtype == Vt.dtype == f64
    # float64-exact for the subspace: U.T A V = diag(S), U and V orthonormal
    np.testing.assert_allclose(U.T @ A @ Vt.T, np.diag(S), atol=1e-13)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-13)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(k), atol=1e-13)
    err = _spectral_error(A, U, S, Vt) / s[k]
    err_numpy = _spectral_error(A, *nl.linalg.randomized_svd(A, k, n_iter=n_iter, rng=2)) / s[k]
    assert err <= 1.02 * err_numpy


def test_mixed_precision_off_below_float32_reach(sync, monkeypatch):
    """sigma_k / sigma_1 < 1e-3 after the first sweep: the other sweeps run in float64."""
    m, chunk, k = 4096, 512, 20
    rng = np.random.default_rng(4)
    U0 = np.linalg.qr(rng.standard_normal((m, N)))[0]
    V0 = np.linalg.qr(rng.standard_normal((N, N)))[0]
    s = 10.0 ** (-np.arange(N) / 4)
    A = (U0 * s) @ V0.T
    seen = _recording_dtypes(monkeypatch)
    U, S, Vt = nl.linalg.randomized_svd(da.from_array(A, chunks=(chunk, N)), k, n_iter=2,
                                        rng=0)
    blocks = m // chunk
    assert seen["Y"][:blocks] == [np.dtype(np.float32)] * blocks
    assert seen["Y"][blocks:] == [np.dtype(np.float64)] * (2 * blocks)
    np.testing.assert_allclose(S, s[:k], rtol=1e-6)


@pytest.mark.parametrize("n_iter", [0, 2])
def test_krylov_range_finder_spans_the_numpy_basis(sync, n_iter):
    A, _ = _spectrum_matrix()
    Ad = da.from_array(A, chunks=(CHUNK, N))
    Q = nl.linalg.randomized_range_finder(Ad, 15, n_iter=n_iter, method="krylov", rng=4)
    Qn = nl.linalg.randomized_range_finder(A, 15, n_iter=n_iter, method="krylov", rng=4)
    np.testing.assert_allclose(Q.T @ Q, np.eye(15), atol=1e-13)
    np.testing.assert_allclose(Q @ (Q.T @ Qn), Qn, atol=1e-9)  # the same span


def test_krylov_beats_subspace_at_equal_reads_and_mixed_precision_is_exact(sync):
    """At 3 sweeps Krylov (3 blocks) is more accurate than subspace iteration (n_iter=2);
    a float64 matrix of >= 2**20 entries keeps a float64-exact projection."""
    m, chunk, k = 4096, 512, 20
    A, s = _spectrum_matrix(m=m)
    Ad = da.from_array(A, chunks=(chunk, N))
    Uk, Sk, Vtk = nl.linalg.randomized_svd(Ad, k, n_iter=2, method="krylov", rng=5)
    Us, Ss, Vts = nl.linalg.randomized_svd(Ad, k, n_iter=2, rng=5)
    err_krylov = _spectral_error(A, Uk, Sk, Vtk) / s[k]
    assert err_krylov < _spectral_error(A, Us, Ss, Vts) / s[k]
    err_numpy = _spectral_error(
        A, *nl.linalg.randomized_svd(A, k, n_iter=2, method="krylov", rng=5)) / s[k]
    assert err_krylov <= 1.02 * err_numpy
    np.testing.assert_allclose(Uk.T @ A @ Vtk.T, np.diag(Sk), atol=1e-13)
    np.testing.assert_allclose(Uk.T @ Uk, np.eye(k), atol=1e-13)


def test_krylov_stops_when_the_space_stops_growing(sync):
    """A of rank 12 < the Krylov basis: the dropped directions end the iteration early
    and the factors are exact."""
    rng = np.random.default_rng(6)
    A = rng.standard_normal((2000, 12)) @ rng.standard_normal((12, 100))
    U, S, Vt = nl.linalg.randomized_svd(da.from_array(A, chunks=(400, 100)), 10, n_iter=4,
                                        n_oversamples=5, method="krylov", rng=0)
    np.testing.assert_allclose(S, np.linalg.svd(A, compute_uv=False)[:10], rtol=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(10), atol=1e-13)
    # k above the rank: k factors all the same, the extra singular values ~0
    U, S, Vt = nl.linalg.randomized_svd(da.from_array(A, chunks=(400, 100)), 14, n_iter=2,
                                        n_oversamples=0, method="krylov", rng=0)
    assert U.shape == (2000, 14) and S.shape == (14,)
    np.testing.assert_allclose(S[12:], 0.0, atol=1e-10 * S[0])
    np.testing.assert_allclose(U.T @ U, np.eye(14), atol=1e-12)
    np.testing.assert_allclose((U * S) @ Vt, A, atol=1e-10 * S[0])


@pytest.mark.parametrize("method", ["subspace", "krylov"])
def test_tol_chooses_the_rank_as_in_memory(sync, method):
    """Fixed precision: the smallest rank whose exact Frobenius error meets tol, the same
    rank as in memory and as the exact SVD; k too small warns and keeps k."""
    A, s = _spectrum_matrix()
    Ad, reads = _counting_reads(A)
    tol = 0.15
    exact_rank = int(np.nonzero(np.sqrt(1 - np.cumsum(s**2) / np.sum(s**2)) <= tol)[0][0]) + 1
    U, S, Vt = nl.linalg.randomized_svd(Ad, 60, tol=tol, n_iter=2, method=method, rng=0)
    Un, Sn, Vtn = nl.linalg.randomized_svd(A, 60, tol=tol, n_iter=2, method=method, rng=0)
    assert S.shape == Sn.shape == (exact_rank,)
    assert U.shape == (M, exact_rank) and Vt.shape == (exact_rank, N)
    assert set(reads.values()) == {3}  # as a fixed rank: n_iter + 1 sweeps
    error = np.linalg.norm(A - (U * S) @ Vt) / np.linalg.norm(A)
    assert error <= tol
    np.testing.assert_allclose(S, s[:exact_rank], rtol=1e-4)  # the sketch sized for k=60
    with pytest.warns(RuntimeWarning, match="does not reach tol"):
        U, S, Vt = nl.linalg.randomized_svd(Ad, 5, tol=0.1, method=method, rng=0)
    assert S.shape == (5,)


def test_chunking_does_not_change_the_result(sync):
    A, _ = _spectrum_matrix()
    results = [
        nl.linalg.randomized_svd(da.from_array(A, chunks=(c, N)), 15, n_iter=2, rng=3)
        for c in (3000, 700, 256)
    ]
    for U, S, Vt in results[1:]:
        np.testing.assert_allclose(S, results[0][1], rtol=1e-12)
        np.testing.assert_allclose(U, results[0][0], atol=1e-11)
        np.testing.assert_allclose(Vt, results[0][2], atol=1e-11)


def test_accuracy_vs_sklearn_and_svd_compressed(sync):
    from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

    A, s = _spectrum_matrix()
    Ad = da.from_array(A, chunks=(CHUNK, N))
    k = 20
    err = _spectral_error(A, *nl.linalg.randomized_svd(Ad, k, rng=0)) / s[k]
    err_sk = _spectral_error(A, *sk_randomized_svd(A, k, random_state=0)) / s[k]
    assert err <= 1.01 * err_sk
    # at equal reads of A (2 sweeps): svd_compressed's default makes no power iteration,
    # numlab's sweep fuses A @ P and A.T @ Y, so n_iter=1 costs 2 sweeps too
    Uc, Sc, Vtc = dask.compute(*da.linalg.svd_compressed(Ad, k, seed=0))
    err_dask = _spectral_error(A, Uc, Sc, Vtc) / s[k]
    err_1 = _spectral_error(A, *nl.linalg.randomized_svd(Ad, k, n_iter=1, rng=0)) / s[k]
    assert err_1 < 0.75 * err_dask


def test_lazy_result(sync):
    A, _ = _spectrum_matrix()
    Ad = da.from_array(A, chunks=(CHUNK, N))
    U, S, Vt = nl.linalg.randomized_svd(Ad, 10, rng=2, compute=False)
    assert isinstance(U, da.Array) and isinstance(Vt, da.Array) and isinstance(S, np.ndarray)
    assert U.chunks[0] == Ad.chunks[0] and U.shape == (M, 10) and Vt.shape == (10, N)
    Uc, Sc, Vtc = nl.linalg.randomized_svd(Ad, 10, rng=2)
    np.testing.assert_array_equal(U.compute(), Uc)
    np.testing.assert_array_equal(Vt.compute(), Vtc)
    np.testing.assert_array_equal(S, Sc)


def test_range_finder(sync):
    A, _ = _spectrum_matrix()
    Ad = da.from_array(A, chunks=(CHUNK, N))
    Q = nl.linalg.randomized_range_finder(Ad, 12, n_iter=2, rng=4)
    Qn = nl.linalg.randomized_range_finder(A, 12, n_iter=2, rng=4)
    np.testing.assert_allclose(Q, Qn, atol=1e-12)
    Ql = nl.linalg.randomized_range_finder(Ad, 12, n_iter=2, rng=4, compute=False)
    assert isinstance(Ql, da.Array)
    np.testing.assert_allclose(Ql.compute(), Q, atol=1e-14)
    np.testing.assert_allclose(Q.T @ Q, np.eye(12), atol=1e-12)


def test_float32(sync):
    A, _ = _spectrum_matrix()
    A32 = A.astype(np.float32)
    U, S, Vt = nl.linalg.randomized_svd(da.from_array(A32, chunks=(CHUNK, N)), 10, rng=5)
    Un, Sn, Vtn = nl.linalg.randomized_svd(A32, 10, rng=5)
    assert U.dtype == S.dtype == Vt.dtype == np.float32
    np.testing.assert_allclose(S, Sn, rtol=1e-5)
    np.testing.assert_allclose(U, Un, atol=1e-4)


def test_single_pass_reads_once_and_is_chunk_independent(sync):
    A, s = _spectrum_matrix()
    Ad, reads = _counting_reads(A)
    k = 10
    U, S, Vt = nl.linalg.randomized_svd(Ad, k, method="single_pass", rng=6)
    assert set(reads.values()) == {1}
    U2, S2, Vt2 = nl.linalg.randomized_svd(
        da.from_array(A, chunks=(1024, N)), k, method="single_pass", rng=6
    )
    np.testing.assert_allclose(S, S2, rtol=1e-10)
    np.testing.assert_allclose(U, U2, atol=1e-9)
    # One pass costs accuracy on this slowly decaying spectrum (measured: Frobenius error
    # 1.72x the optimal; two-pass q=0 1.31x, q=1 1.001x): bound it, absolutely and
    # against the two-pass sketch with the same range test matrix (n_iter=0).
    fro = np.linalg.norm(A - (U * S) @ Vt) / np.linalg.norm(s[k:])
    assert fro < 2.0
    U0, S0, Vt0 = nl.linalg.randomized_svd(A, k, n_iter=0, rng=6)
    assert np.linalg.norm(A - (U * S) @ Vt) < 1.5 * np.linalg.norm(A - (U0 * S0) @ Vt0)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-12)


def test_ill_conditioned_sketch_uses_tsqr(sync, monkeypatch):
    """sigma_j = 10**(-j/3): Y's Gram is too ill-conditioned for Cholesky-QR, TSQR takes over."""
    from numlab.linalg import _rsvd_dask

    rng = np.random.default_rng(0)
    m, n = 2000, 100
    U0 = np.linalg.qr(rng.standard_normal((m, n)))[0]
    V0 = np.linalg.qr(rng.standard_normal((n, n)))[0]
    s = 10.0 ** (-np.arange(n) / 3)
    A = (U0 * s) @ V0.T
    calls = []
    tsqr = _rsvd_dask._tsqr
    monkeypatch.setattr(_rsvd_dask, "_tsqr", lambda *a: calls.append(1) or tsqr(*a))
    U, S, Vt = nl.linalg.randomized_svd(da.from_array(A, chunks=(300, n)), 10, n_iter=2, rng=1)
    Un, Sn, Vtn = nl.linalg.randomized_svd(A, 10, n_iter=2, rng=1)
    assert calls
    np.testing.assert_allclose(S, Sn, rtol=1e-12)
    np.testing.assert_allclose(U, Un, atol=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(10), atol=1e-13)
    assert _spectral_error(A, U, S, Vt) / s[10] < 1.0 + 1e-9
    U, S, Vt = nl.linalg.randomized_svd(
        da.from_array(A, chunks=(300, n)), 10, method="single_pass", rng=1
    )
    assert _spectral_error(A, U, S, Vt) / s[10] < 1.0 + 1e-6


def test_sparse_blocks(sync):
    sp = pytest.importorskip("scipy.sparse")
    X = sp.random(4000, 400, density=0.02, format="csr", random_state=7, dtype=np.float64)
    Xd = da.from_array(X, chunks=(1000, 400), asarray=False)
    U, S, Vt = nl.linalg.randomized_svd(Xd, 8, n_iter=4, rng=8)
    Un, Sn, Vtn = nl.linalg.randomized_svd(X, 8, n_iter=4, rng=8)
    np.testing.assert_allclose(S, Sn, rtol=1e-10)
    np.testing.assert_allclose(U, Un, atol=1e-9)


def test_bad_input(sync):
    A, _ = _spectrum_matrix()
    Ad = da.from_array(A, chunks=(CHUNK, N))
    with pytest.raises(ValueError, match="tall-and-skinny"):
        nl.linalg.randomized_svd(Ad.T, 5)
    with pytest.raises(ValueError, match="`tol`"):
        nl.linalg.randomized_svd(Ad, 5, tol=1.5)
    with pytest.raises(ValueError, match="`tol` needs `method`"):
        nl.linalg.randomized_svd(Ad, 5, tol=0.1, method="single_pass")
    with pytest.raises(ValueError, match="`method`"):
        nl.linalg.randomized_svd(Ad, 5, method="lanczos")
    with pytest.raises(ValueError, match="`k`"):
        nl.linalg.randomized_svd(Ad, N + 1)
    with pytest.raises(ValueError, match=r"`A` must be chunked by rows only .*rechunk"):
        nl.linalg.randomized_svd(da.from_array(A, chunks=(CHUNK, 100)), 5)
    bad = A.copy()
    bad[1234, 5] = np.nan
    with pytest.raises(ValueError, match="finite"):
        nl.linalg.randomized_svd(da.from_array(bad, chunks=(CHUNK, N)), 5)
    with pytest.raises(ValueError, match="single_pass"):
        nl.linalg.randomized_svd(A, 5, method="single_pass")


# --------------------------------------------------------------------------- distributed


def test_cluster_same_as_numpy(client):
    Ad = _seeded(11, 4000, 200, 400)
    with dask.config.set(scheduler="synchronous"):
        A = Ad.compute()
    U, S, Vt = nl.linalg.randomized_svd(Ad, 15, n_iter=3, rng=9)
    Un, Sn, Vtn = nl.linalg.randomized_svd(A, 15, n_iter=3, rng=9)
    np.testing.assert_allclose(S, Sn, rtol=1e-12)
    np.testing.assert_allclose(U, Un, atol=1e-12)
    np.testing.assert_allclose(Vt, Vtn, atol=1e-12)
    Ul, _, _ = nl.linalg.randomized_svd(Ad, 15, n_iter=3, rng=9, compute=False)
    np.testing.assert_allclose(Ul.compute(), U, atol=1e-14)
    U1, S1, _ = nl.linalg.randomized_svd(Ad, 15, method="single_pass", rng=9)
    assert S1.shape == (15,) and np.all(np.isfinite(U1))


def test_cluster_worker_killed_mid_computation(client):
    """A worker process killed while the sweeps run: Dask recomputes, the answer is right."""
    m, n, chunk = 6000, 150, 200  # 30 blocks, 0.05 s each: ~1 s per sweep on 2 workers
    Ad = _seeded(12, m, n, chunk, delay=0.05)
    with dask.config.set(scheduler="synchronous"):
        A = _seeded(12, m, n, chunk).compute()
    Un, Sn, Vtn = nl.linalg.randomized_svd(A, 10, n_iter=4, rng=10)
    with worker_killed_after(client, 1.5):
        U, S, Vt = nl.linalg.randomized_svd(Ad, 10, n_iter=4, rng=10)
    np.testing.assert_allclose(S, Sn, rtol=1e-12)
    np.testing.assert_allclose(U, Un, atol=1e-12)
    np.testing.assert_allclose(Vt, Vtn, atol=1e-12)


def test_cluster_reads_a_zarr_store_chunk_by_chunk(client, tmp_path):
    """A stored on disk in Zarr, chunked by rows: the workers read the chunks themselves
    (the graph holds the path, never the data); the same result as in memory, for both
    methods."""
    pytest.importorskip("zarr")
    A, _ = _spectrum_matrix(m=4000, n=200, seed=3)
    path = str(tmp_path / "A.zarr")
    da.to_zarr(da.from_array(A, chunks=(500, 200)), path)
    Ad = da.from_zarr(path)
    assert Ad.chunks[0] == (500,) * 8
    graph_bytes = len(pickle.dumps(dict(Ad.__dask_graph__())))
    assert graph_bytes < A.nbytes / 100
    for method in ("subspace", "krylov"):
        U, S, Vt = nl.linalg.randomized_svd(Ad, 12, n_iter=2, method=method, rng=13)
        Un, Sn, Vtn = nl.linalg.randomized_svd(A, 12, n_iter=2, method=method, rng=13)
        np.testing.assert_allclose(S, Sn, rtol=1e-10)
        np.testing.assert_allclose(U, Un, atol=1e-9)
        np.testing.assert_allclose(Vt, Vtn, atol=1e-9)
