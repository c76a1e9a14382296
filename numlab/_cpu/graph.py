"""Numba kernels of the graph family (FastRP)."""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._threads import run_blocks

_CHUNK = 1024  # rows per task
_AHEAD = 8  # neighbours whose rows are prefetched ahead of their use


def _prefetch_codegen(context, builder, signature, args):
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


@intrinsic
def _prefetch(typingctx, array, row, col):
    """Hint the CPU to fetch ``array[row, col]`` into cache (``llvm.prefetch``, read)."""
    return types.void(array, row, col), _prefetch_codegen


@intrinsic
def _prefetch1(typingctx, array, i):
    """Hint the CPU to fetch ``array[i]`` into cache (``llvm.prefetch``, read)."""
    return types.void(array, i), _prefetch_codegen


if numba.config.DISABLE_JIT:  # plain Python: a hint has nothing to do

    def _prefetch(array, row, col):
        pass

    def _prefetch1(array, i):
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


# The kernels below are serial (compiled in a fraction of the time ``parallel=True`` takes)
# and do blocks ``lo <= b < hi`` of ``_CHUNK`` rows; :func:`run_blocks` runs the blocks on
# Numba's number of threads.


def _n_chunks(n):
    return (n + _CHUNK - 1) // _CHUNK


@numba.njit(cache=True, nogil=True)
def _row_bounds(lo, hi, indptr, indices, r_indptr, dim, bounds):
    """``bounds[i + 1]``: an upper bound of the nonzeros of row i of ``A @ (L R)``."""
    n = indptr.shape[0] - 1
    for i in range(lo * _CHUNK, min(n, hi * _CHUNK)):
        c = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            c += r_indptr[j + 1] - r_indptr[j]
        bounds[i + 1] = min(c, dim)


_SHIFT = 16  # info = (start << _SHIFT) | count for a light row of N_1; -(slot + 1) for a heavy one
_MAX_LIGHT = (1 << _SHIFT) - 1


@numba.njit(cache=True, nogil=True)
def _first_step(lo, hi, indptr, indices, data, row_scale, r_indptr, r_indices, r_data, info, n1_indices, n1_data, heavy, weight, normalize, acc, first_write):
    """``N_1 = A @ (L R)`` (``L R`` has ~dim / sqrt(n) nonzeros a row), stored by rows.

    ``info[i]`` says where row i goes: ``-(slot + 1)``: the dense ``heavy[slot]``;
    otherwise ``start << _SHIFT`` with room for the row's nonzeros at
    ``n1_indices/n1_data[start:]``, and the count is or-ed in here (columns in the order
    first met). If weighted, the row is also added to ``acc``.
    """
    n = indptr.shape[0] - 1
    dim = acc.shape[1]
    for b in range(lo, hi):
        row = np.zeros(dim, dtype=r_data.dtype)
        seen = np.zeros(dim, dtype=np.bool_)
        touched = np.empty(dim, dtype=np.int32)
        for i in range(b * _CHUNK, min(n, (b + 1) * _CHUNK)):
            m = 0
            rs = row_scale[i]
            for p in range(indptr[i], indptr[i + 1]):
                a = data[p] * rs
                j = indices[p]
                for q in range(r_indptr[j], r_indptr[j + 1]):
                    c = r_indices[q]
                    if not seen[c]:
                        seen[c] = True
                        touched[m] = c
                        m += 1
                    row[c] += a * r_data[q]
            if weight != 0.0:
                _accumulate(row, weight, normalize, acc[i], first_write)
            where = info[i]
            if where < 0:
                slot = -where - 1
                for c in range(dim):
                    heavy[slot, c] = row[c]
            else:
                q0 = where >> _SHIFT
                for r in range(m):
                    n1_indices[q0 + r] = touched[r]
                    n1_data[q0 + r] = row[touched[r]]
                info[i] = where | m
            for r in range(m):
                row[touched[r]] = 0
                seen[touched[r]] = False


@numba.njit(cache=True, nogil=True)
def _second_step(lo, hi, indptr, indices, data, row_scale, info, n1_indices, n1_data, heavy, current, weight, normalize, acc, first_write, store):
    """``N_2 = A @ N_1`` from the rows of ``N_1`` as :func:`_first_step` stored them.

    ``N_1`` is mostly zeros (``N_2`` is not): a light row is read by its nonzeros, a
    heavy one (few rows, the most read, mostly in cache) as a dense vector; one word of
    ``info`` per neighbour says which, fetched ahead like the rows themselves. The same
    additions as a dense product (zeros skipped), with a fraction of its memory traffic.
    """
    n = indptr.shape[0] - 1
    nnz = indices.shape[0]
    dim = acc.shape[1]
    mask = np.int64(_MAX_LIGHT)
    for b in range(lo, hi):
        buf = np.empty(dim, dtype=n1_data.dtype)
        for i in range(b * _CHUNK, min(n, (b + 1) * _CHUNK)):
            for c in range(dim):
                buf[c] = 0
            rs = row_scale[i]
            for p in range(indptr[i], indptr[i + 1]):
                if p + 2 * _AHEAD < nnz:
                    _prefetch1(info, indices[p + 2 * _AHEAD])
                if p + _AHEAD < nnz:
                    ahead = info[indices[p + _AHEAD]]
                    if ahead < 0:
                        for c in range(0, dim, 16):
                            _prefetch(heavy, -ahead - 1, c)
                    else:
                        _prefetch1(n1_data, ahead >> _SHIFT)
                        _prefetch1(n1_indices, ahead >> _SHIFT)
                a = data[p] * rs
                where = info[indices[p]]
                if where < 0:
                    slot = -where - 1
                    for c in range(dim):
                        buf[c] += a * heavy[slot, c]
                else:
                    q0 = where >> _SHIFT
                    for q in range(q0, q0 + (where & mask)):
                        buf[n1_indices[q]] += a * n1_data[q]
            if store:
                for c in range(dim):
                    current[i, c] = buf[c]
            if weight != 0.0:
                _accumulate(buf, weight, normalize, acc[i], first_write)


@numba.njit(cache=True, nogil=True)
def _propagate_step(lo, hi, indptr, indices, data, row_scale, previous, current, weight, normalize, acc, first_write, store):
    """``current = A @ previous``, then ``acc (+)= weight * normalize(current)`` row by row.

    One pass over the graph: a row of ``current`` is accumulated in a small buffer, its
    norm taken and added to ``acc`` while it is still in cache. The last step does not
    ``store`` ``current``: only its contribution to ``acc`` is needed.
    """
    n, dim = previous.shape
    nnz = indices.shape[0]
    for b in range(lo, hi):
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
    """Numba version of :func:`numlab.graph._fastrp.fastrp_propagate`.

    ``N_1`` is kept in sparse rows and ``N_2`` computed from them; each later step is one
    fused pass (product, row norm, weighted sum) over the graph. The power after the
    last nonzero weight is not stored, only added to the sum.
    """
    weights = [float(w) for w in weights]
    last = max(i for i, w in enumerate(weights) if w != 0)
    first_weighted = min(i for i, w in enumerate(weights) if w != 0)
    dtype = r_data.dtype
    n = indptr.shape[0] - 1
    data = data.astype(dtype, copy=False)
    row_scale = row_scale.astype(dtype, copy=False)
    normalize = bool(normalize)
    acc = np.empty((n, dim), dtype=dtype)  # written, not added to, at the first weighted step
    bounds = np.zeros(n + 1, dtype=np.int64)
    run_blocks(_row_bounds, _n_chunks(n), indptr, indices, r_indptr, dim, bounds)
    # Rows of N_1 that may hold more than dim / 8 nonzeros (those of hubs) are stored
    # dense, the others as (column, value) pairs.
    is_heavy = bounds[1:] > min(max(dim // 8, 1), _MAX_LIGHT)
    bounds[1:][is_heavy] = 0
    starts = np.cumsum(bounds)
    info = np.where(is_heavy, -np.cumsum(is_heavy), starts[:-1] << _SHIFT)
    heavy = np.empty((int(is_heavy.sum()), dim), dtype=dtype)
    n1_indices = np.empty(starts[-1], dtype=np.int32)
    n1_data = np.empty(starts[-1], dtype=dtype)
    run_blocks(
        _first_step, _n_chunks(n), indptr, indices, data, row_scale, r_indptr, r_indices, r_data, info, n1_indices, n1_data,
        heavy, weights[0], normalize, acc, first_weighted == 0,
    )
    if last == 0:
        return acc
    unused = np.empty((0, dim), dtype=dtype)  # a step that does not store writes nothing here
    previous = np.empty((n, dim), dtype=dtype) if last > 1 else unused
    run_blocks(
        _second_step, _n_chunks(n), indptr, indices, data, row_scale, info, n1_indices, n1_data, heavy, previous,
        weights[1], normalize, acc, first_weighted == 1, last > 1,
    )
    del n1_indices, n1_data, heavy
    current = np.empty((n, dim), dtype=dtype) if last > 2 else unused
    for i in range(2, last + 1):
        run_blocks(
            _propagate_step, _n_chunks(n), indptr, indices, data, row_scale, previous, current, weights[i], normalize, acc, first_weighted == i, i < last
        )
        previous, current = current, previous
    return acc


@numba.njit(cache=True, nogil=True)
def _column_sums_blocks(lo, hi, U, centre, power, partial):
    n, dim = U.shape
    for b in range(lo, hi):
        for i in range(b * _CHUNK, min(n, (b + 1) * _CHUNK)):
            for c in range(dim):
                x = np.float64(U[i, c]) - centre[c]
                partial[b, c] += x * x if power == 2 else x


def _column_sums(U, centre, power):
    partial = np.zeros((_n_chunks(U.shape[0]), U.shape[1]))
    run_blocks(_column_sums_blocks, partial.shape[0], U, centre, power, partial)
    return partial.sum(axis=0)


@numba.njit(cache=True, nogil=True)
def _apply_scaling(lo, hi, U, mean, inv_std, out):
    n, dim = U.shape
    for i in range(lo * _CHUNK, min(n, hi * _CHUNK)):
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
    run_blocks(_apply_scaling, _n_chunks(n), U, mean, inv_std, out)
    return out
