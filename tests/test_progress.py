"""Progress bars (issue 17): ``progress=True`` draws a tqdm bar on stderr, False draws
nothing, the result is the same bit for bit, and a bad value is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

import numlab as nl
from numlab._progress import Progress, check_progress


def _same(a, b):
    """Equal bit for bit (arrays, scalars, dataclasses of them, tuples)."""
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__"):
        return all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    if isinstance(a, (str, bool, type(None))):
        return a == b
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def _check(capsys, call, label):
    """call(progress) with False then True: nothing, then a bar labelled ``label``."""
    off = call(False)
    err = capsys.readouterr().err
    assert err == ""
    on = call(True)
    err = capsys.readouterr().err
    assert label in err, err
    assert _same(off, on)
    return err


# --------------------------------------------------------------------------- the helper


def test_helper_off_draws_nothing_and_on_closes_at_the_steps_done(capsys):
    with Progress(False, "off", total=10) as bar:
        bar.update()
        bar.advance_to(5)
        bar.note("x")
    assert capsys.readouterr().err == ""
    with Progress(True, "demo", total=10, unit="pass") as bar:
        bar.update(2)
        bar.advance_to(4)
        bar.note("error 1e-3")
    err = capsys.readouterr().err
    assert "demo" in err and "4/4" in err and "error 1e-3" in err


@pytest.mark.parametrize("bad", ["yes", 1, None, 0.5])
def test_check_progress_refuses_non_booleans(bad):
    with pytest.raises(TypeError, match=r"`progress` must be True or False"):
        check_progress(bad)
    assert check_progress(np.bool_(True)) is True


# --------------------------------------------------------------------------- ot


def _cost(n=40):
    x = np.random.default_rng(0).random((n, 2))
    M = nl.ot.dist(x, x[::-1] + 0.1)
    return M / M.max()


def test_sinkhorn_bar_above_the_size_threshold(capsys, monkeypatch):
    from numlab.ot import _sinkhorn

    M = _cost()
    # below the threshold: nothing even with progress=True
    nl.ot.sinkhorn(None, None, M, 1e-3, progress=True)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(_sinkhorn, "_PROGRESS_MIN_SIZE", 0)
    for method in ("sns", "log", "sinkhorn"):
        err = _check(capsys, lambda p, m=method: nl.ot.sinkhorn(None, None, M, 1e-2, m, progress=p),
                     "nl.ot.sinkhorn")
        assert "violation" in err and "tol" in err
    # epsilon scaling (small reg): one bar over all levels; POT's verbose line still prints
    res = nl.ot.sinkhorn(None, None, M, 1e-4, progress=True, verbose=True, warn=False)
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and f"{res.n_iter}it" in out.err
    assert "sinkhorn(method='sns')" in out.out
    assert res.plan.shape == M.shape
    B = np.stack([np.full(40, 1 / 40), np.linspace(1, 2, 40) / np.linspace(1, 2, 40).sum()], 1)
    err = _check(capsys, lambda p: nl.ot.sinkhorn2(None, B, M, 1e-2, progress=p),
                 "nl.ot.sinkhorn2 [2/2]")
    _check(capsys, lambda p: nl.ot.sinkhorn2(None, None, M, 1e-2, progress=p, log=True)[0],
           "nl.ot.sinkhorn2")


@pytest.mark.parametrize("fn", [nl.ot.sinkhorn, nl.ot.sinkhorn2])
def test_sinkhorn_refuses_a_bad_progress(fn):
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got 'yes'"):
        fn(None, None, _cost(5), 0.1, progress="yes")


# --------------------------------------------------------------------------- linalg


def _low_rank(m=120, n=60, seed=0):
    rng = np.random.default_rng(seed)
    s = 0.7 ** np.arange(n)
    return rng.standard_normal((m, n)) @ np.diag(s) @ rng.standard_normal((n, n))


def test_randomized_svd_bar_above_the_size_threshold(capsys, monkeypatch):
    from numlab.linalg import _rsvd

    A = _low_rank()
    nl.linalg.randomized_svd(A, 5, rng=0, progress=True)
    assert capsys.readouterr().err == ""  # below PROGRESS_MIN_SIZE
    monkeypatch.setattr(_rsvd, "PROGRESS_MIN_SIZE", 0)
    for kw in (dict(k=5), dict(k=5, n_iter=3), dict(k=5, method="krylov"),
               dict(k=40, tol=1e-3)):
        err = _check(capsys, lambda p, kw=kw: nl.linalg.randomized_svd(A, rng=0, progress=p, **kw),
                     "nl.linalg.randomized_svd")
        assert "pass" in err and ("s_k" in err or "rank 20, error" in err)
    err = _check(capsys, lambda p: nl.linalg.randomized_svd(A, 5, n_iter=3, rng=0, progress=p),
                 "4/4")
    err = _check(capsys, lambda p: nl.linalg.randomized_range_finder(A.T, 6, rng=0, progress=p),
                 "nl.linalg.randomized_range_finder")


def test_randomized_svd_dask_always_has_a_bar(capsys):
    da = pytest.importorskip("dask.array")
    import dask

    A = _low_rank(200, 20)
    with dask.config.set(scheduler="synchronous"):
        X = da.from_array(A, chunks=(50, 20))
        _check(capsys, lambda p: nl.linalg.randomized_svd(X, 4, n_iter=2, rng=0, progress=p),
               "nl.linalg.randomized_svd: 100%")
        _check(capsys, lambda p: nl.linalg.randomized_svd(X, 4, method="single_pass", rng=0,
                                                          progress=p), "1/1")
        _check(capsys, lambda p: nl.linalg.randomized_range_finder(X, 4, rng=0, progress=p),
               "nl.linalg.randomized_range_finder")


@pytest.mark.parametrize("fn", [nl.linalg.randomized_svd, nl.linalg.randomized_range_finder])
def test_randomized_svd_refuses_a_bad_progress(fn):
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got 'yes'"):
        fn(_low_rank(20, 10), 2, progress="yes")


# --------------------------------------------------------------------------- sampling


def test_repeated_dpp_bar_over_draws(capsys):
    basis = nl.lstsq.LegendreBasis(2, 3)
    _check(capsys, lambda p: nl.sampling.repeated_dpp(basis, 4, rng=0, progress=p),
           "nl.sampling.repeated_dpp: 100%")
    feature = nl.lstsq.FeatureBasis(lambda z: np.stack([np.ones(len(z)), z[:, 0]], 1),
                                    np.random.default_rng(1).random((30, 1)))
    _check(capsys, lambda p: nl.sampling.repeated_dpp(feature, 3, rng=0, progress=p), "3/3")
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got 'yes'"):
        nl.sampling.repeated_dpp(basis, 2, rng=0, progress="yes")


# --------------------------------------------------------------------------- rmt


def _least_squares(n=120, d=6):
    X = np.random.default_rng(0).standard_normal((n, d))
    model = nl.rmt.LeastSquares(X, X[:, 0] + 0.1 * X[:, 1])
    return model, model.hessian(model.init_params())


def test_batch_curvature_bar_over_lanczos_runs(capsys):
    _, H = _least_squares()
    err = _check(capsys, lambda p: nl.rmt.batch_curvature(H, batch_sizes=[4, 120], n_batches=3,
                                                          k=6, rng=0, progress=p),
                 "nl.rmt.batch_curvature: 100%")
    assert "5/5" in err


@pytest.mark.parametrize("method", ["batch", "chain", "mean", "rmt"])
def test_max_learning_rate_bars(capsys, method):
    _, H = _least_squares()
    err = _check(capsys, lambda p: nl.rmt.max_learning_rate(
        H, batch_size=8, method=method, n_batches=4, n_steps=40, k=6, rng=0, progress=p),
        "nl.rmt.max_learning_rate: Lanczos")
    assert ("bisection" in err) == (method in ("batch", "chain"))
    _check(capsys, lambda p: nl.rmt.max_learning_rate(H, k=6, rng=0, progress=p), "1/1")


def test_measure_max_learning_rate_bar_over_runs(capsys):
    model, _ = _least_squares()
    err = _check(capsys, lambda p: nl.rmt.measure_max_learning_rate(
        model, 8, n_steps=20, seeds=(0, 1), rtol=0.1, progress=p),
        "nl.rmt.measure_max_learning_rate")
    assert "seed 1, lr" in err


def test_spectral_density_bar_over_probes(capsys):
    A = np.diag(np.linspace(-1.0, 1.0, 30))
    _check(capsys, lambda p: nl.rmt.spectral_density(lambda v: A @ v, 30, n_probes=3, k=8, rng=0,
                                                     progress=p),
           "nl.rmt.spectral_density: 100%")


def test_rmt_estimators_refuse_a_bad_progress():
    model, H = _least_squares()
    calls = [
        lambda: nl.rmt.batch_curvature(H, batch_sizes=[4], progress="yes"),
        lambda: nl.rmt.max_learning_rate(H, progress="yes"),
        lambda: nl.rmt.measure_max_learning_rate(model, progress="yes"),
        lambda: nl.rmt.spectral_density(lambda v: v, 5, k=3, progress="yes"),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=r"`progress` must be True or False; got 'yes'"):
            call()
