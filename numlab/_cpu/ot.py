"""Numba kernels of :mod:`numlab.ot` (entropic optimal transport).

Each kernel has the signature and the result of its generic (array-API) version in
:mod:`numlab.ot._kernels`, which is its specification. None of them allocates an
``n x m`` temporary: they stream over ``M`` or the kernel matrix ``K`` row by row.

Compile time (issue 17): the jitted kernels allocate nothing. Their Python wrappers
allocate the outputs and scratch arrays with NumPy and pass them in, so a first call
compiles none of Numba's ``np.empty`` / ``np.zeros`` / ``astype`` / ``view`` overloads
(each a separate compilation of 0.05-0.25 s, per dtype and argument form), and the
exponent of a float64 is read by a scalar bit view inlined in its caller.

Reductions over a row use four independent accumulators: without ``fastmath`` LLVM
keeps a single accumulator in strict order, which makes a dot product latency bound
(four times slower than the memory it reads).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Number of histogram bins: one per biased float64 exponent.
N_BINS = 2048

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(14))


@njit(inline="always")
def _exp(x):
    """``exp(x)`` within 1.2 ulp, without a libm call, so that LLVM vectorises its loops.

    ``math.exp`` is a call into libm, which keeps a loop over ``n x m`` exponentials
    scalar; this branch-free version (``x = k ln 2 + r``, ``|r| <= ln 2 / 2``, Taylor
    to degree 13, ``2^k`` from its bits) made ``kernel_matrix`` and ``column_kernel``
    2.8x and ``lse_rows`` 2x faster on 2000 x 2000 (the pc2000 solve 0.37 -> 0.31 s).
    Below -708 it returns 0 (libm would give subnormals, which the callers drop
    anyway), above 709 inf (libm overflows at 709.78); NaN stays NaN.
    """
    y = min(max(x, -708.0), 709.0)
    k = math.floor(y * _LOG2E + 0.5)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = _TAYLOR[13]
    p = p * r + _TAYLOR[12]
    p = p * r + _TAYLOR[11]
    p = p * r + _TAYLOR[10]
    p = p * r + _TAYLOR[9]
    p = p * r + _TAYLOR[8]
    p = p * r + _TAYLOR[7]
    p = p * r + _TAYLOR[6]
    p = p * r + _TAYLOR[5]
    p = p * r + _TAYLOR[4]
    p = p * r + _TAYLOR[3]
    p = p * r + _TAYLOR[2]
    p = p * r + 1.0
    p = p * r + 1.0
    e = p * np.int64((np.int64(k) + 1023) << 52).view(np.float64)
    e = 0.0 if x < -708.0 else e
    e = math.inf if x > 709.0 else e
    return x if x != x else e


def scaling_step(K, u, v, a, b):
    """One Sinkhorn iteration ``u = a / (K v)``, ``v = b / (K^T u)`` (see :func:`_scaling_step`)."""
    n, m = K.shape
    u_new = np.empty(n, dtype=u.dtype)
    v_new = np.empty(m, dtype=v.dtype)
    err = _scaling_step(K, u, v, a, b, u_new, v_new, np.zeros(m))
    return u_new, v_new, err


@njit(cache=True, error_model="numpy")
def _scaling_step(K, u, v, a, b, u_new, v_new, ktu):
    """One Sinkhorn iteration ``u = a / (K v)``, ``v = b / (K^T u)`` in one pass over K.

    Rows are taken four at a time: their dots with ``v`` give four entries of ``u``, and
    while the rows are still in cache they are added, times those entries, into
    ``K^T u``. Four rows also give four independent accumulators (without ``fastmath``
    a single dot product is latency bound). Also returns the row marginal error
    ``sum_i |u_i (K v)_i - a_i|`` of the *incoming* scalings.
    """
    n, m = K.shape
    err = 0.0
    i = 0
    while i + 4 <= n:
        r0 = K[i]
        r1 = K[i + 1]
        r2 = K[i + 2]
        r3 = K[i + 3]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(m):
            vj = np.float64(v[j])
            s0 += r0[j] * vj
            s1 += r1[j] * vj
            s2 += r2[j] * vj
            s3 += r3[j] * vj
        err += abs(u[i] * s0 - a[i]) + abs(u[i + 1] * s1 - a[i + 1])
        err += abs(u[i + 2] * s2 - a[i + 2]) + abs(u[i + 3] * s3 - a[i + 3])
        u_new[i] = a[i] / s0
        u_new[i + 1] = a[i + 1] / s1
        u_new[i + 2] = a[i + 2] / s2
        u_new[i + 3] = a[i + 3] / s3
        u0 = np.float64(u_new[i])
        u1 = np.float64(u_new[i + 1])
        u2 = np.float64(u_new[i + 2])
        u3 = np.float64(u_new[i + 3])
        for j in range(m):
            ktu[j] += (r0[j] * u0 + r1[j] * u1) + (r2[j] * u2 + r3[j] * u3)
        i += 4
    while i < n:
        row = K[i]
        s = 0.0
        for j in range(m):
            s += row[j] * np.float64(v[j])
        err += abs(u[i] * s - a[i])
        u_new[i] = a[i] / s
        ui = np.float64(u_new[i])
        for j in range(m):
            ktu[j] += row[j] * ui
        i += 1
    for j in range(m):
        v_new[j] = b[j] / ktu[j]
    return err


def lse_rows(M, g, reg):
    """``out_i = log sum_j exp((g_j - M_ij) / reg)`` (max-shifted, two passes per row)."""
    n, m = M.shape
    out = np.empty(n, dtype=g.dtype)
    # row: the row's exponentials (a loop without a reduction vectorises)
    return _lse_rows(M, g, float(reg), out, np.empty(m))


@njit(cache=True, error_model="numpy")
def _lse_rows(M, g, reg, out, row):
    n, m = M.shape
    for i in range(n):
        mx = -np.inf
        for j in range(m):
            x = (g[j] - M[i, j]) / reg
            if x > mx:
                mx = x
        if mx == -np.inf:
            out[i] = -np.inf
            continue
        for j in range(m):
            row[j] = _exp((g[j] - M[i, j]) / reg - mx)
        out[i] = mx + math.log(_sum(row))
    return out


@njit(inline="always")
def _sum(x):
    # four accumulators: a strict-order sum of one is latency bound (see the module docstring)
    s0 = s1 = s2 = s3 = 0.0
    m = x.shape[0]
    j = 0
    while j + 4 <= m:
        s0 += x[j]
        s1 += x[j + 1]
        s2 += x[j + 2]
        s3 += x[j + 3]
        j += 4
    while j < m:
        s0 += x[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


def column_kernel(M, f, reg, clamp, out):
    """Exact log-domain column step fused with building the kernel matrix.

    With ``x_ij = (f_i - M_ij) / reg`` and column maxima ``mx_j``, writes
    ``out_ij = exp(x_ij - mx_j)`` (0 below ``clamp``) and returns
    ``(out, colsum, mx)``. A first pass finds the maxima (no exponential), the second
    evaluates each exponential once, for ``K`` and its column sums together.
    """
    m = M.shape[1]
    mx = np.full(m, -np.inf)
    colsum = np.zeros(m)
    _column_kernel(M, f, float(reg), float(clamp), out, mx, colsum)
    return out, colsum.astype(f.dtype), mx.astype(f.dtype)


@njit(cache=True, error_model="numpy")
def _column_kernel(M, f, reg, clamp, out, mx, colsum):
    n, m = M.shape
    for i in range(n):
        for j in range(m):
            x = (f[i] - M[i, j]) / reg
            if x > mx[j]:
                mx[j] = x
    for i in range(n):
        for j in range(m):
            s = (f[i] - M[i, j]) / reg - mx[j]
            k = _exp(s) if s >= clamp else 0.0
            out[i, j] = k
            colsum[j] += out[i, j]


def kernel_matrix(M, f, g, reg, clamp, out):
    """``out_ij = exp((f_i + g_j - M_ij) / reg)``, set to 0 where the exponent is below ``clamp``.

    The clamp keeps subnormal numbers (100x slower arithmetic on x86) out of ``K``.
    """
    _kernel_matrix(M, f, g, float(reg), float(clamp), out)
    return out


@njit(cache=True, error_model="numpy")
def _kernel_matrix(M, f, g, reg, clamp, out):
    n, m = M.shape
    for i in range(n):
        for j in range(m):
            s = (f[i] + g[j] - M[i, j]) / reg
            out[i, j] = _exp(s) if s >= clamp else 0.0


@njit(inline="always")
def _exponent(x):
    # Biased binary exponent of a float64 (0 for zero and subnormals), read from its bits.
    return (np.float64(x).view(np.int64) >> 52) & 0x7FF


def marginals(K, u, v, ra, rb):
    """Marginals of the plan ``P = diag(u) K diag(v)`` and a mass histogram.

    Returns ``r = P 1``, ``c = P^T 1``, and for the weights ``w_ij = P_ij ra_i rb_j``
    the total weight and the number of entries in each binary-exponent bin (the bin of
    ``w`` is its biased float64 exponent, 0 for zero).
    """
    n, m = K.shape
    r = np.empty(n, dtype=u.dtype)
    c = np.zeros(m)
    mass = np.zeros(N_BINS)
    count = np.zeros(N_BINS, dtype=np.int64)
    _marginals(K, u, v, ra, rb, r, c, mass, count, np.empty(m))
    return r, c.astype(v.dtype), mass, count


@njit(cache=True, error_model="numpy")
def _marginals(K, u, v, ra, rb, r, c, mass, count, vw):
    n, m = K.shape
    for j in range(m):
        vw[j] = np.float64(v[j]) * rb[j]
    for i in range(n):
        row = K[i]
        ui = np.float64(u[i])
        uw = ui * ra[i]
        s = 0.0
        for j in range(m):
            kij = np.float64(row[j])
            p = ui * kij * v[j]
            s += p
            c[j] += p
            w = kij * uw * vw[j]
            e = _exponent(w)
            mass[e] += w
            count[e] += 1
        r[i] = s


def sparse_plan_csr(K, u, v, ra, rb, min_exponent, nnz):
    """The entries of ``P = diag(u) K diag(v)`` whose weight ``w_ij = P_ij ra_i rb_j`` has a
    binary exponent ``>= min_exponent``, as CSR arrays ``(indptr, indices, data)``.

    ``nnz`` is the number of kept entries (known from :func:`marginals`' histogram), so
    the matrix is written in one pass without a COO intermediate.
    """
    n, m = K.shape
    nnz = int(nnz)
    indptr = np.empty(n + 1, dtype=np.int64)
    indices = np.empty(nnz, dtype=np.int32)
    data = np.empty(nnz)
    k = _sparse_plan_csr(K, u, v, ra, rb, int(min_exponent), indptr, indices, data, np.empty(m))
    return indptr, indices[:k], data[:k]


@njit(cache=True, error_model="numpy")
def _sparse_plan_csr(K, u, v, ra, rb, min_exponent, indptr, indices, data, vw):
    n, m = K.shape
    nnz = data.shape[0]
    for j in range(m):
        vw[j] = np.float64(v[j]) * rb[j]
    k = 0
    indptr[0] = 0
    for i in range(n):
        ui = np.float64(u[i])
        uw = ui * ra[i]
        for j in range(m):
            kij = np.float64(K[i, j])
            w = kij * uw * vw[j]
            if _exponent(w) >= min_exponent and k < nnz:
                indices[k] = j
                data[k] = ui * kij * v[j]
                k += 1
        indptr[i + 1] = k
    return k


@njit(cache=True, inline="always", error_model="numpy")
def _schur_matvec(indptr, indices, data, r, c, x2, y2):
    # (this and the two helpers below are inlined into _csr_newton_cg: as separate
    # dispatchers they cost 0.2-0.3 s of compilation each)
    # y2 = (diag c - S^T diag(1/r) S) x2 in one pass over the CSR rows of S: each row's
    # dot with x2 is scattered back while the row is still in cache.
    for j in range(c.shape[0]):
        y2[j] = c[j] * x2[j]
    for i in range(r.shape[0]):
        lo = indptr[i]
        hi = indptr[i + 1]
        s = 0.0
        for k in range(lo, hi):
            s += data[k] * x2[indices[k]]
        t = s / r[i]
        for k in range(lo, hi):
            y2[indices[k]] -= data[k] * t


@njit(cache=True, inline="always", error_model="numpy")
def _reduced_rhs(indptr, indices, data, r, b1, b2, out):
    # out = b2 - S^T (b1 / r): the right-hand side once x1 = (b1 - S x2) / r is eliminated
    for j in range(b2.shape[0]):
        out[j] = b2[j]
    for i in range(r.shape[0]):
        t = b1[i] / r[i]
        for k in range(indptr[i], indptr[i + 1]):
            out[indices[k]] -= data[k] * t


@njit(cache=True, inline="always", error_model="numpy")
def _back_substitute(indptr, indices, data, r, b1, x2, x1):
    # x1 = (b1 - S x2) / r
    for i in range(r.shape[0]):
        s = 0.0
        for k in range(indptr[i], indptr[i + 1]):
            s += data[k] * x2[indices[k]]
        x1[i] = (b1[i] - s) / r[i]


def csr_newton_cg(indptr, indices, data, r, c, b1, b2, rtol, maxiter):
    """Jacobi-preconditioned CG on the Schur complement of ``[[diag r, S], [S^T, diag c]]``.

    Eliminating ``x1 = (b1 - S x2) / r`` leaves ``(diag c - S^T diag(1/r) S) x2 =
    b2 - S^T (b1 / r)``; its residual is the full system's (the first block's is zero),
    compared with ``rtol ||(b1, b2)||``. Same cost per iteration as CG on the full system,
    about half the iterations (the Jacobi-scaled full spectrum is ``1 +- sigma``, the
    reduced one ``1 - sigma^2``). Every vector operation is a loop over preallocated
    arrays: one iteration allocates nothing. Returns ``(x1, x2, iterations)``.
    """
    n, m = r.shape[0], c.shape[0]
    x1, x2 = np.zeros(n), np.zeros(m)
    it = _csr_newton_cg(indptr, indices, data, r, c, b1, b2, float(rtol), int(maxiter),
                        x1, x2, np.empty(m), np.empty(m), np.empty(m))
    return x1, x2, it


@njit(cache=True, error_model="numpy")
def _csr_newton_cg(indptr, indices, data, r, c, b1, b2, rtol, maxiter, x1, x2, res, p, q):
    # x1, x2: zeros on entry, the solution on return; res, p, q: scratch of length m
    n = r.shape[0]
    m = c.shape[0]
    bb = 0.0
    for i in range(n):
        bb += b1[i] * b1[i]
    for j in range(m):
        bb += b2[j] * b2[j]
    it = 0
    if bb == 0.0:
        return it
    _reduced_rhs(indptr, indices, data, r, b1, b2, res)
    rz = 0.0
    rr = 0.0
    for j in range(m):
        p[j] = res[j] / c[j]
        rz += res[j] * p[j]
        rr += res[j] * res[j]
    stop = rtol * rtol * bb
    while it < maxiter and rr > stop:
        it += 1
        _schur_matvec(indptr, indices, data, r, c, p, q)
        pq = 0.0
        for j in range(m):
            pq += p[j] * q[j]
        if not pq > 0.0:
            break
        alpha = rz / pq
        rr = 0.0
        rz_new = 0.0
        for j in range(m):
            x2[j] += alpha * p[j]
            res[j] -= alpha * q[j]
            rr += res[j] * res[j]
            rz_new += res[j] * res[j] / c[j]
        if rr <= stop:
            break
        beta = rz_new / rz
        rz = rz_new
        for j in range(m):
            p[j] = res[j] / c[j] + beta * p[j]
    _back_substitute(indptr, indices, data, r, b1, x2, x1)
    return it


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def newton_direction(K, u, v, ra, rb, min_exponent, nnz, r, c, b1, b2, rtol, maxiter):
    """Newton direction of the sparsified dual Hessian: CSR build, then CG, both in Numba."""
    indptr, indices, data = sparse_plan_csr(K, u, v, ra, rb, int(min_exponent), int(nnz))
    x1, x2, it = csr_newton_cg(
        indptr, indices, data, _f64(r), _f64(c), _f64(b1), _f64(b2), float(rtol), int(maxiter)
    )
    return x1.astype(u.dtype, copy=False), x2.astype(v.dtype, copy=False), it


@njit(cache=True, error_model="numpy")
def _schur_dense(indptr, indices, data, r, c):
    # D (diag(c) - sum_i s_i s_i^T / r_i) D over the sparse rows s_i of S, D = diag(c)^-1/2
    # (the full system's Jacobi scaling: the diagonal is in (0, 1], and a block kept
    # whole, whose complement is singular, cannot produce a division by zero)
    m = c.shape[0]
    d = np.empty(m)
    for j in range(m):
        d[j] = 1.0 / math.sqrt(c[j])
    A = np.zeros((m, m))
    for j in range(m):
        A[j, j] = 1.0
    for i in range(r.shape[0]):
        lo = indptr[i]
        hi = indptr[i + 1]
        inv = 1.0 / r[i]
        for k in range(lo, hi):
            row = A[indices[k]]
            dk = data[k] * d[indices[k]] * inv
            for l in range(lo, hi):
                row[indices[l]] -= dk * data[l] * d[indices[l]]
    return A, d


def newton_direct(K, u, v, ra, rb, min_exponent, nnz, r, c, b1, b2, shift):
    """Sparsified Newton system solved directly: dense Schur complement, then Cholesky.

    The ``m x m`` complement is assembled from the CSR rows (``sum_i nnz_i^2`` updates)
    and factored by LAPACK; raises ``numpy.linalg.LinAlgError`` when it is not positive
    definite in floating point.
    """
    import scipy.linalg

    indptr, indices, data = sparse_plan_csr(K, u, v, ra, rb, int(min_exponent), int(nnz))
    r, c, b1, b2 = _f64(r), _f64(c), _f64(b1), _f64(b2)
    A, d = _schur_dense(indptr, indices, data, r, c)
    A.flat[:: A.shape[0] + 1] += shift
    # A is symmetric: its transpose is the same matrix in Fortran order, which LAPACK
    # factors in place (A itself would be copied: one more m x m buffer)
    factor = scipy.linalg.cho_factor(A.T, lower=True, overwrite_a=True, check_finite=False)
    if not np.all(np.isfinite(factor[0].diagonal())):
        raise np.linalg.LinAlgError("Schur complement not positive definite")
    rhs = np.empty(b2.shape[0])
    _reduced_rhs(indptr, indices, data, r, b1, b2, rhs)
    x2 = d * scipy.linalg.cho_solve(factor, d * rhs, check_finite=False)
    x1 = np.empty(r.shape[0])
    _back_substitute(indptr, indices, data, r, b1, x2, x1)
    return x1.astype(u.dtype, copy=False), x2.astype(v.dtype, copy=False)


def scale_plan(K, u, v):
    """``K <- diag(u) K diag(v)`` in place (the final plan, without a second buffer).

    NumPy, not a kernel: once per solve, two passes over ``K`` cost about as much as the
    0.15 s a kernel took to compile. ``(u_i K_ij) v_j`` rounds as the kernel did; with
    mixed dtypes the products are formed in the wider one and rounded once into ``K``.
    """
    if u.dtype == K.dtype and v.dtype == K.dtype:
        np.multiply(K, u[:, None], out=K)
        np.multiply(K, v[None, :], out=K)
    else:
        K[...] = (u[:, None] * K) * v[None, :]
    return K
