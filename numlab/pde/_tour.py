"""``numlab tour`` entries of nl.pde: each data set checked against a solve numlab did not make."""

from __future__ import annotations

import numpy as np

from .._tour import Demo


def _radau_burgers(u0, viscosity, t_final):
    """The same Fourier-Galerkin ODE (2/3 rule) solved by SciPy's Radau in physical space."""
    import scipy.integrate

    s = u0.size
    k = np.arange(s // 2 + 1)
    L = -viscosity * (2 * np.pi * k) ** 2
    g = -0.5j * 2 * np.pi * k * (3 * k < s)
    eye = np.eye(s)
    A = np.fft.irfft(L[:, None] * np.fft.rfft(eye, axis=0), n=s, axis=0)
    G = np.fft.irfft(g[:, None] * np.fft.rfft(eye, axis=0), n=s, axis=0)
    sol = scipy.integrate.solve_ivp(
        lambda t, u: np.fft.irfft(L * np.fft.rfft(u) + g * np.fft.rfft(u * u), n=s),
        (0.0, t_final), u0, method="Radau", jac=lambda t, u: A + 2 * G * u[None, :],
        rtol=1e-10, atol=1e-10 * np.abs(u0).max(),
    )
    return sol.y[:, -1]


def burgers_demo(quick: bool) -> Demo:
    from . import burgers

    n, s, viscosity = (64, 128, 0.01) if quick else (1000, 128, 0.01)
    u0, uT = burgers(n, s, viscosity=viscosity, rng=0)
    reference = _radau_burgers(u0[0], viscosity, 1.0)
    error = np.linalg.norm(uT[0] - reference) / np.linalg.norm(reference)
    drift = np.max(np.abs(uT.mean(axis=1) - u0.mean(axis=1)))
    return Demo(
        problem=f"{n} Burgers samples, s = {s}, viscosity {viscosity}, T = 1 (FNO data set)",
        result=f"ETDRK4, |mean drift| {drift:.0e}",
        check=f"sample 0 vs SciPy Radau on the same grid: rel. L2 {error:.1e}",
        ok=bool(error < 1e-6 and drift < 1e-13),
    )


def _darcy_operator(a):
    """The 5-point operator of -div(a grad u) on the interior vertices, built with scipy.sparse."""
    import scipy.sparse as sp

    s = a.shape[0]
    h2 = (1.0 / (s - 1)) ** 2
    m = s - 2
    # face coefficients between each interior vertex and its four neighbours
    east = 0.5 * (a[1:-1, 1:-1] + a[1:-1, 2:])
    west = 0.5 * (a[1:-1, 1:-1] + a[1:-1, :-2])
    north = 0.5 * (a[1:-1, 1:-1] + a[2:, 1:-1])
    south = 0.5 * (a[1:-1, 1:-1] + a[:-2, 1:-1])
    diagonal = (east + west + north + south).ravel()
    e = -east.ravel()[:-1] * (np.arange(1, m * m) % m != 0)
    nn = -north.ravel()[:-m]
    return sp.diags([diagonal, e, e, nn, nn], [0, 1, -1, m, -m], format="csr") / h2


def darcy_demo(quick: bool) -> Demo:
    from . import darcy

    n, s = (16, 85) if quick else (200, 85)
    a, u = darcy(n, s, rng=0)
    A = _darcy_operator(a[0])
    inner = u[0, 1:-1, 1:-1].ravel()
    residual = np.linalg.norm(A @ inner - 1.0) / np.sqrt(inner.size)
    boundary = max(np.abs(u[:, 0]).max(), np.abs(u[:, -1]).max(),
                   np.abs(u[:, :, 0]).max(), np.abs(u[:, :, -1]).max())
    return Demo(
        problem=f"{n} Darcy samples, {s} x {s}, coefficient 12 / 3, unit forcing",
        result=f"u > 0 inside: {bool((u[:, 1:-1, 1:-1] > 0).all())}, u = 0 on the boundary",
        check=f"sample 0 vs a scipy.sparse 5-point operator: rel. residual {residual:.0e}",
        ok=bool(residual < 1e-10 and boundary == 0.0 and (u[:, 1:-1, 1:-1] > 0).all()),
    )


def _fourier_upsample(w, n):
    """A 2-D field without its Nyquist modes, interpolated to an ``n x n`` grid."""
    s = w.shape[-1]
    c = np.fft.rfft2(w)
    fine = np.zeros((n, n // 2 + 1), complex)
    fine[: s // 2, : s // 2] = c[: s // 2, : s // 2]
    fine[-(s // 2) + 1:, : s // 2] = c[-(s // 2) + 1:, : s // 2]
    return np.fft.irfft2(fine, s=(n, n)) * (n / s) ** 2


def navier_stokes_demo(quick: bool) -> Demo:
    from . import _navier_stokes, navier_stokes

    n, s, t_final = (2, 64, 2.0) if quick else (4, 64, 10.0)
    w0, w = navier_stokes(n, s, viscosity=1e-3, t_final=t_final, record_every=1.0, rng=0)
    drift = np.max(np.abs(w.mean(axis=(2, 3)) - w0.mean(axis=(1, 2))[:, None]))
    # Accuracy: the same (band-limited) initial field solved on a 2x finer grid with a 10x
    # smaller step, sampled back, agrees at t = 1 to the 1e-3.
    band_limited = _fourier_upsample(w0[0], s)
    h = _navier_stokes.default_time_step(s, 1e-3)
    xp = _navier_stokes._backend.namespace(w0)
    solve = _navier_stokes.solve_navier_stokes
    coarse = solve(band_limited[None], viscosity=1e-3, t_final=1.0, record_every=1.0,
                   time_step=h, xp=xp)
    fine = solve(_fourier_upsample(band_limited, 2 * s)[None], viscosity=1e-3, t_final=1.0,
                 record_every=1.0, time_step=h / 10, stride=2, xp=xp)
    error = np.linalg.norm(coarse - fine) / np.linalg.norm(fine)
    return Demo(
        problem=f"{n} Navier-Stokes vorticity samples, {s} x {s}, viscosity 1e-3, T = {t_final:g}",
        result=f"{w.shape[1]} records each, |mean vorticity drift| {drift:.0e}",
        check=f"t = 1 vs {2 * s} x {2 * s} with a 10x smaller step: rel. L2 {error:.1e}",
        ok=bool(drift < 1e-12 and error < 1e-3),
    )


DEMOS = [burgers_demo, darcy_demo, navier_stokes_demo]
