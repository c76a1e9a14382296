"""nl.graph.fastrp on an adjacency matrix given as a row-chunked Dask array.

Two schedulers: the synchronous one (in this process; equality with the in-memory
fastrp of the same CSR matrix for several chunkings) and a ``distributed.LocalCluster``
of 2 worker processes on loopback, started and shut down by a module fixture, including
a worker killed mid-computation.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
from _dask_cluster import worker_killed_after  # noqa: E402

import numlab as nl  # noqa: E402

#: Hard bound on this module: a hung cluster dumps the stacks and exits.
MODULE_TIMEOUT_S = 120

N = 2000


def _graph(n=N, seed=0, directed=False):
    rng = np.random.default_rng(seed)
    S = scipy.sparse.random_array((n, n), density=4.0 / n, format="csr", rng=rng)
    return scipy.sparse.csr_matrix(S if directed else S + S.T)


def _block(seed, n, rows, index, delay=0.0):
    """Rows of block ``index`` of a seeded directed graph (~8 out-edges a node)."""
    if delay:
        time.sleep(delay)
    rng = np.random.default_rng([seed, index])
    return scipy.sparse.random_array((rows, n), density=8.0 / n, format="csr", rng=rng).tocsr()


def _seeded(seed, n, chunk, delay=0.0):
    """A lazy n x n adjacency made block by block (scipy.sparse CSR) on the workers."""

    def make(block_info=None):
        info = block_info[None]
        lo, hi = info["array-location"][0]
        return _block(seed, n, hi - lo, info["chunk-location"][0], delay)

    chunks = ((chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ()), (n,))
    meta = scipy.sparse.csr_matrix((0, 0))
    return da.map_blocks(make, chunks=chunks, dtype=np.float64, meta=meta)


def _close(got, want):
    """Equal to float rounding: SciPy's products replace the Numba kernel (the same
    additions in the same order, so bit for bit on the machines we ran, but not promised)."""
    assert got.dtype == want.dtype
    tol = 1e-4 if want.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)




# --------------------------------------------------------------------------- synchronous


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"dtype": np.float64, "beta": -0.5},
        {"weights": (1.0, 0.5, 2.0), "normalize": False},
        {"weights": (0.0, 1.0), "standardize": False},
    ],
    ids=["default", "float64-beta", "unnormalized", "raw"],
)
def test_same_as_numpy(sync, kwargs):
    S = _graph()
    want = nl.graph.fastrp(S, 32, rng=7, **kwargs)
    for chunk in (N, 700, 128):
        Sd = da.from_array(S, chunks=(chunk, N), asarray=False)
        got = nl.graph.fastrp(Sd, 32, rng=7, **kwargs)
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype
        _close(got, want)


def test_directed_weighted_integer_and_dense_blocks(sync):
    S = _graph(directed=True, seed=1)
    S.data = np.round(S.data * 5) + 1  # integer weights
    Si = S.astype(np.int64)
    want = nl.graph.fastrp(Si, 16, rng=2)
    assert want.dtype == np.float32
    _close(nl.graph.fastrp(da.from_array(Si, chunks=(500, N), asarray=False), 16, rng=2), want)
    # dense NumPy blocks: the result of the in-memory fastrp of the same matrix as CSR
    dense = da.from_array(S.toarray(), chunks=(600, N))
    want = nl.graph.fastrp(S, 16, rng=2, dtype=np.float64)
    _close(nl.graph.fastrp(dense, 16, rng=2, dtype=np.float64), want)


def test_reads(sync):
    """Degrees take one sweep over the blocks, each propagation step one more."""
    S = _graph()
    reads = {}

    def block(block_info=None):
        i = block_info[None]["chunk-location"][0]
        reads[i] = reads.get(i, 0) + 1
        lo, hi = block_info[None]["array-location"][0]
        return S[lo:hi]

    meta = scipy.sparse.csr_matrix((0, 0))
    Sd = da.map_blocks(block, chunks=((500,) * 4, (N,)), dtype=float, meta=meta)
    nl.graph.fastrp(Sd, 8, weights=(0.0, 1.0, 3.0), rng=0)
    assert reads == {i: 4 for i in range(4)}


def test_bad_input(sync):
    S = _graph()
    with pytest.raises(ValueError, match=r"`G` must be a square adjacency matrix; got shape"):
        nl.graph.fastrp(da.from_array(S[:1500], chunks=(500, N), asarray=False), 8, rng=0)
    with pytest.raises(ValueError, match=r"`G` must be chunked by rows only .* 2 column chunks"):
        nl.graph.fastrp(da.from_array(S, chunks=(500, 1000), asarray=False), 8, rng=0)
    Sd = da.from_array(S, chunks=(500, N), asarray=False)
    with pytest.raises(ValueError, match=r"`G` must have known chunk sizes"):
        nl.graph.fastrp(Sd[da.arange(N, chunks=500) % 2 == 0][:, :N], 8, rng=0)
    negative = S.copy()
    negative.data[3] = -1.0
    with pytest.raises(ValueError, match=r"`G` must have non-negative edge weights"):
        nl.graph.fastrp(da.from_array(negative, chunks=(500, N), asarray=False), 8, rng=0)
    with pytest.raises(ValueError, match=r"`G` must have at least one edge"):
        empty = scipy.sparse.csr_matrix((50, 50))
        nl.graph.fastrp(da.from_array(empty, chunks=(10, 50), asarray=False), 8, rng=0)
    with pytest.raises(TypeError, match=r"`dtype` must be None, float32 or float64"):
        nl.graph.fastrp(Sd, 8, dtype=np.int32, rng=0)
    with pytest.raises(ValueError, match=r"`beta` must keep deg\*\*beta finite"):
        nl.graph.fastrp(Sd, 8, beta=1e6, rng=0)


# --------------------------------------------------------------------------- distributed


def test_cluster_same_as_numpy(client):
    Sd = _seeded(11, 3000, 500)
    with dask.config.set(scheduler="synchronous"):
        S = Sd.compute()
    _close(nl.graph.fastrp(Sd, 32, rng=9), nl.graph.fastrp(S, 32, rng=9))


def test_cluster_worker_killed_mid_computation(client):
    """A worker killed during the propagation: Dask recomputes its blocks (on the restarted
    or the other worker) and the embedding is still the in-memory one."""
    n, chunk = 4000, 200  # 20 blocks, 0.05 s each: ~0.5 s a sweep on 2 workers, 5 sweeps
    Sd = _seeded(12, n, chunk, delay=0.05)
    with dask.config.set(scheduler="synchronous"):
        S = _seeded(12, n, chunk).compute()
    want = nl.graph.fastrp(S, 32, rng=10)
    with worker_killed_after(client, 1.0):
        got = nl.graph.fastrp(Sd, 32, rng=10)
    _close(got, want)
