"""The views of cca-zoo's own StochasticCCAEY tests, shared by tests/test_cca.py and
benchmarks/bench_cca.py."""

from __future__ import annotations

import numpy as np


def zoo_problem(name):
    """The views of cca-zoo's own StochasticCCAEY tests (4.x): ``recovery`` (one shared
    factor under a private one three times louder, tests/test_recovery.py),
    ``closed_form`` (tests/test_objectives.py), ``any_batch`` and ``three_signals``."""
    if name == "recovery":
        rng = np.random.default_rng(0)
        shared = rng.standard_normal((400, 1))
        views = [
            3 * rng.standard_normal((400, 1)) @ np.ones((1, p))
            + shared @ rng.standard_normal((1, p))
            + 0.3 * rng.standard_normal((400, p))
            for p in (6, 5)
        ]
        return views, 1, shared[:, 0]
    if name == "closed_form":
        rng = np.random.default_rng(0)
        z = rng.standard_normal((300, 2))
        noise = 0.1
        views = [
            z @ rng.standard_normal((2, p)) + noise * rng.standard_normal((300, p)) for p in (10, 8)
        ]
        return views, 2, None
    if name == "any_batch":
        rng = np.random.default_rng(1)
        z = rng.standard_normal((1000, 3)) * [2.0, 1.0, 0.5]
        views = [z @ rng.standard_normal((3, p)) + rng.standard_normal((1000, p)) for p in (20, 15)]
        return views, 2, None
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 3)) * [3, 2, 1]
    views = [z @ rng.standard_normal((3, p)) + rng.standard_normal((300, p)) for p in (6, 5)]
    return views, 3, None
