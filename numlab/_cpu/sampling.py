"""Numba kernels of nl.sampling: the chain-rule sampler of a continuous projection DPP.

Same algorithm and same consumption of the uniform stream as the generic implementation
``numlab.sampling._chain.chain_rule_dpp`` (see there for the mathematics), so both give
the same points for the same uniforms.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_LEGENDRE = 0
_UNIFORMS_PER_TRY = 4
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@numba.njit(cache=True)
def _sample_1d(kind, k, b, table, u, pos):
    n = u.shape[0]
    while True:
        if pos + _UNIFORMS_PER_TRY > n:
            return 0.0, -1
        if kind == _LEGENDRE:
            x = math.cos(math.pi * u[pos])
            accept = u[pos + 1]
            pos += 2
            prev = 0.0
            cur = 1.0
            for j in range(k):
                nxt = (x * cur - b[j] * prev) / b[j + 1]
                prev = cur
                cur = nxt
            if 2.0 * accept < 0.5 * math.pi * cur * cur * math.sqrt(max(1.0 - x * x, 0.0)):
                return x, pos
        else:
            L = table[k, 0]
            s = table[k, 1]
            M = table[k, 2]
            if u[pos] < 0.5:
                x = L * math.cos(math.pi * u[pos + 1])
                pos += 2
            else:
                x = (
                    s
                    * math.sqrt(-2.0 * math.log1p(-u[pos + 1]))
                    * math.cos(2.0 * math.pi * u[pos + 2])
                )
                pos += 3
            accept = u[pos]
            pos += 1
            prev = 0.0
            cur = math.exp(-0.25 * x * x)
            for j in range(k):
                nxt = (x * cur - b[j] * prev) / b[j + 1]
                prev = cur
                cur = nxt
            f = cur * cur / _SQRT_2PI
            gauss = math.exp(-0.5 * (x / s) ** 2) / (s * _SQRT_2PI)
            if abs(x) < L:
                q = 0.5 / (math.pi * math.sqrt(L * L - x * x)) + 0.5 * gauss
            else:
                q = 0.5 * gauss
            if accept * M * q < f:
                return x, pos


@numba.njit(cache=True)
def _features(kind, x, indices, b, degree, values, phi):
    m, d = indices.shape
    for c in range(d):
        prev = 0.0
        cur = 1.0 if kind == _LEGENDRE else math.exp(-0.25 * x[c] * x[c])
        values[c, 0] = cur
        for j in range(degree):
            nxt = (x[c] * cur - b[j] * prev) / b[j + 1]
            prev = cur
            cur = nxt
            values[c, j + 1] = cur
    for i in range(m):
        v = 1.0
        for c in range(d):
            v *= values[c, indices[i, c]]
        phi[i] = v


@numba.njit(cache=True)
def _deflate(F, t, r):
    """Householder rotation of ``F[t:]`` putting ``F[t]`` along ``r`` (see the generic code)."""
    k, m = r.shape[0], F.shape[1]
    v = r.copy()
    v[0] += math.copysign(math.sqrt(np.dot(r, r)), r[0])
    scale = 2.0 / np.dot(v, v)
    w = np.dot(v, F[t:])  # (m,)
    for a in range(k):
        c = scale * v[a]
        for i in range(m):
            F[t + a, i] -= c * w[i]


@numba.njit(cache=True)
def chain_rule_dpp(indices, kind, b, table, u):
    m, d = indices.shape
    degree = 0
    for i in range(m):
        for c in range(d):
            degree = max(degree, indices[i, c])
    points = np.zeros((m, d))
    F = np.eye(m)  # F[t:]: orthonormal basis of the complement of the accepted span
    values = np.empty((d, degree + 1))
    phi = np.empty(m)
    x = np.empty(d)
    pos = 0
    for t in range(m):
        while True:
            if pos + 2 > u.shape[0]:
                return points, -1
            j = min(int(u[pos] * m), m - 1)
            pos += 1
            for c in range(d):
                xc, pos = _sample_1d(kind, indices[j, c], b, table, u, pos)
                if pos < 0:
                    return points, -1
                x[c] = xc
            if pos >= u.shape[0]:
                return points, -1
            accept = u[pos]
            pos += 1
            _features(kind, x, indices, b, degree, values, phi)
            norm2 = 0.0
            for i in range(m):
                norm2 += phi[i] * phi[i]
            r = np.dot(F[t:], phi)  # BLAS gemv: the hot spot of the sampler
            if accept * norm2 < np.dot(r, r):
                _deflate(F, t, r)
                for c in range(d):
                    points[t, c] = x[c]
                break
    return points, pos


@numba.njit(cache=True)
def christoffel(indices, b, points):
    m, d = indices.shape
    n = points.shape[0]
    degree = 0
    for i in range(m):
        for c in range(d):
            degree = max(degree, indices[i, c])
    values = np.empty((d, degree + 1))
    out = np.empty(n)
    for r in range(n):
        for c in range(d):
            x = points[r, c]
            prev = 0.0
            cur = 1.0
            values[c, 0] = 1.0
            for j in range(degree):
                nxt = (x * cur - b[j] * prev) / b[j + 1]
                prev = cur
                cur = nxt
                values[c, j + 1] = cur
        acc = 0.0
        for i in range(m):
            v = 1.0
            for c in range(d):
                v *= values[c, indices[i, c]]
            acc += v * v
        out[r] = acc
    return out
