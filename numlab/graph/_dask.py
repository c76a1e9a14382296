"""FastRP on a graph whose adjacency matrix is a Dask array chunked by rows.

Imported only when a Dask array reaches :func:`numlab.graph.fastrp`.

The adjacency ``S`` (n x n, scipy.sparse or NumPy blocks of whole rows) stays on the
workers; the embeddings (n x dim) are small and live on the client. One sweep over
``S`` computes the degrees (and checks the weights); each propagation step
``N_i = A N_{i-1}`` is then one sweep: every row block computes ``A_i N_{i-1}`` against
``N_{i-1}``, shipped to the workers as a single key, and the blocks come back to the
client, which normalises and adds them. q powers read ``S`` q + 1 times.

The additions are those of the in-memory Numba kernel in the same order (per row:
``(S_ij / deg_i) * N[j]`` over the stored entries in column order, then the row norm
in float64 added column by column), so the result is the in-memory one for the same
CSR matrix, bit for bit in our tests; we promise equality to float rounding only,
since the order of SciPy's and Numba's compiled loops is theirs to change.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from .._dispatch import kernel
from .._validation import check_array, check_row_chunked
from ..random_projection._hash import gap_table
from ._convert import _check_dtype, _check_weights, _default_dtype
from ._fastrp import _degree_terms, _projection_scale


def _block_csr(block, dtype):
    """A row block as canonical CSR of ``dtype``, checked as the in-memory path checks G."""
    if _backend.is_sparse(block):
        block = check_array(block, "G", dtype="numeric", allow_sparse=True, allow_empty=True)
    S = _backend.as_csr(block)
    if S.dtype != dtype:
        S = S.astype(dtype)
    _check_weights(S.data, np)
    return S


def _block_degrees(block, *, as_dtype):
    """Per row: [weighted degree (float64), stored entries]."""
    S = _block_csr(block, as_dtype)
    out = np.empty((S.shape[0], 2))
    out[:, 0] = np.asarray(S.astype(np.float64).sum(axis=1)).reshape(-1)
    out[:, 1] = np.diff(S.indptr)
    return out


def _block_step(block, inv_deg, N, *, as_dtype):
    """``A_i @ N`` for the row block ``S_i`` of the adjacency (``A_i = diag(inv_deg) S_i``)."""
    S = _block_csr(block, as_dtype)
    # scale the entries first, as the in-memory kernel does: a = S_ij * (1 / deg_i)
    S.data = S.data * np.repeat(inv_deg, np.diff(S.indptr))
    return np.asarray(S @ N)


def _gather(x):
    """Compute the row-chunked ``x`` block by block onto the client (no concatenation on a
    worker, whose memory limit may be smaller than the n x dim result)."""
    import dask

    blocks = dask.compute(*x.to_delayed().ravel())
    return np.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]


def _accumulate(acc, row, weight, normalize):
    """``acc + weight * row / ||row||`` (row norms in float64, added column by column in
    the order of the Numba kernel, so that the float32 scale is the same)."""
    scale = np.full(row.shape[0], weight)
    if normalize:
        s = np.zeros(row.shape[0])
        for c in range(row.shape[1]):
            col = row[:, c].astype(np.float64)
            s += col * col
        has = s > 0
        scale[has] = weight / np.sqrt(s[has])
    term = scale.astype(row.dtype)[:, None] * row
    return term if acc is None else acc + term


def fastrp(G, dim, weights, beta, normalize, standardize, dtype, seed):
    """:func:`numlab.graph.fastrp` for a row-chunked Dask adjacency; returns NumPy (n, dim)."""
    import dask.array as da

    S = check_row_chunked(G, "G")
    n = S.shape[1]
    if any(c != c for c in S.chunks[0]):  # NaN: unknown
        raise ValueError(
            f"`G` must have known chunk sizes; got shape {S.shape} "
            "(call `G.compute_chunk_sizes()` first)"
        )
    if S.shape[0] != n:
        raise ValueError(f"`G` must be a square adjacency matrix; got shape {tuple(S.shape)}")
    dtype = np.dtype(_default_dtype(S.dtype, np) if dtype is None else _check_dtype(dtype, np))
    stats = S.map_blocks(
        _block_degrees, chunks=(S.chunks[0], (2,)), dtype=np.float64, meta=np.empty((0, 0)),
        as_dtype=dtype,
    )
    stats = _gather(stats)
    deg = stats[:, 0]
    if stats[:, 1].sum() == 0:
        raise ValueError(f"`G` must have at least one edge; got {n} isolated nodes")
    inv_deg, deg_scale = _degree_terms(np, deg, beta, dtype)
    # L R: the columns of the counter-based (dim x n) matrix, one row per node, times deg**beta
    density, scale = _projection_scale(n, dim)
    table = gap_table(density, dim)
    indptr, indices, signs = kernel("random_projection.hash_columns", np)(seed, table, n)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    LR = np.zeros((n, dim), dtype=dtype)
    LR[rows, indices] = signs.astype(dtype) * (deg_scale[rows] * dtype.type(scale))
    inv = da.from_array(inv_deg, chunks=(S.chunks[0],))

    def step(N):
        Nd = da.from_array(N, chunks=N.shape)
        return _gather(
            da.blockwise(
                _block_step, "ib", S, "ia", inv, "i", Nd, "ab", dtype=dtype, concatenate=True,
                meta=np.empty((0, 0), dtype=dtype), as_dtype=dtype,
            )
        )

    last = max(i for i, w in enumerate(weights) if w != 0)
    acc, current = None, LR
    for i in range(last + 1):
        current = step(current)
        if weights[i] != 0:
            acc = _accumulate(acc, current, weights[i], normalize)
    return kernel("graph.standardize_columns", np)(acc) if standardize else acc
