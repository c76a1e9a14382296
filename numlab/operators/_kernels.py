"""Element-wise kernels of the neural operators: the exact GELU and its derivative.

Each function here is the generic (array-API) implementation and the specification of
its Numba (:mod:`numlab._cpu.operators`) and CuPy (:mod:`numlab._gpu.operators`)
versions. The array API has no ``erf``, so the normal distribution function is built
here from the Mills ratio (below); the result is within a few ulp in float64.

The exact GELU is ``gelu(x) = x Phi(x)`` with ``Phi`` the standard normal distribution
function, ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``; its derivative is
``Phi(x) + x phi(x)`` with ``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)``.

How ``Phi`` is computed. With ``a = |x|``, the upper tail is written
``Q(a) = 1 - Phi(a) = exp(-a^2 / 2) N(a)``, where ``N(a) = Q(a) / (sqrt(2 pi) phi(a))``
(the Mills ratio over ``sqrt(2 pi)``) is smooth and slowly varying: ``N(0) = 1/2``,
``N(a) ~ 1 / (a sqrt(2 pi))``. Then ``Phi(x) = Q(a)`` for ``x < 0`` and ``1 - Q(a)``
otherwise: ``Q`` is accurate in relative terms, so the left tail keeps full relative
accuracy (``1 + erf(x / sqrt 2)`` loses it to cancellation below ``x = -3``), and
working in ``x`` itself avoids the rounding of ``x / sqrt 2`` that ``erf`` would
amplify by ``x^2`` in the tail. ``N`` is tabulated as Chebyshev series (``_CHEB64``),
interpolants of degree 16 computed with mpmath at 50 digits: on ``[k, k + 1]`` for
``k = 0..4``, and ``a N(a)`` as a function of ``s = 1 / a^2`` on ``[5, inf)``;
each is within 2.3e-16 of ``N`` in relative terms when evaluated in float64.
``exp(-a^2 / 2)`` is evaluated as ``exp(-h^2 / 2) exp(-(a - h)(a + h) / 2)`` with
``h`` the value of ``a`` rounded to 20 fractional bits, so that ``h^2`` is exact
and the rounding of ``a^2`` is not amplified by the exponential.

The float32 path of the Numba kernel uses ``_POLY32`` instead: one polynomial of degree
9 for ``N(a) / u`` in ``u = 4 / (4 + a)`` on ``a`` in ``[0, 15]``, evaluated in float32
arithmetic without branches, so that it vectorises eight lanes wide.
"""

from __future__ import annotations

import numpy as np

from .._backend import asarray, device, namespace, random_normal
from .._dispatch import register_kernel

__all__ = ["gelu", "gelu_with_grad"]

#: ``|x|`` is clamped here: ``exp(-a^2 / 2)`` underflows to 0 in float64 above 38.6.
A_MAX = 40.0
#: ``N`` on ``[k, k + 1]`` (k = 0..4), then ``a N(a)`` in ``s = 1 / a^2`` on ``[0, 1/25]``.
_CHEB64 = (
    (
        0.36501631907799365, -0.11738909144196367, 0.015583570889242693,
        -0.0018037370485171097, 0.0001876609133280152, -1.789316131304388e-05,
        1.5846618415901853e-06, -1.31640500749627e-07, 1.0334910768887118e-08,
        -7.713674430538796e-10, 5.4996559488064396e-11, -3.760531070248504e-12,
        2.474268295517518e-13, -1.5709373115807873e-14, 9.64819822986817e-16,
        -5.74419089786286e-17, 3.3112388766038038e-18,
    ),
    (
        0.2102771908607303, -0.04633240725519158, 0.004529553131462607,
        -0.00040316284359988123, 3.32150451069782e-05, -2.56224426351041e-06,
        1.866485977765655e-07, -1.2923463838641052e-08, 8.549223972962733e-10,
        -5.426130699690445e-11, 3.3157327776305673e-12, -1.9564397495460638e-13,
        1.1174743683503076e-14, -6.192012113251294e-16, 3.334793774439579e-17,
        -1.7485123155158933e-18, 8.917045062163806e-20,
    ),
    (
        0.1430615175238163, -0.023171234862431434, 0.0017382904566013257,
        -0.00012227436467701267, 8.13545884595632e-06, -5.153803811332344e-07,
        3.1247501326910195e-08, -1.8207400598208361e-09, 1.0230783880500222e-10,
        -5.55955224887925e-12, 2.928841503425746e-13, -1.4989435627513025e-14,
        7.466176729192908e-16, -3.625174040407771e-17, 1.7182709699240823e-18,
        -7.96036907552909e-20, 3.60172104556307e-21,
    ),
    (
        0.10715118196905828, -0.01350525152641871, 0.0008085637020471048,
        -4.626701020837462e-05, 2.5422456645147432e-06, -1.3464706046657204e-07,
        6.895447448569165e-09, -3.423321224259402e-10, 1.6512634057989437e-11,
        -7.753517102726223e-13, 3.549912717142266e-14, -1.5871152303367092e-15,
        6.937996981275246e-17, -2.9689108227701195e-18, 1.2449417869894828e-19,
        -5.12031439935085e-21, 2.06414938348941e-22,
    ),
    (
        0.08523322842095417, -0.008725042161387142, 0.00043078862605609063,
        -2.0582905314049662e-05, 9.541987977788283e-07, -4.301566314493627e-08,
        1.889281960595601e-09, -8.097772657182936e-11, 3.392031090557856e-12,
        -1.390378006057004e-13, 5.583122169558493e-15, -2.198536191465652e-16,
        8.497670528328036e-18, -3.226533619425296e-19, 1.204399628790871e-20,
        -4.422853644181634e-22, 1.596859593047651e-23,
    ),
    (
        0.39158429698016367, -0.007165354092838173, 0.0001846991270048917,
        -7.496744641481411e-06, 4.044459598282574e-07, -2.6742642377204803e-08,
        2.0672639141965937e-09, -1.8117943213142713e-10, 1.7621560571020415e-11,
        -1.8723164410319475e-12, 2.1474127162110902e-13, -2.6337581457474116e-14,
        3.4283606913584144e-15, -4.707252584605315e-16, 6.782379407975413e-17,
        -1.0203583880021341e-17, 1.5565687931571774e-18,
    ),
)
#: ``N(a) / u`` in powers of ``t = 2.5 u - 1.5``, ``u = 4 / (4 + a)`` (``t`` from 1 at ``a = 0``
#: to -1 at ``a = 16``; fitted on ``[0, 15]``): a minimax fit (Lawson's iteration, relative
#: error) whose coefficients were rounded to float32 one at a time, the others refitted after each rounding: 1e-8
#: relative with these float32 values, so the float32 kernel's error is its arithmetic's.
_POLY32 = (
    0.22348523139953613, 0.1574239730834961, 0.08224888145923615,
    0.030362948775291443, 0.0066976421512663364, 0.00017192703671753407,
    -0.0003551119298208505, -5.7318949984619394e-05, 1.73951884789858e-05,
    4.431796241988195e-06,
)

#: Chebyshev series of ``_CHEB64`` on ``[k, k + 1]`` for ``k < _N_INTERVALS``, then the tail.
_N_INTERVALS = 5
_TAIL_S_MAX = 1.0 / 25.0
_INV_SQRT_2PI = 0.3989422804014327
_SPLIT = 2.0**20


# ----------------------------------------------------------------------------- examples


def _gelu_example(xp, rng):
    # float32, the dtype models train in, spread to reach both tails; kept away from the
    # derivative's root (-0.752), where a relative comparison measures only cancellation
    x = 4.0 * random_normal(rng, (7, 33), xp=xp, dtype=xp.float32)
    near_root = xp.abs(x + 0.75) < 0.5
    return (xp.where(near_root, x + 1.0, x),), {}


# ----------------------------------------------------------------------------- helpers


def _check_float(x):
    xp = namespace(x)
    if x.dtype not in (xp.float32, xp.float64):
        raise TypeError(f"numlab: x must be a float32 or float64 array, got dtype {x.dtype}")
    return xp


def _exp_half_square(a, xp):
    """``exp(-a^2 / 2)`` for float64 ``0 <= a <= A_MAX``, not amplifying the rounding of ``a^2``."""
    h = xp.round(a * _SPLIT) / _SPLIT  # at most 26 significant bits: h * h is exact
    lo = -0.5 * ((a - h) * (a + h))  # |lo| < 2e-5: three Taylor terms reach 1e-20
    return xp.exp(-0.5 * (h * h)) * (1.0 + lo * (1.0 + lo * (0.5 + lo / 6.0)))


def _mills(a, xp):
    """``N(a) = Q(a) exp(a^2 / 2)`` for float64 ``0 <= a <= A_MAX`` (see the module docstring)."""
    dev = device(a)
    table = asarray(np.asarray(_CHEB64), xp=xp, device=dev, dtype=xp.float64)
    k = xp.astype(xp.floor(xp.minimum(a, float(_N_INTERVALS))), xp.int64)
    tail = k == _N_INTERVALS
    a_tail = xp.maximum(a, float(_N_INTERVALS))
    s = 1.0 / (a_tail * a_tail)
    t = xp.where(tail, (2.0 / _TAIL_S_MAX) * s - 1.0, 2.0 * (a - xp.astype(k, xp.float64)) - 1.0)
    # Clenshaw's recurrence, each element with the coefficients of its own interval
    b1 = xp.zeros_like(a)
    b2 = xp.zeros_like(a)
    for j in range(table.shape[1] - 1, 0, -1):
        b1, b2 = 2.0 * t * b1 - b2 + xp.take(table[:, j], k), b1
    n = t * b1 - b2 + xp.take(table[:, 0], k)
    return xp.where(tail, n / a_tail, n)


def _normal_parts(x):
    """``(x64, a, Q(a), phi(a))`` in float64, with ``a = min(|x|, A_MAX)`` and NaN read as 0."""
    xp = namespace(x)
    x64 = xp.astype(x, xp.float64)
    a = xp.minimum(xp.abs(x64), A_MAX)
    a = xp.where(xp.isnan(a), xp.zeros_like(a), a)
    e = _exp_half_square(a, xp)
    return x64, a, e * _mills(a, xp), _INV_SQRT_2PI * e


# ----------------------------------------------------------------------------- kernels


@register_kernel(
    "operators.gelu",
    numba="numlab._cpu.operators:gelu",
    cupy="numlab._gpu.operators:gelu",
    example=_gelu_example,
    rtol=1e-6,  # float32 Numba: <= 6 ulp
)
def gelu(x):
    """The exact GELU, ``x Phi(x) = x (1 + erf(x / sqrt 2)) / 2``, element-wise.

    Parameters
    ----------
    x : array, float32 or float64, any shape
        Not modified.

    Returns
    -------
    y : array
        Same shape and dtype as ``x``. ``gelu(-inf) = -0.0``, ``gelu(inf) = inf``, NaN
        stays NaN.

    Notes
    -----
    Computed in float64 and rounded once to the dtype of ``x``: within a few ulp of the
    exact value in float64, and of the correctly rounded value in float32.

    References
    ----------
    D. Hendrycks, K. Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415.

    Examples
    --------
    >>> import numpy as np
    >>> from numlab._dispatch import kernel
    >>> x = np.array([-1.0, 0.0, 2.0])
    >>> kernel("operators.gelu", np)(x).round(6)
    array([-0.158655,  0.      ,  1.9545  ])
    """
    xp = _check_float(x)
    x64, a, q, _ = _normal_parts(x)
    neg = x64 < 0.0
    # -a Q(a) on the left keeps -inf out of the product (Q(A_MAX) is 0: no inf * 0)
    y = xp.where(neg, -a * q, x64 * (1.0 - q))
    y = xp.where(xp.isnan(x64), x64, y)
    return xp.astype(y, x.dtype)


@register_kernel(
    "operators.gelu_with_grad",
    numba="numlab._cpu.operators:gelu_with_grad",
    cupy="numlab._gpu.operators:gelu_with_grad",
    example=_gelu_example,
    rtol=4e-6,  # float32 Numba: the derivative <= 16 ulp away from its root
)
def gelu_with_grad(x):
    """The exact GELU and its derivative, element-wise, in one pass.

    Parameters
    ----------
    x : array, float32 or float64, any shape
        Not modified.

    Returns
    -------
    y : array
        ``x Phi(x)``, as :func:`gelu`.
    dydx : array
        ``Phi(x) + x phi(x)``: 0 at ``-inf``, 1 at ``inf``, NaN at NaN. Same shape and
        dtype as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from numlab._dispatch import kernel
    >>> y, dydx = kernel("operators.gelu_with_grad", np)(np.array([0.0, 1.0]))
    >>> dydx.round(6)
    array([0.5     , 1.082964])
    """
    xp = _check_float(x)
    x64, a, q, phi = _normal_parts(x)
    neg = x64 < 0.0
    y = xp.where(neg, -a * q, x64 * (1.0 - q))
    # x phi(x) with the clamped |x|: phi(A_MAX) is 0, so no inf * 0 at the ends
    dydx = xp.where(neg, q - a * phi, (1.0 - q) + a * phi)
    nan = xp.isnan(x64)
    y = xp.where(nan, x64, y)
    dydx = xp.where(nan, x64, dydx)
    return xp.astype(y, x.dtype), xp.astype(dydx, x.dtype)
