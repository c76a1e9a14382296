"""Numba kernels of the counter-based very sparse random projection.

The matrix is defined in :mod:`numlab.random_projection._hash`; these kernels follow
that definition draw for draw, so they give the same integers as the generic and the
CuPy implementations, and, for the projections, the same bits as the CuPy kernels
(products added in the same order, no fused multiply-add).
"""

from __future__ import annotations

import numba
import numpy as np

from ._threads import run_blocks

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_COLUMN = np.uint64(0xD1B54A32D192ED03)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_TWO_M53 = 2.0**-53
_BLOCK = 256  # columns (or rows) per parallel task

# The kernels are serial, ``nogil`` and do blocks ``lo <= b < hi``; :func:`run_blocks` runs
# the blocks on Numba's number of threads (``parallel=True`` took 20-30 s to compile them).


@numba.njit(cache=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.njit(cache=True, inline="always")
def _key(seed, j):
    return _mix64(seed + np.uint64(j + 1) * _COLUMN)


@numba.njit(cache=True, inline="always")
def _draw(key, t):
    """(gap uniform in (0, 1], sign bit) of draw ``t`` of a column."""
    h = _mix64(key + np.uint64(t + 1) * _GOLDEN)
    u = np.float64((h >> _S11) + _ONE) * _TWO_M53
    return u, h & _ONE


@numba.njit(cache=True, inline="always")
def _log_ratio(table):
    """``1 / log(1 - p)`` from the table (0 when it cannot guide a guess: p = 1 or p tiny)."""
    if table.shape[0] == 0 or not (0.0 < table[0] < 1.0):
        return 0.0
    return 1.0 / np.log(table[0])


@numba.njit(cache=True, inline="always")
def _advance(table, log_ratio, pos, u):
    """The next position after ``pos`` (``>= k`` ends the column).

    The gap is ``1 + c`` with ``c = #{g : table[g] >= u}`` (the table is decreasing). A
    gap of ``m = k - 1 - pos`` or more ends the column, which one comparison decides:
    most draws of a very sparse column do. Otherwise ``c`` is guessed from the
    logarithm (``table[g] = (1 - p)**(g + 1)``, ``log_ratio = 1 / log(1 - p)`` computed
    once per kernel) and corrected by comparisons with the table, so the result never
    depends on how ``log`` rounds.
    """
    k = table.shape[0]
    m = k - 1 - pos
    if m <= 0 or table[m - 1] >= u:
        return k
    c = 0
    if log_ratio < 0.0:
        c = min(max(int(np.log(u) * log_ratio), 0), m - 1)
    while c > 0 and table[c - 1] < u:
        c -= 1
    while c < m - 1 and table[c] >= u:
        c += 1
    return pos + c + 1


@numba.njit(cache=True)
def _column(key, table, log_ratio, positions, signs):
    """Fill the nonzeros of one column; return their number."""
    k = table.shape[0]
    n = 0
    pos = -1
    t = 0
    while True:
        u, bit = _draw(key, t)
        t += 1
        pos = _advance(table, log_ratio, pos, u)
        if pos >= k:
            return n
        positions[n] = pos
        signs[n] = 1 - 2 * np.int8(bit)
        n += 1


def _blocks(n, size):
    return (n + size - 1) // size


@numba.njit(cache=True, nogil=True)
def _column_counts_blocks(lo, hi, seed, table, n_features, counts):
    k = table.shape[0]
    log_ratio = _log_ratio(table)
    for b in range(lo, hi):
        positions = np.empty(k, dtype=np.int32)
        signs = np.empty(k, dtype=np.int8)
        for j in range(b * _BLOCK, min(n_features, (b + 1) * _BLOCK)):
            counts[j + 1] = _column(_key(seed, j), table, log_ratio, positions, signs)


def _column_counts(seed, table, n_features):
    counts = np.zeros(n_features + 1, dtype=np.int64)
    run_blocks(_column_counts_blocks, _blocks(n_features, _BLOCK), seed, table, n_features,
               counts)
    return counts


@numba.njit(cache=True, nogil=True)
def _fill_columns_blocks(lo, hi, seed, table, indptr, indices, signs):
    n_features = indptr.shape[0] - 1
    log_ratio = _log_ratio(table)
    for b in range(lo, hi):
        for j in range(b * _BLOCK, min(n_features, (b + 1) * _BLOCK)):
            start = indptr[j]
            _column(_key(seed, j), table, log_ratio, indices[start:], signs[start:])


def _fill_columns(seed, table, indptr, indices, signs):
    n_features = indptr.shape[0] - 1
    run_blocks(_fill_columns_blocks, _blocks(n_features, _BLOCK), seed, table, indptr, indices,
               signs)


@numba.njit(cache=True, nogil=True)
def _columns_in_blocks_range(lo, hi, seed, table, n_features, starts, positions, signs, counts,
                             ok):
    k = table.shape[0]
    log_ratio = _log_ratio(table)
    for b in range(lo, hi):
        q = starts[b]
        end = starts[b + 1]
        for j in range(b * _BLOCK, min(n_features, (b + 1) * _BLOCK)):
            key = _key(seed, j)
            pos = -1
            t = 0
            c = 0
            while True:
                u, bit = _draw(key, t)
                t += 1
                pos = _advance(table, log_ratio, pos, u)
                if pos >= k:
                    break
                if q == end:
                    ok[b] = False
                    break
                positions[q] = pos
                signs[q] = 1 - 2 * np.int8(bit)
                q += 1
                c += 1
            counts[j + 1] = c


def _columns_in_blocks(seed, table, n_features, starts, positions, signs, counts):
    """One pass: block ``b`` writes its columns from ``starts[b]`` on; False on overflow."""
    ok = np.ones(starts.shape[0] - 1, dtype=np.bool_)
    run_blocks(_columns_in_blocks_range, ok.shape[0], seed, table, n_features, starts, positions,
               signs, counts, ok)
    return ok


@numba.njit(cache=True, nogil=True)
def _gather_blocks_range(lo, hi, block, starts, indptr, src_a, src_b, out_a, out_b):
    n = indptr.shape[0] - 1
    for b in range(lo, hi):
        first = indptr[b * block]
        last = indptr[min(n, (b + 1) * block)]
        src = starts[b]
        for q in range(last - first):
            out_a[first + q] = src_a[src + q]
            out_b[first + q] = src_b[src + q]


def _gather_blocks(block, starts, indptr, src_a, src_b, out_a, out_b):
    """Copy the region of each ``block`` of rows (or columns), written from ``starts[b]``
    on, to its place ``indptr[b * block]`` in the compact CSR/CSC arrays."""
    run_blocks(_gather_blocks_range, starts.shape[0] - 1, block, starts, indptr, src_a, src_b,
               out_a, out_b)


def hash_columns(seed, table, n_features):
    """Numba version of :func:`numlab.random_projection._hash.hash_columns`.

    One generation pass into per-block regions sized well above the expected count
    (mean + 8 standard deviations), then a parallel copy into place; the exact
    two-pass count-then-fill runs only if some block overflowed its region.
    """
    seed = np.uint64(seed)
    k = table.shape[0]
    density = 1.0 - table[0] if k else 0.0
    n_blocks = (n_features + _BLOCK - 1) // _BLOCK
    sizes = np.full(n_blocks, _BLOCK, dtype=np.int64)
    sizes[-1] = n_features - (n_blocks - 1) * _BLOCK
    mean = sizes * (k * density)
    caps = np.minimum(sizes * k, np.ceil(mean + 8.0 * np.sqrt(mean) + 32.0).astype(np.int64))
    starts = np.zeros(n_blocks + 1, dtype=np.int64)
    np.cumsum(caps, out=starts[1:])
    positions = np.empty(starts[-1], dtype=np.int32)
    signs = np.empty(starts[-1], dtype=np.int8)
    counts = np.zeros(n_features + 1, dtype=np.int64)
    if _columns_in_blocks(seed, table, n_features, starts, positions, signs, counts).all():
        indptr = np.cumsum(counts)
        indices = np.empty(indptr[-1], dtype=np.int32)
        out_signs = np.empty(indptr[-1], dtype=np.int8)
        _gather_blocks(_BLOCK, starts, indptr, positions, signs, indices, out_signs)
        return indptr, indices, out_signs
    counts = _column_counts(seed, table, n_features)
    indptr = np.cumsum(counts)
    indices = np.empty(indptr[-1], dtype=np.int32)
    out_signs = np.empty(indptr[-1], dtype=np.int8)
    _fill_columns(seed, table, indptr, indices, out_signs)
    return indptr, indices, out_signs


_ROWS = 64  # rows per parallel task of the projections


@numba.njit(cache=True, nogil=True)
def _project_csr(lo, hi, seed, table, indptr, indices, data, scale, out):
    n = indptr.shape[0] - 1
    k = table.shape[0]
    log_ratio = _log_ratio(table)
    plus = scale
    minus = -scale
    for i in range(lo * _ROWS, min(n, hi * _ROWS)):
        for p in range(indptr[i], indptr[i + 1]):
            x = data[p]
            key = _key(seed, indices[p])
            pos = -1
            t = 0
            while True:
                u, bit = _draw(key, t)
                t += 1
                pos = _advance(table, log_ratio, pos, u)
                if pos >= k:
                    break
                out[i, pos] = out[i, pos] + x * (minus if bit else plus)


def hash_project_csr(seed, table, indptr, indices, data, n_features, scale):
    """Numba version of :func:`numlab.random_projection._hash.hash_project_csr`."""
    out = np.zeros((indptr.shape[0] - 1, table.shape[0]), dtype=data.dtype)
    run_blocks(_project_csr, _blocks(out.shape[0], _ROWS), np.uint64(seed), table, indptr,
               indices, data, data.dtype.type(scale), out)
    return out


@numba.njit(cache=True, nogil=True)
def _sort_head(a, m):
    """Sort ``a[:m]`` in place (Shell sort: compiles in a fraction of the time of
    ``ndarray.sort``, whose quicksort took 3 s to compile)."""
    gap = 1
    while gap < m // 3:
        gap = 3 * gap + 1
    while gap > 0:
        for i in range(gap, m):
            v = a[i]
            j = i
            while j >= gap and a[j - gap] > v:
                a[j] = a[j - gap]
                j -= gap
            a[j] = v
        gap //= 3


def _project_csr_blocks(seed, table, indptr, indices, data, scale, scan, starts, out_indices, out_data, counts):
    """``X @ R.T`` row by row into per-block CSR regions; False for a block that overflowed.

    A row is accumulated in a dense buffer of length k (in cache) in the order of the
    dense kernel, so its values are those of :func:`hash_project_csr` bit for bit; its
    nonzeros are then written in increasing position (exact zeros dropped, as
    :func:`dense_to_csr` does) and the buffer reset. With ``scan`` (rows fill a good
    part of the k positions) the whole buffer is read in order; otherwise the touched
    positions are recorded and sorted, which is cheaper for k much above a row's count.
    """
    ok = np.ones(starts.shape[0] - 1, dtype=np.bool_)
    run_blocks(_project_csr_blocks_range, ok.shape[0], seed, table, indptr, indices, data, scale,
               scan, starts, out_indices, out_data, counts, ok)
    return ok


@numba.njit(cache=True, nogil=True)
def _project_csr_blocks_range(lo, hi, seed, table, indptr, indices, data, scale, scan, starts,
                              out_indices, out_data, counts, ok):
    n = indptr.shape[0] - 1
    k = table.shape[0]
    log_ratio = _log_ratio(table)
    plus = scale
    minus = -scale
    for b in range(lo, hi):
        acc = np.zeros(k, dtype=data.dtype)
        seen = np.zeros(k, dtype=np.bool_)
        touched = np.empty(k, dtype=np.int32)
        q = starts[b]
        end = starts[b + 1]
        for i in range(b * _ROWS, min(n, (b + 1) * _ROWS)):
            m = 0
            for p in range(indptr[i], indptr[i + 1]):
                x = data[p]
                key = _key(seed, indices[p])
                pos = -1
                t = 0
                while True:
                    u, bit = _draw(key, t)
                    t += 1
                    pos = _advance(table, log_ratio, pos, u)
                    if pos >= k:
                        break
                    if not scan and not seen[pos]:
                        seen[pos] = True
                        touched[m] = pos
                        m += 1
                    acc[pos] = acc[pos] + x * (minus if bit else plus)
            c0 = q
            if scan:
                for c in range(k):
                    v = acc[c]
                    if v != 0:
                        if q == end:
                            ok[b] = False
                            break
                        acc[c] = 0
                        out_indices[q] = c
                        out_data[q] = v
                        q += 1
            else:
                _sort_head(touched, m)
                for r in range(m):
                    c = touched[r]
                    v = acc[c]
                    acc[c] = 0
                    seen[c] = False
                    if v != 0:
                        if q == end:
                            ok[b] = False
                            break
                        out_indices[q] = c
                        out_data[q] = v
                        q += 1
            if not ok[b]:
                break
            counts[i + 1] = q - c0


def hash_project_csr_sparse(seed, table, indptr, indices, data, n_features, scale):
    """Numba version of :func:`numlab.random_projection._hash.hash_project_csr_sparse`.

    One pass into per-block regions sized well above the expected count (each nonzero
    of ``X`` meets ``Binomial(k, p)`` nonzeros of ``R``: mean + 8 standard deviations),
    then a parallel copy into place; the dense product runs only if a block overflowed.
    No ``n x k`` dense intermediate: it would cost more to zero, fill and scan than the
    hashing itself.
    """
    n = indptr.shape[0] - 1
    k = table.shape[0]
    density = 1.0 - table[0] if k else 0.0
    n_blocks = max(1, (n + _ROWS - 1) // _ROWS)
    edges = np.minimum(np.arange(n_blocks + 1, dtype=np.int64) * _ROWS, n)
    rows = np.diff(edges)
    mean = np.diff(np.asarray(indptr, dtype=np.int64)[edges]) * (k * density)
    caps = np.minimum(rows * k, np.ceil(mean + 8.0 * np.sqrt(mean) + 32.0).astype(np.int64))
    starts = np.zeros(n_blocks + 1, dtype=np.int64)
    np.cumsum(caps, out=starts[1:])
    block_indices = np.empty(starts[-1], dtype=np.int32)
    block_data = np.empty(starts[-1], dtype=data.dtype)
    counts = np.zeros(n + 1, dtype=np.int64)
    sd = data.dtype.type(scale)
    # Reading all k positions of a row costs about as much as sorting ~k / 16 of them.
    scan = 16.0 * (indptr[-1] / max(n, 1)) * k * density >= k
    if _project_csr_blocks(np.uint64(seed), table, indptr, indices, data, sd, scan, starts, block_indices, block_data, counts).all():
        out_indptr = np.cumsum(counts)
        out_indices = np.empty(out_indptr[-1], dtype=np.int32)
        out_data = np.empty(out_indptr[-1], dtype=data.dtype)
        _gather_blocks(_ROWS, starts, out_indptr, block_indices, block_data, out_indices, out_data)
        return out_indptr, out_indices, out_data
    return dense_to_csr(hash_project_csr(seed, table, indptr, indices, data, n_features, scale))


@numba.njit(cache=True, nogil=True)
def _project_dense(lo, hi, seed, table, X, scale, out):
    n, d = X.shape
    k = table.shape[0]
    log_ratio = _log_ratio(table)
    plus = scale
    minus = -scale
    for b in range(lo, hi):
        positions = np.empty(k, dtype=np.int32)
        signs = np.empty(k, dtype=np.int8)
        lo = b * 64
        hi = min(n, lo + 64)
        for j in range(d):
            m = -1  # the column is generated only when a row of the block needs it
            for i in range(lo, hi):
                x = X[i, j]
                if x == 0:
                    continue
                if m < 0:
                    m = _column(_key(seed, j), table, log_ratio, positions, signs)
                for q in range(m):
                    out[i, positions[q]] = out[i, positions[q]] + x * (plus if signs[q] > 0 else minus)


def hash_project_dense(seed, table, X, scale):
    """Numba version of :func:`numlab.random_projection._hash.hash_project_dense`."""
    out = np.zeros((X.shape[0], table.shape[0]), dtype=X.dtype)
    run_blocks(_project_dense, _blocks(X.shape[0], 64), np.uint64(seed), table, X,
               X.dtype.type(scale), out)
    return out


@numba.njit(cache=True, nogil=True)
def _csr_times_columns(lo, hi, indptr, indices, data, col_indptr, col_indices, col_values, out):
    n = indptr.shape[0] - 1
    for i in range(lo * _ROWS, min(n, hi * _ROWS)):
        for p in range(indptr[i], indptr[i + 1]):
            x = data[p]
            j = indices[p]
            for q in range(col_indptr[j], col_indptr[j + 1]):
                c = col_indices[q]
                out[i, c] = out[i, c] + x * col_values[q]


def csr_times_columns(indptr, indices, data, col_indptr, col_indices, col_values, n_components):
    """Numba version of :func:`numlab.random_projection._hash.csr_times_columns`."""
    out = np.zeros((indptr.shape[0] - 1, n_components), dtype=data.dtype)
    run_blocks(_csr_times_columns, _blocks(out.shape[0], _ROWS), indptr, indices, data, col_indptr,
               col_indices, col_values.astype(data.dtype, copy=False), out)
    return out


@numba.njit(cache=True, nogil=True)
def _row_counts(lo, hi, Y, counts):
    for i in range(lo * _ROWS, min(Y.shape[0], hi * _ROWS)):
        c = 0
        for j in range(Y.shape[1]):
            if Y[i, j] != 0:
                c += 1
        counts[i + 1] = c


@numba.njit(cache=True, nogil=True)
def _fill_rows(lo, hi, Y, indptr, indices, data):
    for i in range(lo * _ROWS, min(Y.shape[0], hi * _ROWS)):
        q = indptr[i]
        for j in range(Y.shape[1]):
            if Y[i, j] != 0:
                indices[q] = j
                data[q] = Y[i, j]
                q += 1


def dense_to_csr(Y):
    """Numba version of :func:`numlab.random_projection._hash.dense_to_csr`."""
    counts = np.zeros(Y.shape[0] + 1, dtype=np.int64)
    run_blocks(_row_counts, _blocks(Y.shape[0], _ROWS), Y, counts)
    indptr = np.cumsum(counts)
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=Y.dtype)
    run_blocks(_fill_rows, _blocks(Y.shape[0], _ROWS), Y, indptr, indices, data)
    return indptr, indices, data
