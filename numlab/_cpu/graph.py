"""Numba kernels of the graph family (FastRP)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, parallel=True)
def _first_term(first, weight, normalize, acc):
    n, dim = first.shape
    for i in numba.prange(n):
        scale = weight
        if normalize:
            s = 0.0
            for c in range(dim):
                s += np.float64(first[i, c]) * first[i, c]
            if s > 0.0:
                scale = weight / np.sqrt(s)
        w = first.dtype.type(scale)
        for c in range(dim):
            acc[i, c] = w * first[i, c]


@numba.njit(cache=True, parallel=True)
def _propagate_step(indptr, indices, data, previous, current, weight, normalize, acc):
    """``current = A @ previous``; then ``acc += weight * normalize(current)`` row by row.

    One pass over the graph: a row of ``current`` is accumulated, its norm taken and
    added to ``acc`` while it is still in cache.
    """
    n, dim = previous.shape
    for i in numba.prange(n):
        row = current[i]
        for c in range(dim):
            row[c] = 0
        for p in range(indptr[i], indptr[i + 1]):
            a = data[p]
            src = previous[indices[p]]
            for c in range(dim):
                row[c] += a * src[c]
        if weight != 0.0:
            scale = weight
            if normalize:
                s = 0.0
                for c in range(dim):
                    s += np.float64(row[c]) * row[c]
                if s > 0.0:
                    scale = weight / np.sqrt(s)
            w = row.dtype.type(scale)
            out = acc[i]
            for c in range(dim):
                out[c] += w * row[c]


def fastrp_propagate(indptr, indices, data, first, weights, normalize):
    """Numba version of :func:`numlab.graph._fastrp.fastrp_propagate`."""
    weights = [float(w) for w in weights]
    last = max(i for i, w in enumerate(weights) if w != 0)
    first = np.ascontiguousarray(first)
    data = data.astype(first.dtype, copy=False)
    acc = np.zeros_like(first)
    if weights[0] != 0:
        _first_term(first, weights[0], bool(normalize), acc)
    previous = first
    current = np.empty_like(first)
    spare = None
    for i in range(1, last + 1):
        _propagate_step(indptr, indices, data, previous, current, weights[i], bool(normalize), acc)
        if spare is None:
            spare = np.empty_like(first)  # never overwrite the caller's `first`
        previous, current = current, spare if previous is first else previous
    return acc
