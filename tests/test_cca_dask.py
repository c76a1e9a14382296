"""StochasticCCA / StochasticPLS on row-chunked Dask arrays.

The synchronous scheduler (in this process): one block is the in-memory fit; several
blocks are the in-memory steps on the blocks' mini-batches (bit for bit against
partial_fit); accuracy on cca-zoo's problems; errors; the prefetch overlapping the
updates. Then a ``distributed.LocalCluster`` of 2 worker processes on loopback,
started and shut down by a module fixture, with a worker killed mid-fit.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import scipy.sparse
from _cca_problems import zoo_problem

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
from _dask_cluster import worker_killed_after  # noqa: E402

pytest.importorskip("sklearn")

import numlab as nl  # noqa: E402

#: Hard bound on this module: a hung cluster dumps the stacks and exits.
MODULE_TIMEOUT_S = 120


def _dask(views, chunk):
    return [da.from_array(v, chunks=(chunk, v.shape[1])) for v in views]


def _views(n=1200, sizes=(10, 8), seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2)) * [1.5, 0.8]
    return [
        z @ rng.standard_normal((2, p))
        + 0.7 * rng.standard_normal((n, p)) @ rng.standard_normal((p, p))
        for p in sizes
    ]


def _assert_same_directions(got, want, rtol=1e-9):
    """Weights equal to rounding, up to the sign of each canonical pair (eigh's choice,
    which rounding may flip), the same sign for every view."""
    sign = np.sign(np.sum(got[0] * want[0], axis=0))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a * sign, b, rtol=rtol, atol=1e-12)


def tcc(Za, Zb):
    qa = np.linalg.qr(Za - Za.mean(0))[0]
    qb = np.linalg.qr(Zb - Zb.mean(0))[0]
    return np.linalg.svd(qa.T @ qb, compute_uv=False).sum()


def _block(seed, p, rows, index, delay=0.0):
    """Row block ``index`` of a seeded view pair, stacked (same numbers whoever computes it)."""
    if delay:
        time.sleep(delay)
    rng = np.random.default_rng([seed, index])
    z = rng.standard_normal((rows, 1))
    return z @ np.ones((1, p)) + rng.standard_normal((rows, p))


def _seeded(seed, m, p, chunk, delay=0.0):
    """A lazy (m, 2 p) matrix made block by block on the workers; X, Y = its halves."""

    def make(block_info=None):
        info = block_info[None]
        lo, hi = info["array-location"][0]
        return _block(seed, 2 * p, hi - lo, info["chunk-location"][0], delay)

    chunks = ((chunk,) * (m // chunk), (2 * p,))
    return da.map_blocks(make, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0)))




# --------------------------------------------------------------------------- synchronous


@pytest.mark.parametrize("Est", [nl.cca.StochasticCCA, nl.cca.StochasticPLS])
def test_one_block_is_the_in_memory_fit(sync, Est):
    views = _views(800)
    ref = Est(2, random_state=0).fit(*views)
    model = Est(2, random_state=0).fit(*_dask(views, 800))
    # the same draws and steps (history_ is the per-epoch loss: equal bit for bit)
    assert model.history_ == ref.history_ and model.n_steps_ == ref.n_steps_
    assert model.n_iter_ == ref.n_iter_ and model.converged_ == ref.converged_
    _assert_same_directions(model.weights_, ref.weights_)  # block-wise sums: rounding
    np.testing.assert_allclose(model.correlations_, ref.correlations_, rtol=1e-12)
    for a, b in zip(model.means_, ref.means_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def _in_memory_reference(Est, params, views, chunks, seed):
    """The Dask fit's schedule in memory: one epoch on the first block (the set-up and
    its steps), then partial_fit on each block's mini-batches, rows in the order the
    fit's generator draws."""
    rng = np.random.default_rng(seed)
    epochs, batch = params["epochs"], params["batch_size"]
    bounds = np.cumsum((0,) + chunks)
    blocks = [[v[lo:hi] for v in views] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    ref = Est(**{**params, "epochs": 1}, random_state=rng).fit(*blocks[0])
    for epoch in range(epochs):
        for i, block in enumerate(blocks):
            if epoch == 0 and i == 0:
                continue
            n = block[0].shape[0]
            size = min(batch, n)
            order = rng.permutation(n)
            for s in range(max(n // size, 1)):
                rows = order[s * size : (s + 1) * size]
                ref.partial_fit(*[v[rows] for v in block])
    return ref


@pytest.mark.parametrize(
    "Est, options",
    [
        (nl.cca.StochasticCCA, {}),
        (nl.cca.StochasticCCA, {"optimizer": "sgd", "precondition": True}),
        (nl.cca.StochasticPLS, {"unbiased": False}),
    ],
    ids=["cca", "cca-sgd-whitened", "pls-biased"],
)
def test_blocks_are_partial_fit_on_their_mini_batches(sync, Est, options):
    views = _views(1100)
    chunks = (400, 300, 250, 150)  # uneven: the last blocks hold fewer steps
    params = dict(n_components=2, epochs=3, lr_schedule="constant", batch_size=64, **options)
    model = Est(**params, random_state=np.random.default_rng(5)).fit(
        *[da.from_array(v, chunks=(chunks, v.shape[1])) for v in views]
    )
    ref = _in_memory_reference(Est, params, views, chunks, 5)
    assert model.n_steps_ == ref.n_steps_ == 3 * (6 + 4 + 3 + 2)
    for a, b in zip(model._params, ref._params, strict=True):  # the optimised weights
        np.testing.assert_array_equal(a, b)
    # rotated on the whole data in both
    ref.means_ = [v.mean(0) for v in views]
    ref._order(views, np)
    _assert_same_directions(model.weights_, ref.weights_)
    np.testing.assert_allclose(model.correlations_, ref.correlations_, rtol=1e-12)


def test_partial_fit_is_one_in_memory_partial_fit_per_block(sync):
    views = _views(900)
    model = nl.cca.StochasticCCA(2, random_state=3)
    ref = nl.cca.StochasticCCA(2, random_state=3)
    for _ in range(2):
        model.partial_fit(*_dask(views, 200))
        for lo in range(0, 900, 200):
            ref.partial_fit(*[v[lo : lo + 200] for v in views])
    assert model.n_steps_ == ref.n_steps_ == 10
    for a, b in zip(model.weights_ + model.means_, ref.weights_ + ref.means_, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["recovery", "closed_form", "any_batch", "three_signals"])
def test_defaults_converge_on_cca_zoos_problems(sync, name):
    """test_cca's accuracy test with the views in 2 row blocks: the exact solution's
    correlation (0.995x) for CCA, the exact PLS singular values (2e-3) in any units."""
    views, k, _ = zoo_problem(name)
    chunk = -(-views[0].shape[0] // 2)
    exact = tcc(*nl.cca.cca(*views, k).transform(*views))
    model = nl.cca.StochasticCCA(k, random_state=0).fit(*_dask(views, chunk))
    assert model.converged_ and model.n_iter_ < model.max_iter
    assert model.score(*views) >= 0.995 * exact
    assert model.score(*_dask(views, chunk)) == pytest.approx(model.score(*views), rel=1e-12)
    scaled = [views[0] * 100.0, views[1]]
    pls = nl.cca.StochasticPLS(k, random_state=0).fit(*_dask(scaled, chunk))
    np.testing.assert_allclose(pls.correlations_, nl.cca.pls(*scaled, k).correlations, rtol=2e-3)


def test_transform_is_lazy_and_blockwise(sync):
    views = _views(700)
    model = nl.cca.StochasticCCA(2, epochs=2, random_state=0).fit(*views)
    Xd, Yd = _dask(views, 150)
    Zx, Zy = model.transform(Xd, Yd)
    assert isinstance(Zx, da.Array) and Zx.chunks == (Xd.chunks[0], (2,))
    for got, want in zip((Zx, Zy), model.transform(*views), strict=True):
        np.testing.assert_allclose(got.compute(), want, rtol=1e-12, atol=1e-12)
    Z = model.transform(Xd.astype(np.float32))
    assert isinstance(Z, da.Array) and Z.dtype == np.float32 == Z.compute().dtype
    # fit_transform on Dask: fit streams, the projection stays lazy
    Z = nl.cca.StochasticCCA(2, epochs=2, random_state=0).fit_transform(Xd, Yd)
    assert isinstance(Z, da.Array)
    # three views, as a list
    three = _views(600, sizes=(5, 4, 3), seed=1)
    mcca = nl.cca.StochasticCCA(2, random_state=0).fit(_dask(three, 200))
    assert len(mcca.transform(_dask(three, 100))) == 3
    exact = nl.cca.cca(three, n_components=2).correlations
    np.testing.assert_allclose(mcca.correlations_, exact, rtol=2e-3)


def test_bad_input(sync):
    X, Y = _views(400)
    Xd, Yd = _dask([X, Y], 100)
    est = nl.cca.StochasticCCA(2, epochs=1)
    with pytest.raises(ValueError, match=r"`Y` must be chunked by rows only .* 2 column chunks"):
        est.fit(Xd, da.from_array(Y, chunks=(100, 4)))
    with pytest.raises(ValueError, match=r"`X` must be chunked by rows only"):
        est.fit(da.from_array(X, chunks=(100, 5)), Yd)
    with pytest.raises(ValueError, match=r"`Y` must have the same row chunks as `X`.*Y\.rechunk"):
        est.fit(Xd, da.from_array(Y, chunks=(200, 8)))
    with pytest.raises(ValueError, match=r"`Y` must have as many samples \(rows\) as `X`"):
        est.fit(Xd, Yd[:300])
    with pytest.raises(ValueError, match=r"`X` must have known row chunk sizes"):
        est.fit(Xd[Xd[:, 0] > 0], Yd[Xd[:, 0] > 0])
    with pytest.raises(TypeError, match=r"`Y` must be a Dask array like `X`; got numpy"):
        est.fit(Xd, Y)
    with pytest.raises(TypeError, match=r"`X` must be a Dask array like `Y`; got numpy"):
        est.fit(X, Yd)
    with pytest.raises(ValueError, match=r"`X` must have at least 4 rows in every row chunk"):
        est.fit(*[da.from_array(v, chunks=((198, 199, 3), v.shape[1])) for v in (X, Y)])
    with pytest.raises(TypeError, match=r"`X` must be a Dask array of NumPy blocks"):
        est.fit(da.from_array(scipy.sparse.csr_matrix(X), chunks=(100, 10), asarray=False), Yd)
    with pytest.raises(ValueError, match=r"`n_components` must be <= 8"):
        nl.cca.StochasticCCA(9).fit(Xd, Yd)
    with pytest.raises(TypeError, match=r"`Y` is missing"):
        est.fit(Xd)
    bad = X.copy()
    bad[250, 3] = np.nan
    with pytest.raises(ValueError, match=r"`X` must contain only finite values"):
        est.fit(da.from_array(bad, chunks=(100, 10)), Yd)
    est.fit(Xd, Yd)
    with pytest.raises(ValueError, match=r"`Y` must have 8 features \(columns\), as in fit; got 7"):
        est.transform(Xd, Yd[:, 1:])
    with pytest.raises(ValueError, match=r"`Y` is missing: the score needs every view"):
        est.score(Xd)
    # a 1-D Y is one feature, as in memory
    one = nl.cca.StochasticCCA(1, epochs=1, random_state=0).fit(Xd, Yd[:, 0])
    assert one.y_weights_.shape == (1, 1)


def test_prefetch_overlaps_the_updates(sync):
    """Block i + 1 is computed while block i's steps run: with 0.2 s per block and
    0.2 s of steps per block, 6 blocks stream in ~1.4 s, not the 2.4 s of one after
    the other."""
    delay, steps, m = 0.2, 5, 6
    starts, ends = {}, {}

    class Slow(nl.cca.StochasticCCA):
        def _step(self, batch, lr, xp):
            time.sleep(delay / steps)
            ends[self.n_steps_ // steps] = time.perf_counter()
            return super()._step(batch, lr, xp)

    def make(block_info=None):
        i = block_info[None]["chunk-location"][0]
        starts.setdefault(i, time.perf_counter())  # the streaming pass, not the final one
        time.sleep(delay)
        return _block(0, 12, 64 * steps, i)

    A = da.map_blocks(make, chunks=((64 * steps,) * m, (12,)), dtype=float, meta=np.empty((0, 0)))
    est = Slow(2, epochs=1, batch_size=64, random_state=0)
    t0 = time.perf_counter()
    est.fit(A[:, :6], A[:, 6:])
    fit_s = time.perf_counter() - t0
    assert est.n_steps_ == steps * m
    for i in range(m - 1):  # block i + 1 started before block i's last step ended
        assert starts[i + 1] < ends[i], (i, starts, ends)
    # the streaming pass (up to the last step; the final pass reads the blocks again):
    # ~(m + 1) * delay, against 2 * m * delay one after the other
    stream_s = ends[m - 1] - t0
    assert stream_s < 0.8 * (2 * m * delay), (stream_s, fit_s)


# --------------------------------------------------------------------------- distributed


def test_cluster_worker_killed_mid_fit(client):
    """A worker process killed while the blocks stream: Dask recomputes the lost blocks
    on the restarted or the other worker, and the fit is the synchronous one, bit for bit."""
    p, m, chunk = 6, 4000, 250  # 16 blocks, 0.05 s each, 3 epochs
    A = _seeded(21, m, p, chunk, delay=0.05)
    params = dict(n_components=1, epochs=3, batch_size=50, random_state=4)
    with dask.config.set(scheduler="synchronous"):
        B = _seeded(21, m, p, chunk)
        want = nl.cca.StochasticCCA(**params).fit(B[:, :p], B[:, p:])
    from numlab.cca._stochastic_dask import _distributed_client

    assert _distributed_client([A]) is client  # the prefetch is client.compute futures
    with worker_killed_after(client, 1.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # distributed's notices of the lost worker
            got = nl.cca.StochasticCCA(**params).fit(A[:, :p], A[:, p:])
    assert got.history_ == want.history_
    for a, b in zip(got.weights_, want.weights_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got.correlations_[0] > 0.8
    Z = got.transform(A[:, :p]).compute()
    np.testing.assert_allclose(Z, want.transform(B[:, :p].compute()), rtol=1e-12, atol=1e-12)
