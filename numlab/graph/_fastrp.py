"""FastRP node embeddings (Chen, Sultan, Tian, Chen & Skiena, CIKM 2019)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _backend
from .._dispatch import kernel, register_kernel
from .._validation import check_int, check_rng, check_scalar
from ..random_projection._hash import _dense_columns, gap_table
from ..random_projection._matrix import draw_seed
from ._convert import adjacency

#: Default degree exponent; see the docstring of :func:`fastrp` for the measurements.
DEFAULT_BETA = 0.0


# --------------------------------------------------------------------------- propagation


def _row_normalize(xp, X):
    norms = xp.sqrt(xp.sum(X * X, axis=1))
    norms = xp.where(norms > 0, norms, xp.ones_like(norms))
    return X / norms[:, None]


def _weighted_sum(xp, first, weights, normalize, matmul):
    """``sum_i weights[i] * N_i`` with ``N_1 = first`` and ``N_i = matmul(N_{i-1})``.

    Each ``N_i`` is L2-normalised row by row first when ``normalize``; the powers after
    the last nonzero weight are not computed.
    """
    last = max(i for i, w in enumerate(weights) if w != 0)
    acc = xp.zeros_like(first)
    current = first
    for i in range(last + 1):
        if i:
            current = matmul(current)
        if weights[i] != 0:
            term = _row_normalize(xp, current) if normalize else current
            acc = acc + weights[i] * term
    return acc


def _example_propagate(xp, rng):
    import scipy.sparse

    n, dim = 30, 8
    S = scipy.sparse.random_array((n, n), density=0.2, format="csr", rng=rng)
    S = scipy.sparse.csr_matrix(S + S.T)
    S.sort_indices()
    deg = np.asarray(S.sum(axis=1)).ravel()
    row_scale = np.where(deg > 0, 1 / np.where(deg > 0, deg, 1), 0)
    R = scipy.sparse.random_array((n, dim), density=0.3, format="csr", rng=rng)
    R.sort_indices()
    return (S.indptr, S.indices, S.data, row_scale, R.indptr, R.indices, R.data, dim, (0.5, 0.0, 1.0, 6.0), True), {}


def _csr_product(xp, indptr, indices, data, dtype):
    """``X -> M @ X`` for the CSR arrays of ``M`` (specification: n x nnz memory)."""
    t = xp.arange(data.shape[0], dtype=xp.int64, device=_backend.device(data))
    starts = xp.astype(indptr[:-1], xp.int64)[:, None]
    stops = xp.astype(indptr[1:], xp.int64)[:, None]
    owner = xp.astype((t[None, :] >= starts) & (t[None, :] < stops), dtype)
    cols = xp.astype(indices, xp.int64)
    values = xp.astype(data, dtype)[:, None]
    return lambda X: owner @ (values * xp.take(X, cols, axis=0))


@register_kernel(
    "graph.fastrp_propagate",
    numba="numlab._cpu.graph:fastrp_propagate",
    cupy="numlab._gpu.graph:fastrp_propagate",
    example=_example_propagate,
    rtol=1e-9,
)
def fastrp_propagate(indptr, indices, data, row_scale, r_indptr, r_indices, r_data, dim, weights, normalize):
    """FastRP's weighted sum of propagated, row-normalised embeddings.

    Parameters
    ----------
    indptr, indices, data : arrays
        The CSR arrays of the adjacency matrix ``S`` (n x n).
    row_scale : array of shape (n,)
        ``1 / deg`` (0 for nodes without edges): the transition matrix is
        ``A = diag(row_scale) S``.
    r_indptr, r_indices, r_data : arrays
        The CSR arrays of the very sparse ``L R`` (n x dim); its dtype is the result's.
    dim : int
        Embedding dimension.
    weights : tuple of float
        ``alpha_1 .. alpha_q``, at least one nonzero.
    normalize : bool
        L2-normalise the rows of each ``N_i`` before weighting.

    Returns
    -------
    U : array of shape (n, dim)
        ``sum_i alpha_i N_i`` with ``N_1 = A L R`` and ``N_i = A N_{i-1}``.
    """
    xp = _backend.namespace(data, r_data)
    dtype = r_data.dtype
    dev = _backend.device(r_data)
    onehot = xp.astype(
        xp.astype(r_indices, xp.int64)[:, None] == xp.arange(dim, device=dev)[None, :], dtype
    )
    LR = _csr_product(xp, r_indptr, xp.arange(r_data.shape[0], device=dev), r_data, dtype)(onehot)
    a_data = xp.astype(data, dtype) * xp.take(xp.astype(row_scale, dtype), _row_of_entry(xp, indptr))
    matmul = _csr_product(xp, indptr, indices, a_data, dtype)
    return _weighted_sum(xp, matmul(LR), tuple(float(w) for w in weights), normalize, matmul)


def _example_standardize(xp, rng):
    U = rng.standard_normal((50, 6)) * rng.uniform(0.1, 5, 6) + rng.uniform(-3, 3, 6)
    U[:, 2] = 1.5  # a constant column keeps its zero spread
    return (U,), {}


@register_kernel(
    "graph.standardize_columns",
    numba="numlab._cpu.graph:standardize_columns",
    example=_example_standardize,
    rtol=1e-9,
)
def standardize_columns(U):
    """Columns to zero mean and unit variance (``sklearn.preprocessing.scale``).

    Statistics in float64 whatever the dtype; a constant column is only centred.
    """
    xp = _backend.namespace(U)
    wide = xp.astype(U, xp.float64)
    mean = xp.mean(wide, axis=0)
    std = xp.std(wide, axis=0)
    std = xp.where(std > 0, std, xp.ones_like(std))
    return xp.astype((wide - mean) / std, U.dtype)


# --------------------------------------------------------------------------- public


def _check_weights(weights):
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
        raise TypeError(f"`weights` must be a sequence of floats (alpha_1, ..., alpha_q); got {weights!r}")
    if len(weights) == 0:
        raise ValueError("`weights` must have at least one entry; got an empty sequence")
    out = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
            raise ValueError(f"`weights` must hold finite real numbers; got {weights!r}")
        out.append(float(w))
    if not any(out):
        raise ValueError(f"`weights` must contain a nonzero weight; got {weights!r}")
    return tuple(out)


def fastrp(
    G,
    dim=128,
    *,
    weights=(0.0, 0.0, 1.0, 6.0),
    beta=DEFAULT_BETA,
    normalize=True,
    standardize=True,
    weight="weight",
    dtype=None,
    rng=None,
):
    """FastRP node embeddings: very sparse random projections of powers of the transition matrix.

    With ``S`` the adjacency matrix, ``D`` its diagonal of (weighted) degrees, the
    transition matrix ``A = D^-1 S``, a very sparse random matrix ``R`` (n x dim,
    entries ``+-sqrt(s / dim)`` with probability ``1 / (2 s)`` each, ``s = sqrt(n)``)
    and the degree scaling ``L = diag(deg**beta)``, FastRP computes

    ``N_1 = A L R``, ``N_i = A N_{i-1}`` (i = 2 .. q),
    ``U = sum_i alpha_i normalize(N_i)``, and standardises the columns of ``U``,

    exactly as Algorithm 1 of the paper and its authors' code (GTmac/FastRP): the
    similarity matrix ``sum_i alpha_i A^i`` is never formed, only q - 1 sparse-dense
    products. On NumPy one fused Numba kernel does each propagation step, the row
    normalisation and the weighted sum in a single pass over the graph, float32 by
    default; ``N_1`` (about ``dim * deg / sqrt(n)`` nonzeros a row) is kept sparse, so
    ``N_1`` and ``N_2`` cost a fraction of a dense step. On CuPy the products run on
    the GPU.

    Parameters
    ----------
    G : networkx graph, sparse matrix, dense array or Dask array
        A networkx ``Graph``/``DiGraph``/``MultiGraph`` (rows of the result in the order
        of ``list(G.nodes())``; converted through edge arrays), a square
        ``scipy.sparse`` or ``cupyx.scipy.sparse`` adjacency matrix, a dense square
        array of any array-API library, or a square Dask array chunked by rows
        (``scipy.sparse`` or NumPy blocks; see Notes). Entry (u, v) is the weight of
        the edge u -> v.
    dim : int, default=128
        Embedding dimension.
    weights : sequence of float, default=(0.0, 0.0, 1.0, 6.0)
        ``alpha_1 .. alpha_q``: the weight of each power of ``A``; q = len(weights).
        The default is the paper's setting (its BlogCatalog runs use (0, 0, 1, 6.67)).
    beta : float, default=0.0
        Degree exponent of ``L``: ``beta < 0`` shrinks the random vectors of hubs. The
        paper tunes it in [-1, 0] per data set (BlogCatalog -0.64, WWW-200K -0.27,
        Flickr -0.06). The default comes from our measurements of node-classification
        micro-F1 (logistic regression on half the labels, 128 dimensions, weights
        (0, 0, 1, 6)): on degree-corrected planted partitions (10,000 nodes, 20
        communities, power-law degrees) beta = 0 / -0.1 / -0.3 / -0.6 / -0.9 gives
        0.905 / 0.894 / 0.864 / 0.820 / 0.791 at mixing 0.5 and 0.740 / 0.722 / 0.689 /
        0.642 / 0.612 at mixing 0.6; on a networkx LFR graph (2,000 nodes, mixing 0.4)
        0.875 / 0.871 / 0.861 / 0.855 / 0.851; on planted partitions with equal degrees
        all values agree within 0.01. No measured graph favoured a negative value, so
        the default leaves degrees alone (Neo4j's FastRP default too); tune ``beta`` in
        [-1, 0] on real networks, where hubs can drown their neighbourhoods.
    normalize : bool, default=True
        L2-normalise the rows of each ``N_i`` before the weighted sum (the authors'
        ``normalization=True``, used for all their reported results).
    standardize : bool, default=True
        Scale the columns of the result to zero mean and unit variance
        (``sklearn.preprocessing.scale``, as the authors' code does).
    weight : str or None, default="weight"
        For networkx graphs: the edge attribute holding the weight (1 where absent);
        None ignores weights.
    dtype : float32 or float64, optional
        Dtype of the computation and of the result: by default float32 for networkx
        graphs and integer or boolean matrices (embeddings need no more, and it halves
        the memory traffic), the matrix's dtype for floating matrices.
    rng : None, int or numpy.random.Generator
        Source of the seed of ``R``. ``R`` is the counter-based matrix of
        :func:`numlab.random_projection.very_sparse_random_matrix` ``(dim, n)``
        (transposed), so the same seed gives the same ``R`` on every backend.

    Returns
    -------
    array of shape (n_nodes, dim)
        The embeddings ``U``, one row per node: NumPy for networkx graphs,
        ``scipy.sparse`` matrices and Dask arrays (computed, in memory), CuPy for
        ``cupyx`` matrices, the input's library for dense arrays.

    Notes
    -----
    - Weighted graphs: degrees are weighted row sums, ``A`` averages neighbours with
      the edge weights; weights must be finite and non-negative.
    - Directed graphs: rows are out-edges, so a node's embedding aggregates its
      successors (``A = D_out^-1 S``, degrees are out-degrees).
    - Isolated nodes (and sinks of directed graphs) have a zero row in ``A``; their
      degree scaling is taken as 1 (``0**beta`` is undefined for ``beta < 0``; the
      authors' code produces NaN there). An isolated node's embedding is zero before
      standardisation, so it ends at ``-mean / std`` of each column.
    - Self loops count once, as a networkx adjacency matrix stores them.
    - Dask adjacency (n x n, chunked by rows, one chunk across the columns): the
      matrix stays on the workers, the n x dim embeddings on the client. One sweep over
      the row blocks computes the degrees (and checks the weights); each power
      ``N_i = A N_{i-1}`` is one more sweep, every block multiplying its rows against
      ``N_{i-1}`` (shipped once per sweep), so q weights read ``G`` q + 1 times. The
      result equals the in-memory ``fastrp`` of the same matrix as CSR to float
      rounding (the same additions in the same order: bit for bit in our tests).
      Column chunks, unknown chunk sizes and non-square shapes are refused naming
      ``G``; weights are checked on the workers.

    References
    ----------
    H. Chen, S. F. Sultan, Y. Tian, M. Chen and S. Skiena, "Fast and accurate network
    embeddings via very sparse random projection", CIKM 2019 (arXiv:1908.11512).

    Examples
    --------
    >>> import networkx as nx
    >>> import numlab as nl
    >>> G = nx.karate_club_graph()
    >>> U = nl.graph.fastrp(G, dim=16, rng=0)
    >>> U.shape, U.dtype
    ((34, 16), dtype('float32'))
    """
    dim = check_int(dim, "dim", low=1)
    weights = _check_weights(weights)
    beta = check_scalar(beta, "beta")
    rng = check_rng(rng)
    for name, value in (("normalize", normalize), ("standardize", standardize)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be True or False; got {value!r}")
    if weight is not None and not isinstance(weight, str):
        raise TypeError(f"`weight` must be an edge attribute name or None; got {weight!r}")
    if _backend.is_lazy(G):
        from ._dask import fastrp as dask_fastrp

        return dask_fastrp(G, dim, weights, beta, normalize, standardize, dtype, draw_seed(rng))
    S, xp = adjacency(G, weight, dtype)
    n = S.shape[0]
    if n == 0:
        raise ValueError("`G` must have at least one node; got an empty graph")
    sparse = _backend.is_sparse(S)
    if (S.nnz if sparse else int(xp.count_nonzero(S))) == 0:
        raise ValueError(f"`G` must have at least one edge; got {n} isolated nodes")
    seed = draw_seed(rng)
    if sparse:
        U = _fastrp_sparse(S, xp, dim, weights, beta, normalize, seed)
    else:
        U = _fastrp_dense(S, xp, dim, weights, beta, normalize, seed)
    return kernel("graph.standardize_columns", xp)(U) if standardize else U


def _degree_terms(xp, deg, beta, dtype):
    """``(1 / deg, deg**beta)`` with 0 and 1 where the degree is 0."""
    has = deg > 0
    safe = xp.where(has, deg, xp.ones_like(deg))
    inv = xp.where(has, 1.0 / safe, xp.zeros_like(deg))
    # O(n), once: deg**beta out of the dtype's range gave inf (or all-zero) embeddings.
    # deg**beta is monotone in deg, so its range is that of the extreme degrees; checked
    # on the exponent first, so that NumPy does not warn about an overflow as well.
    lo, hi = float(xp.min(safe)), float(xp.max(safe))
    info = xp.finfo(dtype)
    limits = (math.log(float(info.smallest_normal)), math.log(float(info.max)))
    exponents = [beta * math.log(d) for d in (lo, hi) if d > 0]
    scale = None
    if lo > 0 and all(limits[0] < e < limits[1] for e in exponents):
        scale = xp.astype(xp.where(has, safe**beta, xp.ones_like(deg)), dtype)
    if scale is None or not bool(xp.all(xp.isfinite(scale) & (scale > 0))):
        raise ValueError(
            f"`beta` must keep deg**beta finite and non-zero in {dtype} for the degrees "
            f"{lo:.3g}..{hi:.3g}; got beta={beta!r}"
        )
    return xp.astype(inv, dtype), scale


def _projection_scale(n, dim):
    density = 1.0 / math.sqrt(n)
    return density, math.sqrt(1.0 / density) / math.sqrt(dim)


def _row_of_entry(xp, indptr):
    """The row of each stored entry of a CSR matrix (works for NumPy and CuPy)."""
    nnz = int(indptr[-1])
    return xp.searchsorted(indptr[1:], xp.arange(nnz, dtype=indptr.dtype), side="right")


def _fastrp_sparse(S, xp, dim, weights, beta, normalize, seed):
    n = S.shape[0]
    dtype = S.dtype
    deg = S.astype(xp.float64).sum(axis=1)
    deg = (deg.A if hasattr(deg, "A") else deg).reshape(-1)  # np.matrix from scipy
    inv_deg, deg_scale = _degree_terms(xp, deg, beta, dtype)
    # R^T (n x dim): the columns of the counter-based (dim x n) matrix, one per node.
    density, scale = _projection_scale(n, dim)
    table = _backend.asarray(gap_table(density, dim), xp=xp, device=_backend.device(S))
    indptr, indices, signs = kernel("random_projection.hash_columns", xp)(seed, table, n)
    values = signs.astype(dtype) * (deg_scale[_row_of_entry(xp, indptr)] * dtype.type(scale))
    return kernel("graph.fastrp_propagate", xp)(
        S.indptr, S.indices, S.data, inv_deg, indptr, indices, values, dim, weights, normalize
    )


def _fastrp_dense(S, xp, dim, weights, beta, normalize, seed):
    n = S.shape[0]
    dtype = S.dtype
    dev = _backend.device(S)
    deg = xp.sum(xp.astype(S, xp.float64), axis=1)
    inv_deg, deg_scale = _degree_terms(xp, deg, beta, dtype)
    A = S * inv_deg[:, None]
    density, scale = _projection_scale(n, dim)
    table = _backend.asarray(gap_table(density, dim), xp=xp, device=dev)
    RT = _dense_columns(xp, seed, table, n, scale, dtype)
    first = A @ (RT * deg_scale[:, None])
    return _weighted_sum(xp, first, weights, normalize, lambda X: A @ X)
