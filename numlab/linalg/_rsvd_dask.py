"""Randomized SVD and range finding on tall-and-skinny Dask arrays chunked by rows.

Imported only when a Dask array reaches :func:`numlab.linalg.randomized_svd` or
:func:`numlab.linalg.randomized_range_finder`.

One *sweep* reads every row block ``A_i`` of ``A`` once. A power iteration needs two
products, ``Y = A @ P`` and ``Z = A.T @ Q`` with ``Q = orth(Y)``; with Cholesky-QR,
``Q = Y @ inv(R)`` where ``R.T @ R = Y.T @ Y``, so ``Z = (A.T @ Y) @ inv(R)``, and both
``Y.T @ Y`` and ``A.T @ Y`` are sums over the row blocks of ``Y_i.T @ Y_i`` and
``A_i.T @ Y_i``. Each block computes them while it is in memory; a tree reduction
(``split_every``) adds the small results. So one power iteration is one sweep, where the
textbook scheme (and ``dask.array.linalg.svd_compressed``) makes two. ``Y`` (m x L, L =
k + oversampling) is persisted on the workers; the final ``U = Y @ M`` (M small) reads
``Y``, never ``A`` again. Where ``Y`` is too ill-conditioned for its Gram, TSQR
(``dask.array.linalg.tsqr``) orthonormalises it and one more sweep forms ``A.T @ Q``.

The Gaussian test matrix ``Omega`` is ``n x L`` (n = the skinny dimension): it is drawn
once on the client from ``rng``, exactly as the in-memory path draws it, and shipped to
the workers as one small array, so the result does not depend on the chunking and agrees
with the NumPy run to rounding wherever the in-memory path runs the same algorithm.

Mixed precision, as in memory but without the extra pass: for a dense float64 ``A`` of
2**20 entries or more, the products that only find the subspace (``Y = A @ P``, and
``A.T @ Y`` in the sweeps a fixed ``n_iter`` knows are not the last) take the block in
float32 (twice the GEMM rate, half the memory for the persisted ``Y``); the product that
becomes the projected matrix, ``A.T @ Y`` of the last sweep, and every Gram are float64.
The result is then exact in float64 for the subspace found, where the in-memory path
spends one more float64 pass (a whole sweep here). Where sigma_k / sigma_1 falls below
1e-3 after the first sweep, the remaining sweeps run in float64, as in memory. One task
per block and sweep makes both products (the block is read and cast once).

Block Krylov (Musco & Musco 2015) is one sweep per Krylov block too: the sweep also
returns the products of the new block with the persisted earlier ones, so the new
block's orthogonalisation (Gram-Schmidt twice, then an eigen-decomposition of its Gram
that drops numerically null directions) is small algebra on the client, and the
projected matrix is assembled from the sweeps' own ``A.T @ Y_j``. With ``tol``, the
sketch is sized for ``k`` and the rank read off its exact error ``||A||_F^2 - sum s_j^2``.

The single-pass mode (Tropp, Yurtsever, Udell & Cevher 2017) sketches ``Y = A @ Omega``
and ``W = Psi @ A`` in one sweep, with ``Psi`` (l x m, l = 2L + 1) regenerated block by
block from a counter-based generator (Philox advanced to the first row of the block), so
it is never stored nor shipped and does not depend on the chunking either.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._progress import Progress, check_progress
from .._validation import (
    check_array,
    check_int,
    check_option,
    check_rng,
    check_row_chunked,
    check_scalar,
)
from ._rsvd import (
    AUTO_MAX_ITER,
    AUTO_RTOL,
    MIXED_MIN_RATIO,
    MIXED_MIN_SIZE,
    _cholesky_factor,
    _converged,
    _descending_sqrt,
    _flip_signs,
    _gram,
    _orth,
    _pass_total,
    _rank_for_tol,
    _report,
    _scale_columns,
)

_NP = _backend.namespace(np.empty(0))

#: Fan-in of the tree reductions over row blocks.
SPLIT_EVERY = 8


# --------------------------------------------------------------------------- block kernels


def _block_sq_norm(a):
    if hasattr(a, "tocsr") or type(a).__module__.startswith("scipy.sparse"):
        return float(np.sum(a.data.astype(np.float64) ** 2))
    a64 = np.asarray(a)
    return float(np.einsum("ij,ij->", a64, a64, dtype=np.float64))


def _dense(x):
    return x.toarray() if hasattr(x, "toarray") else np.asarray(x)


def _cast(a, dtype):
    """The block ``a`` (dense or scipy.sparse) in ``dtype`` (itself when it already is)."""
    return a if a.dtype == dtype else a.astype(dtype)


def _block_matmul(a, p):
    return _dense(_cast(a, p.dtype) @ p)


def _whole(block):
    """The block itself: blockwise with ``concatenate=False`` passes the blocks along a
    contracted index as a list, here always of one block (one chunk across the columns).
    Concatenating it instead would copy every block of A."""
    return block[0] if isinstance(block, list) else block


def _call_whole(*blocks, kernel, **kwargs):
    return kernel(*(_whole(b) for b in blocks), **kwargs)


def _block_sweep(a, p, *previous, frobenius, wide, z_dtype):
    """Per block, one read: ``(Y_i, stats_i)``, ``Y_i = A_i @ P`` in P's dtype and the
    stats rows [A_i.T @ Y_i (n x L); Y_i.T @ Y_i (L x L); ||A_i||_F^2 (1 x L);
    K_i.T @ Y_i (c x L) for the ``previous`` basis block K_i (m_i x c), if any], flat.

    ``A_i.T @ Y_i`` in ``z_dtype`` (the block is cast once when both products share it);
    the Grams in ``wide`` (exact for a float32 ``Y_i``).
    """
    a_pass = _cast(a, p.dtype)
    y = _dense(a_pass @ p)
    a_z = a_pass if a_pass.dtype == z_dtype else _cast(a, z_dtype)
    n, L = a.shape[1], y.shape[1]
    c = previous[0].shape[1] if previous else 0
    out = np.zeros((n + L + 1 + c, L), dtype=wide)
    out[:n] = _dense(a_z.T @ _cast(y, z_dtype))
    y_wide = _cast(y, wide)
    out[n : n + L] = y_wide.T @ y_wide
    if frobenius:
        out[n + L, 0] = _block_sq_norm(a)
    if previous:
        out[n + L + 1 :] = _cast(previous[0], wide).T @ y_wide
    return y, out.reshape(1, -1)


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _block_gram(y, *, factor, block_dtype, wide):
    q = y @ factor.astype(block_dtype, copy=False)
    return (q.T @ q).astype(wide)[None]


def _block_rmatmat(a, q, *, wide):
    return _dense(a.T @ q).astype(wide)[None]


def _psi_block(seed, row0, rows, ell):
    """Rows ``row0 .. row0+rows`` of Psi.T (rows x ell): standard normals, chunk-independent.

    Philox emits 4 64-bit words per counter step; row r of Psi.T uses the words of counter
    steps r*c .. (r+1)*c - 1 (c = ceil(ell / 4)), turned into normals by the inverse CDF.
    """
    from scipy.special import ndtri

    c = -(-ell // 4)
    bitgen = np.random.Philox(key=seed)
    bitgen.advance(row0 * c)
    raw = bitgen.random_raw(rows * c * 4).reshape(rows, c * 4)[:, :ell]
    u = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return ndtri(u)


def _block_single_pass(a, y, rows, *, seed, ell, wide):
    """Per block: rows [Psi_i @ A_i (ell x n) | Psi_i @ Y_i (ell x L)] and ||A_i||_F^2."""
    row0 = int(rows[0])
    psi_t = _psi_block(seed, row0, a.shape[0], ell)  # rows x ell
    n, L = a.shape[1], y.shape[1]
    out = np.zeros((1, ell + 1, n + L), dtype=wide)
    out[0, :ell, :n] = _dense(a.T @ psi_t).T
    out[0, :ell, n:] = psi_t.T @ y
    out[0, ell, 0] = _block_sq_norm(a)
    return out


# --------------------------------------------------------------------------- graph helpers


def _tree_sum(func, arrays, shape, out_dtype, **kwargs):
    """Sum over row blocks of ``func(*blocks)`` (each of ``shape``), as a tree reduction.

    ``arrays`` are row-chunked alike; 2-D ones are passed whole across their columns.
    """
    import dask.array as da

    args = []
    for j, x in enumerate(arrays):
        args += [x, "i" + "abcdefgh"[j] if x.ndim == 2 else "i"]
    parts = da.blockwise(
        _call_whole,
        "ijk",
        *args,
        new_axes={"j": shape[0], "k": shape[1]},
        adjust_chunks={"i": 1},
        concatenate=False,
        dtype=out_dtype,
        meta=np.empty((0, 0, 0), dtype=out_dtype),
        kernel=func,
        **kwargs,
    )
    return parts.sum(axis=0, split_every=SPLIT_EVERY)


def _matmul(A, P, dtype):
    """The lazy row-chunked product ``A @ P`` (P small, NumPy, one key shared by the blocks)."""
    import dask.array as da

    Pd = da.from_array(np.asarray(P, dtype=dtype), chunks=P.shape)
    return da.blockwise(
        _call_whole,
        "ib",
        A,
        "ia",
        Pd,
        "ab",
        dtype=dtype,
        concatenate=False,
        meta=np.empty((0, 0), dtype=dtype),
        kernel=_block_matmul,
    )


def _small_times(Y, M, dtype):
    """Lazy ``Y @ M`` for a persisted tall ``Y`` and a small NumPy ``M``."""
    return _matmul(Y, np.asarray(M, dtype=dtype), dtype)


def _compute(*xs):
    import dask

    return dask.compute(*xs)


def _persist(*xs):
    import dask

    return dask.persist(*xs)


# --------------------------------------------------------------------------- the sweeps


class _State:
    """After a sweep: ``Q = Y @ M`` (or ``Q`` explicit when ``M`` is None) and ``Z = A.T @ Q``."""

    def __init__(self, Y, M, Z, Q=None):
        self.Y, self.M, self.Z, self._Q = Y, M, Z, Q

    def Q(self, dtype):
        return self._Q if self.M is None else _small_times(self.Y, self.M, dtype)


def _check_finite(frobenius2):
    if not math.isfinite(frobenius2):
        raise ValueError("`A` must contain only finite values; got NaN or infinity")


def _sweep(A, P, *, dtype, z_dtype, wide, frobenius=False, previous=None):
    """One read of A: ``Y = A @ P`` in ``dtype`` (persisted), ``Y.T Y``, ``A.T Y`` in
    ``z_dtype`` (and ``||A||_F^2``; and ``K.T Y`` for a ``previous`` basis ``K``, a
    persisted Dask array chunked like A's rows). Returns ``(Y, Y.T Y, A.T Y, ||A||_F^2,
    K.T Y)``."""
    import dask.array as da

    n, L = A.shape[1], P.shape[1]
    c = 0 if previous is None else previous.shape[1]
    Pd = da.from_array(np.asarray(P, dtype=dtype), chunks=P.shape)
    extra = () if previous is None else (previous.rechunk({1: -1}), "ic")
    # blocks that are (Y_i, stats_i) pairs, split by two cheap tasks: one task per block
    # makes both products, so the block is read (and cast) once
    pairs = da.blockwise(
        _call_whole, "ib", A, "ia", Pd, "ab", *extra, dtype=dtype, concatenate=False,
        meta=np.empty((0, 0), dtype=dtype), kernel=_block_sweep, frobenius=frobenius,
        wide=wide, z_dtype=z_dtype,
    )
    Y = pairs.map_blocks(_first, dtype=dtype, meta=np.empty((0, 0), dtype=dtype))
    parts = pairs.map_blocks(
        _second, chunks=((1,) * A.numblocks[0], ((n + L + 1 + c) * L,)), dtype=wide,
        meta=np.empty((0, 0), dtype=wide),
    )
    Y, stats = _persist(Y, parts.sum(axis=0, split_every=SPLIT_EVERY))
    (stats,) = _compute(stats)
    stats = stats.reshape(n + L + 1 + c, L)
    Zy, G, fro = stats[:n], stats[n : n + L], float(stats[n + L, 0])
    if frobenius:
        _check_finite(fro)
    elif not np.all(np.isfinite(G)):
        _check_finite(float("nan"))
    return Y, G, Zy, fro, stats[n + L + 1 :]


def _gram_of(Y, M, dtype, wide):
    """``(Y M).T (Y M)`` summed over the row blocks of the persisted ``Y`` (no read of A)."""
    L = M.shape[1]
    (G,) = _compute(
        _tree_sum(
            _block_gram, [Y], (L, L), wide, factor=np.asarray(M), block_dtype=dtype, wide=wide
        )
    )
    return G


def _rmatmat(A, Q, wide):
    """``A.T @ Q`` by one sweep (the TSQR fallback)."""
    (Z,) = _compute(_tree_sum(_block_rmatmat, [A, Q], (A.shape[1], Q.shape[1]), wide, wide=wide))
    return Z


def _tsqr(Y, dtype):
    from dask.array.linalg import tsqr

    Y = Y.rechunk({1: -1})
    Q, _ = tsqr(Y)
    (Q,) = _persist(Q.astype(dtype))
    return Q


def _orthonormal_sweep(A, P, *, dtype, z_dtype, out_dtype, wide, frobenius=False):
    """Sweep with ``P``, then ``Q = orth(A @ P)`` and ``Z = A.T @ Q`` (as `_cholesky_qr`).

    The Gram is float64 whatever the blocks' dtype, so one Cholesky-QR suffices here; the
    final basis is re-orthonormalised in float64 by `_rayleigh_ritz`.
    """
    Y, G, Zy, fro, _ = _sweep(A, P, dtype=dtype, z_dtype=z_dtype, wide=wide,
                              frobenius=frobenius)
    R = _cholesky_factor(G, np, wide, 1e-5)
    if R is None:
        Q = _tsqr(Y, out_dtype)
        return _State(Y, None, _rmatmat(A, Q, wide).astype(out_dtype), Q), fro
    M = np.linalg.inv(R)
    return _State(Y, M, (Zy @ M).astype(out_dtype)), fro


# --------------------------------------------------------------------------- algorithms


def _check_tall(A, name):
    """Validate the Dask array: 2-D, real, tall (m >= n), chunked by rows only (as every
    Dask-aware function of numlab: `check_row_chunked`)."""
    A = check_array(A, name, ndim=2, allow_lazy=True)
    m, n = A.shape
    if any(s is None or (isinstance(s, float) and math.isnan(s)) for s in A.shape):
        raise ValueError(
            f"`{name}` must have known chunk sizes; got shape {A.shape} "
            "(call `A.compute_chunk_sizes()` first)"
        )
    if m < n:
        raise ValueError(
            f"`{name}` must be a tall-and-skinny Dask array (rows >= columns, chunked by "
            f"rows); got shape {A.shape}. Pass `A.T` (chunked by rows) and swap U and Vt"
        )
    return check_row_chunked(A, name)


def _pass_dtype(A, mixed):
    """float32 for the subspace-finding products of a large dense float64 ``A`` (see the
    module). Sparse blocks stay float64: their nonzeros are unknown until read, and the
    in-memory rule counts nonzeros."""
    dtype = np.dtype(A.dtype)
    dense = isinstance(getattr(A, "_meta", None), np.ndarray)
    if mixed and dense and dtype == np.float64 and math.prod(A.shape) >= MIXED_MIN_SIZE:
        return np.dtype(np.float32)
    return dtype


def _subspace(A, size, *, k, n_iter, rng, mixed=True, frobenius=False, bar=None):
    """Subspace iteration as in the in-memory path; returns the final `_State`, the
    iterations, the Ritz values of each sweep and ``||A||_F**2`` (0 unless ``frobenius``
    or ``n_iter="auto"``)."""
    dtype = np.dtype(A.dtype)
    wide = np.dtype(np.float64)
    n = A.shape[1]
    pass_dtype = _pass_dtype(A, mixed)
    max_iter = AUTO_MAX_ITER["subspace"] if n_iter == "auto" else n_iter

    def z_dtype(it):
        # "auto" may stop after any sweep: its A.T @ Y is always the full-precision one
        return pass_dtype if n_iter != "auto" and it < max_iter else dtype

    Omega = rng.standard_normal((n, size)).astype(pass_dtype, copy=False)
    # ||A||_F^2 (for the "auto" rule) is summed in the first sweep, while the blocks are read
    auto = n_iter == "auto"
    state, fro = _orthonormal_sweep(A, Omega, dtype=pass_dtype, z_dtype=z_dtype(0),
                                    out_dtype=dtype, wide=wide, frobenius=auto or frobenius)
    ritz = [_descending_sqrt(np.linalg.eigvalsh(_gram(state.Z, np, wide)), np)]
    _report(bar, ritz, k)
    if ritz[0][0] > 0 and ritz[0][k - 1] / ritz[0][0] < MIXED_MIN_RATIO:
        pass_dtype = dtype  # sigma_k below float32's reach: the other sweeps in full precision
    frobenius2 = fro if auto else None
    it = 0
    while it < max_iter:
        if n_iter == "auto" and it >= 1 and _converged(ritz, k, AUTO_RTOL, frobenius2):
            break
        P = _orth(state.Z, _NP).astype(pass_dtype)  # orth(Z): Z is small (n x L), on the client
        state = None  # release the previous sketch on the workers before the next sweep
        state, _ = _orthonormal_sweep(A, P, dtype=pass_dtype, z_dtype=z_dtype(it + 1),
                                      out_dtype=dtype, wide=wide)
        ritz.append(_descending_sqrt(np.linalg.eigvalsh(_gram(state.Z, np, wide)), np))
        _report(bar, ritz, k)
        it += 1
    return state, it, ritz, fro


#: Block Krylov on Dask keeps a direction of a new block when its norm, after projecting
#: out the basis so far, is at least KRYLOV_DROP times the block's largest column norm:
#: the projection is computed from Grams (no pass over the basis), exact to about
#: eps / KRYLOV_DROP**2 = 1e-6 relative for the weakest kept direction.
KRYLOV_DROP = 1e-5


def _svqb(S, scale):
    """Columns ``C`` with ``C.T S C = I`` over the directions of the Gram ``S`` whose
    eigenvalue is at least ``KRYLOV_DROP**2 * scale`` (Stathopoulos & Wu's SVQB, with the
    numerically null directions dropped)."""
    lam, V = np.linalg.eigh(S)
    keep = lam >= KRYLOV_DROP**2 * scale
    return V[:, keep][:, ::-1] / np.sqrt(lam[keep][::-1])


def _krylov(A, size, *, k, n_iter, rng, mixed=True, frobenius=False, bar=None):
    """Randomized block Krylov iteration (Musco & Musco 2015), one sweep per block.

    The basis is ``Q = K @ M``: ``K`` the persisted raw blocks ``Y_j = A @ P_j`` side by
    side, ``M`` small. Each sweep returns, besides ``A.T @ Y_j`` and ``Y_j.T @ Y_j``, the
    products ``K.T @ Y_j`` with the blocks so far; the Gram of ``K`` then gives the new
    block's projection out of the basis twice (classical Gram-Schmidt twice, CGS2) and its
    orthonormalisation, all on the client; ``A.T @ Q = (A.T @ K) @ M`` follows from the
    sweeps' own products, so the projected matrix needs no further read of A. Every
    ``A.T @ Y_j`` is part of it, so they are all in A's precision; with mixed precision,
    only ``A @ P_j`` runs in float32. Returns as :func:`_subspace`.
    """
    import dask.array as da

    dtype = np.dtype(A.dtype)
    wide = np.dtype(np.float64)
    m, n = A.shape
    pass_dtype = _pass_dtype(A, mixed)
    auto = n_iter == "auto"
    Omega = rng.standard_normal((n, size)).astype(pass_dtype, copy=False)
    Y, G, Zy, fro, _ = _sweep(A, Omega, dtype=pass_dtype, z_dtype=dtype, wide=wide,
                              frobenius=auto or frobenius)
    blocks, gram, Zraw = [Y], G, Zy  # K = [Y_0, ...], gram = K.T K, Zraw = A.T K
    M = _svqb(G, float(np.max(np.diag(G))))
    if M.shape[1] < size:
        # A @ Omega is rank-deficient (rank A < size): a whole orthonormal first block by
        # TSQR and one more sweep for A.T Q, as subspace iteration does, so that k
        # directions exist whatever the rank
        Q = _tsqr(Y, dtype)
        blocks, gram, Zraw, M = [Q], np.eye(size), _rmatmat(A, Q, wide), np.eye(size)
    newest = M
    ritz = [_descending_sqrt(np.linalg.eigvalsh(_gram(Zraw @ M, np, wide)), np)]
    _report(bar, ritz, k)
    if ritz[0][0] > 0 and ritz[0][k - 1] / ritz[0][0] < MIXED_MIN_RATIO:
        pass_dtype = dtype
    frobenius2 = fro if auto else None
    max_iter = AUTO_MAX_ITER["krylov"] if auto else n_iter
    it = 0
    while it < max_iter and M.shape[1] + size <= min(m, n):
        if auto and it >= 1 and _converged(ritz, k, AUTO_RTOL, frobenius2):
            break
        P = _scale_columns(Zraw @ newest, _NP).astype(pass_dtype)
        previous = blocks[0] if len(blocks) == 1 else da.concatenate(blocks, axis=1)
        Y, G, Zy, _, C = _sweep(A, P, dtype=pass_dtype, z_dtype=dtype, wide=wide,
                                previous=previous)
        c, L = gram.shape[0], G.shape[0]
        gram = np.block([[gram, C], [C.T, G]])
        # coefficients over [K, Y]: the old basis padded, and Y minus its projection, twice
        Mpad = np.vstack([M, np.zeros((L, M.shape[1]))])
        N = np.vstack([np.zeros((c, L)), np.eye(L)])
        for _ in range(2):
            N = N - Mpad @ (Mpad.T @ gram @ N)
        coef = _svqb(N.T @ gram @ N, float(np.max(np.diag(G))))
        if coef.shape[1] == 0:
            break  # the Krylov space stopped growing: A @ P lies in the basis
        newest = N @ coef
        blocks.append(Y)
        Zraw = np.hstack([Zraw, Zy])
        M = np.hstack([Mpad, newest])
        ritz.append(_descending_sqrt(np.linalg.eigvalsh(_gram(Zraw @ M, np, wide)), np))
        _report(bar, ritz, k)
        it += 1
    K = blocks[0] if len(blocks) == 1 else da.concatenate(blocks, axis=1).rechunk({1: -1})
    return _State(K, M, (Zraw @ M).astype(dtype)), it, ritz, fro


def _rayleigh_ritz(state, dtype, wide):
    """(Q as ``Y @ M`` or explicit, W, s, X): ``Q.T A = X diag(s) W.T``, Q orthonormal in wide."""
    Z = state.Z.astype(wide)
    if state.M is not None:
        M = state.M.astype(wide)
        R = _cholesky_factor(_gram_of(state.Y, M, wide, wide), np, wide, 1e-5)
        if R is not None:
            M = M @ np.linalg.inv(R)
            Z = np.linalg.solve(R.T, Z.T).T
            W, s, Xt = np.linalg.svd(Z, full_matrices=False)
            return ("implicit", state.Y, M), W, s, Xt.T
        Qd = state.Q(wide)
    else:
        Qd = state._Q.astype(wide)
    from dask.array.linalg import tsqr

    Q, R = tsqr(Qd.rechunk({1: -1}))
    (Q, R) = _persist(Q, R)
    (R,) = _compute(R)
    Z = np.linalg.solve(R.T, Z.T).T
    W, s, Xt = np.linalg.svd(Z, full_matrices=False)
    return ("explicit", Q, None), W, s, Xt.T


def _basis_times(basis, X, dtype):
    """Lazy ``Q @ X`` (Q implicit as ``Y @ M`` or explicit)."""
    kind, Y, M = basis
    if kind == "implicit":
        return _small_times(Y, M @ X, dtype)
    return _small_times(Y, X, dtype)


def _finish(U, s, Vt, dtype, compute):
    """Signs as in the in-memory path; U gathered block by block when ``compute``.

    The blocks of U travel to the client one by one (never concatenated on a worker,
    whose memory limit may be smaller than U).
    """
    import dask.array as da

    S = np.asarray(s).astype(dtype)
    if compute:
        negative, *blocks = _compute(-U.min(axis=0) > U.max(axis=0), *U.to_delayed().ravel())
        signs = np.where(negative, -1.0, 1.0)
        U = np.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
        U *= signs
        return U.astype(dtype, copy=False), S, (Vt * signs[:, None]).astype(dtype)
    Vt = da.from_array(np.asarray(Vt), chunks=Vt.shape)
    U, Vt = _flip_signs(U, Vt, da)
    return U.astype(dtype), S, Vt.astype(dtype)


def _single_pass(A, size, k, rng, *, compute, bar=None):
    """Tropp, Yurtsever, Udell & Cevher (2017), Alg. 7 with the QR-based reconstruction."""
    dtype = np.dtype(A.dtype)
    wide = np.dtype(np.float64)
    m, n = A.shape
    ell = min(2 * size + 1, m)
    Omega = rng.standard_normal((n, size)).astype(dtype, copy=False)
    seed = int(rng.integers(0, 2**63 - 1))
    import dask.array as da

    Y = _matmul(A, Omega, dtype)
    rows = da.arange(m, chunks=(A.chunks[0],))
    stats = _tree_sum(
        _block_single_pass,
        [A, Y, rows],
        (ell + 1, n + size),
        wide,
        seed=seed,
        ell=ell,
        wide=wide,
    )
    Y, stats = _persist(Y, stats)
    (stats,) = _compute(stats)
    if bar is not None:
        bar.update()  # the one pass over A
    _check_finite(float(stats[ell, 0]))
    W = stats[:ell, :n]  # Psi A
    PsiY = stats[:ell, n:]  # Psi Y
    G = _gram_of(Y, np.eye(size), wide, wide)
    R = _cholesky_factor(G, np, wide, 1e-5)
    if R is not None:
        Minv = np.linalg.inv(R)
        basis = ("implicit", Y, Minv)
        PsiQ = PsiY @ Minv
    else:
        from dask.array.linalg import tsqr

        Q, R = tsqr(Y.astype(wide).rechunk({1: -1}))
        Q, R = _persist(Q, R)
        (R,) = _compute(R)
        basis = ("explicit", Q, None)
        PsiQ = np.linalg.solve(R.T, PsiY.T).T
    # X = (Psi Q)^+ (Psi A): the core of A ~ Q X
    X = np.linalg.lstsq(PsiQ, W, rcond=None)[0]
    Ux, s, Vt = np.linalg.svd(X, full_matrices=False)
    U = _basis_times(basis, Ux[:, :k], wide)
    return _finish(U, s[:k], Vt[:k], dtype, compute)


# --------------------------------------------------------------------------- entry points


def _common(A, k, n_oversamples, n_iter, method, name_k):
    from ._rsvd import _check_n_iter

    A = _check_tall(A, "A")
    m, n = A.shape
    k = check_int(k, name_k, low=1, high=min(m, n))
    n_oversamples = check_int(n_oversamples, "n_oversamples", low=0)
    n_iter = _check_n_iter(n_iter)
    method = check_option(method, "method", ("subspace", "krylov", "single_pass"))
    return A, k, n_oversamples, n_iter, method


def randomized_svd(A, k, *, n_oversamples, n_iter, method, tol, rng, compute, progress=False):
    progress = check_progress(progress)
    A, k, n_oversamples, n_iter, method = _common(A, k, n_oversamples, n_iter, method, "k")
    if tol is not None:
        tol = check_scalar(tol, "tol", low=0, high=1, high_inclusive=False)
        if method == "single_pass":
            raise ValueError(
                "`tol` needs `method` 'subspace' or 'krylov' (the single-pass "
                "reconstruction is not a projection, so its error is not known exactly)"
            )
    rng = check_rng(rng)
    size = min(k + n_oversamples, min(A.shape))
    dtype = np.dtype(A.dtype)
    wide = np.dtype(np.float64)
    if method == "single_pass":
        with Progress(progress, "nl.linalg.randomized_svd", total=1, unit="pass") as bar:
            return _single_pass(A, size, k, rng, compute=compute, bar=bar)
    run = _krylov if method == "krylov" else _subspace
    with Progress(progress, "nl.linalg.randomized_svd", total=_pass_total(n_iter, method),
                  unit="pass") as bar:
        state, _, _, fro = run(A, size, k=k, n_iter=n_iter, rng=rng,
                               frobenius=tol is not None, bar=bar)
    basis, W, s, X = _rayleigh_ritz(state, dtype, wide)
    # tol: the sketch is sized for k (one sketch reads A as often as a block of the
    # in-memory rank search does), the rank is read off its exact error
    rank = k if tol is None else _rank_for_tol(s, fro, k, tol)
    U = _basis_times(basis, X[:, :rank], wide)
    return _finish(U, s[:rank], W[:, :rank].T, dtype, compute)


def randomized_range_finder(A, size, *, n_iter, method, rng, compute, progress=False):
    progress = check_progress(progress)
    A, size, _, n_iter, method = _common(A, size, 0, n_iter, method, "size")
    if method == "single_pass":
        raise NotImplementedError(
            "`method` must be 'subspace' for randomized_range_finder on a Dask array; "
            "the single-pass mode is for randomized_svd"
        )
    rng = check_rng(rng)
    dtype = np.dtype(A.dtype)
    wide = np.dtype(np.float64)
    run = _krylov if method == "krylov" else _subspace
    with Progress(progress, "nl.linalg.randomized_range_finder",
                  total=_pass_total(n_iter, method), unit="pass") as bar:
        state, _, _, _ = run(A, size, k=size, n_iter=n_iter, rng=rng, bar=bar)
    basis, _, _, X = _rayleigh_ritz(state, dtype, wide)
    Q = _basis_times(basis, X[:, :size] if X.shape[1] > size else np.eye(X.shape[0]), wide)
    Q = Q.astype(dtype)
    if compute:
        blocks = _compute(*Q.to_delayed().ravel())
        Q = np.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
    return Q
