"""nl.pde.darcy: 2-D Darcy flow with a thresholded random coefficient (Li et al. 2021).

The recipe is that of the FNO paper's ``solve_gwf.m`` / ``GRF.m`` (notes/operators.md §3.2):

- ``g ~ N(0, (-Δ + τ² I)^-α)`` with the zero-Neumann Laplacian on (0, 1)², drawn as a
  cosine series: coefficients ``L = s · τ^(α-1) (π²|k|² + τ²)^(-α/2) · ξ`` (ξ standard
  normal, ``L[0, 0] = 0``), ``g = idct2(L)`` (orthonormal inverse DCT-II), α = 2, τ = 3;
- ``a = 12`` where ``g >= 0``, ``3`` where ``g < 0``;
- ``-∇·(a ∇u) = 1`` on the s×s vertex grid (h = 1/(s-1)), ``u = 0`` on the boundary, with
  the 5-point stencil whose face coefficients are the arithmetic means of the two vertex
  values of ``a`` (the original's interpolation of ``a`` from cell centres to vertices is
  not done: ``a`` is given on the vertices directly).

Two exact solvers of the same discrete system:

- ``"direct"`` (NumPy only): one sparse LU per sample (SuperLU in symmetric mode) on a
  nested-dissection ordering of the grid computed once per resolution;
- ``"multigrid"`` (any backend, written in ``xp``): conjugate gradients on the whole batch
  at once, preconditioned by a geometric multigrid V-cycle (damped Jacobi smoothing,
  linear interpolation, re-discretised coarse operators), run to a relative residual of
  1e-12.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from .. import _backend
from .._validation import check_int, check_option
from ._generate import Recipe, generate

__all__ = ["darcy"]

# The FNO paper's values (GRF.m: alpha = 2, tau = 3; the two phases of the coefficient).
ALPHA = 2.0
TAU = 3.0
HIGH = 12.0
LOW = 3.0

_SOLVERS = ("auto", "direct", "multigrid")
_COEFFICIENTS = ("piecewise", "binary")

# Iterative solver settings: the residual target makes the solve exact to rounding at the
# benchmark sizes (relative error <= cond(A) * 1e-12 < 1e-7 at s = 421).
_RTOL = 1e-12
_MAXITER = 200
_CHECK_EVERY = 2  # a convergence test reads a device scalar: not every iteration
_SMOOTHING = 2  # Jacobi sweeps before and after each coarse-grid correction
_OMEGA = 0.8  # the damping that smooths best for the 5-point stencil
_COARSEST = 4  # stop coarsening at <= 4 intervals (<= 9 unknowns)
_COARSEST_SWEEPS = 8


# --------------------------------------------------------------------------- random field


@functools.lru_cache(maxsize=8)
def _grf_factors(s: int):
    """The DCT synthesis matrix ``C`` (s, s) and the mode scales ``s · coef`` (s, s).

    ``C[n, k] = w_k cos(π (2n + 1) k / (2s))`` with ``w_0 = sqrt(1/s)``, ``w_k = sqrt(2/s)``
    is MATLAB's orthonormal ``idct``; ``idct2(L) = C @ L @ C.T``.
    """
    n = np.arange(s)[:, None]
    k = np.arange(s)[None, :]
    C = np.cos(np.pi * (2 * n + 1) * k / (2 * s)) * np.sqrt(2.0 / s)
    C[:, 0] = np.sqrt(1.0 / s)
    k1, k2 = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
    coef = TAU ** (ALPHA - 1) * (np.pi**2 * (k1**2 + k2**2) + TAU**2) ** (-ALPHA / 2)
    scale = s * coef
    scale[0, 0] = 0.0  # zero mean, as GRF.m
    for array in (C, scale):
        array.flags.writeable = False
    return C, scale


def grf_spectrum(s: int) -> np.ndarray:
    """The variance of each cosine mode of the field ``g`` on an s×s grid, shape (s, s)."""
    return _grf_factors(s)[1] ** 2


def grf_draw(generator: np.random.Generator, s: int) -> np.ndarray:
    """The host-side noise of one field: ξ, standard normal of shape (s, s), float64."""
    return generator.standard_normal((s, s))


def grf_synthesis(noise, xp, device=None):
    """The fields ``g = C (scale · ξ) Cᵀ`` of a batch of noises ``(B, s, s)``, in ``xp``."""
    s = noise.shape[-1]
    C, scale = _grf_factors(s)
    C = _backend.asarray(C, xp=xp, device=device, dtype=xp.float64)
    scale = _backend.asarray(scale, xp=xp, device=device, dtype=xp.float64)
    return xp.matmul(xp.matmul(C, scale * noise), xp.matrix_transpose(C))


# --------------------------------------------------------------------------- direct solver


@functools.lru_cache(maxsize=4)
def _nested_dissection(n: int, leaf: int = 4) -> np.ndarray:
    """A nested-dissection ordering of the n×n grid graph (row-major numbering).

    Each block is cut in two by its middle row or column, the halves ordered first and
    the separator last; the fill of the factor grows like N log N instead of N^1.5.
    """
    index = np.arange(n * n).reshape(n, n)
    order = []
    stack = [(index, False)]
    # An explicit stack (separators pushed before halves, popped after them) instead of
    # recursion: the order is left half, right half, separator at every level.
    while stack:
        block, emit = stack.pop()
        if emit:
            order.append(block.ravel())
            continue
        rows, cols = block.shape
        if rows == 0 or cols == 0:
            continue
        if rows <= leaf and cols <= leaf:
            order.append(block.ravel())
            continue
        if rows >= cols:
            m = rows // 2
            parts = (block[:m], block[m + 1:], block[m])
        else:
            m = cols // 2
            parts = (block[:, :m], block[:, m + 1:], block[:, m])
        stack.append((parts[2], True))
        stack.append((parts[1], False))
        stack.append((parts[0], False))
    return np.concatenate(order)


@functools.lru_cache(maxsize=4)
def _csc_pattern(n: int):
    """The CSC structure of the permuted n²×n² operator, fixed for a resolution.

    Returns ``(perm, indptr, indices, source)``: the matrix's data is
    ``values.ravel()[source]`` where ``values`` (5, n, n) stacks the diagonal and the four
    off-diagonal couplings of each unknown (to the neighbour above, below, left, right),
    so that a new coefficient field costs one gather, no Python loop.
    """
    N = n * n
    grid = np.arange(N).reshape(n, n)
    rows = [grid.ravel()]
    cols = [grid.ravel()]
    src = [np.arange(N)]
    neighbours = (
        (grid[1:, :], grid[:-1, :], 1),  # the neighbour above (row - 1)
        (grid[:-1, :], grid[1:, :], 2),  # below
        (grid[:, 1:], grid[:, :-1], 3),  # left
        (grid[:, :-1], grid[:, 1:], 4),  # right
    )
    for row, col, slot in neighbours:
        rows.append(row.ravel())
        cols.append(col.ravel())
        src.append(slot * N + row.ravel())
    rows, cols, src = map(np.concatenate, (rows, cols, src))
    perm = _nested_dissection(n)
    inverse = np.empty(N, dtype=np.int64)
    inverse[perm] = np.arange(N)
    prow, pcol = inverse[rows], inverse[cols]
    order = np.lexsort((prow, pcol))
    indptr = np.concatenate(([0], np.cumsum(np.bincount(pcol, minlength=N))))
    indices = prow[order].astype(np.int32)
    return perm, indptr.astype(np.int32), indices, src[order]


def _stencil(a: np.ndarray):
    """The 5-point couplings of a vertex field ``a`` (s, s) as (5, n, n), n = s - 2.

    Slot 0 is the diagonal, slots 1..4 the (negative) couplings to the neighbours above,
    below, left and right; a face's coefficient is the mean of its two vertices' ``a``.
    """
    h2 = (a.shape[-1] - 1) ** 2
    centre = a[1:-1, 1:-1]
    up = (centre + a[:-2, 1:-1]) * (h2 / 2)
    down = (centre + a[2:, 1:-1]) * (h2 / 2)
    left = (centre + a[1:-1, :-2]) * (h2 / 2)
    right = (centre + a[1:-1, 2:]) * (h2 / 2)
    return np.stack([up + down + left + right, -up, -down, -left, -right])


def _solve_direct(a: np.ndarray) -> np.ndarray:
    """u (s, s) from a (s, s) on NumPy: one sparse LU of the symmetric operator."""
    import scipy.sparse
    import scipy.sparse.linalg

    s = a.shape[-1]
    n = s - 2
    perm, indptr, indices, source = _csc_pattern(n)
    A = scipy.sparse.csc_matrix((_stencil(a).ravel()[source], indices, indptr), shape=(n * n,) * 2)
    # The matrix is symmetric positive definite and already ordered: no column permutation,
    # no pivoting (SuperLU's symmetric mode), which is what makes the LU cheap.
    lu = scipy.sparse.linalg.splu(
        A, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )
    interior = np.empty(n * n)
    interior[perm] = lu.solve(np.ones(n * n))
    u = np.zeros((s, s))
    u[1:-1, 1:-1] = interior.reshape(n, n)
    return u


# --------------------------------------------------------------------------- multigrid-CG


def _interpolation(m_fine: int, m_coarse: int) -> np.ndarray:
    """Linear interpolation from the m_coarse+1 vertices of [0, 1] to the m_fine+1 ones."""
    t = np.arange(m_fine + 1) * (m_coarse / m_fine)
    j = np.minimum(np.floor(t).astype(np.int64), m_coarse - 1)
    w = t - j
    P = np.zeros((m_fine + 1, m_coarse + 1))
    P[np.arange(m_fine + 1), j] = 1.0 - w
    P[np.arange(m_fine + 1), j + 1] += w
    return P


class _Gather:
    """A sparse matrix applied along one axis as a few weighted gathers (array API only).

    ``M`` (rows, cols) has at most K nonzeros per row; ``apply(x, axis)`` is ``M`` times
    ``x`` along ``axis`` of a batch, as ``sum_k w_k * take(x, idx_k, axis)``.
    """

    def __init__(self, M: np.ndarray, xp, device):
        K = max(1, int((M != 0).sum(axis=1).max()))
        idx = np.zeros((K, M.shape[0]), dtype=np.int64)
        w = np.zeros((K, M.shape[0]))
        for r in range(M.shape[0]):  # small 1-D matrices, once per level
            nz = np.flatnonzero(M[r])
            idx[: nz.size, r] = nz
            w[: nz.size, r] = M[r, nz]
        self.idx = [_backend.asarray(i, xp=xp, device=device) for i in idx]
        self.w = [_backend.asarray(v, xp=xp, device=device, dtype=xp.float64) for v in w]
        self.xp = xp

    def apply(self, x, axis):
        xp = self.xp
        out = None
        for idx, w in zip(self.idx, self.w, strict=True):
            w = w if axis == x.ndim - 1 else xp.reshape(w, (-1, 1))
            term = w * xp.take(x, idx, axis=axis)
            out = term if out is None else out + term
        return out

    def apply2(self, x):
        """``M x Mᵀ`` on the last two axes."""
        return self.apply(self.apply(x, x.ndim - 1), x.ndim - 2)


class _Level:
    """The 5-point operator of one grid level for a batch of vertex fields ``a`` (B, s, s)."""

    def __init__(self, a, xp):
        self.xp = xp
        m = a.shape[-1] - 1
        self.m = m
        h2 = float(m * m)
        # Face coefficients including the faces to the boundary vertices, over h².
        wx = (a[:, 1:-1, :-1] + a[:, 1:-1, 1:]) * (h2 / 2)  # (B, n, n + 1)
        wy = (a[:, :-1, 1:-1] + a[:, 1:, 1:-1]) * (h2 / 2)  # (B, n + 1, n)
        self.left, self.right = wx[:, :, :-1], wx[:, :, 1:]
        self.up, self.down = wy[:, :-1, :], wy[:, 1:, :]
        self.diag = self.left + self.right + self.up + self.down
        self.inv_diag = 1.0 / self.diag

    def matvec(self, u):
        """A u for interior values ``u`` (B, n, n); the boundary values are zero."""
        xp = self.xp
        zx = xp.zeros_like(u[:, :, :1])
        zy = xp.zeros_like(u[:, :1, :])
        ux = xp.concat([zx, u, zx], axis=2)
        uy = xp.concat([zy, u, zy], axis=1)
        return (
            self.diag * u
            - self.left * ux[:, :, :-2]
            - self.right * ux[:, :, 2:]
            - self.up * uy[:, :-2, :]
            - self.down * uy[:, 2:, :]
        )

    def jacobi(self, u, r, sweeps):
        """``sweeps`` damped Jacobi sweeps on A u = r from ``u`` (None: from zero)."""
        for _ in range(sweeps):
            if u is None:
                u = (_OMEGA * self.inv_diag) * r
            else:
                u = u + (_OMEGA * self.inv_diag) * (r - self.matvec(u))
        return u


class _Multigrid:
    """A symmetric V-cycle for a batch of coefficient fields: the CG preconditioner.

    Grids of m, ceil(m/2), ... intervals (not nested when m is odd: the transfers are
    linear interpolation between any two vertex grids); each coarse operator is the same
    stencil on the coarse grid with ``a`` interpolated there. Restriction is the scaled
    transpose of prolongation and the smoother is the same Jacobi before and after, so the
    cycle is a symmetric positive-definite linear map, as CG needs.
    """

    def __init__(self, a, xp, device):
        self.xp = xp
        self.levels = [_Level(a, xp)]
        self.prolong = []
        m = a.shape[-1] - 1
        while m > _COARSEST:
            mc = (m + 1) // 2
            P = _interpolation(m, mc)
            # a on the coarse vertices: the fine piecewise-linear field evaluated there.
            Q = _Gather(_interpolation(mc, m), xp, device)
            a = Q.apply2(a)
            self.levels.append(_Level(a, xp))
            interior = P[1:-1, 1:-1]
            self.prolong.append((
                _Gather(interior, xp, device),
                _Gather(interior.T * (mc / m), xp, device),
            ))
            m = mc

    def __call__(self, r, depth=0):
        level = self.levels[depth]
        if depth == len(self.prolong):
            return level.jacobi(None, r, _COARSEST_SWEEPS)
        u = level.jacobi(None, r, _SMOOTHING)
        P, R = self.prolong[depth]
        coarse = self(R.apply2(r - level.matvec(u)), depth + 1)
        u = u + P.apply2(coarse)
        return level.jacobi(u, r, _SMOOTHING)


def _batch_dot(x, y, xp):
    return xp.sum(x * y, axis=(1, 2), keepdims=True)


def _solve_multigrid(a, xp, device):
    """u (B, s, s) from a (B, s, s): multigrid-preconditioned CG on the batch at once."""
    precondition = _Multigrid(a, xp, device)
    A = precondition.levels[0]
    b = xp.ones_like(A.diag)
    x = xp.zeros_like(b)
    r = b
    z = precondition(r)
    p = z
    rz = _batch_dot(r, z, xp)
    b_norm = float(xp.sum(b[0, ...] * b[0, ...])) ** 0.5
    converged = False
    for it in range(1, _MAXITER + 1):
        q = A.matvec(p)
        pq = _batch_dot(p, q, xp)
        alpha = rz / xp.where(pq == 0, 1.0, pq)  # p = 0 only once r = 0 exactly
        x = x + alpha * p
        r = r - alpha * q
        if it % _CHECK_EVERY == 0:
            worst = float(xp.max(_batch_dot(r, r, xp))) ** 0.5 / b_norm
            if worst <= _RTOL:
                converged = True
                break
        z = precondition(r)
        rz_new = _batch_dot(r, z, xp)
        p = z + (rz_new / xp.where(rz == 0, 1.0, rz)) * p
        rz = rz_new
    if not converged:
        warnings.warn(
            f"nl.pde.darcy: multigrid-CG reached a relative residual of {worst:.2e} after "
            f"{_MAXITER} iterations (target {_RTOL:.0e}); the solutions are not exact",
            RuntimeWarning,
            stacklevel=6,  # the caller of darcy (through generate and the recipe)
        )
    zx = xp.zeros_like(x[:, :, :1])
    x = xp.concat([zx, x, zx], axis=2)
    zy = xp.zeros_like(x[:, :1, :])
    return xp.concat([zy, x, zy], axis=1)


# --------------------------------------------------------------------------- public API


def _default_batch_size(s: int) -> int:
    # About 2^20 grid values per batch: enough to amortise the per-operation overhead of
    # the batched solver, small enough for its ~20 work arrays to stay in memory.
    return max(1, min(256, (1 << 20) // (s * s)))


def darcy(n_samples, resolution=85, *, solver="auto", coefficient="piecewise", rng=None,
          like=None, dtype=None, chunks=None, cache=None, progress=False, batch_size=None):
    """Generate 2-D Darcy flow samples: a random two-phase coefficient and its pressure.

    Solves ``-∇·(a ∇u) = 1`` on the unit square with ``u = 0`` on the boundary, for the
    coefficient ``a = 12`` where ``g >= 0`` and ``3`` where ``g < 0``, with ``g`` a
    Gaussian random field ``N(0, (-Δ + 9 I)^-2)`` (zero-Neumann Laplacian): the data set
    of the Fourier neural operator paper. The equation is discretised by the 5-point
    finite-difference stencil of the original ``solve_gwf.m`` on the s×s vertex grid
    (h = 1/(s-1); a face's coefficient is the mean of the coefficients of its two
    vertices) and solved exactly.

    Parameters
    ----------
    n_samples : int
        Number of samples, >= 1.
    resolution : int, default 85
        Grid points per side, s >= 3 (the paper's sets: 85, 141, 211, 421).
    solver : {"auto", "direct", "multigrid"}, default "auto"
        ``"direct"``: a sparse LU per sample (NumPy only). ``"multigrid"``: conjugate
        gradients preconditioned by a geometric multigrid V-cycle, on the whole batch at
        once, to a relative residual of 1e-12 (any backend; the CuPy path). ``"auto"``:
        multigrid-CG everywhere: on one CPU thread it matches the LU at 85² (both about
        16 ms per sample) and is 2.5x faster at 421² (0.36 s against 0.93 s); see
        ``benchmarks/bench_pde_darcy.py``.
    coefficient : {"piecewise", "binary"}, default "piecewise"
        How ``a`` is returned: its values 12 / 3, or the indicator of the phase
        ``a = 12`` (1 / 0), the encoding of neuraloperator's bundled Darcy files. The
        solve is the same.
    rng : None, int or numpy.random.Generator
        Seed. Sample ``i`` depends only on the seed and ``i``: ``darcy(10, rng=0)[k]``
        equals ``darcy(3, rng=0)[k]`` for k < 3, in any chunk of a Dask run too.
    like : array, optional
        Generate on this array's library and device (CuPy: the solve runs on the GPU).
    dtype : {None, float32, float64}
        Output dtype (default float64; computed in float64 either way).
    chunks : int, optional
        Return lazy Dask arrays with blocks of ``chunks`` samples, generated on the
        workers; ``.compute()`` gives the same numbers as the eager call.
    cache : str or os.PathLike, optional
        A directory keeping the results on disk, keyed by every argument.
    progress : bool, default False
        Show a progress bar.
    batch_size : int, optional
        Samples solved together (default: about 2^20 grid values per batch).

    Returns
    -------
    a : array, shape (n_samples, resolution, resolution)
        The coefficient on the vertex grid.
    u : array, shape (n_samples, resolution, resolution)
        The solution on the same grid, zero on the boundary.

    References
    ----------
    Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
    A. Anandkumar, "Fourier Neural Operator for Parametric Partial Differential
    Equations", ICLR 2021 (data: ``solve_gwf.m``, ``GRF.m``).

    Examples
    --------
    >>> import numlab as nl
    >>> a, u = nl.pde.darcy(4, resolution=33, rng=0)
    >>> a.shape, u.shape
    ((4, 33, 33), (4, 33, 33))
    >>> sorted(set(a.ravel().tolist()))
    [3.0, 12.0]
    >>> bool((u[:, 1:-1, 1:-1] > 0).all())
    True
    """
    check_int(n_samples, "n_samples", low=1)
    s = check_int(resolution, "resolution", low=3)
    check_option(solver, "solver", _SOLVERS)
    check_option(coefficient, "coefficient", _COEFFICIENTS)
    if batch_size is None:
        batch_size = _default_batch_size(s)
    batch_size = check_int(batch_size, "batch_size", low=1)
    xp_target = _backend.namespace(like) if _backend.is_array(like) else None
    if solver == "auto":
        solver = "multigrid"
    if solver == "direct" and xp_target is not None and not (
        _backend.is_numpy(xp_target) or _backend.is_dask(xp_target)
    ):
        raise ValueError(
            "`solver` must be 'auto' or 'multigrid' for arrays that are not NumPy's "
            f"(the direct solver is scipy's); got {solver!r}"
        )

    def solve(noise, xp, device):
        g = grf_synthesis(noise, xp, device)
        phase = xp.astype(g >= 0, xp.float64)
        a = LOW + (HIGH - LOW) * phase
        if solver == "direct":
            u = np.stack([_solve_direct(np.asarray(ai)) for ai in _backend.to_numpy(a)])
            u = _backend.asarray(u, xp=xp, device=device, dtype=xp.float64)
        else:
            u = _solve_multigrid(a, xp, device)
        if coefficient == "binary":
            a = phase
        return a, u

    recipe = Recipe(
        name="darcy",
        params={"resolution": s, "solver": solver, "coefficient": coefficient,
                "alpha": ALPHA, "tau": TAU, "high": HIGH, "low": LOW},
        draw=lambda generator: grf_draw(generator, s),
        solve=solve,
        shapes=((s, s), (s, s)),
        batch_size=batch_size,
    )
    return generate(recipe, n_samples, rng=rng, like=like, dtype=dtype, chunks=chunks,
                    cache=cache, progress=progress)
