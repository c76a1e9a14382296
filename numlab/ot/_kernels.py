"""The hot steps of the entropic OT solvers, as registered kernels.

Each function here is the generic (array-API) implementation and the specification of
its Numba (:mod:`numlab._cpu.ot`) and CuPy (:mod:`numlab._gpu.ot`) versions. The generic
versions build ``n x m`` temporaries freely; the specialised ones never do.

Notation: ``K`` is the kernel matrix ``exp((f_i + g_j - M_ij) / reg)`` with the
potentials absorbed so far, ``u`` and ``v`` the scalings not yet absorbed, so that the
current plan is ``P = diag(u) K diag(v)``.
"""

from __future__ import annotations

import numpy as np

from .._backend import asarray, device, random_uniform, to_numpy
from .._dispatch import register_kernel

#: One histogram bin per biased float64 exponent (bin 0 holds zeros and subnormals).
N_BINS = 2048
_EXPONENT_BIAS = 1023


def _xp(x):
    from .._backend import namespace

    return namespace(x)


# ----------------------------------------------------------------------------- examples


def _problem(xp, rng, n=13, m=11, dtype=None):
    dt = xp.float64 if dtype is None else dtype
    M = random_uniform(rng, (n, m), xp=xp, dtype=dt)
    a = asarray(np.full(n, 1.0 / n), xp=xp, dtype=dt)
    b = asarray(np.full(m, 1.0 / m), xp=xp, dtype=dt)
    return M, a, b


def _scalings(xp, rng, n, m):
    u = random_uniform(rng, (n,), low=0.5, high=2.0, xp=xp, dtype=xp.float64)
    v = random_uniform(rng, (m,), low=0.5, high=2.0, xp=xp, dtype=xp.float64)
    return u, v


def _scaling_example(xp, rng):
    M, a, b = _problem(xp, rng)
    K = xp.exp(-M / 0.3)
    u, v = _scalings(xp, rng, *M.shape)
    return (K, u, v, a, b), {}


def _lse_rows_example(xp, rng):
    M, _, _ = _problem(xp, rng)
    g = random_uniform(rng, (M.shape[1],), xp=xp, dtype=M.dtype)
    return (M, g, 0.05), {}


def _column_kernel_example(xp, rng):
    M, _, _ = _problem(xp, rng)
    f = random_uniform(rng, (M.shape[0],), xp=xp, dtype=M.dtype)
    out = xp.zeros(M.shape, dtype=M.dtype, device=device(M))
    return (M, f, 0.02, -30.0, out), {}


def _kernel_matrix_example(xp, rng):
    M, _, _ = _problem(xp, rng)
    f = random_uniform(rng, (M.shape[0],), high=0.5, xp=xp, dtype=M.dtype)
    g = random_uniform(rng, (M.shape[1],), high=0.5, xp=xp, dtype=M.dtype)
    out = xp.zeros(M.shape, dtype=M.dtype, device=device(M))
    return (M, f, g, 0.01, -30.0, out), {}


def _plan_state(xp, rng):
    M, a, b = _problem(xp, rng)
    K = xp.exp(-M / 0.1)
    u, v = _scalings(xp, rng, *M.shape)
    ra = random_uniform(rng, (M.shape[0],), low=0.5, high=2.0, xp=xp, dtype=xp.float64)
    rb = random_uniform(rng, (M.shape[1],), low=0.5, high=2.0, xp=xp, dtype=xp.float64)
    return K, u, v, ra, rb


def _marginals_example(xp, rng):
    return _plan_state(xp, rng), {}


def _min_exponent_and_nnz(K, u, v, ra, rb):
    _, _, _, count = marginals(K, u, v, ra, rb)
    # keep roughly the largest 40 % of the entries
    from_top = np.cumsum(to_numpy(count)[::-1])[::-1]
    e = int(np.nonzero(from_top >= 0.4 * K.shape[0] * K.shape[1])[0][-1])
    return e, int(from_top[e])


def _csr_example(xp, rng):
    K, u, v, ra, rb = _plan_state(xp, rng)
    e, nnz = _min_exponent_and_nnz(K, u, v, ra, rb)
    return (K, u, v, ra, rb, e, nnz), {}


def _newton_example(xp, rng):
    K, u, v, ra, rb = _plan_state(xp, rng)
    e, nnz = _min_exponent_and_nnz(K, u, v, ra, rb)
    r = u * (K @ v)
    c = v * (u @ K)
    b1 = random_uniform(rng, (K.shape[0],), low=-1e-3, high=1e-3, xp=xp, dtype=xp.float64)
    b2 = random_uniform(rng, (K.shape[1],), low=-1e-3, high=1e-3, xp=xp, dtype=xp.float64)
    # a fixed number of CG iterations (rtol=0, no convergence test can flip between
    # implementations), enough to be far from the starting point
    return (K, u, v, ra, rb, e, nnz, r, c, b1, b2, 0.0, 8), {}


def _scale_plan_example(xp, rng):
    K, u, v, _, _ = _plan_state(xp, rng)
    return (K, u, v), {}


# ----------------------------------------------------------------------------- kernels


@register_kernel(
    "ot.scaling_step",
    numba="numlab._cpu.ot:scaling_step",
    cupy="numlab._gpu.ot:scaling_step",
    example=_scaling_example,
)
def scaling_step(K, u, v, a, b):
    """One Sinkhorn iteration on scalings: ``u = a / (K v)``, then ``v = b / (K^T u)``.

    Returns ``(u, v, err)`` where ``err = sum_i |u_i (K v)_i - a_i|`` is the row marginal
    error of the incoming scalings (their column marginals are exact after a step).
    """
    xp = _xp(K)
    kv = K @ v
    err = xp.sum(xp.abs(u * kv - a))
    u_new = a / kv
    v_new = b / (u_new @ K)
    return u_new, v_new, err


@register_kernel(
    "ot.lse_rows",
    numba="numlab._cpu.ot:lse_rows",
    cupy="numlab._gpu.ot:lse_rows",
    example=_lse_rows_example,
)
def lse_rows(M, g, reg):
    """``out_i = log sum_j exp((g_j - M_ij) / reg)``, computed stably."""
    xp = _xp(M)
    x = (g[None, :] - M) / reg
    mx = xp.max(x, axis=1)
    safe = xp.where(mx > -xp.inf, mx, 0.0)
    return safe + xp.log(xp.sum(xp.exp(x - safe[:, None]), axis=1))


@register_kernel(
    "ot.column_kernel",
    numba="numlab._cpu.ot:column_kernel",
    cupy="numlab._gpu.ot:column_kernel",
    example=_column_kernel_example,
)
def column_kernel(M, f, reg, clamp, out):
    """Exact log-domain column step fused with building the kernel matrix.

    With ``x_ij = (f_i - M_ij) / reg`` and column maxima ``mx_j``, returns
    ``(K, colsum, mx)`` where ``K_ij = exp(x_ij - mx_j)`` (0 where the exponent is below
    ``clamp``) and ``colsum = K^T 1``. Then ``g = -reg mx`` and ``v = b / colsum`` make
    the columns of ``diag(1) K diag(v)`` exact. Specialised versions write ``K`` into ``out``.
    """
    xp = _xp(M)
    x = (f[:, None] - M) / reg
    mx = xp.max(x, axis=0)
    s = x - mx[None, :]
    K = xp.where(s >= clamp, xp.exp(s), xp.zeros_like(s))
    return K, xp.sum(K, axis=0), mx


@register_kernel(
    "ot.kernel_matrix",
    numba="numlab._cpu.ot:kernel_matrix",
    cupy="numlab._gpu.ot:kernel_matrix",
    example=_kernel_matrix_example,
)
def kernel_matrix(M, f, g, reg, clamp, out):
    """``exp((f_i + g_j - M_ij) / reg)``, 0 where the exponent is below ``clamp``.

    Specialised versions write into ``out`` and return it; this one returns a new array.
    """
    xp = _xp(M)
    s = (f[:, None] + g[None, :] - M) / reg
    return xp.where(s >= clamp, xp.exp(s), xp.zeros_like(s))


def _weight_bins(K, u, v, ra, rb):
    """Plan entries, weights ``w = P_ij ra_i rb_j`` and the biased exponent bin of each ``w``."""
    xp = _xp(K)
    K64 = xp.astype(K, xp.float64) if K.dtype != xp.float64 else K
    P = (u[:, None] * K64) * v[None, :]
    w = K64 * (u * ra)[:, None] * (v * rb)[None, :]
    positive = w > 0
    log2w = xp.log2(xp.where(positive, w, 1.0))
    bins = xp.astype(xp.floor(log2w), xp.int64) + _EXPONENT_BIAS
    bins = xp.where(positive, xp.clip(bins, 0, N_BINS - 1), 0)
    return P, w, bins


@register_kernel(
    "ot.marginals",
    numba="numlab._cpu.ot:marginals",
    cupy="numlab._gpu.ot:marginals",
    example=_marginals_example,
)
def marginals(K, u, v, ra, rb):
    """Marginals of ``P = diag(u) K diag(v)`` and a histogram of the weights ``P_ij ra_i rb_j``.

    Returns ``(r, c, mass, count)``: ``r = P 1``, ``c = P^T 1``, and per binary-exponent
    bin of the weight (its biased float64 exponent, 0 for zero) the total weight and the
    number of entries. The histogram picks the sparsification threshold in one pass.
    """
    xp = _xp(K)
    P, w, bins = _weight_bins(K, u, v, ra, rb)
    r = xp.astype(xp.sum(P, axis=1), u.dtype)
    c = xp.astype(xp.sum(P, axis=0), v.dtype)
    flat_bins = xp.reshape(bins, (-1,))
    flat_w = xp.reshape(w, (-1,))
    order = xp.argsort(flat_bins)
    sorted_bins = xp.take(flat_bins, order)
    sorted_w = xp.take(flat_w, order)
    zero = xp.zeros((1,), dtype=xp.float64, device=device(K))
    csum = xp.concat([zero, xp.cumulative_sum(sorted_w)])
    edges = xp.arange(N_BINS + 1, dtype=xp.int64, device=device(K))
    pos = xp.searchsorted(sorted_bins, edges, side="left")
    mass = xp.take(csum, pos[1:]) - xp.take(csum, pos[:-1])
    count = xp.astype(pos[1:] - pos[:-1], xp.int64)
    return r, c, mass, count


@register_kernel(
    "ot.sparse_plan_csr",
    numba="numlab._cpu.ot:sparse_plan_csr",
    cupy="numlab._gpu.ot:sparse_plan_csr",
    example=_csr_example,
)
def sparse_plan_csr(K, u, v, ra, rb, min_exponent, nnz):
    """The plan entries whose weight's exponent bin is ``>= min_exponent``, as CSR arrays.

    Returns ``(indptr, indices, data)`` (int64, int32, float64), rows in order, columns
    sorted within a row. ``nnz`` is the number of kept entries (from the histogram).
    """
    xp = _xp(K)
    P, _, bins = _weight_bins(K, u, v, ra, rb)
    keep = bins >= min_exponent
    rows, cols = xp.nonzero(keep)
    n, m = K.shape
    data = xp.take(xp.reshape(P, (-1,)), rows * m + cols)
    zero = xp.zeros((1,), dtype=xp.int64, device=device(K))
    indptr = xp.concat([zero, xp.cumulative_sum(xp.sum(xp.astype(keep, xp.int64), axis=1))])
    return indptr, xp.astype(cols, xp.int32), data


def _kept_plan(K, u, v, ra, rb, min_exponent):
    P, _, bins = _weight_bins(K, u, v, ra, rb)
    xp = _xp(K)
    return xp.where(bins >= min_exponent, P, xp.zeros_like(P))


def _newton_system(K, u, v, ra, rb, min_exponent, *vectors):
    """The kept plan ``S`` of a Newton system and its vectors in ``S``'s dtype.

    Returns ``(xp, S, dtype of the potentials, vectors)``.
    """
    xp = _xp(K)
    S = _kept_plan(K, u, v, ra, rb, min_exponent)
    return xp, S, u.dtype, tuple(xp.astype(x, S.dtype) for x in vectors)


@register_kernel(
    "ot.newton_direction",
    numba="numlab._cpu.ot:newton_direction",
    cupy="numlab._gpu.ot:newton_direction",
    example=_newton_example,
    rtol=1e-7,
)
def newton_direction(K, u, v, ra, rb, min_exponent, nnz, r, c, b1, b2, rtol, maxiter):
    """Solve the sparsified Newton system by Jacobi-preconditioned conjugate gradients.

    The system is ``[[diag r, S], [S^T, diag c]] (x1, x2) = (b1, b2)`` where ``S`` keeps
    the plan entries of :func:`sparse_plan_csr`; this matrix is ``reg`` times the negated
    Hessian of the dual with the dropped entries left on the diagonal, so it is
    diagonally dominant and, when anything is dropped, positive definite. CG runs on the
    Schur complement ``(diag c - S^T diag(1/r) S) x2 = b2 - S^T (b1 / r)`` (then
    ``x1 = (b1 - S x2) / r``): same cost per iteration as on the full system and about
    half the iterations. Returns ``(x1, x2, n_cg)``; CG stops at residual
    ``<= rtol * ||(b1, b2)||`` (the full system's residual equals the reduced one).
    """
    xp, S, dt, (r, c, b1, b2) = _newton_system(K, u, v, ra, rb, min_exponent, r, c, b1, b2)
    bb = float(xp.sum(b1 * b1) + xp.sum(b2 * b2))
    x2 = xp.zeros_like(c)
    it = 0
    if bb == 0.0:
        return xp.astype(xp.zeros_like(r), dt), xp.astype(x2, dt), it
    res = b2 - (b1 / r) @ S
    p = res / c
    rz = float(xp.sum(res * p))
    rr = float(xp.sum(res * res))
    stop = rtol * rtol * bb
    while it < maxiter and rr > stop:
        it += 1
        q = c * p - ((S @ p) / r) @ S
        pq = float(xp.sum(p * q))
        if not pq > 0.0:
            break
        alpha = rz / pq
        x2 = x2 + alpha * p
        res = res - alpha * q
        rr = float(xp.sum(res * res))
        if rr <= stop:
            break
        z = res / c
        rz_new = float(xp.sum(res * z))
        beta = rz_new / rz
        rz = rz_new
        p = z + beta * p
    x1 = (b1 - S @ x2) / r
    return xp.astype(x1, dt), xp.astype(x2, dt), it


def _direct_example(xp, rng):
    args, _ = _newton_example(xp, rng)
    return args[:11] + (1e-13,), {}


@register_kernel(
    "ot.newton_direct",
    numba="numlab._cpu.ot:newton_direct",
    cupy="numlab._gpu.ot:newton_direct",
    example=_direct_example,
    rtol=1e-7,
)
def newton_direct(K, u, v, ra, rb, min_exponent, nnz, r, c, b1, b2, shift):
    """The sparsified Newton system of :func:`newton_direction` solved directly.

    Forms the ``m x m`` Schur complement ``A = diag c - S^T diag(1/r) S``, scales it by
    ``diag(c)^-1/2`` on both sides (unit-size diagonal), adds ``shift`` to the diagonal
    (a relative damping that keeps the factorisation of this positive semi-definite,
    possibly singular matrix positive definite) and solves; then ``x1 = (b1 - S x2) / r``.
    Returns ``(x1, x2)``. Costs ``O(m^3)``: for problems whose CG needs many iterations
    (ill-conditioned Hessians, as on W1 problems). Specialised versions use a Cholesky
    factorisation and raise ``LinAlgError`` when it fails.
    """
    xp, S, dt, (r, c, b1, b2) = _newton_system(K, u, v, ra, rb, min_exponent, r, c, b1, b2)
    d = 1.0 / xp.sqrt(c)
    Sd = S * d[None, :]
    m = c.shape[0]
    eye = xp.eye(m, dtype=S.dtype, device=device(K))
    A = eye * (1.0 + shift) - (Sd / r[:, None]).T @ Sd
    rhs = d * (b2 - (b1 / r) @ S)
    x2 = d * xp.linalg.solve(A, rhs[:, None])[:, 0]
    x1 = (b1 - S @ x2) / r
    return xp.astype(x1, dt), xp.astype(x2, dt)


@register_kernel(
    "ot.scale_plan",
    numba="numlab._cpu.ot:scale_plan",
    cupy="numlab._gpu.ot:scale_plan",
    example=_scale_plan_example,
)
def scale_plan(K, u, v):
    """The plan ``diag(u) K diag(v)`` (specialised versions overwrite ``K``)."""
    return (u[:, None] * K) * v[None, :]
