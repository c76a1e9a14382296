"""Fourier pseudo-spectral building blocks shared by the periodic nl.pde solvers.

- :func:`wavenumbers`: integer wavenumbers of a real-FFT half spectrum on the unit torus;
- :func:`dealias_mask`: the 2/3 rule;
- :func:`etdrk4_coefficients` and :func:`etdrk4`: the fourth-order exponential time
  differencing Runge-Kutta scheme of Cox & Matthews with the contour-integral evaluation
  of Kassam & Trefethen, for ``v' = L v + N(v)`` with a diagonal (Fourier) ``L``.

References
----------
S. M. Cox, P. C. Matthews, "Exponential time differencing for stiff systems",
J. Comput. Phys. 176 (2002) 430-455.
A.-K. Kassam, L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs",
SIAM J. Sci. Comput. 26 (2005) 1214-1233.
"""

from __future__ import annotations

import math
import numbers

from .. import _backend

__all__ = [
    "check_resolution",
    "wavenumbers",
    "dealias_mask",
    "etdrk4_coefficients",
    "etdrk4",
]

# Points on the half circle of the contour integral. Kassam & Trefethen use 32 on the full
# circle (16 on the upper half for real L); 32 on the half circle keeps the phi functions at
# float64 round-off for every |h L| (checked against their Taylor series near 0).
_CONTOUR_POINTS = 32


# More time steps than this is a call that would not finish (hours per sample at the
# smallest grids); refused up front rather than left to run.
MAX_STEPS = 10**8


def check_step_count(t_final, time_step, names=("t_final", "time_step")):
    """Refuse a ``t_final / time_step`` beyond :data:`MAX_STEPS`, naming both arguments."""
    steps = t_final / time_step
    if steps > MAX_STEPS:
        raise ValueError(
            f"`{names[0]}` / `{names[1]}` = {t_final!r} / {time_step!r} is {steps:.3g} time "
            f"steps, more than the {MAX_STEPS:.0e} numlab takes in one call")


def check_viscosity(viscosity, resolution):
    """Refuse a viscosity whose largest decay rate ``viscosity (pi resolution)^2`` is not a
    float64 number far from overflow (the exponential integrator would produce inf - inf)."""
    if viscosity * (math.pi * resolution) ** 2 > 1e300:
        raise ValueError(
            f"`viscosity` must be at most {1e300 / (math.pi * resolution) ** 2:.3g} at "
            f"resolution {resolution} (its decay rate overflows float64); got {viscosity!r}")


def check_resolution(resolution, name="resolution", low=4):
    """A grid size the 2/3 rule leaves modes on: an integer >= ``low`` (default 4, where
    the dealiased band ``|k| < resolution / 3`` holds ``k = +-1``)."""
    if isinstance(resolution, bool) or not isinstance(resolution, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {resolution!r} of type "
                        f"{type(resolution).__name__}")
    resolution = int(resolution)
    if resolution < low:
        raise ValueError(
            f"`{name}` must be >= {low} (the 2/3 dealiasing keeps the wavenumbers "
            f"|k| < {name} / 3); got {resolution}"
        )
    return resolution


def wavenumbers(resolution: int, ndim: int, xp, device=None):
    """Integer wavenumbers of the ``rfftn`` half spectrum of a ``resolution``-point grid.

    Returns a tuple of ``ndim`` int64 arrays, broadcastable to the half-spectrum shape
    ``(resolution,) * (ndim - 1) + (resolution // 2 + 1,)``: the full axes hold
    ``0, 1, ..., -2, -1`` (FFT order; the Nyquist index of an even grid as ``-s/2``), the
    last axis ``0 .. s//2``.
    """
    s = resolution
    full = (xp.arange(s, dtype=xp.int64, device=device) + s // 2) % s - s // 2
    half = xp.arange(s // 2 + 1, dtype=xp.int64, device=device)
    out = []
    for axis in range(ndim):
        k = half if axis == ndim - 1 else full
        shape = [1] * ndim
        shape[axis] = k.shape[0]
        out.append(xp.reshape(k, tuple(shape)))
    return tuple(out)


def dealias_mask(resolution: int, ks, xp):
    """The 2/3 rule: 1.0 where every ``|k_i| < resolution / 3``, else 0.0 (float64).

    With every retained ``|k| <= K`` and ``3 K < s``, the aliases of a quadratic product
    (wavenumbers up to ``2 K``, folded by ``s``) all land outside the retained band.
    """
    mask = None
    for k in ks:
        keep = 3 * xp.abs(k) < resolution
        mask = keep if mask is None else (mask & keep)
    return xp.astype(mask, xp.float64)


def etdrk4_coefficients(L, h: float, xp):
    """The ETDRK4 multipliers ``(E, E2, Q, f1, f2, f3)`` for a real diagonal ``L`` and step ``h``.

    ``Q = h phi1(hL/2) / 2``-type functions are evaluated as means over a circle of radius
    1 around each ``hL`` (Kassam & Trefethen 2005), which avoids the cancellation of the
    closed forms near ``hL = 0``. Computed in float64/complex128 whatever the caller's dtype.
    """
    device = _backend.device(L)
    j = xp.arange(1, _CONTOUR_POINTS + 1, dtype=xp.float64, device=device)
    # Upper half circle: for real L the lower half gives the complex conjugates, so the mean
    # over the full circle is the real part of the mean over the upper half.
    theta = math.pi * (j - 0.5) / _CONTOUR_POINTS
    r = xp.cos(theta) + 1j * xp.sin(theta)
    hL = h * L
    LR = xp.astype(hL, xp.complex128)[..., None] + r
    eLR = xp.exp(LR)

    def mean(z):
        return h * xp.real(xp.sum(z, axis=-1)) / _CONTOUR_POINTS

    Q = mean((xp.exp(LR / 2) - 1) / LR)
    f1 = mean((-4 - LR + eLR * (4 - 3 * LR + LR * LR)) / LR**3)
    f2 = mean((2 + LR + eLR * (LR - 2)) / LR**3)
    f3 = mean((-4 - 3 * LR - LR * LR + eLR * (4 - LR)) / LR**3)
    return xp.exp(hL), xp.exp(hL / 2), Q, f1, f2, f3


def etdrk4(v, nonlinear, coefficients, n_steps: int):
    """``n_steps`` ETDRK4 steps of ``v' = L v + nonlinear(v)`` (``v`` in Fourier space).

    ``coefficients`` comes from :func:`etdrk4_coefficients` and broadcasts against ``v``.
    """
    E, E2, Q, f1, f2, f3 = coefficients
    for _ in range(n_steps):
        Nv = nonlinear(v)
        Ev = E2 * v
        a = Ev + Q * Nv
        Na = nonlinear(a)
        b = Ev + Q * Na
        Nb = nonlinear(b)
        c = E2 * a + Q * (2 * Nb - Nv)
        Nc = nonlinear(c)
        v = E * v + f1 * Nv + f2 * (2 * (Na + Nb)) + f3 * Nc
    return v
