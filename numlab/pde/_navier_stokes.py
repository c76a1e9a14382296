"""nl.pde.navier_stokes: the 2-D vorticity data set of the Fourier Neural Operator paper."""

from __future__ import annotations

import math

from .. import _backend
from .._validation import check_int, check_scalar
from ._generate import Recipe, generate
from ._grf import draw as grf_draw
from ._grf import synthesize as grf_synthesize
from ._spectral import (
    check_resolution,
    check_step_count,
    check_viscosity,
    dealias_mask,
    etdrk4,
    etdrk4_coefficients,
    wavenumbers,
)

__all__ = ["navier_stokes"]

# Initial vorticity of Li et al. (2021): their GaussianRF(2, s, alpha=2.5, tau=7) draws
# Re(ifft(s^2 sqrt(2) 7^1.5 (4 pi^2 |k|^2 + 49)^-1.25 * complex normal)), a field of
# covariance 2 * 7^3 (-Delta + 49 I)^-2.5 (the paper writes 7^(3/2) (-Delta + 49 I)^-2.5).
GRF_ALPHA, GRF_TAU, GRF_SIGMA = 2.5, 7.0, math.sqrt(2.0) * 7.0**1.5
FORCING_AMPLITUDE = 0.1


def default_time_step(solver_resolution: int, viscosity: float) -> float:
    """The step :func:`navier_stokes` takes when ``time_step`` is None.

    ETDRK4 treats viscosity exactly, so the step is set by the explicit advection, whose
    eigenvalues ``i u . k`` reach ``|u| sqrt(2) k_max`` on the square dealiased band
    (``k_max = 2 pi (s - 1) // 3``). The step keeps that Courant number near 2 for
    velocities up to 0.5, inside the stability interval of RK4-type schemes (2.8): the
    paper's flows stay below 0.3 at viscosity 1e-3 and 0.5 at 1e-4 and 1e-5 over their
    horizons (measured). ``h = min(0.025, 3 / k_max)``: 1/44 on 64 x 64, where the
    time-stepping error at t = 50 is below 1e-8 relative (measured against a 4x smaller
    step), far below the grid's own. ``viscosity`` does not enter.
    """
    k_max = 2 * math.pi * ((solver_resolution - 1) // 3)
    return min(0.025, 3.0 / k_max)


def forcing(resolution: int, xp, device=None):
    """``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`` on the grid ``x, y = j / resolution``."""
    t = xp.arange(resolution, dtype=xp.float64, device=device) / resolution
    phase = 2 * math.pi * (t[:, None] + t[None, :])
    return FORCING_AMPLITUDE * (xp.sin(phase) + xp.cos(phase))


def solve_navier_stokes(w0, *, viscosity: float, t_final: float, record_every: float,
                        time_step: float, stride: int = 1, xp):
    """Vorticity records of ``w_t + u . grad w = viscosity Delta w + f`` on the unit torus.

    Parameters
    ----------
    w0 : array of shape (batch, s, s), float64
        Initial vorticity at ``(x, y) = (i, j) / s`` (zero mean).
    viscosity, t_final, record_every : float
        ``record_every`` divides ``t_final``.
    time_step : float
        Largest step; the step taken is ``record_every / ceil(record_every / time_step)``.
    stride : int
        Records keep every ``stride``-th grid point per axis.
    xp : namespace

    Returns
    -------
    array of shape (batch, t_final / record_every, s // stride, s // stride), float64
        The vorticity at ``record_every, 2 record_every, ..., t_final``.
    """
    fft = _backend.fft_namespace(xp)
    device = _backend.device(w0)
    s = w0.shape[-1]
    axes = (-2, -1)
    n_records = round(t_final / record_every)
    steps = max(1, math.ceil(record_every / time_step - 1e-9))
    h = record_every / steps

    kx, ky = wavenumbers(s, 2, xp, device=device)
    kx = 2 * math.pi * xp.astype(kx, xp.float64)
    ky = 2 * math.pi * xp.astype(ky, xp.float64)
    lap = kx**2 + ky**2
    L = -viscosity * lap
    # Stream function -Delta psi = w; u = psi_y, v = -psi_x (so curl (u, v) = w). The
    # mean mode has no stream function: divide by 1 there (w_hat[0, 0] = 0 anyway).
    inv_lap = 1.0 / xp.where(lap == 0, xp.ones_like(lap), lap)
    to_u = 1j * ky * inv_lap
    to_v = -1j * kx * inv_lap
    mask = dealias_mask(s, wavenumbers(s, 2, xp, device=device), xp)
    # Advection in Basdevant's form: for a divergence-free (u, v),
    #   u . grad w = (d_xx - d_yy)(u v) + d_xy (v^2 - u^2),
    # two inverse and two forward FFTs per evaluation instead of the five of u w_x + v w_y.
    # The 2/3 rule makes the products exact on the retained band, where every form agrees.
    from_uv = -mask * (ky**2 - kx**2)
    from_vv_uu = mask * (kx * ky)
    # The forcing has mean zero: the mean vorticity never changes.
    f_hat = fft.rfftn(forcing(s, xp, device), axes=axes)

    def nonlinear(w_hat):
        u = fft.irfftn(to_u * w_hat, s=(s, s), axes=axes)
        v = fft.irfftn(to_v * w_hat, s=(s, s), axes=axes)
        return (from_uv * fft.rfftn(u * v, axes=axes)
                + from_vv_uu * fft.rfftn(v * v - u * u, axes=axes) + f_hat)

    coefficients = etdrk4_coefficients(L, h, xp)
    w_hat = fft.rfftn(w0, axes=axes)
    records = []
    for r in range(n_records):
        w_hat = etdrk4(w_hat, nonlinear, coefficients, steps)
        w = fft.irfftn(w_hat, s=(s, s), axes=axes)
        # One check per record (one device sync on a GPU): a blown-up solve says so.
        if not bool(xp.all(xp.isfinite(w))):
            raise FloatingPointError(
                f"`time_step` must be smaller for this flow: the vorticity became non-finite "
                f"by t = {(r + 1) * record_every:g} with a step of {h:g}"
            )
        records.append(w[:, ::stride, ::stride])
    return xp.stack(records, axis=1)


def navier_stokes(n_samples, resolution=64, *, viscosity=1e-3, t_final=50.0,
                  record_every=1.0, solver_resolution=None, time_step=None, rng=None,
                  like=None, dtype=None, chunks=None, cache=None, progress=False,
                  batch_size=16):
    """Generate the Navier-Stokes data set of Li et al. (2021): vorticity trajectories.

    Solves the incompressible Navier-Stokes equations in vorticity form on the unit
    torus,

        w_t + u . grad w = viscosity Delta w + f,   div u = 0,   w = curl u,

    with the paper's forcing ``f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`` and initial
    vorticity ``w0`` a Gaussian random field of covariance ``2 * 7^3 (-Delta + 49 I)^-2.5``
    (the field the authors' code draws; :func:`numlab.pde.gaussian_random_field` with
    ``ndim=2, alpha=2.5, tau=7, sigma=sqrt(2) 7^1.5``), truncated at the solver grid.
    Fourier pseudo-spectral in space (stream function, 2/3 rule for the advection),
    ETDRK4 in time (exact viscosity, fourth order; the authors' scheme is Crank-Nicolson
    with forward-Euler advection at a step of 1e-4 on 256 x 256). The samples of a batch
    share one FFT call.

    Parameters
    ----------
    n_samples : int
        Number of trajectories, >= 1.
    resolution : int
        Output grid points per axis, >= 4.
    viscosity : float
        > 0. The paper's data sets use 1e-3 (T = 50), 1e-4 (T = 30) and 1e-5 (T = 20).
    t_final : float
        > 0, a multiple of ``record_every``.
    record_every : float
        > 0, time between records (the first record is at ``record_every``).
    solver_resolution : int, optional
        Grid of the solve, a multiple of ``resolution`` (default: ``resolution``). Output
        is downsampled by striding (point values at the coarse grid, as the authors
        did). At viscosity 1e-3 a 64 x 64 solve matches a 256 x 256 solve with a 10x
        smaller step at t = 1 to ~1e-9 relative (the flow is smooth); lower viscosities
        develop finer scales and need finer solver grids.
    time_step : float, optional
        Largest time step (the step taken divides ``record_every``); by default
        ``min(0.025, 3 / (2 pi (solver_resolution - 1) // 3))``, rounded to 1/44 on
        64 x 64: stable with a margin for the paper's flows (velocities below 0.5). A
        step too large for the flow raises ``FloatingPointError`` (never a silent NaN).
    rng : None, int or numpy.random.Generator
        Sample ``i`` depends only on the seed and ``i``.
    like : array, optional
        Generate on this array's library and device (NumPy by default; CuPy solves on the
        GPU).
    dtype : {None, float32, float64}
        Output dtype; the solve is float64 either way.
    chunks : int, optional
        Return lazy Dask arrays of blocks of ``chunks`` samples, generated on the workers
        (T = 50 data sets take CPU-hours: spread them over a cluster).
    cache : str or path-like, optional
        A directory keeping results on disk, keyed by every argument and numlab's version.
    progress : bool
        Show a progress bar.
    batch_size : int
        Samples per vectorised solve.

    Returns
    -------
    w0 : array of shape (n_samples, resolution, resolution)
        Initial vorticity at ``(x, y) = (i, j) / resolution``.
    w : array of shape (n_samples, t_final / record_every, resolution, resolution)
        Vorticity at ``t = record_every, 2 record_every, ..., t_final``.

    References
    ----------
    Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
    A. Anandkumar, "Fourier Neural Operator for Parametric Partial Differential
    Equations", ICLR 2021.
    A.-K. Kassam, L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs", SIAM J.
    Sci. Comput. 26 (2005).

    Examples
    --------
    >>> import numlab as nl
    >>> w0, w = nl.pde.navier_stokes(2, 32, t_final=2.0, rng=0)
    >>> w0.shape, w.shape
    ((2, 32, 32), (2, 2, 32, 32))
    """
    n_samples = check_int(n_samples, "n_samples", low=1)
    resolution = check_resolution(resolution)
    viscosity = check_scalar(viscosity, "viscosity", low=0)
    t_final = check_scalar(t_final, "t_final", low=0)
    record_every = check_scalar(record_every, "record_every", low=0)
    check_step_count(t_final, record_every, ("t_final", "record_every"))
    n_records = round(t_final / record_every)
    if n_records < 1 or abs(n_records * record_every - t_final) > 1e-9 * t_final:
        raise ValueError(
            f"`record_every` must divide `t_final` ({t_final!r}) into a whole number of "
            f"records; got {record_every!r}"
        )
    if solver_resolution is None:
        solver_resolution = resolution
    solver_resolution = check_resolution(solver_resolution, "solver_resolution")
    if solver_resolution % resolution:
        raise ValueError(
            f"`solver_resolution` must be a multiple of `resolution` ({resolution}); "
            f"got {solver_resolution}"
        )
    stride = solver_resolution // resolution
    check_viscosity(viscosity, solver_resolution)
    if time_step is None:
        time_step = default_time_step(solver_resolution, viscosity)
    time_step = check_scalar(time_step, "time_step", low=0)
    check_step_count(t_final, time_step)
    batch_size = check_int(batch_size, "batch_size", low=1)

    def draw(generator):
        return grf_draw(generator, solver_resolution, 2)

    def solve(noise, xp, device):
        w0 = grf_synthesize(noise, solver_resolution, 2, alpha=GRF_ALPHA, tau=GRF_TAU,
                            sigma=GRF_SIGMA, xp=xp)
        w = solve_navier_stokes(w0, viscosity=viscosity, t_final=t_final,
                                record_every=record_every, time_step=time_step,
                                stride=stride, xp=xp)
        return w0[:, ::stride, ::stride], w

    recipe = Recipe(
        name="navier_stokes",
        params={"resolution": resolution, "viscosity": viscosity, "t_final": t_final,
                "record_every": record_every, "solver_resolution": solver_resolution,
                "time_step": time_step},
        draw=draw,
        solve=solve,
        shapes=((resolution, resolution), (n_records, resolution, resolution)),
        batch_size=batch_size,
    )
    return generate(recipe, n_samples, rng=rng, like=like, dtype=dtype, chunks=chunks,
                    cache=cache, progress=progress)
