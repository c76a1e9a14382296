"""VerySparseRandomProjection on Dask arrays chunked by rows.

Imported only when a Dask array reaches ``fit``, ``transform`` or ``inverse_transform``.

``transform`` maps every row block through the in-memory ``transform`` of an estimator
rebuilt on the worker from the fitted parameters (seed_, n_components_, density_,
n_features_in_, dense_output): the counter-based hash regenerates the columns of ``R``
there, so the matrix is never built on the client nor shipped, and only a few numbers
travel with each task. Every kernel computes a row of ``X @ R.T`` from that row alone,
so the blocks are exactly the rows the in-memory call gives: identical bit for bit,
whatever the chunking.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_row_chunked


def _out_dtype(dtype):
    # scikit-learn's validation keeps float32 and float64 and turns the rest into float64
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def check_rows(X):
    """The Dask ``X`` validated (no data read), lazily cast to float64 unless float32/64."""
    X = check_row_chunked(X, "X")
    dtype = _out_dtype(X.dtype)
    return X if X.dtype == dtype else X.astype(dtype)


def _params(est):
    """What a worker needs to rebuild the fitted estimator (plain numbers, no matrix)."""
    return {
        "n_components": est.n_components,
        "density": est.density,
        "dense_output": bool(est.dense_output),
        "matrix_free": bool(est.matrix_free),
        "seed_": est.seed_,
        "n_components_": est.n_components_,
        "density_": est.density_,
        "n_features_in_": est.n_features_in_,
    }


def _transform_block(block, params):
    """One row block through the in-memory transform (runs on the worker)."""
    from ._estimator import VerySparseRandomProjection

    est = VerySparseRandomProjection(
        params["n_components"], density=params["density"], dense_output=params["dense_output"],
        matrix_free=params["matrix_free"],
    )
    for name in ("seed_", "n_components_", "density_", "n_features_in_"):
        setattr(est, name, params[name])
    est._n_features_out = params["n_components_"]
    return est.transform(block)


def transform(est, X):
    """Lazy ``X @ R.T``, chunked by the rows of ``X``."""
    if "_components" in est.__dict__:
        raise NotImplementedError(
            "`components_` was assigned: a Dask `X` is projected with the matrix of `seed_`, "
            "regenerated on the workers; transform the blocks with your matrix yourself "
            "(X.map_blocks(lambda b: b @ R.T))"
        )
    X = check_rows(X)
    if X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"`X` must have {est.n_features_in_} features, as in fit; got {X.shape[1]}"
        )
    dtype = _out_dtype(X.dtype)
    sparse_out = type(X._meta).__module__.startswith("scipy.sparse") and not est.dense_output
    if sparse_out:
        import scipy.sparse

        meta = scipy.sparse.csr_matrix((0, 0), dtype=dtype)
    else:
        meta = np.empty((0, 0), dtype=dtype)
    return X.map_blocks(
        _transform_block,
        _params(est),
        chunks=(X.chunks[0], (est.n_components_,)),
        dtype=dtype,
        meta=meta,
    )


def inverse_transform(est, X):
    """Lazy ``X @ pinv(R).T``: ``pinv(R)`` (n_features x n_components, dense) is computed
    once on the client, as the in-memory call does, and shared by the blocks as one key."""
    from ..linalg._rsvd_dask import _matmul

    X = check_rows(X)
    if X.shape[1] != est.n_components_:
        raise ValueError(
            f"`X` must have {est.n_components_} columns (n_components_); got {X.shape[1]}"
        )
    dtype = _out_dtype(X.dtype)
    if est.matrix_free:
        R = est._materialise(np.empty((0, est.n_features_in_), dtype=dtype))
    else:
        R = est.components_
    R = R.toarray() if hasattr(R, "toarray") else np.asarray(R)
    pinv = np.linalg.pinv(R.astype(dtype))
    return _matmul(X, pinv.T, dtype)
