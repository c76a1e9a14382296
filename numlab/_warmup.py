"""Small calls that compile each family's Numba kernels (``numlab compile``).

Numba compiles a kernel on its first call for the argument types of that call and, with
``cache=True``, stores the machine code on disk (``numlab info`` names the directory). A
warm-up here calls a family's public functions on tiny inputs in each dtype numlab
supports, which reaches the same kernel specialisations as real calls: contiguous arrays of
float64 or float32, int64 indices. Families without Numba kernels have no warm-up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["WARMUPS", "warmups"]

_DTYPES = (np.float64, np.float32)


def _ot(dtype):
    import numlab as nl

    def run():
        rng = np.random.default_rng(0)
        x, y = rng.random((40, 2)), rng.random((30, 2))
        M = nl.ot.dist(x, y).astype(dtype)
        M /= M.max()
        a, b = np.full(40, 1 / 40, dtype), np.full(30, 1 / 30, dtype)
        for method in ("sns", "sinkhorn", "log"):
            nl.ot.sinkhorn(a, b, M, 0.05, method=method, warn=False)
        nl.ot.sinkhorn(a, b, M, 1e-3, warn=False)  # small reg: epsilon scaling and Newton

    return run


def _random_projection(dtype):
    import scipy.sparse as sp

    import numlab as nl

    def run():
        X = sp.random(20, 500, density=0.05, format="csr", random_state=0, dtype=dtype)
        D = np.random.default_rng(0).random((20, 500)).astype(dtype)
        for matrix_free in (False, True):
            for dense in (False, True):
                est = nl.random_projection.VerySparseRandomProjection(
                    16, dense_output=dense, matrix_free=matrix_free, random_state=0)
                est.fit_transform(X)
                est.transform(D)
        nl.random_projection.very_sparse_random_matrix(16, 500, rng=0)

    return run


def _graph(dtype):
    import networkx as nx

    import numlab as nl

    def run():
        G = nx.barabasi_albert_graph(200, 3, seed=0)
        nl.graph.fastrp(G, 16, rng=0, dtype=dtype)

    return run


def _sampling():
    import numlab as nl

    def run():
        for dim in (1, 2):
            basis = nl.lstsq.LegendreBasis(dim, 3)
            nl.sampling.projection_dpp(basis, rng=0, method="chain_rule")
            nl.sampling.repeated_dpp(basis, 2, rng=0)
            nl.sampling.volume_sampling(basis, basis.m + 2, rng=0)
            nl.sampling.optimal_iid(basis, basis.m + 2, rng=0)

    return run


def _lstsq():
    import numlab as nl

    def run():
        basis = nl.lstsq.LegendreBasis(2, 3)
        for sampler, n in (("volume", 2 * basis.m), ("dpp", basis.m),
                           ("repeated_dpp", 2 * basis.m)):
            nl.lstsq.weighted_least_squares(lambda x: x[:, 0] ** 2, basis, n, sampler=sampler,
                                            rng=0)

    return run


def _operators(dtype):
    import numlab as nl

    def run():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 1, 32)).astype(dtype)
        model = nl.operators.FNO((4,), hidden_channels=8, in_channels=1, out_channels=1,
                                 dtype=dtype, rng=0)
        nl.operators.train(model, x, np.sin(x), epochs=1, batch_size=2, progress=False)
        x2 = rng.standard_normal((2, 1, 16, 16)).astype(dtype)
        lsm = nl.operators.LSM(1, 1, hidden_channels=8, n_levels=2, n_heads=2, patch_size=(4, 4),
                               dtype=dtype, rng=0)
        nl.operators.train(lsm, x2, np.sin(x2), epochs=1, batch_size=2, progress=False)

    return run


#: family -> [(label, build a callable)]
WARMUPS: dict[str, list[tuple[str, Callable[[], Callable[[], None]]]]] = {
    "ot": [(f"sinkhorn {np.dtype(d).name}", lambda d=d: _ot(d)) for d in _DTYPES],
    "random_projection": [
        (f"VerySparseRandomProjection {np.dtype(d).name}", lambda d=d: _random_projection(d))
        for d in _DTYPES
    ],
    "graph": [(f"fastrp {np.dtype(d).name}", lambda d=d: _graph(d)) for d in _DTYPES],
    "sampling": [("projection_dpp, volume_sampling", _sampling)],
    "lstsq": [("weighted_least_squares", _lstsq)],
    "operators": [
        (f"FNO and LSM training step {np.dtype(d).name}", lambda d=d: _operators(d))
        for d in _DTYPES
    ],
}


def warmups(families=None) -> list[tuple[str, str, Callable[[], None]]]:
    """(family, label, warm-up call) for ``families`` (default: every family with kernels)."""
    chosen = WARMUPS if families is None else {f: WARMUPS[f] for f in families if f in WARMUPS}
    return [(family, label, build()) for family, steps in chosen.items() for label, build in steps]
