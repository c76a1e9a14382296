"""nl.pde spectral generators: Burgers, Navier-Stokes and their Gaussian random fields.

References are independent of the code under test: SciPy's Radau (a fifth-order implicit
Runge-Kutta method) on the same Fourier grid, or the same equations on a 4x finer grid
with a 10x smaller step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate

import numlab as nl
from numlab import _backend
from numlab.pde import _burgers, _grf


def _xp():
    return _backend.namespace(np.empty(0))


def _rel(a, b):
    return np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)


# --------------------------------------------------------------------------- random fields


def _empirical_spectrum(fields, ndim):
    s = fields.shape[-1]
    coefficients = np.fft.rfftn(fields, axes=tuple(range(-ndim, 0))) / s**ndim
    return np.mean(np.abs(coefficients) ** 2, axis=0), s


def _analytic_spectrum(s, ndim, alpha, tau, sigma):
    axes = [np.fft.fftfreq(s, 1 / s)] * (ndim - 1) + [np.arange(s // 2 + 1)]
    k2 = sum(k**2 for k in np.meshgrid(*axes, indexing="ij"))
    return sigma**2 * (4 * np.pi**2 * k2 + tau**2) ** (-alpha)


@pytest.mark.parametrize(
    "ndim, s, alpha, tau, sigma",
    [
        (1, 64, 2.0, 5.0, 25.0),  # Burgers (Li et al. 2021)
        (1, 33, 2.0, 5.0, 25.0),  # odd grid: no Nyquist mode
        (2, 16, 2.5, 7.0, math.sqrt(2) * 7**1.5),  # Navier-Stokes
    ],
)
def test_grf_covariance_matches_the_analytic_spectrum(ndim, s, alpha, tau, sigma):
    fields = nl.pde.gaussian_random_field(2000, s, ndim=ndim, alpha=alpha, tau=tau,
                                          sigma=sigma, rng=7)
    empirical, _ = _empirical_spectrum(fields, ndim)
    analytic = _analytic_spectrum(s, ndim, alpha, tau, sigma)
    assert empirical.flat[0] < 1e-28  # zero mean, exactly
    ratio = empirical.ravel()[1:] / analytic.ravel()[1:]
    assert np.all(np.abs(ratio - 1) < 0.10), (ratio.min(), ratio.max())


def test_grf_burgers_series_and_fno_navier_stokes_field():
    # Burgers: the series sum_k sqrt(2) sigma lambda_k (xi cos + eta sin) has pointwise
    # variance sum_k 2 sigma^2 lambda_k^2 (k = 1 .. s/2 - 1) + sigma^2 lambda_{s/2}^2.
    s = 64
    k = np.arange(1, s // 2)
    lam2 = ((2 * np.pi * k) ** 2 + 25.0) ** -2.0
    expected = np.sum(2 * 625 * lam2) + 625 * ((np.pi * s) ** 2 + 25.0) ** -2.0
    u0 = nl.pde.burgers(4000, s, t_final=1e-3, rng=3)[0]
    assert abs(np.var(u0, axis=0).mean() / expected - 1) < 0.05
    # Navier-Stokes: the FNO code draws Re(ifft(sqrt_eig * complex normal)) with
    # sqrt_eig = s^2 sqrt(2) 7^1.5 (...)^(-1.25): pointwise variance sum_k 2 * 7^3 lambda_k^2.
    s = 16
    full = np.fft.fftfreq(s, 1 / s)
    kk = full[:, None] ** 2 + full[None, :] ** 2
    lam2 = (4 * np.pi**2 * kk + 49.0) ** -2.5
    lam2[0, 0] = 0.0
    expected = np.sum(2 * 7**3 * lam2)
    w0 = nl.pde.gaussian_random_field(4000, s, ndim=2, alpha=2.5, tau=7.0,
                                      sigma=math.sqrt(2) * 7**1.5, rng=4)
    assert abs(np.var(w0, axis=0).mean() / expected - 1) < 0.05


# --------------------------------------------------------------------------- Burgers


def _radau_burgers(u0, viscosity, t_final, rtol=1e-10):
    """The same Fourier-Galerkin ODE in physical space, by SciPy's Radau with the exact Jacobian."""
    s = u0.size
    k = np.arange(s // 2 + 1)
    wave = 2 * np.pi * k
    L = -viscosity * wave**2
    g = -0.5j * wave * (3 * k < s)
    eye = np.eye(s)
    A = np.fft.irfft(L[:, None] * np.fft.rfft(eye, axis=0), n=s, axis=0)
    G = np.fft.irfft(g[:, None] * np.fft.rfft(eye, axis=0), n=s, axis=0)

    def rhs(t, u):
        return np.fft.irfft(L * np.fft.rfft(u) + g * np.fft.rfft(u * u), n=s)

    def jac(t, u):
        return A + 2 * G * u[None, :]

    sol = scipy.integrate.solve_ivp(rhs, (0.0, t_final), u0, method="Radau", jac=jac,
                                    rtol=rtol, atol=rtol * np.abs(u0).max())
    assert sol.success
    return sol.y[:, -1]


def _refined_burgers(u0, viscosity, t_final, time_step, factor=4):
    """The band-limited u0 on a ``factor``x finer grid, a 10x smaller step, sampled back."""
    s = u0.shape[-1]
    coefficients = np.fft.rfft(u0, axis=-1)
    fine = np.fft.irfft(coefficients, n=factor * s, axis=-1) * factor
    uT = _burgers.solve_burgers(fine, viscosity=viscosity, t_final=t_final,
                                time_step=time_step / 10, xp=_xp())
    return uT[:, ::factor]


def test_burgers_matches_radau_on_the_same_grid():
    u0, uT = nl.pde.burgers(2, 128, viscosity=0.01, rng=11)
    ref = np.stack([_radau_burgers(u, 0.01, 1.0) for u in u0])
    assert np.all(_rel(uT, ref) <= 1e-6), _rel(uT, ref)
    # viscosity 0.01 keeps steep fronts: the data are not trivially small
    assert np.all(np.linalg.norm(uT, axis=1) > 0.2 * np.linalg.norm(u0, axis=1))


def test_burgers_matches_a_refined_solve_at_the_paper_setting():
    u0, uT = nl.pde.burgers(2, 1024, viscosity=0.1, rng=12)
    ref = _refined_burgers(u0, 0.1, 1.0, _burgers.default_time_step(1024, 0.1))
    assert np.all(_rel(uT, ref) <= 1e-6), _rel(uT, ref)


@pytest.mark.slow
def test_burgers_matches_radau_at_the_paper_setting():
    u0, uT = nl.pde.burgers(1, 1024, viscosity=0.1, rng=13)
    ref = _radau_burgers(u0[0], 0.1, 1.0)
    assert _rel(uT[0], ref) <= 1e-6


def test_burgers_conserves_the_mean_and_dissipates_energy():
    times = np.linspace(0.05, 1.0, 20)
    u0 = nl.pde.burgers(3, 128, viscosity=0.01, t_final=1e-3, rng=5)[0]
    energy = [np.sum(u0**2, axis=1)]
    for t in times:
        _, uT = nl.pde.burgers(3, 128, viscosity=0.01, t_final=float(t), rng=5)
        assert np.max(np.abs(uT.mean(axis=1) - u0.mean(axis=1))) <= 1e-14
        energy.append(np.sum(uT**2, axis=1))
    assert np.all(np.diff(np.stack(energy), axis=0) < 0)


def test_burgers_samples_depend_only_on_seed_and_index():
    u0, uT = nl.pde.burgers(10, 64, rng=0, batch_size=4)
    v0, vT = nl.pde.burgers(3, 64, rng=0)
    np.testing.assert_array_equal(u0[:3], v0)
    np.testing.assert_allclose(uT[:3], vT, rtol=0, atol=1e-15)
    w0, _ = nl.pde.burgers(3, 64, rng=1)
    assert not np.allclose(w0, v0)


def test_burgers_dask_chunks_equal_the_eager_call():
    dask = pytest.importorskip("dask")
    u0, uT = nl.pde.burgers(7, 64, rng=3, chunks=3)
    assert u0.chunks == ((3, 3, 1), (64,))
    e0, eT = nl.pde.burgers(7, 64, rng=3)
    with dask.config.set(scheduler="synchronous"):
        l0, lT = dask.compute(u0, uT)
    np.testing.assert_array_equal(l0, e0)
    np.testing.assert_allclose(lT, eT, rtol=0, atol=1e-15)


def test_burgers_dask_on_a_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    e0, eT = nl.pde.burgers(5, 32, rng=8)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            u0, uT = nl.pde.burgers(5, 32, rng=8, chunks=2)
            l0, lT = client.compute([u0, uT], sync=True)
    np.testing.assert_array_equal(l0, e0)
    np.testing.assert_allclose(lT, eT, rtol=0, atol=1e-15)


def test_burgers_cache_round_trip_and_changed_argument(tmp_path):
    u0, uT = nl.pde.burgers(3, 64, rng=2, cache=tmp_path)
    assert len(list(tmp_path.glob("burgers-*.npz"))) == 1
    c0, cT = nl.pde.burgers(3, 64, rng=2, cache=tmp_path)
    np.testing.assert_array_equal(c0, u0)
    np.testing.assert_array_equal(cT, uT)
    d0, dT = nl.pde.burgers(3, 64, viscosity=0.05, rng=2, cache=tmp_path)
    assert len(list(tmp_path.glob("burgers-*.npz"))) == 2
    np.testing.assert_array_equal(d0, u0)  # same seed, same initial data ...
    assert not np.allclose(dT, uT)  # ... another viscosity


def test_burgers_on_every_backend(backend):
    like = backend.asarray(np.zeros(1))
    u0, uT = nl.pde.burgers(3, 64, viscosity=0.02, rng=4, like=like, dtype=backend.dtype)
    xp = backend.xp
    assert _backend.namespace(u0, uT) is xp or _backend.is_numpy(xp)
    assert u0.shape == (3, 64) and uT.dtype == backend.dtype
    if backend.device is not None:
        assert u0.device == backend.device
    e0, eT = nl.pde.burgers(3, 64, viscosity=0.02, rng=4)
    tol = 1e-6 if backend.float_name == "float32" else 1e-12
    np.testing.assert_allclose(backend.to_numpy(u0), e0, rtol=tol, atol=tol)
    np.testing.assert_allclose(backend.to_numpy(uT), eT, rtol=tol, atol=tol)


def test_burgers_float32_output():
    u0, uT = nl.pde.burgers(2, 128, rng=6, dtype=np.float32)
    e0, eT = nl.pde.burgers(2, 128, rng=6)
    assert u0.dtype == uT.dtype == np.float32
    np.testing.assert_array_equal(uT, eT.astype(np.float32))


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 1.5}, TypeError, "n_samples"),
        ({"resolution": 3}, ValueError, "resolution"),
        ({"viscosity": 0.0}, ValueError, "viscosity"),
        ({"viscosity": -1.0}, ValueError, "viscosity"),
        ({"viscosity": float("nan")}, ValueError, "viscosity"),
        ({"t_final": 0.0}, ValueError, "t_final"),
        ({"time_step": -1e-3}, ValueError, "time_step"),
        ({"dtype": np.int64}, ValueError, "dtype"),
        ({"rng": "seed"}, TypeError, "rng"),
        ({"like": [1.0]}, TypeError, "like"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_burgers_bad_input_names_the_argument(kwargs, error, name):
    args = {"n_samples": 2, "resolution": 32, **kwargs}
    with pytest.raises(error, match=f"`{name}` must"):
        nl.pde.burgers(args.pop("n_samples"), args.pop("resolution"), **args)


def test_grf_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="`ndim` must"):
        nl.pde.gaussian_random_field(2, 16, ndim=3)
    with pytest.raises(ValueError, match="`tau` must"):
        nl.pde.gaussian_random_field(2, 16, tau=0)
    with pytest.raises(ValueError, match="`resolution` must"):
        nl.pde.gaussian_random_field(2, 1)


# --------------------------------------------------------------------------- Navier-Stokes

from numlab.pde import _navier_stokes  # noqa: E402


def _band_limited(w0):
    """``w0`` without its Nyquist row and column: a trigonometric polynomial any finer grid
    represents exactly."""
    s = w0.shape[-1]
    coefficients = np.fft.rfft2(w0)
    coefficients[..., s // 2, :] = 0
    coefficients[..., :, s // 2] = 0
    return np.fft.irfft2(coefficients, s=(s, s))


def _upsample(w0, n):
    """Fourier interpolation of a band-limited ``w0`` to an ``n x n`` grid."""
    s = w0.shape[-1]
    coefficients = np.fft.rfft2(w0)
    fine = np.zeros(w0.shape[:-2] + (n, n // 2 + 1), complex)
    fine[..., : s // 2, : s // 2 + 1] = coefficients[..., : s // 2, :]
    fine[..., -(s // 2):, : s // 2 + 1] = coefficients[..., -(s // 2):, :]
    return np.fft.irfft2(fine, s=(n, n)) * (n / s) ** 2


def _ns_initial(n, s, seed):
    return nl.pde.gaussian_random_field(
        n, s, ndim=2, alpha=_navier_stokes.GRF_ALPHA, tau=_navier_stokes.GRF_TAU,
        sigma=_navier_stokes.GRF_SIGMA, rng=seed)


def _ns_against_refined(n_fine, seed):
    w0 = _band_limited(_ns_initial(1, 64, seed))
    h = _navier_stokes.default_time_step(64, 1e-3)
    coarse = _navier_stokes.solve_navier_stokes(
        w0, viscosity=1e-3, t_final=1.0, record_every=1.0, time_step=h, xp=_xp())
    fine = _navier_stokes.solve_navier_stokes(
        _upsample(w0, n_fine), viscosity=1e-3, t_final=1.0, record_every=1.0,
        time_step=h / 10, stride=n_fine // 64, xp=_xp())
    return float(np.linalg.norm(coarse - fine) / np.linalg.norm(fine))


def test_navier_stokes_matches_a_refined_solve():
    assert _ns_against_refined(128, seed=21) <= 1e-3


@pytest.mark.slow
def test_navier_stokes_matches_the_256_reference():
    assert _ns_against_refined(256, seed=22) <= 1e-3


def test_navier_stokes_conserves_mean_vorticity():
    w0, w = nl.pde.navier_stokes(2, 32, t_final=4.0, rng=3)
    assert np.max(np.abs(w0.mean(axis=(-2, -1)))) <= 1e-12
    assert np.max(np.abs(w.mean(axis=(-2, -1)))) <= 1e-12
    assert w.shape == (2, 4, 32, 32)
    assert np.all(np.isfinite(w))


def test_navier_stokes_enstrophy_budget():
    # Z = sum w^2 over the grid (the integral times s^2): dZ/dt = -2 nu P + 2 <w, f>, with
    # P = |grad w|^2: advection moves enstrophy between scales and conserves it.
    s, nu, dt = 32, 1e-3, 0.01
    w0, w = nl.pde.navier_stokes(1, s, viscosity=nu, t_final=1.0, record_every=dt, rng=9)
    w = w[0]
    k = 2 * np.pi * np.fft.fftfreq(s, 1 / s)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    f = _navier_stokes.forcing(s, _xp())
    Z = np.sum(w**2, axis=(-2, -1))
    P = np.array([np.sum(k2 * np.abs(np.fft.fft2(x)) ** 2) / s**2 for x in w])
    forcing_term = 2 * np.sum(w * f, axis=(-2, -1))
    # fourth-order central differences at the interior records
    dZ = (Z[:-4] - 8 * Z[1:-3] + 8 * Z[3:-1] - Z[4:]) / (12 * dt)
    rhs = (-2 * nu * P + forcing_term)[2:-2]
    scale = np.abs(2 * nu * P[2:-2]) + np.abs(forcing_term[2:-2])
    assert np.max(np.abs(dZ - rhs) / scale) <= 1e-3


def test_navier_stokes_solver_resolution_strides_the_finer_solve():
    w0, w = nl.pde.navier_stokes(2, 16, t_final=1.0, solver_resolution=32, rng=4)
    f0, fw = nl.pde.navier_stokes(2, 32, t_final=1.0, rng=4)
    np.testing.assert_array_equal(w0, f0[:, ::2, ::2])
    np.testing.assert_allclose(w, fw[:, :, ::2, ::2], rtol=0, atol=1e-13)


def test_navier_stokes_samples_depend_only_on_seed_and_index():
    w0, w = nl.pde.navier_stokes(5, 16, t_final=1.0, rng=0, batch_size=2)
    v0, v = nl.pde.navier_stokes(2, 16, t_final=1.0, rng=0)
    np.testing.assert_array_equal(w0[:2], v0)
    np.testing.assert_allclose(w[:2], v, rtol=0, atol=1e-14)


def test_navier_stokes_dask_cache_and_float32(tmp_path):
    dask = pytest.importorskip("dask")
    e0, ew = nl.pde.navier_stokes(3, 16, t_final=2.0, rng=5)
    l0, lw = nl.pde.navier_stokes(3, 16, t_final=2.0, rng=5, chunks=2)
    assert lw.shape == (3, 2, 16, 16) and lw.chunks[0] == (2, 1)
    with dask.config.set(scheduler="synchronous"):
        l0, lw = dask.compute(l0, lw)
    np.testing.assert_array_equal(l0, e0)
    np.testing.assert_allclose(lw, ew, rtol=0, atol=1e-14)
    c0, cw = nl.pde.navier_stokes(3, 16, t_final=2.0, rng=5, cache=tmp_path)
    c0, cw = nl.pde.navier_stokes(3, 16, t_final=2.0, rng=5, cache=tmp_path)
    np.testing.assert_array_equal(cw, ew)
    nl.pde.navier_stokes(3, 16, t_final=2.0, record_every=0.5, rng=5, cache=tmp_path)
    assert len(list(tmp_path.glob("navier_stokes-*.npz"))) == 2
    f0, fw = nl.pde.navier_stokes(3, 16, t_final=2.0, rng=5, dtype=np.float32)
    assert fw.dtype == f0.dtype == np.float32
    np.testing.assert_array_equal(fw, ew.astype(np.float32))


def test_navier_stokes_on_every_backend(backend):
    like = backend.asarray(np.zeros(1))
    w0, w = nl.pde.navier_stokes(2, 16, t_final=1.0, rng=6, like=like, dtype=backend.dtype)
    assert w.shape == (2, 1, 16, 16) and w.dtype == backend.dtype
    if backend.device is not None:
        assert w.device == backend.device
    e0, ew = nl.pde.navier_stokes(2, 16, t_final=1.0, rng=6)
    tol = 1e-6 if backend.float_name == "float32" else 1e-12
    np.testing.assert_allclose(backend.to_numpy(w0), e0, rtol=tol, atol=tol)
    np.testing.assert_allclose(backend.to_numpy(w), ew, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"resolution": 2}, ValueError, "resolution"),
        ({"resolution": 16.0}, TypeError, "resolution"),
        ({"viscosity": 0.0}, ValueError, "viscosity"),
        ({"t_final": -1.0}, ValueError, "t_final"),
        ({"record_every": 0.0}, ValueError, "record_every"),
        ({"record_every": 0.3}, ValueError, "record_every"),
        ({"record_every": 3.0}, ValueError, "record_every"),
        ({"solver_resolution": 24}, ValueError, "solver_resolution"),
        ({"time_step": 0.0}, ValueError, "time_step"),
        ({"dtype": "float16"}, ValueError, "dtype"),
    ],
)
def test_navier_stokes_bad_input_names_the_argument(kwargs, error, name):
    args = {"n_samples": 1, "resolution": 16, "t_final": 2.0, **kwargs}
    with pytest.raises(error, match=f"`{name}` must"):
        nl.pde.navier_stokes(args.pop("n_samples"), args.pop("resolution"), **args)


def test_a_blown_up_solve_names_time_step():
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="`time_step`"):
        nl.pde.burgers(1, 1024, viscosity=1e-3, time_step=0.02, rng=0)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="`time_step`"):
        nl.pde.navier_stokes(1, 32, viscosity=1e-4, time_step=1.0, t_final=10.0, rng=0)
