"""Numba kernels of the graph family (FastRP)."""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

_CHUNK = 1024  # rows per task
_AHEAD = 8  # neighbours whose rows are prefetched ahead of their use


@intrinsic
def _prefetch(typingctx, array, row, col):
    """Hint the CPU to fetch ``array[row, col]`` into cache (``llvm.prefetch``, read)."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        arr = context.make_array(array_type)(context, builder, args[0])
        index = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:])]
        pointer = cgutils.get_item_pointer(context, builder, array_type, arr, index, wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(prefetch, [builder.bitcast(pointer, byte_pointer), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


if numba.config.DISABLE_JIT:  # plain Python: a hint has nothing to do

    def _prefetch(array, row, col):
        pass


@numba.njit(cache=True, inline="always")
def _accumulate(row, weight, normalize, out, first_write):
    """``out (+)= weight * row / ||row||``; ``first_write`` assigns instead of adding."""
    scale = weight
    if normalize:
        s = 0.0
        for c in range(row.shape[0]):
            s += np.float64(row[c]) * row[c]
        if s > 0.0:
            scale = weight / np.sqrt(s)
    w = row.dtype.type(scale)
    if first_write:
        for c in range(row.shape[0]):
            out[c] = w * row[c]
    else:
        for c in range(row.shape[0]):
            out[c] += w * row[c]


@numba.njit(cache=True, parallel=True)
def _first_step(indptr, indices, data, row_scale, r_indptr, r_indices, r_data, current, weight, normalize, acc, first_write):
    """``current = A @ (L R)`` with the very sparse ``L R`` in CSR; accumulate if weighted."""
    n, dim = current.shape
    for i in numba.prange(n):
        row = current[i]
        for c in range(dim):
            row[c] = 0
        rs = row_scale[i]
        for p in range(indptr[i], indptr[i + 1]):
            a = data[p] * rs
            j = indices[p]
            for q in range(r_indptr[j], r_indptr[j + 1]):
                row[r_indices[q]] += a * r_data[q]
        if weight != 0.0:
            _accumulate(row, weight, normalize, acc[i], first_write)


@numba.njit(cache=True, parallel=True)
def _propagate_step(indptr, indices, data, row_scale, previous, current, weight, normalize, acc, first_write, store):
    """``current = A @ previous``, then ``acc (+)= weight * normalize(current)`` row by row.

    One pass over the graph: a row of ``current`` is accumulated in a small buffer, its
    norm taken and added to ``acc`` while it is still in cache. The last step does not
    ``store`` ``current``: only its contribution to ``acc`` is needed.
    """
    n, dim = previous.shape
    nnz = indices.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for b in numba.prange(n_chunks):
        buf = np.empty(dim, dtype=previous.dtype)
        for i in range(b * _CHUNK, min(n, (b + 1) * _CHUNK)):
            for c in range(dim):
                buf[c] = 0
            rs = row_scale[i]
            for p in range(indptr[i], indptr[i + 1]):
                # The rows of A's neighbours are scattered: fetch them a few nonzeros ahead.
                if p + _AHEAD < nnz:
                    ahead = indices[p + _AHEAD]
                    for c in range(0, dim, 16):
                        _prefetch(previous, ahead, c)
                a = data[p] * rs
                j = indices[p]
                for c in range(dim):
                    buf[c] += a * previous[j, c]
            if store:
                for c in range(dim):
                    current[i, c] = buf[c]
            if weight != 0.0:
                _accumulate(buf, weight, normalize, acc[i], first_write)


def fastrp_propagate(indptr, indices, data, row_scale, r_indptr, r_indices, r_data, dim, weights, normalize):
    """Numba version of :func:`numlab.graph._fastrp.fastrp_propagate`."""
    weights = [float(w) for w in weights]
    last = max(i for i, w in enumerate(weights) if w != 0)
    first_weighted = min(i for i, w in enumerate(weights) if w != 0)
    dtype = r_data.dtype
    n = indptr.shape[0] - 1
    data = data.astype(dtype, copy=False)
    row_scale = row_scale.astype(dtype, copy=False)
    normalize = bool(normalize)
    acc = np.empty((n, dim), dtype=dtype)  # written, not added to, at the first weighted step
    previous = np.empty((n, dim), dtype=dtype)
    current = np.empty((n, dim), dtype=dtype) if last else None
    _first_step(indptr, indices, data, row_scale, r_indptr, r_indices, r_data, previous, weights[0], normalize, acc, first_weighted == 0)
    for i in range(1, last + 1):
        _propagate_step(
            indptr, indices, data, row_scale, previous, current, weights[i], normalize, acc, first_weighted == i, i < last
        )
        previous, current = current, previous
    return acc


@numba.njit(cache=True, parallel=True)
def _column_sums(U, centre, power):
    n, dim = U.shape
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    partial = np.zeros((n_chunks, dim))
    for b in numba.prange(n_chunks):
        for i in range(b * _CHUNK, min(n, (b + 1) * _CHUNK)):
            for c in range(dim):
                x = np.float64(U[i, c]) - centre[c]
                partial[b, c] += x * x if power == 2 else x
    return partial.sum(axis=0)


@numba.njit(cache=True, parallel=True)
def _apply_scaling(U, mean, inv_std, out):
    n, dim = U.shape
    for i in numba.prange(n):
        for c in range(dim):
            out[i, c] = (np.float64(U[i, c]) - mean[c]) * inv_std[c]


def standardize_columns(U):
    """Numba version of :func:`numlab.graph._fastrp.standardize_columns`."""
    n, dim = U.shape
    mean = _column_sums(U, np.zeros(dim), 1) / n
    var = _column_sums(U, mean, 2) / n
    std = np.sqrt(var)
    inv_std = 1.0 / np.where(std > 0, std, 1.0)
    out = np.empty_like(U)
    _apply_scaling(U, mean, inv_std, out)
    return out
