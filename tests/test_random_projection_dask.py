"""VerySparseRandomProjection on row-chunked Dask arrays.

Two schedulers: the synchronous one (in this process; equality with the in-memory
transform for several chunkings, dense and scipy.sparse blocks) and a
``distributed.LocalCluster`` of 2 worker processes on loopback, started and shut down by
a module fixture, including a worker killed mid-computation.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
import scipy.sparse

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
from _dask_cluster import worker_killed_after  # noqa: E402

pytest.importorskip("sklearn")

import numlab as nl  # noqa: E402

VSRP = nl.random_projection.VerySparseRandomProjection

#: Hard bound on this module: a hung cluster dumps the stacks and exits.
MODULE_TIMEOUT_S = 120

M, D, K = 1200, 500, 40


def _data(sparse, m=M, d=D, seed=0):
    X = np.random.default_rng(seed).standard_normal((m, d))
    X[X < 0.8] = 0.0  # ~20% nonzeros
    return scipy.sparse.csr_matrix(X) if sparse else X


def _dense(Y):
    return Y.toarray() if scipy.sparse.issparse(Y) else np.asarray(Y)


def _block(seed, d, rows, index, delay=0.0):
    """Row block ``index`` of a seeded matrix (same numbers whoever computes it, and when)."""
    if delay:
        time.sleep(delay)
    return np.random.default_rng([seed, index]).standard_normal((rows, d))


def _seeded(seed, m, d, chunk, delay=0.0):
    """A lazy (m, d) matrix made block by block on the workers from ``seed``."""

    def make(block_info=None):
        info = block_info[None]
        lo, hi = info["array-location"][0]
        return _block(seed, d, hi - lo, info["chunk-location"][0], delay)

    chunks = ((chunk,) * (m // chunk) + ((m % chunk,) if m % chunk else ()), (d,))
    return da.map_blocks(make, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0)))




# --------------------------------------------------------------------------- synchronous


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("matrix_free", [False, True], ids=["stored", "matrix_free"])
@pytest.mark.parametrize("dense_output", [False, True], ids=["", "dense_output"])
def test_transform_identical_to_numpy(sync, sparse, matrix_free, dense_output):
    X = _data(sparse)
    params = dict(
        n_components=K, matrix_free=matrix_free, dense_output=dense_output, random_state=3
    )
    est = VSRP(**params).fit(X)
    want = est.transform(X)
    for chunk in (M, 500, 77):
        Xd = da.from_array(X, chunks=(chunk, D), asarray=False)
        estd = VSRP(**params).fit(Xd)
        assert estd.seed_ == est.seed_ and estd.n_features_in_ == D
        Y = estd.transform(Xd)
        assert isinstance(Y, da.Array) and Y.chunks == (Xd.chunks[0], (K,))
        got = Y.compute()
        assert scipy.sparse.issparse(got) == scipy.sparse.issparse(want)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(_dense(got), _dense(want))  # bit for bit
    # the same estimator fitted in memory transforms a Dask array alike
    np.testing.assert_array_equal(_dense(est.transform(Xd).compute()), _dense(want))


def test_float32_and_integers(sync):
    X = _data(False).astype(np.float32)
    est = VSRP(K, random_state=1).fit(X)
    got = est.transform(da.from_array(X, chunks=(300, D))).compute()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, est.transform(X))
    Xi = (_data(False, seed=2) * 10).astype(np.int64)
    est = VSRP(K, random_state=1).fit(da.from_array(Xi, chunks=(300, D)))
    got = est.transform(da.from_array(Xi, chunks=(300, D))).compute()
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, VSRP(K, random_state=1).fit(Xi).transform(Xi))


def test_fit_reads_no_data_and_the_graph_holds_no_matrix(sync):
    reads = []

    def block(block_info=None):
        reads.append(1)
        lo, hi = block_info[None]["array-location"][0]
        return np.ones((hi - lo, 20_000))

    Xd = da.map_blocks(block, chunks=((100,) * 4, (20_000,)), dtype=float, meta=np.empty((0, 0)))
    est = VSRP(500, random_state=0).fit(Xd)
    assert reads == [] and est.n_features_in_ == 20_000
    Y = est.transform(Xd)
    assert reads == []
    # R (500 x 20,000, ~70,000 nonzeros, ~1 MB) is neither built nor in the task graph
    assert "_components_csr" not in est.__dict__
    (layer,) = [v for k, v in Y.dask.layers.items() if k == Y.name]
    assert len(pickle.dumps(dict(layer))) < 20_000
    R = est.components_  # built on demand in memory, as without Dask
    assert len(pickle.dumps(R)) > 500_000


def test_fit_transform_and_auto_components(sync):
    X = _data(False, m=400, d=5000)
    Xd = da.from_array(X, chunks=(150, 5000))
    est = VSRP(eps=0.5, random_state=4)
    got = est.fit_transform(Xd)
    assert isinstance(got, da.Array)
    want = VSRP(eps=0.5, random_state=4).fit_transform(X)
    assert est.n_components_ == want.shape[1]
    np.testing.assert_array_equal(got.compute(), want)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("matrix_free", [False, True], ids=["stored", "matrix_free"])
def test_inverse_transform(sync, sparse, matrix_free):
    X = _data(sparse, m=300, d=200)
    est = VSRP(K, random_state=5, matrix_free=matrix_free).fit(X)
    Y = est.transform(X)
    want = est.inverse_transform(Y)
    got = est.inverse_transform(da.from_array(Y, chunks=(70, K), asarray=False))
    assert isinstance(got, da.Array) and got.chunks[0] == (70, 70, 70, 70, 20)
    # X @ pinv(R).T row by row (BLAS for dense blocks: to rounding, bit for bit here)
    np.testing.assert_allclose(got.compute(), want, rtol=1e-12, atol=1e-12)


def test_bad_input(sync):
    X = _data(False)
    est = VSRP(K, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"`X` must be chunked by rows only .* 2 column chunks"):
        est.transform(da.from_array(X, chunks=(300, 250)))
    with pytest.raises(ValueError, match=r"`X` must be chunked by rows only"):
        VSRP(K).fit(da.from_array(X, chunks=(300, 250)))
    with pytest.raises(ValueError, match=r"`X` must have 500 features, as in fit; got 499"):
        est.transform(da.from_array(X[:, 1:], chunks=(300, 499)))
    with pytest.raises(ValueError, match=r"`X` must have 40 columns \(n_components_\)"):
        est.inverse_transform(da.from_array(X, chunks=(300, D)))
    Xd = da.from_array(X, chunks=(300, D))
    unknown = Xd[Xd[:, 0] > 0]
    with pytest.raises(ValueError, match=r"`X` must have known chunk sizes for n_components="):
        VSRP(eps=0.5).fit(unknown)
    # an integer n_components needs no row count; the rows keep their unknown sizes
    np.testing.assert_array_equal(
        est.transform(unknown).compute(), est.transform(X[X[:, 0] > 0])
    )
    with pytest.raises(TypeError, match=r"`X` must be real"):
        est.transform(Xd.astype(complex))
    bad = X.copy()
    bad[5, 5] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN"):
        est.transform(da.from_array(bad, chunks=(300, D))).compute()
    assigned = VSRP(K, random_state=0).fit(X)
    assigned.components_ = assigned.components_
    with pytest.raises(NotImplementedError, match=r"`components_` was assigned"):
        assigned.transform(Xd)


# --------------------------------------------------------------------------- distributed


@pytest.mark.parametrize("matrix_free", [False, True], ids=["stored", "matrix_free"])
def test_cluster_same_as_numpy(client, matrix_free):
    Xd = _seeded(11, 3000, 800, 400)
    with dask.config.set(scheduler="synchronous"):
        X = Xd.compute()
    est = VSRP(60, random_state=9, matrix_free=matrix_free).fit(Xd)
    got = est.transform(Xd).compute()
    np.testing.assert_array_equal(got, VSRP(60, random_state=9).fit(X).transform(X))
    Xs = scipy.sparse.csr_matrix(np.where(X > 1.0, X, 0.0))
    Ys = est.transform(da.from_array(Xs, chunks=(700, 800), asarray=False)).compute()
    np.testing.assert_array_equal(Ys.toarray(), est.transform(Xs).toarray())


def test_cluster_worker_killed_mid_computation(client):
    """A worker process killed while the blocks are projected: Dask recomputes them on the
    restarted or the other worker, and the answer is still the in-memory one."""
    m, d, chunk = 6000, 400, 100  # 60 blocks, 0.1 s each: ~3 s on 2 workers
    Xd = _seeded(12, m, d, chunk, delay=0.1)
    with dask.config.set(scheduler="synchronous"):
        X = _seeded(12, m, d, chunk).compute()
    est = VSRP(50, random_state=10, matrix_free=True).fit(Xd)
    want = est.transform(X)
    with worker_killed_after(client, 1.0):
        got = est.transform(Xd).compute()
    np.testing.assert_array_equal(got, want)
