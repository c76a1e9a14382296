"""CuPy kernels of the graph family (FastRP).

The products with the transition matrix are cuSPARSE's (through ``cupyx.scipy.sparse``);
the row normalisation and the weighted sum are one fused elementwise kernel per step.
"""

from __future__ import annotations

import cupy
import cupyx.scipy.sparse


@cupy.memoize(for_each_device=True)
def _accumulate():
    return cupy.ElementwiseKernel(
        "T x, float64 scale",
        "T acc",
        "acc += (T)scale * x",
        "numlab_fastrp_accumulate",
    )


def _row_scales(current, weight, normalize):
    if not normalize:
        return cupy.full((current.shape[0], 1), weight, dtype=cupy.float64)
    norms = cupy.sqrt(cupy.sum(current.astype(cupy.float64) ** 2, axis=1, keepdims=True))
    return cupy.where(norms > 0, weight / cupy.where(norms > 0, norms, 1.0), weight)


def fastrp_propagate(indptr, indices, data, row_scale, r_indptr, r_indices, r_data, dim, weights, normalize):
    """CuPy version of :func:`numlab.graph._fastrp.fastrp_propagate`."""
    weights = [float(w) for w in weights]
    last = max(i for i, w in enumerate(weights) if w != 0)
    dtype = r_data.dtype
    n = indptr.shape[0] - 1
    A = cupyx.scipy.sparse.csr_matrix(
        (cupy.asarray(data, dtype=dtype), cupy.asarray(indices, dtype=cupy.int32), cupy.asarray(indptr, dtype=cupy.int32)),
        shape=(n, n),
    )
    LR = cupyx.scipy.sparse.csr_matrix(
        (cupy.asarray(r_data), cupy.asarray(r_indices, dtype=cupy.int32), cupy.asarray(r_indptr, dtype=cupy.int32)),
        shape=(n, dim),
    )
    A = cupyx.scipy.sparse.diags(cupy.asarray(row_scale, dtype=dtype)) @ A  # D^-1 S
    acc = cupy.zeros((n, dim), dtype=dtype)
    current = (A @ LR).toarray()
    for i in range(last + 1):
        if i:
            current = A @ current
        if weights[i] != 0:
            _accumulate()(current, _row_scales(current, weights[i], normalize), acc)
    return acc
