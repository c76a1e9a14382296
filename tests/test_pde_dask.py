"""nl.pde generation per chunk on a ``distributed.LocalCluster`` of 2 worker processes
(the ``client`` fixture of conftest.py), including a worker killed mid-computation.

Sample i depends only on the seed and i, so the chunks computed on the workers (and
recomputed after a lost worker) are the eager call's samples.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask.array")
pytest.importorskip("distributed")
from _dask_cluster import worker_killed_after  # noqa: E402

import numlab as nl  # noqa: E402

#: Hard bound on this module: a hung cluster dumps the stacks and exits.
MODULE_TIMEOUT_S = 180


def _assert_same(lazy, eager):
    for got, want in zip(lazy, eager, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-14 * np.max(np.abs(want)))


@pytest.mark.parametrize(
    "generate, args, kwargs",
    [
        (nl.pde.burgers, (7, 64), {"viscosity": 0.05}),
        (nl.pde.darcy, (7, 17), {}),
        (nl.pde.navier_stokes, (5, 32), {"t_final": 2.0}),
    ],
    ids=["burgers", "darcy", "navier_stokes"],
)
def test_chunks_on_the_workers_equal_the_eager_call(client, generate, args, kwargs):
    n = args[0]
    lazy = generate(*args, rng=5, chunks=2, **kwargs)
    assert all(x.chunks[0] == tuple(min(2, n - i) for i in range(0, n, 2)) for x in lazy)
    computed = client.compute(list(lazy), sync=True)
    _assert_same(computed, generate(*args, rng=5, **kwargs))


def test_worker_killed_mid_generation(client):
    """A worker process killed while the chunks are being solved: Dask recomputes the lost
    chunks on the other worker, and they are the same samples."""
    kwargs = {"t_final": 10.0, "rng": 9}
    client.compute(list(nl.pde.navier_stokes(2, 32, chunks=1, **kwargs)), sync=True)  # warm
    lazy = nl.pde.navier_stokes(24, 32, chunks=2, **kwargs)
    with worker_killed_after(client, 0.5):
        computed = client.compute(list(lazy), sync=True)
    _assert_same(computed, nl.pde.navier_stokes(24, 32, **kwargs))
