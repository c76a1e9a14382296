"""Per-channel kernels of batch normalisation (:func:`numlab.operators._conv.batch_norm2d`).

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

from .._backend import namespace, random_normal
from .._dispatch import register_kernel

__all__ = ["channel_moments", "channel_affine", "channel_grad_sums", "channel_affine_grad"]


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
