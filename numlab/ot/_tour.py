"""``numlab tour`` demonstrations of :mod:`numlab.ot`."""

from __future__ import annotations

import time
import warnings

import numpy as np

from .._tour import Demo


def _clouds(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    y = rng.normal(0.5, 0.2, (n, 2))
    from ._dist import dist

    M = dist(x, y)
    return M / M.max()


def sns_vs_pot(quick: bool) -> Demo:
    """SNS on point clouds at reg=1e-3, checked against POT's Sinkhorn."""
    import ot

    from ._sinkhorn import sinkhorn

    n = 200 if quick else 600
    M = _clouds(n)
    a = np.full(n, 1.0 / n)
    t0 = time.perf_counter()
    res = sinkhorn(a, a, M, 1e-3, tol=1e-9)
    elapsed = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P_ref = ot.sinkhorn(a, a, M, 1e-3, method="sinkhorn", stopThr=1e-11, numItermax=50_000)
    err = float(np.abs(res.plan - P_ref).sum())
    return Demo(
        problem=f"entropic OT, {n} x {n} point clouds, reg=1e-3, to violation 1e-9",
        result=f"SNS: {res.n_sinkhorn} Sinkhorn + {res.n_newton} Newton iterations, "
        f"{elapsed:.2f} s, violation {res.violation:.1e}",
        check=f"vs POT sinkhorn_knopp at 1e-11: ||P - P_ref||_1 = {err:.1e}",
        ok=bool(res.converged and err < 1e-6),
    )


def small_reg_vs_emd(quick: bool) -> Demo:
    """reg=1e-4, where classic Sinkhorn underflows, against the exact LP (POT's emd)."""
    import ot

    from ._sinkhorn import sinkhorn

    n = 150 if quick else 400
    M = _clouds(n, seed=1)
    a = np.full(n, 1.0 / n)
    res = sinkhorn(a, a, M, 1e-4, tol=1e-9)
    exact = float(ot.emd2(a, a, M))
    gap = abs(res.cost - exact) / exact
    return Demo(
        problem=f"entropic OT at reg=1e-4 (exp(-M/reg) underflows), {n} x {n} clouds",
        result=f"converged={res.converged}, no NaN: {bool(np.isfinite(res.plan).all())}, "
        f"{res.n_iter} iterations",
        check=f"cost vs exact OT (ot.emd2): relative gap {gap:.1e}",
        ok=bool(res.converged and np.isfinite(res.plan).all() and gap < 1e-2),
    )


DEMOS = [sns_vs_pot, small_reg_vs_emd]
