"""Numba kernels of batch normalisation and max-pooling (:mod:`numlab.operators._conv_kernels`).

Same signatures and results as the generic versions there, whose module docstring gives
the formulas. Each is one loop over the ``(batch, channels, n)`` activation per pass, with
the channel outermost so that the per-channel constants stay in registers and the inner
loop over ``n`` is contiguous (LLVM vectorises the maps). Sums accumulate in float64
whatever the input dtype (the moments of a float32 map of 16k-65k values per channel keep
full float32 accuracy).
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _c(a):
    return None if a is None else np.ascontiguousarray(a)


@njit(cache=True, fastmath={"reassoc"})
def _moments(x, mean, var):
    nb, nc, n = x.shape
    m = nb * n
    for c in range(nc):
        s = 0.0
        for b in range(nb):
            for i in range(n):
                s += x[b, c, i]
        mu = s / m
        q = 0.0
        for b in range(nb):
            for i in range(n):
                d = x[b, c, i] - mu
                q += d * d
        mean[c] = mu
        var[c] = q / m


def channel_moments(x3):
    """Mean and biased variance per channel (see the generic version)."""
    x3 = _c(x3)
    mean = np.empty(x3.shape[1], dtype=np.float64)
    var = np.empty(x3.shape[1], dtype=np.float64)
    _moments(x3, mean, var)
    return mean.astype(x3.dtype), var.astype(x3.dtype)


@njit(cache=True)
def _affine(x, scale, shift, relu, y):
    nb, nc, n = x.shape
    for b in range(nb):
        for c in range(nc):
            s, t = scale[c], shift[c]
            for i in range(n):
                v = x[b, c, i] * s + t
                # NaN maps to 0, as the generic where(v > 0, v, 0).
                y[b, c, i] = v if (not relu or v > 0) else 0


def channel_affine(x3, scale, shift, relu=False):
    """``scale x + shift`` per channel, then ReLU when asked (see the generic version)."""
    x3 = _c(x3)
    y3 = np.empty_like(x3)
    _affine(x3, _c(scale).astype(x3.dtype), _c(shift).astype(x3.dtype), bool(relu), y3)
    return y3


@njit(cache=True, fastmath={"reassoc"})
def _grad_sums(dy, x, y, use_y, mean, s0, s1):
    nb, nc, n = dy.shape
    for c in range(nc):
        a0 = 0.0
        a1 = 0.0
        mu = mean[c]
        for b in range(nb):
            if use_y:
                for i in range(n):
                    # where(y > 0, dy, 0): a select in the vectorised loop.
                    g = dy[b, c, i] if y[b, c, i] > 0 else 0.0
                    a0 += g
                    a1 += g * (x[b, c, i] - mu)
            else:
                for i in range(n):
                    g = dy[b, c, i]
                    a0 += g
                    a1 += g * (x[b, c, i] - mu)
        s0[c] = a0
        s1[c] = a1


def channel_grad_sums(dy3, x3, y3, mean):
    """``sum(dz)`` and ``sum(dz (x - mean))`` per channel (see the generic version)."""
    dy3, x3 = _c(dy3), _c(x3)
    use_y = y3 is not None
    y3 = _c(y3) if use_y else dy3  # a placeholder of the right type, never read
    s0 = np.empty(dy3.shape[1], dtype=np.float64)
    s1 = np.empty(dy3.shape[1], dtype=np.float64)
    _grad_sums(dy3, x3, y3, use_y, _c(mean).astype(x3.dtype), s0, s1)
    return s0.astype(dy3.dtype), s1.astype(dy3.dtype)


@njit(cache=True)
def _affine_grad(dy, x, y, use_y, mean, k, a, c_, dx):
    nb, nc, n = dy.shape
    for b in range(nb):
        for c in range(nc):
            kc, ac, cc, mu = k[c], a[c], c_[c], mean[c]
            for i in range(n):
                v = ac * (x[b, c, i] - mu)
                if use_y and not y[b, c, i] > 0:
                    dx[b, c, i] = v + cc  # dz = 0: k 0 + v = v exactly, as the generic
                else:
                    dx[b, c, i] = kc * dy[b, c, i] + v + cc


def channel_affine_grad(dy3, x3, y3, mean, k, a, c):
    """``k dz + a (x - mean) + c`` per channel (see the generic version)."""
    dy3, x3 = _c(dy3), _c(x3)
    use_y = y3 is not None
    y3 = _c(y3) if use_y else dy3
    dt = dy3.dtype
    dx3 = np.empty_like(dy3)
    _affine_grad(dy3, x3, y3, use_y, _c(mean).astype(dt), _c(k).astype(dt), _c(a).astype(dt),
                 _c(c).astype(dt), dx3)
    return dx3


@njit(cache=True)
def _pool(x, y, where, with_argmax):
    nb, nc, ho, wo = y.shape
    for b in range(nb):
        for c in range(nc):
            for r in range(ho):
                for q in range(wo):
                    # Row-major scan with a strict comparison: the first maximum wins; a
                    # NaN wins (and stays), as in torch and the generic maximum().
                    best = x[b, c, 2 * r, 2 * q]
                    k = 0
                    for t in range(1, 4):
                        v = x[b, c, 2 * r + t // 2, 2 * q + t % 2]
                        if v > best or (v != v and best == best):
                            best = v
                            k = t
                    y[b, c, r, q] = best
                    if with_argmax:
                        where[b, c, r, q] = k


def max_pool2x2(x, with_argmax):
    """2x2 max-pooling and the positions of the maxima (see the generic version)."""
    x = _c(x)
    b, c, h, w = x.shape
    y = np.empty((b, c, h // 2, w // 2), dtype=x.dtype)
    where = np.empty(y.shape if with_argmax else (0, 0, 0, 0), dtype=np.int8)
    _pool(x, y, where, bool(with_argmax))
    return y, (where if with_argmax else None)


@njit(cache=True)
def _pool_grad(dy, where, dx):
    nb, nc, ho, wo = dy.shape
    for b in range(nb):
        for c in range(nc):
            for r in range(ho):
                for q in range(wo):
                    t = where[b, c, r, q]
                    dx[b, c, 2 * r + t // 2, 2 * q + t % 2] = dy[b, c, r, q]


def max_pool2x2_grad(dy, where, h, w):
    """``dy`` sent to the maxima (see the generic version)."""
    dy = _c(dy)
    dx = np.zeros((dy.shape[0], dy.shape[1], h, w), dtype=dy.dtype)
    _pool_grad(dy, _c(where), dx)
    return dx
