"""Numba kernels of :mod:`numlab.operators`: the exact GELU and its derivative.

Same signatures and results as the generic versions in
:mod:`numlab.operators._kernels`, whose module docstring explains the method
(``Phi`` from the Mills ratio, ``Q(a) = exp(-a^2 / 2) N(a)``).

float32 arrays take a branch-free loop that LLVM vectorises: everything is computed in
float64 (a float32 ``x`` squared is exact there, so ``exp(-x^2 / 2)`` needs no split),
``N`` is one polynomial in ``u = 4 / (4 + a)`` and ``exp`` is a polynomial with ``2^k``
from its bits, since a call into libm (``math.exp``, ``math.erf``) keeps a loop
scalar. The float64 result is rounded once to float32: within 1 ulp of the correctly
rounded value.

float64 arrays take the generic method element by element (Chebyshev series per unit
interval of ``a``, split exponential with ``math.exp``): within a few ulp, not
vectorised; models train in float32 and check gradients in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..operators._kernels import _CHEB64, _INV_SQRT_2PI, _MONO32, _N_INTERVALS, _SPLIT, _TAIL_S_MAX

_CHEB = np.array(_CHEB64)
_A_MAX64 = 40.0  # exp(-a^2 / 2) is 0 in float64 beyond 38.6
_A_MAX32 = 16.0  # 16 Phi(-16) = 1e-56 is 0 in float32; _MONO32 is fitted on [0, 16]
_U0 = 0.2  # u = 4 / (4 + a) at a = 16
_T_SCALE = 2.0 / (1.0 - _U0)
_T_SHIFT = -(1.0 + _U0) / (1.0 - _U0)
(_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7, _P8, _P9, _P10) = _MONO32

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_FACT = tuple(1.0 / math.factorial(n) for n in range(10))


# ----------------------------------------------------------------------------- float32


@njit(inline="always")
def _exp_neg(x):
    """``exp(x)`` for ``-128 <= x <= 0`` within 1e-11 relative, branch free.

    ``x = k ln 2 + r`` with ``|r| <= ln 2 / 2``, Taylor to degree 9 (error 7e-12, far
    below float32's 6e-8), ``2^k`` built from its exponent bits.
    """
    k = math.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = _INV_FACT[9]
    p = p * r + _INV_FACT[8]
    p = p * r + _INV_FACT[7]
    p = p * r + _INV_FACT[6]
    p = p * r + _INV_FACT[5]
    p = p * r + _INV_FACT[4]
    p = p * r + _INV_FACT[3]
    p = p * r + _INV_FACT[2]
    p = p * r + 1.0
    p = p * r + 1.0
    return p * np.int64((np.int64(k) + 1023) << 52).view(np.float64)


@njit(inline="always")
def _parts32(xi):
    """``(a, Q(a), phi(a))`` in float64 for one float32 value, ``a = min(|x|, 16)``, NaN -> 16."""
    a = abs(xi)
    a = a if a < _A_MAX32 else _A_MAX32  # NaN lands on 16 too: no NaN inside the polynomials
    u = 4.0 / (4.0 + a)
    t = u * _T_SCALE + _T_SHIFT
    p = _P10
    p = p * t + _P9
    p = p * t + _P8
    p = p * t + _P7
    p = p * t + _P6
    p = p * t + _P5
    p = p * t + _P4
    p = p * t + _P3
    p = p * t + _P2
    p = p * t + _P1
    p = p * t + _P0
    e = _exp_neg(-0.5 * (a * a))
    return a, e * (u * p), _INV_SQRT_2PI * e


@njit(cache=True, error_model="numpy")
def _gelu32(x, y):
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        a, q, _ = _parts32(xi)
        v = -a * q if xi < 0.0 else xi * (1.0 - q)
        y[i] = xi if xi != xi else v


@njit(cache=True, error_model="numpy")
def _gelu_with_grad32(x, y, dydx):
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        a, q, phi = _parts32(xi)
        neg = xi < 0.0
        v = -a * q if neg else xi * (1.0 - q)
        d = q - a * phi if neg else (1.0 - q) + a * phi
        y[i] = xi if xi != xi else v
        dydx[i] = xi if xi != xi else d


# ----------------------------------------------------------------------------- float64


@njit(inline="always")
def _parts64(xi):
    """``(a, Q(a), phi(a))`` for one float64 value, ``a = min(|x|, 40)``, NaN -> 40."""
    a = abs(xi)
    a = a if a < _A_MAX64 else _A_MAX64
    k = min(int(a), _N_INTERVALS)
    if k < _N_INTERVALS:
        t = 2.0 * (a - k) - 1.0
    else:
        t = (2.0 / _TAIL_S_MAX) / (a * a) - 1.0
    b1 = 0.0
    b2 = 0.0
    for j in range(_CHEB.shape[1] - 1, 0, -1):
        b1, b2 = 2.0 * t * b1 - b2 + _CHEB[k, j], b1
    n = t * b1 - b2 + _CHEB[k, 0]
    if k == _N_INTERVALS:
        n /= a
    h = round(a * _SPLIT) / _SPLIT  # h * h exact: see the generic module
    lo = -0.5 * ((a - h) * (a + h))
    e = math.exp(-0.5 * (h * h)) * (1.0 + lo * (1.0 + lo * (0.5 + lo / 6.0)))
    return a, e * n, _INV_SQRT_2PI * e


@njit(cache=True, error_model="numpy")
def _gelu64(x, y):
    for i in range(x.shape[0]):
        xi = x[i]
        a, q, _ = _parts64(xi)
        v = -a * q if xi < 0.0 else xi * (1.0 - q)
        y[i] = xi if xi != xi else v


@njit(cache=True, error_model="numpy")
def _gelu_with_grad64(x, y, dydx):
    for i in range(x.shape[0]):
        xi = x[i]
        a, q, phi = _parts64(xi)
        neg = xi < 0.0
        v = -a * q if neg else xi * (1.0 - q)
        d = q - a * phi if neg else (1.0 - q) + a * phi
        y[i] = xi if xi != xi else v
        dydx[i] = xi if xi != xi else d


# ----------------------------------------------------------------------------- entry points


def _flat(x):
    """``x`` as a 1-D C-contiguous array (a view when it already is contiguous)."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"numlab: x must be a float32 or float64 array, got dtype {x.dtype}")
    return np.ascontiguousarray(x).reshape(-1)


def gelu(x):
    """The exact GELU ``x Phi(x)`` (see :func:`numlab.operators._kernels.gelu`)."""
    flat = _flat(x)
    y = np.empty(flat.shape, dtype=flat.dtype)
    (_gelu32 if flat.dtype == np.float32 else _gelu64)(flat, y)
    return y.reshape(np.shape(x))


def gelu_with_grad(x):
    """GELU and its derivative (see :func:`numlab.operators._kernels.gelu_with_grad`)."""
    flat = _flat(x)
    y = np.empty(flat.shape, dtype=flat.dtype)
    dydx = np.empty(flat.shape, dtype=flat.dtype)
    (_gelu_with_grad32 if flat.dtype == np.float32 else _gelu_with_grad64)(flat, y, dydx)
    return y.reshape(np.shape(x)), dydx.reshape(np.shape(x))
