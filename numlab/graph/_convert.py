"""Graphs in, CSR adjacency out: networkx through edge arrays, sparse and dense as they are."""

from __future__ import annotations

from itertools import chain
from operator import methodcaller

import numpy as np

from .. import _backend
from .._validation import check_array


def _is_networkx(G) -> bool:
    return type(G).__module__.startswith("networkx")


def networkx_to_csr(G, weight="weight", dtype=np.float64):
    """The adjacency of a networkx graph as a ``scipy.sparse.csr_matrix``.

    Rows and columns in the order of ``list(G.nodes())``; entry (u, v) is the weight of
    the edge u -> v (``weight`` attribute, 1 where absent or when ``weight`` is None),
    parallel edges of multigraphs summed, an undirected edge stored both ways and a
    self loop once (networkx's ``to_scipy_sparse_array`` convention). Built from edge
    arrays collected with ``numpy.fromiter`` over the adjacency dicts (no Python code
    per edge), several times faster than networkx's generic conversion.
    """
    import scipy.sparse

    # networkx's own dict-of-dicts (G.adj wraps it in views); iterated with C-level
    # chain/map so that no Python code runs per edge.
    adj = getattr(G, "_adj", None)
    if not isinstance(adj, dict):
        adj = {u: dict(nbrs) for u, nbrs in G.adj.items()}
    rows = list(adj.values())
    nodes = list(adj)
    n = len(nodes)
    counts = np.fromiter(map(len, rows), dtype=np.int64, count=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    neighbours = chain.from_iterable(rows)
    if nodes != list(range(n)):
        neighbours = map({node: i for i, node in enumerate(nodes)}.__getitem__, neighbours)
    indices = np.fromiter(neighbours, dtype=np.int64, count=nnz)
    attributes = chain.from_iterable(map(dict.values, rows))
    if weight is None and not G.is_multigraph():
        data = np.ones(nnz, dtype=np.float64)
    else:
        if not G.is_multigraph():
            values = map(methodcaller("get", weight, 1), attributes)
        elif weight is None:
            values = map(len, attributes)
        else:
            get = methodcaller("get", weight, 1)
            values = (sum(map(get, keys.values())) for keys in attributes)
        try:
            data = np.fromiter(values, dtype=np.float64, count=nnz)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"`G` must have real numbers as edge weights (attribute {weight!r}); got {exc}"
            ) from None
    S = scipy.sparse.csr_matrix((data.astype(dtype, copy=False), indices, indptr), shape=(n, n))
    S.sum_duplicates()  # also sorts the indices
    return S


def _default_dtype(dtype, xp):
    """A floating matrix's dtype, float32 for the rest (and float16: no kernel takes it)."""
    half = getattr(xp, "float16", None)  # not compared with None: NumPy reads it as float64
    if xp.isdtype(dtype, "real floating") and (half is None or dtype != half):
        return dtype
    return xp.float32


def adjacency(G, weight, dtype):
    """``(S, xp)``: the adjacency of ``G`` as a CSR matrix of its library, or a dense array.

    ``dtype`` None picks float32 for graphs and integer or boolean matrices, and keeps
    a floating matrix's dtype.
    """
    if _is_networkx(G):
        dtype = np.float32 if dtype is None else _check_dtype(dtype, _backend.namespace(xp=np))
        S = networkx_to_csr(G, weight=weight, dtype=dtype)
        xp = _backend.namespace(S)
        _check_weights(S.data, xp)
        return S, xp
    if _backend.is_sparse(G):
        xp = _backend.namespace(G)
        if G.ndim != 2 or G.shape[0] != G.shape[1]:
            raise ValueError(f"`G` must be a square adjacency matrix; got shape {tuple(G.shape)}")
        check_array(G, "G", xp=xp, dtype="numeric", allow_sparse=True, allow_empty=True)
        S = _backend.as_csr(G, xp=xp)
        if dtype is None:
            dtype = _default_dtype(S.dtype, xp)
        else:
            dtype = _check_dtype(dtype, xp)
        if S.dtype != dtype:  # astype copies even to the same dtype (and cupyx has no copy=)
            S = S.astype(dtype)
        _check_weights(S.data, xp)
        return S, xp
    if not _backend.is_array(G):
        raise TypeError(
            "`G` must be a networkx graph, a scipy.sparse / cupyx sparse adjacency matrix "
            f"or a dense square array; got {type(G).__name__}"
        )
    xp = _backend.namespace(G)
    S = check_array(G, "G", ndim=2, dtype="numeric", allow_empty=True)
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"`G` must be a square adjacency matrix; got shape {tuple(S.shape)}")
    if dtype is None:
        dtype = _default_dtype(S.dtype, xp)
    else:
        dtype = _check_dtype(dtype, xp)
    S = xp.astype(S, dtype)
    _check_weights(S, xp)
    return S, xp


def _check_dtype(dtype, xp):
    """``dtype`` if it names float32 or float64 (of ``xp`` or NumPy), else a TypeError."""
    try:
        ok = dtype in (xp.float32, xp.float64) or np.dtype(dtype) in (np.float32, np.float64)
    except TypeError:
        ok = False
    if not ok:
        raise TypeError(f"`dtype` must be None, float32 or float64; got {dtype!r}")
    return dtype


def _check_weights(values, xp):
    if values.shape[0] == 0:
        return
    if not bool(xp.all(xp.isfinite(values))):
        raise ValueError("`G` must have finite edge weights; got NaN or infinity")
    if bool(xp.any(values < 0)):
        raise ValueError(
            f"`G` must have non-negative edge weights; got a minimum of {float(xp.min(values))!r}"
        )
