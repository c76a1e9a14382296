"""Numba kernels of nl.sampling: the chain-rule sampler of a continuous projection DPP.

Same algorithm and same consumption of the uniform stream as the generic implementation
``numlab.sampling._chain.chain_rule_dpp`` (see there for the mathematics), so both give
the same points for the same uniforms.

Compile time (issue 17): the jitted kernels allocate nothing and call no ``np.dot``. Their
Python wrappers allocate outputs and scratch with NumPy; the products are plain loops
(``np.dot`` in Numba compiles its BLAS wrappers, about 0.3-0.7 s for each operand layout,
and ``np.eye`` / ``np.zeros`` one overload each).
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


@numba.njit(cache=True, fastmath={"reassoc"})
def _dot(x, y, k):
    # sum_{i < k} x[i] y[i]; reassociation lets LLVM vectorise the sum as a BLAS dot
    # does (a strict-order sum is latency bound: 1.7x slower sampling at m = 861)
    s = 0.0
    for i in range(k):
        s += x[i] * y[i]
    return s


@numba.njit(cache=True, fastmath={"reassoc"})
def _gemv(F, t, phi, r):
    # r[:k] = F[t:] phi, four rows per pass over phi (as a BLAS gemv; see _dot)
    k = F.shape[0] - t
    m = F.shape[1]
    a = 0
    while a + 4 <= k:
        f0 = F[t + a]
        f1 = F[t + a + 1]
        f2 = F[t + a + 2]
        f3 = F[t + a + 3]
        s0 = s1 = s2 = s3 = 0.0
        for i in range(m):
            p = phi[i]
            s0 += f0[i] * p
            s1 += f1[i] * p
            s2 += f2[i] * p
            s3 += f3[i] * p
        r[a] = s0
        r[a + 1] = s1
        r[a + 2] = s2
        r[a + 3] = s3
        a += 4
    while a < k:
        r[a] = _dot(F[t + a], phi, m)
        a += 1
    return k


@numba.njit(cache=True)
def _deflate(F, t, r, k, v, w):
    """Householder rotation of ``F[t:]`` putting ``F[t]`` along ``r[:k]`` (see the generic code).

    ``v`` and ``w`` are scratch vectors (length >= ``k`` and ``F.shape[1]``).
    """
    m = F.shape[1]
    for a in range(k):
        v[a] = r[a]
    v[0] += math.copysign(math.sqrt(_dot(r, r, k)), r[0])
    scale = 2.0 / _dot(v, v, k)
    for i in range(m):  # w = v^T F[t:], row by row (a loop that vectorises)
        w[i] = 0.0
    for a in range(k):
        va = v[a]
        row = F[t + a]
        for i in range(m):
            w[i] += va * row[i]
    for a in range(k):
        c = scale * v[a]
        row = F[t + a]
        for i in range(m):
            row[i] -= c * w[i]


def _degree(indices):
    return int(indices.max()) if indices.size else 0


def chain_rule_dpp(indices, kind, b, table, u):
    """Chain-rule sampler: ``(points, uniforms used)``, ``-1`` when ``u`` ran out."""
    m, d = indices.shape
    degree = _degree(indices)
    points = np.zeros((m, d))
    F = np.eye(m)  # F[t:]: orthonormal basis of the complement of the accepted span
    values = np.empty((d, degree + 1))
    scratch = np.empty((5, m))  # phi, r, v, w (and one spare row)
    pos = _chain_rule_dpp(indices, int(kind), b, table, u, degree, points, F, values, scratch,
                          np.empty(d))
    return points, pos


@numba.njit(cache=True)
def _chain_rule_dpp(indices, kind, b, table, u, degree, points, F, values, scratch, x):
    m, d = indices.shape
    phi = scratch[0]
    r = scratch[1]
    v = scratch[2]
    w = scratch[3]
    pos = 0
    for t in range(m):
        while True:
            if pos + 2 > u.shape[0]:
                return -1
            j = min(int(u[pos] * m), m - 1)
            pos += 1
            for c in range(d):
                xc, pos = _sample_1d(kind, indices[j, c], b, table, u, pos)
                if pos < 0:
                    return -1
                x[c] = xc
            if pos >= u.shape[0]:
                return -1
            accept = u[pos]
            pos += 1
            _features(kind, x, indices, b, degree, values, phi)
            norm2 = 0.0
            for i in range(m):
                norm2 += phi[i] * phi[i]
            k = _gemv(F, t, phi, r)  # r = F[t:] phi: the hot spot of the sampler
            if accept * norm2 < _dot(r, r, k):
                _deflate(F, t, r, k, v, w)
                for c in range(d):
                    points[t, c] = x[c]
                break
    return pos


def christoffel(indices, b, points):
    """``sum_i phi_i(x)^2`` at each point (the inverse Christoffel function times m)."""
    out = np.empty(points.shape[0])
    _christoffel(indices, b, points, np.empty((indices.shape[1], _degree(indices) + 1)), out)
    return out


@numba.njit(cache=True)
def _christoffel(indices, b, points, values, out):
    m, d = indices.shape
    n = points.shape[0]
    degree = values.shape[1] - 1
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
