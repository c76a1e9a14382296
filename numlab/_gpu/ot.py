"""CuPy kernels of :mod:`numlab.ot` (entropic optimal transport on the GPU).

Same signatures and results as the generic versions in :mod:`numlab.ot._kernels`.
Matrix-vector products go to cuBLAS, sparse ones to cuSPARSE; the element-wise and
reduction steps that the generic code would do with ``n x m`` temporaries are fused
CUDA kernels here (exponentials written straight into ``K``, log-sum-exp reductions,
a shared-memory histogram of the plan weights by binary exponent).
"""

from __future__ import annotations

import cupy
import numpy
import cupyx.scipy.sparse

N_BINS = 2048
_CTYPES = {cupy.dtype(cupy.float32): "float", cupy.dtype(cupy.float64): "double"}

# --------------------------------------------------------------------------- factories


@cupy.memoize(for_each_device=True)
def _max_reduction():
    # max over an axis of (x - M) / reg, with x broadcast along that axis
    return cupy.ReductionKernel(
        "T M, T x, float64 reg",
        "float64 y",
        "((double)x - (double)M) / reg",
        "fmax(a, b)",
        "y = a",
        "__longlong_as_double(0xfff0000000000000ULL)",
        "numlab_ot_shifted_max",
    )


@cupy.memoize(for_each_device=True)
def _sumexp_reduction():
    # sum over an axis of exp((x - M) / reg - mx)
    return cupy.ReductionKernel(
        "T M, T x, float64 mx, float64 reg",
        "float64 y",
        "exp(((double)x - (double)M) / reg - mx)",
        "a + b",
        "y = a",
        "0",
        "numlab_ot_shifted_sumexp",
    )


@cupy.memoize(for_each_device=True)
def _column_kernel_elementwise():
    return cupy.ElementwiseKernel(
        "T M, T f, float64 mx, float64 reg, float64 clamp",
        "T out",
        "double s = ((double)f - (double)M) / reg - mx; out = s >= clamp ? exp(s) : 0.0;",
        "numlab_ot_column_kernel",
    )


@cupy.memoize(for_each_device=True)
def _kernel_matrix_elementwise():
    return cupy.ElementwiseKernel(
        "T M, T f, T g, float64 reg, float64 clamp",
        "T out",
        "double s = ((double)f + (double)g - (double)M) / reg; out = s >= clamp ? exp(s) : 0.0;",
        "numlab_ot_kernel_matrix",
    )


@cupy.memoize(for_each_device=True)
def _scale_plan_elementwise():
    return cupy.ElementwiseKernel(
        "T u, T v",
        "T K",
        "K = u * K * v;",
        "numlab_ot_scale_plan",
    )


@cupy.memoize(for_each_device=True)
def _keep_elementwise():
    # the exponent bin of w = K * uw * vw, compared with the lowest kept bin
    return cupy.ElementwiseKernel(
        "T K, float64 uw, float64 vw, int64 min_exponent",
        "bool keep",
        "double w = (double)K * uw * vw;"
        "long long e = (__double_as_longlong(w) >> 52) & 0x7FF;"
        "keep = e >= min_exponent;",
        "numlab_ot_keep",
    )


_HISTOGRAM_SOURCE = r"""
extern "C" __global__ void numlab_ot_histogram_{ctype}(
    const {ctype}* K, const double* uw, const double* vw,
    const long long n, const long long m,
    double* mass, unsigned long long* count)
{{
    __shared__ double smass[{nbins}];
    __shared__ unsigned long long scount[{nbins}];
    for (int t = threadIdx.x; t < {nbins}; t += blockDim.x) {{
        smass[t] = 0.0;
        scount[t] = 0ULL;
    }}
    __syncthreads();
    const long long total = n * m;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += stride) {{
        const long long i = idx / m;
        const long long j = idx - i * m;
        const double w = (double)K[idx] * uw[i] * vw[j];
        const int e = (int)((__double_as_longlong(w) >> 52) & 0x7FF);
        atomicAdd(&smass[e], w);
        atomicAdd(&scount[e], 1ULL);
    }}
    __syncthreads();
    for (int t = threadIdx.x; t < {nbins}; t += blockDim.x) {{
        if (scount[t] != 0ULL) {{
            atomicAdd(&mass[t], smass[t]);
            atomicAdd(&count[t], scount[t]);
        }}
    }}
}}
"""


@cupy.memoize(for_each_device=True)
def _histogram_kernel(ctype):
    source = _HISTOGRAM_SOURCE.format(ctype=ctype, nbins=N_BINS)
    return cupy.RawKernel(source, f"numlab_ot_histogram_{ctype}")


# --------------------------------------------------------------------------- kernels


def scaling_step(K, u, v, a, b):
    """One Sinkhorn iteration (two cuBLAS matrix-vector products); see the generic version."""
    kv = K @ v
    err = cupy.abs(u * kv - a).sum()
    u_new = a / kv
    v_new = b / (u_new @ K)
    return u_new, v_new, err


def lse_rows(M, g, reg):
    """``out_i = log sum_j exp((g_j - M_ij) / reg)`` as two fused row reductions."""
    mx = _max_reduction()(M, g[None, :], float(reg), axis=1)
    safe = cupy.where(mx > -cupy.inf, mx, 0.0)
    s = _sumexp_reduction()(M, g[None, :], safe[:, None], float(reg), axis=1)
    return (safe + cupy.log(s)).astype(g.dtype, copy=False)


def column_kernel(M, f, reg, clamp, out):
    """Column maxima (one reduction), then ``K`` written in one element-wise pass."""
    mx = _max_reduction()(M, f[:, None], float(reg), axis=0)
    _column_kernel_elementwise()(M, f[:, None], mx[None, :], float(reg), float(clamp), out)
    colsum = out.sum(axis=0, dtype=cupy.float64).astype(out.dtype, copy=False)
    return out, colsum.astype(f.dtype, copy=False), mx.astype(f.dtype, copy=False)


def kernel_matrix(M, f, g, reg, clamp, out):
    """``exp((f_i + g_j - M_ij) / reg)`` (0 below ``clamp``) written into ``out``."""
    _kernel_matrix_elementwise()(M, f[:, None], g[None, :], float(reg), float(clamp), out)
    return out


def marginals(K, u, v, ra, rb):
    """Marginals by cuBLAS, the weight histogram by a shared-memory RawKernel."""
    r = (u * (K @ v)).astype(u.dtype, copy=False)
    c = (v * (u @ K)).astype(v.dtype, copy=False)
    n, m = K.shape
    K = cupy.ascontiguousarray(K)
    uw = (u.astype(cupy.float64) * ra).astype(cupy.float64, copy=False)
    vw = (v.astype(cupy.float64) * rb).astype(cupy.float64, copy=False)
    mass = cupy.zeros(N_BINS, dtype=cupy.float64)
    count = cupy.zeros(N_BINS, dtype=cupy.uint64)
    threads = 256
    blocks = int(min(max(1, (n * m + threads - 1) // threads), 4 * 132))
    _histogram_kernel(_CTYPES[K.dtype])(
        (blocks,), (threads,), (K, uw, vw, cupy.int64(n), cupy.int64(m), mass, count)
    )
    return r, c, mass, count.astype(cupy.int64)


def sparse_plan_csr(K, u, v, ra, rb, min_exponent, nnz):
    """CSR arrays of the kept plan entries: a fused mask, ``nonzero``, one gather."""
    n, m = K.shape
    uw = u.astype(cupy.float64) * ra
    vw = v.astype(cupy.float64) * rb
    keep = _keep_elementwise()(K, uw[:, None], vw[None, :], int(min_exponent))
    rows, cols = cupy.nonzero(keep)
    data = (u[rows].astype(cupy.float64) * K[rows, cols]) * v[cols]
    indptr = cupy.zeros(n + 1, dtype=cupy.int64)
    indptr[1:] = cupy.cumsum(keep.sum(axis=1, dtype=cupy.int64))
    return indptr, cols.astype(cupy.int32), data.astype(cupy.float64, copy=False)


def _csr(K, u, v, ra, rb, min_exponent, nnz):
    indptr, indices, data = sparse_plan_csr(K, u, v, ra, rb, min_exponent, nnz)
    return cupyx.scipy.sparse.csr_matrix((data, indices, indptr), shape=K.shape)


def newton_direction(K, u, v, ra, rb, min_exponent, nnz, r, c, b1, b2, rtol, maxiter):
    """Jacobi-preconditioned CG on the Schur complement, with cuSPARSE products.

    Same iteration as the generic version; the residual test syncs the device once per
    CG iteration (CG needs the scalars on the host anyway).
    """
    S = _csr(K, u, v, ra, rb, min_exponent, nnz)
    St = S.T.tocsr()
    r = r.astype(cupy.float64)
    c = c.astype(cupy.float64)
    b1 = b1.astype(cupy.float64)
    b2 = b2.astype(cupy.float64)
    bb = float(b1 @ b1 + b2 @ b2)
    x2 = cupy.zeros(c.shape[0])
    it = 0
    if bb == 0.0:
        return cupy.zeros(r.shape[0], dtype=u.dtype), x2.astype(v.dtype), it
    res = b2 - St @ (b1 / r)
    p = res / c
    rz = float(res @ p)
    rr = float(res @ res)
    stop = rtol * rtol * bb
    while it < maxiter and rr > stop:
        it += 1
        q = c * p - St @ ((S @ p) / r)
        pq = float(p @ q)
        if not pq > 0.0:
            break
        alpha = rz / pq
        x2 += alpha * p
        res -= alpha * q
        rr = float(res @ res)
        if rr <= stop:
            break
        z = res / c
        rz_new = float(res @ z)
        beta = rz_new / rz
        rz = rz_new
        p = z + beta * p
    x1 = (b1 - S @ x2) / r
    return x1.astype(u.dtype, copy=False), x2.astype(v.dtype, copy=False), it


def newton_direct(K, u, v, ra, rb, min_exponent, nnz, r, c, b1, b2, shift):
    """Dense Schur complement from a sparse-sparse product (cuSPARSE), Cholesky (cuSOLVER)."""
    import cupyx.scipy.linalg

    S = _csr(K, u, v, ra, rb, min_exponent, nnz)
    r = r.astype(cupy.float64)
    c = c.astype(cupy.float64)
    b1 = b1.astype(cupy.float64)
    b2 = b2.astype(cupy.float64)
    d = 1.0 / cupy.sqrt(c)
    # W = diag(r)^-1/2 S diag(c)^-1/2, so that D A D = I - W^T W
    W = (cupyx.scipy.sparse.diags(1.0 / cupy.sqrt(r)) @ S @ cupyx.scipy.sparse.diags(d)).tocsr()
    A = -(W.T.tocsr() @ W).toarray()
    A[cupy.diag_indices(A.shape[0])] += 1.0 + shift
    # cuSOLVER reports a failed factorisation only through its info flag: make it raise
    # (numpy.linalg.LinAlgError) instead of returning a partly factored matrix
    with cupyx.errstate(linalg="raise"):
        L = cupy.linalg.cholesky(A)
    if not bool(cupy.all(cupy.isfinite(cupy.diagonal(L)))):
        raise numpy.linalg.LinAlgError("Schur complement not positive definite")
    rhs = d * (b2 - S.T @ (b1 / r))
    y = cupyx.scipy.linalg.solve_triangular(L, rhs, lower=True)
    x2 = d * cupyx.scipy.linalg.solve_triangular(L, y, lower=True, trans="T")
    x1 = (b1 - S @ x2) / r
    return x1.astype(u.dtype, copy=False), x2.astype(v.dtype, copy=False)


def scale_plan(K, u, v):
    """``K <- diag(u) K diag(v)`` in place."""
    _scale_plan_elementwise()(u[:, None], v[None, :], K)
    return K
