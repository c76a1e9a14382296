"""nl.pde.burgers: the 1-D viscous Burgers data set of the Fourier Neural Operator paper."""

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

__all__ = ["burgers"]

# Initial data of Li et al. (2021): N(0, 625 (-Delta + 25 I)^-2).
GRF_ALPHA, GRF_TAU, GRF_SIGMA = 2.0, 5.0, 25.0


def default_time_step(resolution: int, viscosity: float) -> float:
    """The step :func:`burgers` takes when ``time_step`` is None.

    ETDRK4 integrates the viscous term exactly, so the step is set by the nonlinear term:

    - accuracy: 4e-3 gives a relative error of at most ~3e-7 at t = 1 for the paper's
      initial data (measured against a Radau reference: 2e-7 at viscosity 0.1, 3e-8 at
      0.01; 1e-2 gives ~2e-6 at viscosity 0.1, the error falls like the step cubed);
    - stability of the explicit advection: ``|u| k h <~ 2`` (``|u| ~ 1``) for every
      wavenumber that viscosity does not damp within a step (``viscosity k^2 h >~ 5``), so
      ``h <= max(2 / k_max, 0.8 viscosity)`` with ``k_max`` the top of the dealiased band.
    """
    k_max = 2 * math.pi * ((resolution - 1) // 3)
    return min(4e-3, max(2.0 / k_max, 0.8 * viscosity))


def solve_burgers(u0, *, viscosity: float, t_final: float, time_step: float, xp):
    """``u(., t_final)`` of ``u_t + (u^2/2)_x = viscosity u_xx`` on ``[0, 1)`` periodic.

    Parameters
    ----------
    u0 : array of shape (batch, s), float64
        Initial values at ``x = j / s``.
    viscosity, t_final : float
    time_step : float
        Largest step; the step taken is ``t_final / ceil(t_final / time_step)``.
    xp : namespace

    Returns
    -------
    array of shape (batch, s), float64
    """
    fft = _backend.fft_namespace(xp)
    s = u0.shape[-1]
    n_steps = max(1, math.ceil(t_final / time_step - 1e-9))
    h = t_final / n_steps
    (k,) = wavenumbers(s, 1, xp, device=_backend.device(u0))
    wave = 2 * math.pi * xp.astype(k, xp.float64)
    L = -viscosity * wave**2
    # -(u^2/2)_x in Fourier space, 2/3-dealiased: the product u^2 is formed on the grid.
    g = (-0.5j * wave) * dealias_mask(s, (k,), xp)

    def nonlinear(v):
        u = fft.irfft(v, n=s, axis=-1)
        return g * fft.rfft(u * u, axis=-1)

    coefficients = etdrk4_coefficients(L, h, xp)
    v = etdrk4(fft.rfft(u0, axis=-1), nonlinear, coefficients, n_steps)
    uT = fft.irfft(v, n=s, axis=-1)
    # A step too large for the explicit advection blows up: say so, never return NaN.
    if not bool(xp.all(xp.isfinite(uT))):
        raise FloatingPointError(
            f"`time_step` must be smaller for this viscosity and resolution: the solution "
            f"became non-finite with a step of {h:g}"
        )
    return uT


def burgers(n_samples, resolution=1024, *, viscosity=0.1, t_final=1.0, time_step=None,
            rng=None, like=None, dtype=None, chunks=None, cache=None, progress=False,
            batch_size=32):
    """Generate the Burgers data set of Li et al. (2021): initial data and solution at ``t_final``.

    Solves ``u_t + (u^2 / 2)_x = viscosity u_xx`` on the periodic interval ``[0, 1)``
    from ``u0 ~ N(0, 625 (-Delta + 25 I)^(-2))`` (see
    :func:`numlab.pde.gaussian_random_field`, truncated at the grid), with a Fourier
    pseudo-spectral discretisation on the ``resolution`` grid points ``x = j /
    resolution``, the 2/3 rule for the quadratic term and ETDRK4 in time (the
    Kassam-Trefethen contour evaluation of its coefficients, in float64). The samples of a
    batch share one FFT call.

    Parameters
    ----------
    n_samples : int
        Number of (u0, uT) pairs, >= 1.
    resolution : int
        Grid points, >= 4 (the 2/3 rule keeps the wavenumbers ``|k| < resolution / 3``).
        The paper subsamples 8192 points to 256 ... 8192; here the solve runs on this grid.
    viscosity : float
        > 0. The paper's setting is 0.1 (the field is almost dissipated by t = 1);
        0.01 keeps shocks (the neuraloperator bundled data).
    t_final : float
        > 0.
    time_step : float, optional
        Largest time step (the step taken divides ``t_final``); by default
        ``min(4e-3, max(2 / k_max, 0.8 viscosity))`` with ``k_max = 2 pi (resolution
        - 1) // 3``: 4e-3 for the paper's settings (relative error below ~3e-7 at
        t = 1), smaller where the explicit advection needs it (low viscosity on fine
        grids). A step too large raises ``FloatingPointError`` (never a silent NaN).
    rng : None, int or numpy.random.Generator
        Sample ``i`` depends only on the seed and ``i``.
    like : array, optional
        Generate on this array's library and device (NumPy by default; CuPy solves on the
        GPU).
    dtype : {None, float32, float64}
        Output dtype; the solve is float64 either way.
    chunks : int, optional
        Return lazy Dask arrays of blocks of ``chunks`` samples, generated on the workers.
    cache : str or path-like, optional
        A directory keeping results on disk, keyed by every argument and numlab's version.
    progress : bool
        Show a progress bar.
    batch_size : int
        Samples per vectorised solve (32 keeps a batch in cache on a CPU; larger on a GPU).

    Returns
    -------
    u0 : array of shape (n_samples, resolution)
        The initial data on the grid.
    uT : array of shape (n_samples, resolution)
        The solution at ``t_final`` on the grid.

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
    >>> u0, uT = nl.pde.burgers(8, 256, rng=0)
    >>> u0.shape, uT.shape
    ((8, 256), (8, 256))
    """
    n_samples = check_int(n_samples, "n_samples", low=1)
    resolution = check_resolution(resolution)
    viscosity = check_scalar(viscosity, "viscosity", low=0)
    check_viscosity(viscosity, resolution)
    t_final = check_scalar(t_final, "t_final", low=0)
    if time_step is None:
        time_step = default_time_step(resolution, viscosity)
    time_step = check_scalar(time_step, "time_step", low=0)
    check_step_count(t_final, time_step)
    batch_size = check_int(batch_size, "batch_size", low=1)

    def draw(generator):
        return grf_draw(generator, resolution, 1)

    def solve(noise, xp, device):
        u0 = grf_synthesize(noise, resolution, 1, alpha=GRF_ALPHA, tau=GRF_TAU,
                            sigma=GRF_SIGMA, xp=xp)
        uT = solve_burgers(u0, viscosity=viscosity, t_final=t_final, time_step=time_step,
                           xp=xp)
        return u0, uT

    recipe = Recipe(
        name="burgers",
        params={"resolution": resolution, "viscosity": viscosity, "t_final": t_final,
                "time_step": time_step},
        draw=draw,
        solve=solve,
        shapes=((resolution,), (resolution,)),
        batch_size=batch_size,
    )
    return generate(recipe, n_samples, rng=rng, like=like, dtype=dtype, chunks=chunks,
                    cache=cache, progress=progress)
