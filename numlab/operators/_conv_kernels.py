"""Kernels of :mod:`numlab.operators._conv`: batch normalisation and 2x2 max-pooling.

Batch normalisation (:func:`numlab.operators._conv.batch_norm2d`) uses the per-channel
kernels below; max-pooling (:func:`numlab.operators._conv.max_pool2d`) the pair
:func:`max_pool2x2` / :func:`max_pool2x2_grad`.

Each function here is the generic (array-API) implementation and the specification of its
Numba version (:mod:`numlab._cpu.conv`). They work on the ``(batch, channels, n)`` view
of an activation and reduce or map per channel. Batch normalisation in training is a few
passes over the activation (moments, the affine map, two in the backward); array-at-a-time
code makes each of those several passes with a temporary each, which measured 5x the time
of the Numba loops on the LSM's 64x64 maps (one thread, float32). The optional ReLU that
follows batch normalisation in the LSM's ``DoubleConv`` is fused into the same passes.

Backward in closed form, with ``z = scale x + shift`` the affine map, ``x_hat = (x - mean)
r`` (``r`` the inverse standard deviation), ``dz`` the gradient masked by ``y > 0`` when the
ReLU is fused and ``m`` the number of elements per channel::

    d_bias = S0 = sum(dz)
    d_weight = r S1,  S1 = sum(dz (x - mean))
    dx = k dz + a (x - mean) + c,  k = weight r,  a = -weight r^3 S1 / m,  c = -k S0 / m

Centring ``x`` on the mean inside the sums avoids the cancellation of
``sum(dz x) - mean sum(dz)`` when the mean is large against the spread.
"""

from __future__ import annotations

from .._backend import device, namespace, random_normal
from .._dispatch import register_kernel

__all__ = ["channel_moments", "channel_affine", "channel_grad_sums", "channel_affine_grad",
           "max_pool2x2", "max_pool2x2_grad"]


def _per_channel(v):
    return namespace(v).reshape(v, (1, v.shape[0], 1))


def _masked(dy3, y3):
    """``dy3`` where ``y3 > 0`` (the fused ReLU's backward), else ``dy3`` itself."""
    if y3 is None:
        return dy3
    xp = namespace(dy3)
    return xp.where(y3 > 0, dy3, xp.zeros_like(dy3))


def _moments_example(xp, rng):
    return (3.0 + 2.0 * random_normal(rng, (3, 4, 37), xp=xp, dtype=xp.float64),), {}


def _affine_example(xp, rng):
    x3 = random_normal(rng, (3, 4, 37), xp=xp, dtype=xp.float64)
    scale = random_normal(rng, (4,), xp=xp, dtype=xp.float64)
    shift = random_normal(rng, (4,), xp=xp, dtype=xp.float64)
    return (x3, scale, shift), {"relu": True}


def _grad_example(xp, rng):
    dy3 = random_normal(rng, (3, 4, 37), xp=xp, dtype=xp.float64)
    x3 = random_normal(rng, (3, 4, 37), xp=xp, dtype=xp.float64)
    y3 = random_normal(rng, (3, 4, 37), xp=xp, dtype=xp.float64)
    mean = random_normal(rng, (4,), xp=xp, dtype=xp.float64)
    return (dy3, x3, y3, mean), {}


def _affine_grad_example(xp, rng):
    (dy3, x3, y3, mean), _ = _grad_example(xp, rng)
    k, a, c = (random_normal(rng, (4,), xp=xp, dtype=xp.float64) for _ in range(3))
    return (dy3, x3, y3, mean, k, a, c), {}


@register_kernel("operators.channel_moments", numba="numlab._cpu.conv:channel_moments",
                 example=_moments_example)
def channel_moments(x3):
    """Mean and biased variance per channel of ``x3`` (batch, channels, n), two passes.

    Returns
    -------
    mean, var : arrays, shape (channels,), dtype of ``x3``
    """
    xp = namespace(x3)
    m = x3.shape[0] * x3.shape[2]
    mean = xp.sum(xp.sum(x3, axis=2), axis=0) / m
    centred = x3 - _per_channel(mean)
    return mean, xp.sum(xp.vecdot(centred, centred, axis=-1), axis=0) / m


@register_kernel("operators.channel_affine", numba="numlab._cpu.conv:channel_affine",
                 example=_affine_example)
def channel_affine(x3, scale, shift, relu=False):
    """``scale[c] x3[:, c] + shift[c]``, then ``max(., 0)`` when ``relu``.

    Returns
    -------
    y3 : array, shape and dtype of ``x3`` (a new array)
    """
    xp = namespace(x3)
    y3 = x3 * _per_channel(scale) + _per_channel(shift)
    if relu:
        y3 = xp.where(y3 > 0, y3, xp.zeros_like(y3))
    return y3


@register_kernel("operators.channel_grad_sums", numba="numlab._cpu.conv:channel_grad_sums",
                 example=_grad_example)
def channel_grad_sums(dy3, x3, y3, mean):
    """``S0 = sum(dz)`` and ``S1 = sum(dz (x3 - mean))`` per channel (module docstring).

    ``dz`` is ``dy3`` masked by ``y3 > 0``, or ``dy3`` itself when ``y3`` is None.

    Returns
    -------
    s0, s1 : arrays, shape (channels,)
    """
    xp = namespace(dy3)
    dz = _masked(dy3, y3)
    s0 = xp.sum(xp.sum(dz, axis=2), axis=0)
    s1 = xp.sum(xp.vecdot(dz, x3 - _per_channel(mean), axis=-1), axis=0)
    return s0, s1


@register_kernel("operators.channel_affine_grad", numba="numlab._cpu.conv:channel_affine_grad",
                 example=_affine_grad_example)
def channel_affine_grad(dy3, x3, y3, mean, k, a, c):
    """``dx = k dz + a (x3 - mean) + c`` per channel (module docstring), ``dz`` as in
    :func:`channel_grad_sums`.

    Returns
    -------
    dx3 : array, shape and dtype of ``dy3`` (a new array)
    """
    return (_per_channel(k) * _masked(dy3, y3) + _per_channel(a) * (x3 - _per_channel(mean))
            + _per_channel(c))


def _pool_example(xp, rng):
    # Odd sizes (the last row and column dropped) and ties (rounded values).
    x = xp.round(2.0 * random_normal(rng, (2, 3, 7, 9), xp=xp, dtype=xp.float64))
    return (x, True), {}


def _pool_grad_example(xp, rng):
    dy = random_normal(rng, (2, 3, 3, 4), xp=xp, dtype=xp.float64)
    where = xp.astype(xp.round(1.5 + 1.4 * random_normal(rng, (2, 3, 3, 4), xp=xp,
                                                         dtype=xp.float64)), xp.int8)
    return (dy, xp.clip(where, 0, 3), 7, 9), {}


@register_kernel("operators.max_pool2x2", numba="numlab._cpu.conv:max_pool2x2",
                 example=_pool_example)
def max_pool2x2(x, with_argmax):
    """2x2 max-pooling, stride 2, floor for odd sizes, and where each maximum sits.

    Parameters
    ----------
    x : array, shape (batch, channels, h, w)
    with_argmax : bool
        Also return the positions.

    Returns
    -------
    y : array, shape (batch, channels, h // 2, w // 2)
    where : int8 array, shape of ``y``, or None
        ``2 i + j`` for the window entry ``(i, j)`` holding the maximum, the first in
        row-major order on ties (torch's choice).
    """
    xp = namespace(x)
    b, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    win = xp.reshape(x[:, :, :2 * ho, :2 * wo], (b, c, ho, 2, wo, 2))
    cand = [win[:, :, :, i, :, j] for i in range(2) for j in range(2)]
    y = xp.maximum(xp.maximum(cand[0], cand[1]), xp.maximum(cand[2], cand[3]))
    if not with_argmax:
        return y, None
    # Scan the candidates backwards so that the first equal one is written last.
    where = xp.zeros(y.shape, dtype=xp.int8, device=device(x))
    for t in (3, 2, 1):
        where = xp.where(cand[t] == y, xp.asarray(t, dtype=xp.int8, device=device(x)), where)
    where = xp.where(cand[0] == y, xp.zeros_like(where), where)
    return y, where


@register_kernel("operators.max_pool2x2_grad", numba="numlab._cpu.conv:max_pool2x2_grad",
                 example=_pool_grad_example)
def max_pool2x2_grad(dy, where, h, w):
    """The gradient of :func:`max_pool2x2`: ``dy`` sent to the window entries ``where``.

    Returns
    -------
    dx : array, shape (batch, channels, h, w), zero outside the maxima
    """
    xp = namespace(dy)
    b, c, ho, wo = dy.shape
    parts = [dy * xp.astype(where == t, dy.dtype) for t in range(4)]
    # (b, c, ho, wo, 4) -> (b, c, ho, 2, wo, 2): each window back in place.
    d = xp.reshape(xp.stack(parts, axis=-1), (b, c, ho, wo, 2, 2))
    d = xp.reshape(xp.permute_dims(d, (0, 1, 2, 4, 3, 5)), (b, c, 2 * ho, 2 * wo))
    if (2 * ho, 2 * wo) == (h, w):
        return d
    dx = xp.zeros((b, c, h, w), dtype=dy.dtype, device=device(dy))
    dx[:, :, :2 * ho, :2 * wo] = d
    return dx
