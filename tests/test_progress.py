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
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
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
        err = _check(capsys, lambda p: nl.ot.sinkhorn(None, None, M, 1e-2, method, progress=p),
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
