"""nl.pde.darcy: the discrete equation, its convergence, the random field and the plumbing.

The operator is rebuilt here with ``scipy.sparse.diags`` from the returned coefficient,
independently of numlab's own builders, so the residual test checks the stencil itself
(5-point, face coefficient = mean of the two vertex values, h = 1/(s-1), zero boundary).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.sparse
import scipy.sparse.linalg

import numlab as nl
from numlab import _backend
from numlab.pde import _darcy

S = 33  # small grids keep the file fast; the solvers' structure is the same at 421


def reference_operator(a):
    """The n²×n² matrix of solve_gwf.m for a vertex field a (s, s), row-major unknowns."""
    s = a.shape[0]
    n = s - 2
    h2 = (s - 1) ** 2
    c = a[1:-1, 1:-1]
    north = (c + a[:-2, 1:-1]) / 2
    south = (c + a[2:, 1:-1]) / 2
    west = (c + a[1:-1, :-2]) / 2
    east = (c + a[1:-1, 2:]) / 2
    diagonal = (north + south + west + east).ravel()
    east_off = east.copy()
    east_off[:, -1] = 0  # no coupling across the end of a grid row
    south_off = south[:-1, :].ravel()
    return h2 * scipy.sparse.diags(
        [-south_off, -east_off.ravel()[:-1], diagonal, -east_off.ravel()[:-1], -south_off],
        [-n, -1, 0, 1, n],
        format="csr",
    )


def relative_residual(a, u):
    A = reference_operator(a)
    interior = u[1:-1, 1:-1].ravel()
    f = np.ones_like(interior)
    return np.linalg.norm(A @ interior - f) / np.linalg.norm(f)


@pytest.fixture(scope="module")
def samples():
    return {solver: nl.pde.darcy(3, S, rng=7, solver=solver) for solver in ("direct", "multigrid")}


# --------------------------------------------------------------------------- the equation


@pytest.mark.parametrize("solver", ["direct", "multigrid"])
def test_discrete_residual(samples, solver):
    a, u = samples[solver]
    for k in range(a.shape[0]):
        assert relative_residual(a[k], u[k]) <= 1e-10


def test_residual_at_85():
    a, u = nl.pde.darcy(1, 85, rng=3, solver="direct")
    assert relative_residual(a[0], u[0]) <= 1e-10
    a, u = nl.pde.darcy(1, 85, rng=3, solver="multigrid")
    assert relative_residual(a[0], u[0]) <= 1e-10


def test_solvers_agree(samples):
    (a1, u1), (a2, u2) = samples["direct"], samples["multigrid"]
    np.testing.assert_array_equal(a1, a2)
    assert np.abs(u1 - u2).max() <= 1e-10 * np.abs(u1).max()


def test_sign_and_boundary(samples):
    a, u = samples["direct"]
    assert (u[:, 1:-1, 1:-1] > 0).all()
    for edge in (u[:, 0, :], u[:, -1, :], u[:, :, 0], u[:, :, -1]):
        assert (edge == 0).all()


def test_two_phases(samples):
    a, _ = samples["direct"]
    assert set(np.unique(a).tolist()) == {3.0, 12.0}
    for k in range(a.shape[0]):
        assert (a[k] == 12).any() and (a[k] == 3).any()


def test_binary_encoding():
    a, u = nl.pde.darcy(2, 17, rng=1)
    b, v = nl.pde.darcy(2, 17, rng=1, coefficient="binary")
    np.testing.assert_array_equal(b, (a == 12).astype(float))
    np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("solver", ["direct", "multigrid"])
def test_second_order_convergence(solver):
    """Grid refinement with a fixed smooth coefficient: the error falls like h².

    ``a(x, y) = 1 + 0.5 sin(2πx) cos(3πy) + x y`` is sampled on nested vertex grids
    s = 17, 33, 65, 129 (h halves, every coarse vertex is a fine one); the differences
    of successive solutions on the coarse vertices fall by 4 per halving for a
    second-order scheme. (A discontinuous two-phase field gives first order: its jumps are
    not aligned with the grid; the scheme is the original's either way.)
    """
    def a_of(s):
        x = np.linspace(0, 1, s)
        X, Y = np.meshgrid(x, x, indexing="ij")
        return 1 + 0.5 * np.sin(2 * np.pi * X) * np.cos(3 * np.pi * Y) + X * Y

    sizes = (17, 33, 65, 129)
    xp = _backend.namespace(np.empty(0))
    if solver == "direct":
        u = {s: _darcy._solve_direct(a_of(s)) for s in sizes}
    else:
        u = {s: np.asarray(_darcy._solve_multigrid(xp.asarray(a_of(s)[None]), xp, None))[0]
             for s in sizes}
    diffs = [np.abs(u[2 * s - 1][::2, ::2] - u[s]).max() for s in sizes[:-1]]
    orders = np.log2(np.array(diffs[:-1]) / np.array(diffs[1:]))
    assert np.all(np.abs(orders - 2) < 0.1), orders


# --------------------------------------------------------------------------- the random field


def test_grf_synthesis_is_idct2():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((2, 9, 9))
    xp = _backend.namespace(noise)
    L = _darcy._grf_factors(9)[1] * noise
    expected = scipy.fft.idctn(L, type=2, norm="ortho", axes=(1, 2))
    np.testing.assert_allclose(np.asarray(_darcy.grf_synthesis(noise, xp)), expected, atol=1e-13)


def test_grf_covariance():
    """2,000 draws: every cosine mode's empirical variance within 10% of the spectrum,
    and the modes uncorrelated (the covariance is diagonal in the cosine basis)."""
    s, n = 8, 2000
    gens = [np.random.default_rng(np.random.SeedSequence(11, spawn_key=(i,))) for i in range(n)]
    noise = np.stack([_darcy.grf_draw(g, s) for g in gens])
    xp = _backend.namespace(noise)
    g = np.asarray(_darcy.grf_synthesis(noise, xp))
    modes = scipy.fft.dctn(g, type=2, norm="ortho", axes=(1, 2)).reshape(n, -1)
    spectrum = _darcy.grf_spectrum(s).ravel()
    # analytic spectrum, written out: s² τ^(2α-2) (π²|k|² + τ²)^(-α), mode (0, 0) removed
    k1, k2 = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
    analytic = (s**2 * 3.0**2 * (np.pi**2 * (k1**2 + k2**2) + 9.0) ** -2).ravel()
    analytic[0] = 0
    np.testing.assert_allclose(spectrum, analytic, rtol=1e-14)
    covariance = modes.T @ modes / n
    variance = np.diag(covariance)
    assert variance[0] == pytest.approx(0, abs=1e-20)
    assert np.all(np.abs(variance[1:] / analytic[1:] - 1) <= 0.10)
    correlation = covariance[1:, 1:] / np.sqrt(np.outer(variance[1:], variance[1:]))
    assert np.abs(correlation - np.eye(s * s - 1)).max() < 0.12


# --------------------------------------------------------------------------- plumbing


def test_per_sample_reproducibility():
    a10, u10 = nl.pde.darcy(10, 17, rng=0, batch_size=4)
    a3, u3 = nl.pde.darcy(3, 17, rng=0)
    np.testing.assert_array_equal(a10[:3], a3)
    np.testing.assert_allclose(u10[:3], u3, rtol=1e-12, atol=0)


def test_dask_chunks_equal_eager():
    dask = pytest.importorskip("dask")
    a, u = nl.pde.darcy(5, 17, rng=2, chunks=2)
    assert a.chunks[0] == (2, 2, 1)
    with dask.config.set(scheduler="synchronous"):
        a_l, u_l = dask.compute(a, u)
    a_e, u_e = nl.pde.darcy(5, 17, rng=2)
    np.testing.assert_array_equal(a_l, a_e)
    np.testing.assert_allclose(u_l, u_e, rtol=1e-12, atol=0)


def test_multigrid_on_backend_equals_direct(backend):
    """The xp solver (array-api-strict, CuPy where a GPU is there) against scipy's LU."""
    like = backend.asarray(np.zeros(1))
    a, u = nl.pde.darcy(3, 17, rng=5, like=like)
    assert _backend.namespace(u) == _backend.namespace(like)
    a_ref, u_ref = nl.pde.darcy(3, 17, rng=5, solver="direct")
    np.testing.assert_array_equal(backend.to_numpy(a), a_ref)
    assert np.abs(backend.to_numpy(u) - u_ref).max() <= 1e-8 * np.abs(u_ref).max()


def test_float32_output():
    a, u = nl.pde.darcy(2, 17, rng=4, dtype=np.float32)
    assert a.dtype == np.float32 and u.dtype == np.float32
    a64, u64 = nl.pde.darcy(2, 17, rng=4)
    np.testing.assert_array_equal(u, u64.astype(np.float32))


def test_non_convergence_warns(monkeypatch):
    monkeypatch.setattr(_darcy, "_MAXITER", 2)
    with pytest.warns(RuntimeWarning, match="multigrid-CG"):
        nl.pde.darcy(1, 17, rng=0, solver="multigrid")


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 2.0}, TypeError, "n_samples"),
        ({"resolution": 2}, ValueError, "resolution"),
        ({"resolution": 16.5}, TypeError, "resolution"),
        ({"solver": "lu"}, ValueError, "solver"),
        ({"coefficient": "lognormal"}, ValueError, "coefficient"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"dtype": np.int32}, ValueError, "dtype"),
    ],
)
def test_bad_input(kwargs, error, name):
    args = {"n_samples": 1, "resolution": 9, "rng": 0} | kwargs
    with pytest.raises(error, match=f"`{name}`"):
        nl.pde.darcy(args.pop("n_samples"), **args)


def test_direct_refused_off_numpy():
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(ValueError, match="`solver`"):
        nl.pde.darcy(1, 9, solver="direct", like=strict.asarray([0.0]))
