"""The counter-based very sparse random matrix: its definition and its generic kernels.

Column ``j`` of the ``k x d`` matrix ``R`` (the random vector of feature ``j``) is a pure
function of ``(seed, j)``, so it can be generated where it is needed instead of stored,
and the Numba and CuPy kernels produce the same integers for the same seed.

The definition (every implementation follows it exactly):

- ``mix64`` is the splitmix64 finaliser (a bijection of 64-bit words); all arithmetic
  is on unsigned 64-bit integers modulo 2**64.
- The key of column ``j`` is ``key_j = mix64(seed + (j + 1) * COLUMN)``; its ``t``-th draw
  (``t = 0, 1, ...``) is ``h_t = mix64(key_j + (t + 1) * GOLDEN)``, i.e. the splitmix64
  stream seeded with ``key_j``.
- A draw gives the uniform ``u = ((h >> 11) + 1) * 2**-53`` in ``(0, 1]`` and the sign
  ``+1`` if the lowest bit of ``h`` is 0, else ``-1``.
- The entries of a column are independent Bernoulli(p) events, generated as geometric
  gaps: starting from position ``-1``, each draw advances the position by
  ``G = 1 + #{g in 1..k : (1 - p)**g >= u}`` (so ``P(G > g) = (1 - p)**g``); the column
  stops at the first position ``>= k``. Each position reached below ``k`` is a nonzero
  with the sign of the draw that reached it.

The table ``(1 - p)**g``, g = 1..k, is computed once on the host in float64 and given to
every kernel, so the comparisons, and hence the integers, are the same everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._dispatch import register_kernel

GOLDEN = 0x9E3779B97F4A7C15
COLUMN = 0xD1B54A32D192ED03
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MASK64 = (1 << 64) - 1


def gap_table(density: float, n_components: int) -> np.ndarray:
    """``(1 - density) ** g`` for ``g = 1 .. n_components`` (float64, decreasing)."""
    g = np.arange(1, n_components + 1, dtype=np.float64)
    if density >= 1.0:
        return np.zeros(n_components)
    return np.exp(g * math.log1p(-density))


# --------------------------------------------------------------------------- generic (xp)


def _u64(xp, value, like):
    return xp.asarray(value & MASK64, dtype=xp.uint64, device=_backend.device(like))


def _mix64(xp, z):
    z = (z ^ (z >> 30)) * _u64(xp, MIX1, z)
    z = (z ^ (z >> 27)) * _u64(xp, MIX2, z)
    return z ^ (z >> 31)


def _column_keys(xp, seed, features):
    """``key_j`` for the uint64 array ``features``."""
    return _mix64(xp, _u64(xp, seed, features) + (features + _u64(xp, 1, features)) * _u64(xp, COLUMN, features))


def _count_at_least(xp, table, u):
    """``#{g : table[g] >= u}`` for the decreasing ``table``, element-wise in ``u``."""
    ascending = xp.flip(table)
    return table.shape[0] - xp.searchsorted(ascending, u, side="left")


def _generic_columns(xp, seed, table, features):
    """Nonzeros of the columns ``features`` as (column, position, sign) arrays, column-major.

    Vectorised over the columns: every round draws one gap for each column still open.
    """
    k = table.shape[0]
    dev = _backend.device(table)
    keys = _column_keys(xp, seed, features)
    column = xp.arange(features.shape[0], dtype=xp.int64, device=dev)
    position = xp.full(features.shape[0], -1, dtype=xp.int64, device=dev)
    cols, poss, signs = [], [], []
    t = 0
    while column.shape[0] > 0:
        t += 1
        h = _mix64(xp, keys + _u64(xp, t * GOLDEN, keys))
        u = xp.astype((h >> 11) + _u64(xp, 1, h), xp.float64) * 2.0**-53
        position = position + 1 + xp.astype(_count_at_least(xp, table, u), xp.int64)
        open_ = position < k
        keys, column, position, h = keys[open_], column[open_], position[open_], h[open_]
        cols.append(column)
        poss.append(position)
        signs.append(1 - 2 * xp.astype(h & _u64(xp, 1, h), xp.int8))
    if not cols:
        empty = xp.zeros(0, dtype=xp.int64, device=dev)
        return empty, empty, xp.zeros(0, dtype=xp.int8, device=dev)
    col, pos, sign = xp.concat(cols), xp.concat(poss), xp.concat(signs)
    order = xp.argsort(col * k + pos)
    return xp.take(col, order), xp.take(pos, order), xp.take(sign, order)


def _counts_to_indptr(xp, col, n_columns):
    counts = xp.sum(
        xp.astype(col[:, None] == xp.arange(n_columns, device=_backend.device(col))[None, :], xp.int64),
        axis=0,
    )
    return xp.cumulative_sum(counts, include_initial=True)


def _example_columns(xp, rng):
    k = int(rng.integers(5, 40))
    density = float(rng.uniform(0.05, 0.6))
    return (int(rng.integers(0, 2**63)), gap_table(density, k), 57), {}


@register_kernel(
    "random_projection.hash_columns",
    numba="numlab._cpu.random_projection:hash_columns",
    cupy="numlab._gpu.random_projection:hash_columns",
    example=_example_columns,
    rtol=0,
)
def hash_columns(seed, table, n_features):
    """Columns ``0 .. n_features - 1`` of the counter-based matrix, in CSC form.

    Parameters
    ----------
    seed : int
        64-bit seed.
    table : float64 array of shape (n_components,)
        :func:`gap_table` of the density.
    n_features : int
        Number of columns.

    Returns
    -------
    indptr : int64 array of shape (n_features + 1,)
    indices : int32 array
        Component (row) of each nonzero, increasing within a column.
    signs : int8 array
        +1 or -1 for each nonzero.
    """
    xp = _backend.namespace(table)
    features = xp.arange(n_features, dtype=xp.uint64, device=_backend.device(table))
    col, pos, sign = _generic_columns(xp, seed, table, features)
    return _counts_to_indptr(xp, col, n_features), xp.astype(pos, xp.int32), sign


def _dense_columns(xp, seed, table, n_features, scale, dtype):
    """The ``n_features x k`` dense transpose of the matrix, entries ``+-scale`` (generic)."""
    k = table.shape[0]
    dev = _backend.device(table)
    features = xp.arange(n_features, dtype=xp.uint64, device=dev)
    col, pos, sign = _generic_columns(xp, seed, table, features)
    # One-hot rows, summed per column: no scatter in the array API.
    onehot = xp.astype(pos[:, None] == xp.arange(k, device=dev)[None, :], dtype)
    contrib = onehot * xp.astype(sign, dtype)[:, None]
    owner = xp.astype(col[None, :] == xp.arange(n_features, device=dev)[:, None], dtype)
    return (owner @ contrib) * scale


def _example_dense(xp, rng):
    k = int(rng.integers(5, 30))
    X = rng.standard_normal((7, 40))
    X[X < 0.3] = 0.0
    return (int(rng.integers(0, 2**63)), gap_table(0.2, k), X, 0.75), {}


@register_kernel(
    "random_projection.hash_project_dense",
    numba="numlab._cpu.random_projection:hash_project_dense",
    cupy="numlab._gpu.random_projection:hash_project_dense",
    example=_example_dense,
    rtol=1e-9,
)
def hash_project_dense(seed, table, X, scale):
    """``X @ R.T`` for dense ``X`` (n, d) with the counter-based ``R`` (entries ``+-scale``).

    Returns a dense (n, k) array of ``X``'s dtype.
    """
    xp = _backend.namespace(X, table)
    return X @ _dense_columns(xp, seed, table, X.shape[1], scale, X.dtype)


def _example_csr(xp, rng):
    import scipy.sparse

    k = int(rng.integers(5, 30))
    X = scipy.sparse.random_array((9, 60), density=0.2, format="csr", rng=rng)
    X.sort_indices()
    return (int(rng.integers(0, 2**63)), gap_table(0.15, k), X.indptr, X.indices, X.data, 60, 1.5), {}


@register_kernel(
    "random_projection.hash_project_csr",
    numba="numlab._cpu.random_projection:hash_project_csr",
    cupy="numlab._gpu.random_projection:hash_project_csr",
    example=_example_csr,
    rtol=1e-9,
)
def hash_project_csr(seed, table, indptr, indices, data, n_features, scale):
    """``X @ R.T`` for CSR ``X`` given by its arrays, without storing ``R``.

    Returns a dense (n, k) array of ``data``'s dtype. Within a row the products are
    added in the order of the stored nonzeros (the specialised kernels rely on it to
    give the same bits on every backend).
    """
    xp = _backend.namespace(data, indptr, indices, table)
    RT = _dense_columns(xp, seed, table, n_features, scale, data.dtype)
    return _rows_times(xp, indptr, indices, data, RT)


@register_kernel(
    "random_projection.hash_project_csr_sparse",
    numba="numlab._cpu.random_projection:hash_project_csr_sparse",
    example=_example_csr,
    rtol=1e-9,
)
def hash_project_csr_sparse(seed, table, indptr, indices, data, n_features, scale):
    """:func:`hash_project_csr` returned as the CSR arrays (indptr, indices, data) of ``Y``.

    Exact zeros of ``Y`` are not stored (as in :func:`dense_to_csr`). The specialised
    kernel builds the rows directly, without the dense ``n x k`` intermediate, and its
    values are those of ``hash_project_csr`` bit for bit.
    """
    return dense_to_csr(hash_project_csr(seed, table, indptr, indices, data, n_features, scale))


# --------------------------------------------------------------------------- stored matrix


def _rows_times(xp, indptr, indices, data, RT):
    """Rows of the CSR matrix (indptr, indices, data) times the dense ``RT`` (generic)."""
    dtype = data.dtype
    t = xp.arange(data.shape[0], dtype=xp.int64, device=_backend.device(data))
    starts = xp.astype(indptr[:-1], xp.int64)[:, None]
    stops = xp.astype(indptr[1:], xp.int64)[:, None]
    # Row sums as a product with the 0/1 row-membership matrix (no scatter-add in xp).
    owner = xp.astype((t[None, :] >= starts) & (t[None, :] < stops), dtype)
    return owner @ (data[:, None] * xp.take(RT, xp.astype(indices, xp.int64), axis=0))


def _example_columns_product(xp, rng):
    import scipy.sparse

    X = scipy.sparse.random_array((8, 50), density=0.2, format="csr", rng=rng)
    R = scipy.sparse.random_array((12, 50), density=0.3, format="csc", rng=rng)
    return (X.indptr, X.indices, X.data, R.indptr, R.indices, R.data, 12), {}


@register_kernel(
    "random_projection.csr_times_columns",
    numba="numlab._cpu.random_projection:csr_times_columns",
    cupy="numlab._gpu.random_projection:csr_times_columns",
    example=_example_columns_product,
    rtol=1e-9,
)
def csr_times_columns(indptr, indices, data, col_indptr, col_indices, col_values, n_components):
    """``X @ R.T`` for CSR ``X`` and ``R`` given by its columns (the CSC arrays of ``R``).

    Returns a dense (n, n_components) array of ``data``'s dtype.
    """
    xp = _backend.namespace(data, indptr, col_values)
    dev = _backend.device(data)
    q = xp.arange(col_indices.shape[0], dtype=xp.int64, device=dev)
    owner = xp.astype(
        (q[None, :] >= xp.astype(col_indptr[:-1], xp.int64)[:, None])
        & (q[None, :] < xp.astype(col_indptr[1:], xp.int64)[:, None]),
        data.dtype,
    )
    onehot = xp.astype(
        xp.astype(col_indices, xp.int64)[:, None] == xp.arange(n_components, device=dev)[None, :],
        data.dtype,
    )
    RT = owner @ (onehot * xp.astype(col_values, data.dtype)[:, None])
    return _rows_times(xp, indptr, indices, data, RT)


def _example_dense_to_csr(xp, rng):
    Y = rng.standard_normal((9, 13))
    Y[Y < 0.5] = 0.0
    return (Y,), {}


@register_kernel(
    "random_projection.dense_to_csr",
    numba="numlab._cpu.random_projection:dense_to_csr",
    example=_example_dense_to_csr,
    rtol=0,
)
def dense_to_csr(Y):
    """The CSR arrays (indptr int64, indices int32, data) of the dense 2-D ``Y``."""
    xp = _backend.namespace(Y)
    rows, cols = xp.nonzero(Y)
    counts = xp.sum(xp.astype(Y != 0, xp.int64), axis=1)
    indptr = xp.cumulative_sum(counts, include_initial=True)
    flat = xp.reshape(Y, (-1,))
    data = xp.take(flat, xp.astype(rows, xp.int64) * Y.shape[1] + xp.astype(cols, xp.int64))
    return indptr, xp.astype(cols, xp.int32), data
