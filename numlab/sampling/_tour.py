"""``numlab tour`` entries of nl.sampling."""

from __future__ import annotations

import math
import time

import numpy as np

from .._tour import Demo


def dpp_variance_demo(quick: bool) -> Demo:
    from .. import sampling
    from ..lstsq import LegendreBasis

    basis = LegendreBasis(1, 9)
    repeats = 300 if quick else 2000
    rng = np.random.default_rng(0)
    t, w = np.polynomial.legendre.leggauss(60)
    a, b = -1.0, -0.2
    x, w = 0.5 * (b - a) * t + 0.5 * (a + b), 0.25 * (b - a) * w
    phi = basis(x[:, None])
    M = phi.T @ (w[:, None] * phi)
    mean, var = np.trace(M), np.trace(M) - np.sum(M * M)
    start = time.perf_counter()
    counts = np.array(
        [
            np.sum(sampling.projection_dpp(basis, rng=rng, method="chain_rule").points <= b)
            for _ in range(repeats)
        ]
    )
    elapsed = time.perf_counter() - start
    return Demo(
        problem=f"{repeats} Legendre projection DPPs (m=10, chain rule); points in [-1, -0.2]",
        result=f"count mean {counts.mean():.3f}, variance {counts.var():.3f} ({elapsed:.2f} s)",
        check=f"vs exact mean {mean:.3f}, variance {var:.3f} (Poisson would be {mean:.2f})",
        ok=bool(
            abs(counts.mean() - mean) < 5 * math.sqrt(var / repeats)
            and 0.6 * var < counts.var() < 1.5 * var
        ),
    )


DEMOS = [dpp_variance_demo]
