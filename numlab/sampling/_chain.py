"""The sequential (chain-rule) sampler of a continuous projection DPP, and the 1-D laws.

Hough, Krishnapur, Peres & Virag's chain rule: the ``t``-th point has density
``||(I - Pi_t) phi(x)||^2 / (m - t) dmu`` where ``Pi_t`` projects onto the span of
``phi`` at the points already drawn. It is sampled exactly by rejection from the optimal
density ``rho = k_m / m dmu``: a proposal ``x ~ rho`` is accepted with probability
``||(I - Pi_t) phi(x)||^2 / ||phi(x)||^2`` (Gautier, Bardenet & Valko 2019). ``rho`` is
the uniform mixture of the laws ``phi_j^2 dmu``, and for a tensor basis each of those is
a product of 1-D laws ``p_k^2 dmu_1``, drawn coordinate by coordinate by rejection:

- Legendre (``dmu_1 = dx / 2`` on [-1, 1]): arcsine proposal; the ratio
  ``(pi/2) p_k(t)^2 sqrt(1 - t^2)`` is below 2 for every ``k`` (Bernstein's inequality
  for Legendre polynomials), so 2 proposals per coordinate on average;
- Hermite (standard Gaussian): proposal ``(arcsine on [-L_k, L_k] + N(0, s_k^2)) / 2``
  matched to the oscillatory region ``|x| < sqrt(4k + 2)`` and its Airy edge, with the
  bound ``M_k`` of the ratio computed once per degree on a fine grid
  (:func:`hermite_proposals`).

Randomness enters only through a stream of uniforms, so the generic implementation here
(NumPy, a Python loop: the specification) and the Numba kernel in
``numlab/_cpu/sampling.py`` return the same points for the same stream. A stream that
runs out is reported with ``used = -1``; the caller draws a longer one.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .._dispatch import register_kernel

__all__ = ["KIND_LEGENDRE", "KIND_HERMITE", "hermite_proposals", "chain_rule_dpp", "christoffel"]

KIND_LEGENDRE = 0
KIND_HERMITE = 1

#: Uniforms consumed at most by one coordinate proposal (Hermite: 3 + 1).
_UNIFORMS_PER_TRY = 4


@functools.lru_cache(maxsize=8)
def hermite_proposals(max_degree: int) -> np.ndarray:
    """``(L_k, s_k, M_k)`` for ``k = 0..max_degree``: proposal parameters and ratio bound.

    ``M_k`` is the maximum of ``h_k(x)^2 phi(x) / q_k(x)`` over a grid of spacing
    ``~1e-3`` covering the mass of ``h_k^2 phi`` (``|x| <= L_k + 12``; beyond, the ratio
    decays like ``exp(-x^2 (1 - 1/s_k^2) / 2)``), times a 5 % safety margin.
    """
    table = np.empty((max_degree + 1, 3))
    b = np.sqrt(np.arange(max_degree + 2, dtype=np.float64))
    edge = math.sqrt(4.0 * max_degree + 2.0) + 13.0
    x = np.linspace(-edge, edge, int(2 * edge / 1e-3) | 1)
    # one pass of the recurrence on h_k(x) exp(-x^2/4) serves every degree
    prev, cur = np.zeros_like(x), np.exp(-0.25 * x * x)
    for k in range(max_degree + 1):
        if k:
            prev, cur = cur, (x * cur - b[k - 1] * prev) / b[k]
        # the arcsine part reaches past the turning point sqrt(4k + 2) by the width of the
        # Airy region, ~(4k + 2)^(-1/6): M_k stays below ~4.5 up to k = 100 (1.8 sqrt(k) without)
        L = math.sqrt(4.0 * k + 2.0) + (4.0 * k + 2.0) ** (-1.0 / 6.0)
        s = 0.5 * L + 1.0
        inside = np.abs(x) <= L + 12.0
        f = cur[inside] ** 2 / math.sqrt(2.0 * math.pi)
        ratio = f / _hermite_proposal_density(x[inside], L, s)
        table[k] = L, s, 1.05 * float(np.max(ratio))
    table.flags.writeable = False
    return table


def _hermite_density(k, x, b):
    """``h_k(x)^2 phi(x)``, the recurrence run on ``h_j(x) exp(-x^2/4)`` to avoid overflow."""
    prev = np.zeros_like(x)
    cur = np.exp(-0.25 * x * x)
    for j in range(k):
        prev, cur = cur, (x * cur - b[j] * prev) / b[j + 1]
    return cur * cur / math.sqrt(2.0 * math.pi)


def _hermite_proposal_density(x, L, s):
    with np.errstate(divide="ignore", invalid="ignore"):
        arcsine = np.where(
            np.abs(x) < L, 1.0 / (np.pi * np.sqrt(np.maximum(L * L - x * x, 0.0))), 0.0
        )
    arcsine = np.where(np.isfinite(arcsine), arcsine, np.inf)
    gauss = np.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2.0 * math.pi))
    return 0.5 * arcsine + 0.5 * gauss


def _sample_1d(kind, k, b, table, u, pos):
    """One draw of ``p_k^2 dmu_1`` from the uniforms ``u[pos:]``: ``(x, pos)``, pos -1 if out."""
    n = u.shape[0]
    while True:
        if pos + _UNIFORMS_PER_TRY > n:
            return 0.0, -1
        if kind == KIND_LEGENDRE:
            x = math.cos(math.pi * u[pos])
            accept = u[pos + 1]
            pos += 2
            prev, cur = 0.0, 1.0
            for j in range(k):
                prev, cur = cur, (x * cur - b[j] * prev) / b[j + 1]
            if 2.0 * accept < 0.5 * math.pi * cur * cur * math.sqrt(max(1.0 - x * x, 0.0)):
                return x, pos
        else:
            L, s, M = table[k, 0], table[k, 1], table[k, 2]
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
            prev, cur = 0.0, math.exp(-0.25 * x * x)
            for j in range(k):
                prev, cur = cur, (x * cur - b[j] * prev) / b[j + 1]
            f = cur * cur / math.sqrt(2.0 * math.pi)
            gauss = math.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2.0 * math.pi))
            if abs(x) < L:
                q = 0.5 / (math.pi * math.sqrt(L * L - x * x)) + 0.5 * gauss
            else:
                q = 0.5 * gauss
            if accept * M * q < f:
                return x, pos


def _features(kind, x, indices, b, degree):
    """``phi(x)`` up to a common positive factor (Hermite values carry ``exp(-|x|^2/4)``)."""
    m, d = indices.shape
    values = np.empty((d, degree + 1))
    for c in range(d):
        prev, cur = 0.0, (1.0 if kind == KIND_LEGENDRE else math.exp(-0.25 * x[c] * x[c]))
        values[c, 0] = cur
        for j in range(degree):
            prev, cur = cur, (x[c] * cur - b[j] * prev) / b[j + 1]
            values[c, j + 1] = cur
    phi = np.ones(m)
    for c in range(d):
        phi *= values[c, indices[:, c]]
    return phi


def _deflate(F, t, r):
    """Rotate ``F[t:]`` so that ``F[t]`` is along ``r`` (coordinates in ``F[t:]``): Householder.

    ``F[t + 1:]`` then spans the complement of the new point's residual within ``F[t:]``.
    """
    v = r.copy()
    v[0] += math.copysign(math.sqrt(r @ r), r[0])
    F[t:] -= (2.0 / (v @ v)) * np.outer(v, v @ F[t:])


def _example(xp, rng):
    indices = np.array([[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2]], dtype=np.int64)
    b = np.sqrt(np.arange(4, dtype=np.float64))
    return (indices, KIND_HERMITE, b, np.array(hermite_proposals(2)), rng.random(4000)), {}


@register_kernel(
    "sampling.chain_rule_dpp",
    numba="numlab._cpu.sampling:chain_rule_dpp",
    example=_example,
    rtol=1e-9,
)
def chain_rule_dpp(indices, kind, b, table, u):
    """Projection DPP of a tensor polynomial basis by the chain rule, from uniforms ``u``.

    Parameters
    ----------
    indices : int64 array, shape (m, d)
        Multi-indices of the basis.
    kind : int
        ``KIND_LEGENDRE`` or ``KIND_HERMITE``.
    b : float64 array
        Orthonormal recurrence coefficients ``b_0..b_{degree+1}``.
    table : float64 array, shape (degree + 1, 3)
        Hermite proposal parameters (:func:`hermite_proposals`; unused for Legendre).
    u : float64 array
        The uniforms on [0, 1).

    Returns
    -------
    points : float64 array, shape (m, d)
    used : int
        Number of uniforms consumed, or -1 if ``u`` ran out (``points`` is then invalid).
    """
    m, d = indices.shape
    degree = int(indices.max())
    points = np.zeros((m, d))
    # F[t:] is an orthonormal basis (rows) of the complement of span{phi(x_1..x_t)}, so
    # |(I - Pi_t) phi|^2 = |F[t:] phi|^2 costs (m - t) m instead of t m: m^3 in all rather
    # than m^3 (H_m - 1), and no cancellation.
    F = np.eye(m)
    pos = 0
    x = np.empty(d)
    for t in range(m):
        while True:
            if pos + 2 > u.shape[0]:
                return points, -1
            j = min(int(u[pos] * m), m - 1)
            pos += 1
            for c in range(d):
                x[c], pos = _sample_1d(kind, indices[j, c], b, table, u, pos)
                if pos < 0:
                    return points, -1
            if pos >= u.shape[0]:
                return points, -1
            accept = u[pos]
            pos += 1
            phi = _features(kind, x, indices, b, degree)
            norm2 = phi @ phi
            r = F[t:] @ phi
            if accept * norm2 < r @ r:
                _deflate(F, t, r)
                points[t] = x
                break
    return points, pos


def _christoffel_example(xp, rng):
    indices = np.array([[0, 0], [1, 0], [0, 1], [3, 0], [1, 2], [0, 4]], dtype=np.int64)
    b = np.arange(6, dtype=np.float64) / np.sqrt(np.maximum(4.0 * np.arange(6) ** 2 - 1.0, 1.0))
    return (indices, b, rng.uniform(-1, 1, (50, 2))), {}


@register_kernel(
    "sampling.christoffel",
    numba="numlab._cpu.sampling:christoffel",
    example=_christoffel_example,
    rtol=1e-12,
)
def christoffel(indices, b, points):
    """``k_m(x) = sum_j phi_j(x)^2`` of a tensor polynomial basis at float64 ``points`` (n, d).

    ``b`` are the orthonormal recurrence coefficients (:func:`chain_rule_dpp`); NumPy only
    (the samplers' weights, computed on the host).
    """
    degree = int(indices.max())
    values = np.empty((degree + 1, *points.shape))
    values[0] = 1.0
    if degree >= 1:
        values[1] = points / b[1]
    for k in range(1, degree):
        values[k + 1] = (points * values[k] - b[k] * values[k - 1]) / b[k + 1]
    phi = values[indices[:, 0], :, 0]
    for c in range(1, points.shape[1]):
        phi = phi * values[indices[:, c], :, c]
    return np.einsum("ji,ji->i", phi, phi)
