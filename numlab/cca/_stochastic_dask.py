"""StochasticCCA / StochasticPLS on Dask arrays chunked by rows.

Imported only when a Dask array reaches ``fit``, ``partial_fit``, ``transform`` or
``score``.

``fit`` streams the row blocks to the client, one block (of every view) at a time,
each computed on the workers; the client runs the in-memory mini-batch updates over
the block while the next block is being computed (prefetch). With a
``distributed.Client`` as the scheduler the next block is ``client.compute``'d
(futures, cancelled when the fit stops early); with any other scheduler (threads,
processes, synchronous) a single background thread runs ``dask.compute`` on it. At
most two blocks are held on the client.

The order of the computation:

1. set-up on the first block, exactly as the in-memory ``fit`` on that block does
   (feature scales and whitening, SGD's curvature, initial weights, and the
   sub-sample the "adaptive" schedule monitors);
2. each epoch visits the blocks in their order; each block's rows in a random order
   (``permutation`` of the block's rows from the fit's generator), ``batch_size``
   rows per step (the block's rows when fewer), ``rows // batch_size`` steps per
   block: the in-memory steps, on mini-batches that never straddle two blocks;
3. one parallel pass over all blocks for the means and the covariance of the
   projections, which rotate the weights to ordered canonical directions (on the
   whole data, as in memory).

So a fit on one block is the in-memory fit (same draws and steps, bit for bit; the
final rotation to rounding, its sums being taken block-wise); with several blocks the
in-memory fit shuffles across the whole data and the two differ by their sample
order, reaching the same correlations. Every step is ``partial_fit``'s step at the
scheduled rate: with ``lr_schedule="constant"`` the fit equals, bit for bit, the
in-memory fit of one epoch on the first block followed by ``partial_fit`` on the
same mini-batches (see tests/test_cca_dask.py).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._validation import check_array, check_rng, check_row_chunked
from ._exact import _is_view_sequence, view_names


def _float_dtype(dtype):
    """The dtype the in-memory path computes in for one view of ``dtype``."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype in (np.float16, np.float32) else np.dtype(np.float64)


def _common_dtype(arrays):
    dtypes = {_float_dtype(a.dtype) for a in arrays}
    return np.dtype(np.float32) if dtypes == {np.dtype(np.float32)} else np.dtype(np.float64)


def _describe(chunks, limit=6):
    text = ", ".join(str(c) for c in chunks[:limit])
    return f"({text}{', ...' if len(chunks) > limit else ''})"


def check_views(X, Y, *, aligned=True):
    """The Dask views (validated, no data read) and their names.

    Every view must be a Dask array of NumPy blocks chunked by rows only; with
    ``aligned`` all views share the row chunks of the first, which must be known.
    """
    if Y is None and _is_view_sequence(X):
        raw = list(X)
        names = view_names(X, len(raw))
    elif Y is None:
        raw, names = [X], ["X"]
    else:
        raw, names = [X, Y], ["X", "Y"]
    arrays = []
    for v, name in zip(raw, names, strict=True):
        if not _backend.is_lazy(v):
            got = _backend.library_name(v) if _backend.is_array(v) else type(v).__name__
            other = names[0] if name != names[0] else names[-1]
            raise TypeError(
                f"`{name}` must be a Dask array like `{other}`; got {got} (pass every "
                "view as a Dask array with the same row chunks)"
            )
        if getattr(v, "ndim", 2) == 1:  # one feature, as in memory
            v = v[:, None]
        arrays.append(check_row_chunked(v, name, allow_sparse=False))
    if not aligned:
        return arrays, names
    chunks = arrays[0].chunks[0]
    if any(math.isnan(c) for c in chunks):
        raise ValueError(
            f"`{names[0]}` must have known row chunk sizes; got shape {arrays[0].shape} "
            f"(call `{names[0]}.compute_chunk_sizes()` first)"
        )
    for v, name in zip(arrays[1:], names[1:], strict=True):
        if v.shape[0] != arrays[0].shape[0]:
            raise ValueError(
                f"`{name}` must have as many samples (rows) as `{names[0]}`; "
                f"got {v.shape[0]} rows against {arrays[0].shape[0]}"
            )
        if v.chunks[0] != chunks:
            raise ValueError(
                f"`{name}` must have the same row chunks as `{names[0]}` (a block of every "
                f"view holds the same samples); got {_describe(v.chunks[0])} against "
                f"{_describe(chunks)}: pass `{name}.rechunk({{0: {names[0]}.chunks[0]}})`"
            )
    return arrays, names


def _block_views(blocks, names, dtype):
    """Computed NumPy blocks as the in-memory path takes them: checked (finite),
    floating of the views' common dtype, C order."""
    out = []
    for b, name in zip(blocks, names, strict=True):
        b = check_array(np.asarray(b), name, ndim=2)
        out.append(np.ascontiguousarray(b, dtype=dtype))
    return out


def _distributed_client(arrays):
    """The ``distributed.Client`` that would compute ``arrays``, or None."""
    from dask.base import get_scheduler

    scheduler = get_scheduler(collections=arrays)
    client = getattr(scheduler, "__self__", None)
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return client if isinstance(client, Client) else None


class _Stream:
    """The row blocks of the views, computed one at a time with the next prefetched."""

    def __init__(self, arrays):
        self.arrays = arrays
        self.client = _distributed_client(arrays)
        self.pool = None
        if self.client is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(1, thread_name_prefix="numlab-cca-prefetch")
        self.pending = None  # (block index, handle)

    def _submit(self, i):
        parts = [a.blocks[i] for a in self.arrays]
        if self.client is not None:
            return self.client.compute(parts)
        import dask

        return self.pool.submit(dask.compute, *parts)

    def _result(self, handle):
        if self.client is not None:
            return list(self.client.gather(handle))
        return list(handle.result())

    def _drop(self):
        if self.pending is None:
            return
        _, handle = self.pending
        self.pending = None
        if self.client is not None:
            self.client.cancel(handle)
        elif not handle.cancel():
            handle.exception()  # wait for the running one; its error is not ours

    def get(self, i, prefetch=None):
        """The blocks ``i`` of the views (NumPy), after submitting block ``prefetch``."""
        if self.pending is not None and self.pending[0] == i:
            handle, self.pending = self.pending[1], None
        else:
            self._drop()
            handle = self._submit(i)
        if prefetch is not None:
            self.pending = (prefetch, self._submit(prefetch))
        return self._result(handle)

    def close(self):
        self._drop()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _block_stats(blocks, names, dtype, shifts, weights):
    """Per row block (on a worker): the column sums of the views, and of the shifted
    projections ``P = [(X_i - shift_i) W_i]`` their column sums and ``P^T P``."""
    views = _block_views(blocks, names, dtype)
    sums = [np.sum(v, axis=0) for v in views]
    P = np.concatenate(
        [v @ W - s @ W for v, s, W in zip(views, shifts, weights, strict=True)], axis=1
    )
    return views[0].shape[0], sums, np.sum(P, axis=0), P.T @ P


def _finish(est, arrays, names, dtype):
    """Means and ordered canonical directions on the whole data: one parallel pass."""
    import dask

    weights = est._apply(est._P, est._params)
    shifts = list(est.means_)  # running means: the shift keeps the sums well conditioned
    # not optimised one by one: views sliced from one array share its blocks
    delayed = [a.to_delayed(optimize_graph=False).ravel() for a in arrays]
    parts = [
        dask.delayed(_block_stats)(list(blocks), names, dtype, shifts, weights)
        for blocks in zip(*delayed, strict=True)
    ]
    stats = dask.compute(*parts)
    n = sum(s[0] for s in stats)
    sums = [sum(s[1][i] for s in stats) for i in range(len(arrays))]
    psum = sum(s[2] for s in stats)
    cross = sum(s[3] for s in stats)
    mean = psum / n
    cov = (cross - n * np.outer(mean, mean)) / (n - 1)
    est.means_ = [s / n for s in sums]
    est._seen = n
    evals, rotations = est._ritz_solve(cov, weights, np)
    est.weights_ = [W @ R for W, R in zip(weights, rotations, strict=True)]
    est.correlations_ = evals
    return est


def fit(est, X, Y):
    """:meth:`StochasticCCA.fit` for row-chunked Dask views."""
    arrays, names = check_views(X, Y)
    if len(arrays) < 2:
        raise TypeError("`Y` is missing: pass two views X, Y or a sequence of views")
    sizes = [int(c) for c in arrays[0].chunks[0]]
    low = 4 if est.unbiased else 2
    if min(sizes) < low:
        raise ValueError(
            f"`{names[0]}` must have at least {low} rows in every row chunk (a mini-batch "
            f"never straddles two blocks); got a chunk of {min(sizes)} rows: rechunk it"
        )
    dtype = _common_dtype(arrays)
    est._check_params(arrays)  # before reading any data
    rng = check_rng(est.random_state, "random_state")
    cap = est.max_iter if est.epochs is None else est.epochs
    m = len(sizes)
    stream = _Stream(arrays)
    try:
        first = _block_views(stream.get(0, 1 if m > 1 else None), names, dtype)
        est.means_ = [np.mean(v, axis=0) for v in first]
        est._seen = sizes[0]
        est._start(first, np, rng)

        def epoch_blocks(epoch):
            more = epoch + 1 < cap
            for i in range(m):
                if i == 0 and (epoch == 0 or m == 1):
                    yield first
                    continue
                nxt = i + 1 if i + 1 < m else (0 if more else None)
                views = _block_views(stream.get(i, nxt), names, dtype)
                if epoch == 0:  # running means: the callback's, and the final pass's shift
                    total = est._seen + sizes[i]
                    est.means_ = [
                        mu + (sizes[i] / total) * (np.mean(v, axis=0) - mu)
                        for v, mu in zip(views, est.means_, strict=True)
                    ]
                    est._seen = total
                yield views

        est._train(epoch_blocks, sizes, first, np, rng)
    finally:
        stream.close()
    return _finish(est, arrays, names, dtype)


def partial_fit(est, X, Y):
    """:meth:`StochasticCCA.partial_fit` on each row block in order (the next prefetched)."""
    arrays, names = check_views(X, Y)
    m = arrays[0].numblocks[0]
    stream = _Stream(arrays)
    try:
        for i in range(m):
            blocks = stream.get(i, i + 1 if i + 1 < m else None)
            if len(blocks) == 1:
                est.partial_fit(blocks[0])
            elif Y is not None:
                est.partial_fit(blocks[0], blocks[1])
            else:
                est.partial_fit(blocks)
    finally:
        stream.close()
    return est


def _project(block, mean, W, name, dtype):
    v = _block_views([block], [name], dtype)[0]
    return (v - mean.astype(dtype)) @ W.astype(dtype)


def transform(est, X, Y):
    """Lazy projections ``(X_i - mean_i) W_i``, block by block (``map_blocks``)."""
    arrays, names = check_views(X, Y, aligned=False)
    if len(arrays) > len(est.weights_):
        raise ValueError(f"`X` must hold at most {len(est.weights_)} views; got {len(arrays)}")
    if not isinstance(est.weights_[0], np.ndarray):
        raise TypeError(
            f"`{names[0]}` must be an array of the library of the fit "
            f"({_backend.library_name(est.weights_[0])}); got a Dask array of NumPy blocks"
        )
    dtype = _common_dtype(arrays)
    out = []
    for v, name, mean, W in zip(arrays, names, est.means_, est.weights_, strict=False):
        if v.shape[1] != W.shape[0]:
            raise ValueError(
                f"`{name}` must have {W.shape[0]} features (columns), as in fit; got {v.shape[1]}"
            )
        out.append(
            v.map_blocks(
                _project, mean, W, name, dtype,
                chunks=(v.chunks[0], (W.shape[1],)), dtype=dtype,
                meta=np.empty((0, 0), dtype=dtype),
            )
        )
    return out[0] if len(out) == 1 else tuple(out)
