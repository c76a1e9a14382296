"""Randomized range finding and SVD (Halko, Martinsson & Tropp 2011), written in ``xp``.

Three ideas make it cheaper than the classical fixed-count power scheme at the same
accuracy:

- ``n_iter="auto"`` stops the power (or Krylov) passes once the top-k Ritz values, which
  every pass gives almost for free (the Gram of ``A.T @ Q``), stop moving;
- for float64 input the passes run on a float32 copy of ``A`` (half the memory traffic,
  twice the GEMM rate) and one final float64 pass makes the result exact for the found
  subspace; this is switched off when the spectrum decays below float32 resolution;
- ``method="krylov"`` keeps every block of the Krylov space (Musco & Musco 2015) and reuses
  the products ``A.T @ Q_i`` of the passes as the projected matrix, so no extra pass is
  needed at the end.

With ``tol=`` the rank is chosen adaptively (Yu, Gu & Li 2018, randQB_EI): blocks of the
range are added until ``||A||_F**2 - ||B||_F**2``, the exact squared error of ``Q @ B``,
falls below ``tol**2 * ||A||_F**2``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from .. import _backend
from .._progress import Progress, check_progress
from .._validation import check_int, check_option, check_rng, check_scalar
from ._operator import Operator, _wide_dtype, as_operator, squared_norm

#: ``n_iter="auto"`` stops when no top-k Ritz value moved by more than AUTO_RTOL * s_k
#: in the last pass, or (when ||A||_F is known) when the rank-k Frobenius error improved
#: by less than AUTO_FROBENIUS_RTOL relatively and no Ritz value moved by more than
#: AUTO_GUARD * s_k (flat spectra: the values creep on, the approximation does not).
AUTO_RTOL = 1e-2
AUTO_FROBENIUS_RTOL = 1e-3
AUTO_GUARD = 0.2
#: Most passes ``n_iter="auto"`` makes (subspace iteration, block Krylov).
AUTO_MAX_ITER = {"subspace": 12, "krylov": 6}
#: float64 input is sketched in float32 when ``A`` stores at least this many entries
#: (dense) or nonzeros (sparse) and sigma_k / sigma_1 stays above MIXED_MIN_RATIO.
MIXED_MIN_SIZE = 1 << 20
MIXED_MIN_RATIO = 1e-3
#: ``progress=True`` draws a bar over the passes when ``A`` stores at least this many
#: entries (dense; ``m * n`` for a LinearOperator) or nonzeros (sparse): 2**24, 128 MiB
#: of float64, where a pass over ``A`` takes a noticeable time. Dask input always has one.
PROGRESS_MIN_SIZE = 1 << 24


def _progress_bar(progress, op, desc, total):
    """The bar over the passes over ``A`` (shown for large operators only)."""
    m, n = op.shape
    size = op.nnz if op.nnz is not None else m * n
    return Progress(progress and size >= PROGRESS_MIN_SIZE, desc, total=total, unit="pass")


def _pass_total(n_iter, method):
    """Most passes over ``A`` the range finder makes (the first one included)."""
    return 1 + (AUTO_MAX_ITER[method] if n_iter == "auto" else n_iter)


def _report(bar, ritz, k):
    """One more pass on the bar, with the k-th Ritz value and its last move."""
    if bar is None or not bar.shown:
        return
    bar.update()
    sk = float(ritz[-1][k - 1])
    if len(ritz) > 1:
        move = float(np.max(np.abs(ritz[-1][:k] - ritz[-2][:k])))
        bar.note(f"s_k {sk:.4g}, move {move / sk if sk > 0 else 0.0:.1e} s_k")
    else:
        bar.note(f"s_k {sk:.4g}")


@dataclasses.dataclass
class _Sketch:
    """What the range finder hands to the final Rayleigh-Ritz step."""

    Q: object  # (m, L) orthonormal basis of the range
    Z: object  # (n, L) = A.T @ Q, i.e. B.T, in the dtype of `op`
    op: Operator  # the operator the passes used (maybe the float32 copy)
    n_iter: int  # power / Krylov iterations made
    ritz: list  # top Ritz values after each pass (NumPy, descending)


# --------------------------------------------------------------------------- small helpers


def _qr(Y, xp):
    return xp.linalg.qr(Y).Q


def _cholesky_factor(G, xp, wide, min_ratio):
    """Upper Cholesky factor (wide dtype) of the Gram ``G``, or None if too ill-conditioned."""
    try:
        R = xp.linalg.cholesky(xp.astype(G, wide), upper=True)
    except Exception:  # not positive definite (numpy/array-api-strict raise LinAlgError)
        return None
    d = xp.abs(xp.linalg.diagonal(R))
    lo, hi = float(xp.min(d)), float(xp.max(d))
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo > min_ratio * hi:
        return None
    return R


def _cholesky_qr(Y, xp, gram=None):
    """Q with orthonormal columns spanning Y, by Cholesky of the Gram ``Y.T @ Y``.

    GEMM-shaped products instead of Householder QR (several times faster on tall blocks,
    and on GPUs). Returns ``(Q, R)`` with ``Y = Q R`` (R in the wide dtype), or ``None``
    when Y is too ill-conditioned for its Gram, where Householder QR must be used.
    ``gram`` may pass ``Y.T @ Y`` when it is already known.

    A wide (float64) Y is done in one pass and accepted up to cond(Y) = 1e5. A float32
    block keeps its tall products in float32 (no float64 copy of the block): its Gram is
    accurate enough up to cond(Y) = 1e2, and a second pass (CholQR2) restores
    orthonormality to float32 rounding.
    """
    wide = _wide_dtype(xp, _backend.device(Y))
    if Y.dtype == wide:
        R = _cholesky_factor(Y.T @ Y if gram is None else gram, xp, wide, 1e-5)
        return None if R is None else (Y @ xp.linalg.inv(R), R)
    R = _cholesky_factor(Y.T @ Y if gram is None else gram, xp, wide, 1e-2)
    if R is None:
        return None
    Q = Y @ xp.astype(xp.linalg.inv(R), Y.dtype)
    R2 = _cholesky_factor(Q.T @ Q, xp, wide, 1e-2)
    if R2 is None:
        return None
    return Q @ xp.astype(xp.linalg.inv(R2), Y.dtype), R2 @ R


def _orth(Y, xp, gram=None):
    """Orthonormal basis of span(Y): Cholesky-QR, Householder QR when ill-conditioned."""
    result = _cholesky_qr(Y, xp, gram)
    return _qr(Y, xp) if result is None else result[0]


def _orthonormalize(Y, xp, basis=None):
    """An orthonormal basis of span(Y), orthogonal to ``basis`` when given (CGS2)."""
    if basis is None:
        return _orth(Y, xp)
    Y = Y - basis @ (basis.T @ Y)
    Q = _orth(Y, xp)
    Q = Q - basis @ (basis.T @ Q)  # second pass: orthogonality to working precision
    return _orth(Q, xp)


def _scale_columns(Z, xp):
    """Z with unit columns (keeps its span; avoids overflow in the next product)."""
    norms = xp.linalg.vector_norm(Z, axis=0)
    tiny = xp.finfo(Z.dtype).smallest_normal
    return Z / xp.where(norms > tiny, norms, xp.ones_like(norms))


def _descending_sqrt(eigenvalues, xp):
    ev = np.asarray(_backend.to_numpy(eigenvalues), dtype=np.float64)[::-1]
    return np.sqrt(np.clip(ev, 0.0, None))


def _converged(ritz, k, rtol, frobenius2):
    return _ritz_converged(ritz[-2], ritz[-1], k, rtol, frobenius2)


def _ritz_converged(previous, current, k, rtol, frobenius2=None):
    """Whether the top-k Ritz values have settled (the ``n_iter="auto"`` rule).

    Moves are measured against the k-th value, not each value: a move of ``rtol * s_k``
    in any direction changes the rank-k approximation by about that much, whatever the
    size of the value that moved. With ``frobenius2 = ||A||_F**2`` a second, looser rule
    also stops: the Frobenius error ``sqrt(||A||^2 - sum s_i^2)`` improved by less than
    AUTO_FROBENIUS_RTOL (relative) and no value moved by more than AUTO_GUARD * s_k.
    On flat spectra the Ritz values keep creeping up inside the cluster of equal singular
    values while the approximation no longer improves; this rule stops there.
    """
    sk = current[k - 1]
    if not sk > 0:
        return True  # A is (numerically) of rank < k: nothing left to find
    move = float(np.max(np.abs(current[:k] - previous[:k])))
    if move <= rtol * sk:
        return True
    if frobenius2 is None or move > AUTO_GUARD * sk:
        return False
    captured = float(np.sum(current[:k] ** 2))
    gain = captured - float(np.sum(previous[:k] ** 2))
    return gain <= AUTO_FROBENIUS_RTOL * max(frobenius2 - captured, 0.0)


def _flip_signs(U, Vt, xp):
    """Make the entry of largest magnitude of each column of U positive (deterministic)."""
    # The largest-magnitude entry is negative iff -min > max (no argmax over a tall array).
    negative = -xp.min(U, axis=0) > xp.max(U, axis=0)
    one = xp.ones_like(U[0, :])
    signs = xp.where(negative, -one, one)
    return U * signs, Vt * signs[:, None]


# --------------------------------------------------------------------------- validation


def _check_n_iter(n_iter):
    if isinstance(n_iter, str):
        return check_option(n_iter, "n_iter", ("auto",))
    return check_int(n_iter, "n_iter", low=0)


def _check_common(op, k, n_oversamples, n_iter, method, name_k="k"):
    m, n = op.shape
    k = check_int(k, name_k, low=1, high=min(m, n))
    n_oversamples = check_int(n_oversamples, "n_oversamples", low=0)
    n_iter = _check_n_iter(n_iter)
    method = check_option(method, "method", ("subspace", "krylov"))
    return k, n_oversamples, n_iter, method


# --------------------------------------------------------------------------- range finders


def _pass_operator(op, k, use_mixed):
    """The float32 copy of a float64 operator when mixed precision is worth it."""
    xp = op.xp
    if not use_mixed or op.cast is None or op.dtype != xp.float64:
        return op
    if op.nnz is None or op.nnz < MIXED_MIN_SIZE:
        return op
    return op.cast(xp.float32)


def _upgrade_if_needed(op_pass, op_full, ritz, k):
    """Back to full precision when sigma_k is below float32 resolution."""
    if op_pass is op_full or op_pass.dtype == op_full.dtype:
        return op_pass
    if ritz[0] > 0 and ritz[k - 1] / ritz[0] >= MIXED_MIN_RATIO:
        return op_pass
    return op_full


def _subspace_iteration(op, op_full, Omega, *, k, n_iter, rtol, basis=None, frobenius2=None,
                        bar=None):
    """Power (subspace) iteration; returns a :class:`_Sketch`.

    With ``basis``, the range is kept orthogonal to it (deflated operators of the
    fixed-precision mode).
    """
    xp = op.xp
    wide = _wide_dtype(xp, op.device)
    Q = _orthonormalize(op.matmat(Omega), xp, basis)
    Z = op.rmatmat(Q)
    gram = _gram(Z, xp, wide)
    ritz = [_descending_sqrt(xp.linalg.eigvalsh(gram), xp)]
    _report(bar, ritz, k)
    upgraded = _upgrade_if_needed(op, op_full, ritz[0], k)
    if upgraded is not op:
        op = upgraded
        Q = xp.astype(Q, op.dtype)
        Z = op.rmatmat(Q)
        gram = _gram(Z, xp, wide)
        basis = None if basis is None else xp.astype(basis, op.dtype)
    max_iter = AUTO_MAX_ITER["subspace"] if n_iter == "auto" else n_iter
    it = 0
    while it < max_iter:
        if n_iter == "auto" and it >= 1 and _converged(ritz, k, rtol, frobenius2):
            break
        # The Gram of Z gives both the Ritz values and the Cholesky-QR of Z.
        P = _orth(Z, xp, gram)
        Q = _orthonormalize(op.matmat(P), xp, basis)
        Z = op.rmatmat(Q)
        gram = _gram(Z, xp, wide)
        ritz.append(_descending_sqrt(xp.linalg.eigvalsh(gram), xp))
        _report(bar, ritz, k)
        it += 1
    return _Sketch(Q, Z, op, it, ritz)


def _gram(Z, xp, wide):
    """Z.T @ Z, computed in Z's dtype (no wide copy of the tall block), returned wide."""
    return xp.astype(Z.T @ Z, wide)


def _block_krylov(op, op_full, Omega, *, k, n_iter, rtol, frobenius2=None, bar=None):
    """Randomized block Krylov iteration (Musco & Musco 2015); returns a :class:`_Sketch`.

    The basis ``Q = [Q_0, ..., Q_q]`` of span{A W, (A A^T) A W, ...} is built block by
    block; ``Z = A.T @ Q`` is assembled from the products of the passes themselves.
    """
    xp = op.xp
    wide = _wide_dtype(xp, op.device)
    m, n = op.shape
    block = Omega.shape[1]
    Q = _orthonormalize(op.matmat(Omega), xp)
    Z = op.rmatmat(Q)
    gram = _gram(Z, xp, wide)
    ritz = [_descending_sqrt(xp.linalg.eigvalsh(gram), xp)]
    _report(bar, ritz, k)
    upgraded = _upgrade_if_needed(op, op_full, ritz[0], k)
    if upgraded is not op:
        op = upgraded
        Q = xp.astype(Q, op.dtype)
        Z = op.rmatmat(Q)
    last_Z = Z
    max_iter = AUTO_MAX_ITER["krylov"] if n_iter == "auto" else n_iter
    it = 0
    while it < max_iter and Q.shape[1] + block <= min(m, n):
        if n_iter == "auto" and it >= 1 and _converged(ritz, k, rtol, frobenius2):
            break
        Q_new = _orthonormalize(op.matmat(_scale_columns(last_Z, xp)), xp, Q)
        Z_new = op.rmatmat(Q_new)
        cross = xp.astype(Z.T @ Z_new, wide)
        gram = xp.concat(
            [
                xp.concat([gram, cross], axis=1),
                xp.concat([cross.T, _gram(Z_new, xp, wide)], axis=1),
            ],
            axis=0,
        )
        Q = xp.concat([Q, Q_new], axis=1)
        Z = xp.concat([Z, Z_new], axis=1)
        last_Z = Z_new
        ritz.append(_descending_sqrt(xp.linalg.eigvalsh(gram), xp))
        _report(bar, ritz, k)
        it += 1
    return _Sketch(Q, Z, op, it, ritz)


def _sketch(op, size, *, k, n_iter, method, rng, rtol=AUTO_RTOL, mixed=True, bar=None):
    """Run the chosen range finder on ``op`` (already validated)."""
    xp = op.xp
    op_pass = _pass_operator(op, k, mixed)
    Omega = _backend.random_normal(
        rng, (op.shape[1], size), xp=xp, device=op.device, dtype=op_pass.dtype
    )
    frobenius2 = op.frobenius2() if n_iter == "auto" and op.frobenius2 is not None else None
    run = _block_krylov if method == "krylov" else _subspace_iteration
    return run(op_pass, op, Omega, k=k, n_iter=n_iter, rtol=rtol, frobenius2=frobenius2, bar=bar)


# --------------------------------------------------------------------------- Rayleigh-Ritz


def _rayleigh_ritz(sketch, op, size):
    """Exact SVD of ``Q.T @ A`` in the wide dtype: returns (Q, W, s, X) with
    ``Q.T @ A = X diag(s) W.T`` (X: (L, L), W: (n, L)).

    Mixed precision: the float32 basis is cut to its top ``size`` Ritz directions,
    orthonormalised in float64 and projected with one float64 pass. Same precision: the
    basis is re-orthonormalised in the wide dtype and ``Z`` corrected by ``R^-1``.
    """
    xp = op.xp
    wide = _wide_dtype(xp, op.device)
    Q = xp.astype(sketch.Q, wide)
    Z = xp.astype(sketch.Z, wide)
    if sketch.op.dtype != op.dtype:
        Q = _orth(_top_ritz_basis(Q, Z, size, xp), xp)
        Z = xp.astype(op.rmatmat(xp.astype(Q, op.dtype)), wide)
    else:
        # Q is orthonormal to the pass precision; make it so to the wide one.
        result = _cholesky_qr(Q, xp)
        Q, R = xp.linalg.qr(Q) if result is None else result
        Z = xp.linalg.solve(R.T, Z.T).T  # Z R^-1: the projection onto the new basis
    W, s, Xt = xp.linalg.svd(Z, full_matrices=False)  # Z = W s Xt, so Q.T A = Xt.T s W.T
    return Q, W, s, Xt.T


def _top_ritz_basis(Q, Z, size, xp):
    """Q @ (top ``size`` left singular vectors of B = Z.T)."""
    if Q.shape[1] <= size:
        return Q
    _, _, Xt = xp.linalg.svd(Z, full_matrices=False)
    return Q @ Xt.T[:, :size]


# --------------------------------------------------------------------------- public API


def randomized_range_finder(
    A, size, *, n_iter="auto", method="subspace", rng=None, compute=True, progress=False
):
    """An orthonormal basis ``Q`` whose span approximates the range of ``A``.

    Parameters
    ----------
    A : array (m, n), sparse matrix or LinearOperator
        Dense NumPy/CuPy (any array-API) array, ``scipy.sparse`` / ``cupyx.scipy.sparse``
        matrix, or ``scipy.sparse.linalg.LinearOperator``.
    size : int
        Number of columns of ``Q``, ``1 <= size <= min(m, n)``.
    n_iter : int or "auto", default "auto"
        Power (or Krylov) iterations; ``"auto"`` iterates until the top Ritz values stop
        moving (at most 12 for subspace iteration, 6 for block Krylov).
    method : {"subspace", "krylov"}, default "subspace"
        Subspace (power) iteration, or block Krylov iteration; with ``"krylov"`` the
        basis holds all the Krylov blocks before being cut to its best ``size``
        directions.
    rng : None, int or numpy.random.Generator
        Source of the Gaussian test matrix.
    compute : bool, default True
        Dask input only: return ``Q`` as a NumPy array (True) or as a lazy Dask array
        chunked like ``A``'s rows (False; it reads only the persisted sketch, not ``A``).
    progress : bool, default False
        Show a progress bar on stderr (tqdm) over the passes over ``A``, with the
        ``size``-th Ritz value and its last move, for Dask input and for ``A`` of at
        least ``2**24`` entries or nonzeros (``PROGRESS_MIN_SIZE``; ``m * n`` for a
        LinearOperator). Smaller inputs draw nothing; the result is the same either way.

    Returns
    -------
    array (m, size)
        ``Q``: orthonormal columns (orthonormalised in float64), dtype of ``A``, on ``A``'s
        backend and device (NumPy or Dask for Dask input, see ``compute``).

    Notes
    -----
    A Dask array must be tall (``m >= n``) and chunked by rows; see
    :func:`randomized_svd` for how it is processed.

    References
    ----------
    N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness:
    probabilistic algorithms for constructing approximate matrix decompositions",
    SIAM Review 53(2), 2011, Algorithms 4.3-4.4.

    Examples
    --------
    >>> import numpy as np, numlab as nl
    >>> A = np.random.default_rng(0).standard_normal((200, 8)) @ np.ones((8, 50))
    >>> Q = nl.linalg.randomized_range_finder(A, 8, rng=0)
    >>> bool(np.allclose(Q @ (Q.T @ A), A))
    True
    """
    if _is_dask_array(A):
        from ._rsvd_dask import randomized_range_finder as dask_range_finder

        return dask_range_finder(
            A, size, n_iter=n_iter, method=method, rng=rng, compute=compute, progress=progress
        )
    progress = check_progress(progress)
    op = as_operator(A)
    size, _, n_iter, method = _check_common(op, size, 0, n_iter, method, name_k="size")
    rng = check_rng(rng)
    xp = op.xp
    with _progress_bar(progress, op, "nl.linalg.randomized_range_finder",
                       _pass_total(n_iter, method)) as bar:
        sketch = _sketch(op, size, k=size, n_iter=n_iter, method=method, rng=rng, bar=bar)
    Q, _, _, X = _rayleigh_ritz(sketch, op, size)
    Q = Q @ X[:, :size] if Q.shape[1] > size else Q
    return xp.astype(Q, op.dtype)


def _choose_size(k, n_oversamples, shape):
    return min(k + n_oversamples, min(shape))


def _is_dask_array(A) -> bool:
    # without importing dask: numlab never imports it unless a Dask array arrives
    return type(A).__module__.startswith("dask.") and hasattr(A, "chunks")


def randomized_svd(
    A,
    k,
    *,
    n_oversamples=10,
    n_iter="auto",
    method="subspace",
    tol=None,
    rng=None,
    compute=True,
    progress=False,
):
    """Truncated SVD ``A ~ U @ diag(S) @ Vt`` by randomized range finding.

    Parameters
    ----------
    A : array (m, n), sparse matrix, LinearOperator or Dask array
        Dense NumPy/CuPy (any array-API) array, ``scipy.sparse`` / ``cupyx.scipy.sparse``
        matrix, ``scipy.sparse.linalg.LinearOperator``, or a tall-and-skinny
        ``dask.array`` chunked by rows (dense or ``scipy.sparse`` blocks; see Notes).
        Real; float32 stays float32.
    k : int
        Rank of the approximation, ``1 <= k <= min(m, n)``; with ``tol`` an upper bound.
    n_oversamples : int, default 10
        Extra columns of the sketch (``k + n_oversamples`` in all).
    n_iter : int or "auto", default "auto"
        Power iterations (subspace) or Krylov blocks after the first (krylov). ``"auto"``
        stops when no top-k Ritz value moves by more than 1 % of the k-th between two
        passes, or, when ``||A||_F`` is known, when the rank-k Frobenius error improves
        by less than 0.1 % while no value moves by more than 20 % of the k-th (flat
        spectra); at most 12 subspace / 6 Krylov iterations. With ``tol``, the first rule
        is applied to each block.
    method : {"subspace", "krylov", "single_pass"}, default "subspace"
        Subspace iteration (Halko et al. 2011, Alg. 4.4) or randomized block Krylov
        iteration (Musco & Musco 2015): Krylov reaches a given spectral accuracy in fewer
        passes on decaying spectra, at the cost of storing ``(n_iter + 1)`` blocks.
        ``"single_pass"`` (Dask input only; Tropp, Yurtsever, Udell & Cevher 2017) reads
        ``A`` exactly once, for data that can be read only once; it is less accurate
        than subspace iteration with power iterations (``n_iter`` is ignored).
    tol : float, optional
        Fixed-precision mode (Yu, Gu & Li 2018): the smallest rank ``r <= k`` with
        ``||A - U S Vt||_F <= tol * ||A||_F`` is chosen. The error estimate is exact up to
        rounding, so ``tol`` should stay above ~1e-7 (float64) / 1e-3 (float32). Not
        available for LinearOperator input (``||A||_F`` is unknown).
    rng : None, int or numpy.random.Generator
        Source of the Gaussian test matrices; a fixed seed gives the same result on a
        given backend.
    compute : bool, default True
        Dask input only. True: ``U``, ``S``, ``Vt`` are NumPy arrays. False: ``U`` (m x k,
        chunked like ``A``'s rows) and ``Vt`` are lazy Dask arrays (the sign convention
        couples them), ``S`` is NumPy; computing ``U`` reads the sketch persisted on the
        workers (m x (k + n_oversamples)), not ``A``.
    progress : bool, default False
        Show a progress bar on stderr (tqdm) over the passes over ``A`` (power or Krylov
        iterations; with ``tol``, over the blocks' passes with the rank and error
        reached), with the k-th Ritz value and its last move, for Dask input and for
        ``A`` of at least ``2**24`` entries or nonzeros (``PROGRESS_MIN_SIZE``;
        ``m * n`` for a LinearOperator). Smaller inputs draw nothing; the result is the
        same either way.

    Returns
    -------
    U : array (m, r)
        Orthonormal columns.
    S : array (r,)
        Singular values, descending.
    Vt : array (r, n)
        Orthonormal rows. ``r = k`` unless ``tol`` chose a smaller rank. Signs are fixed
        so that the entry of largest magnitude of each column of ``U`` is positive.

    Notes
    -----
    For float64 input with at least 2**20 entries, the passes run on a float32 copy of
    ``A`` and a final float64 pass projects ``A`` onto the float64-orthonormalised basis;
    when sigma_k / sigma_1 falls below 1e-3 the passes switch back to float64. Wide
    input is handled through its transpose.

    Dask input must be tall (``m >= n``; pass ``A.T`` and swap the factors otherwise)
    and is processed by row blocks: one power iteration is one sweep over the blocks
    (each block gives ``Y_i = A_i P``, ``Y_i.T Y_i`` and ``A_i.T Y_i``, added up by a
    tree reduction; Cholesky-QR, or TSQR when ``Y`` is ill-conditioned, which costs one
    more sweep), so ``n_iter=q`` reads ``A`` ``q + 1`` times; the sketch ``Y``
    (m x (k + n_oversamples)) stays on the workers and ``U`` is formed from it. The test
    matrix is drawn on the client as in the in-memory path (n x (k + n_oversamples)),
    so the result does not depend on the chunking and equals the NumPy result to
    rounding where both run in the same precision. For a dense float64 ``A`` of 2**20
    entries or more, ``Y_i = A_i P`` (and ``A_i.T Y_i`` in the sweeps a fixed ``n_iter``
    knows are not the last) run in float32; the products forming the projected matrix
    stay float64, so the result is float64-exact for its subspace with no extra sweep.
    ``method="krylov"`` reads ``A`` once per Krylov block (each sweep also returns the
    new block's products with the persisted earlier blocks, so the orthonormalisation
    is done on the client). With ``tol``, the sketch is sized for ``k`` (reads of ``A``
    dominate: a block-by-block rank search would read it once per block) and the rank
    is the smallest whose exact error meets ``tol``. Dask recomputes the blocks of a
    lost worker; keep the blocks deterministic (a seeded generator, a file) for that to
    give the same answer. Scaling of extreme values (beyond ``max**0.25``) is not
    applied to Dask input.

    References
    ----------
    N. Halko, P.-G. Martinsson, J. A. Tropp, SIAM Review 53(2), 2011.
    C. Musco, C. Musco, "Randomized block Krylov methods for stronger and faster
    approximate singular value decomposition", NeurIPS 2015.
    W. Yu, Y. Gu, Y. Li, "Efficient randomized algorithms for the fixed-precision
    low-rank matrix approximation", SIAM J. Matrix Anal. Appl. 39(3), 2018.

    Examples
    --------
    >>> import numpy as np, numlab as nl
    >>> rng = np.random.default_rng(0)
    >>> s = 0.5 ** np.arange(40)
    >>> A = rng.standard_normal((300, 40)) @ np.diag(s) @ rng.standard_normal((40, 200))
    >>> U, S, Vt = nl.linalg.randomized_svd(A, 5, rng=0)
    >>> bool(np.allclose(S, np.linalg.svd(A, compute_uv=False)[:5]))
    True
    >>> U, S, Vt = nl.linalg.randomized_svd(A, 40, tol=1e-6, rng=0)
    >>> S.shape[0] < 40
    True
    """
    if _is_dask_array(A):
        from ._rsvd_dask import randomized_svd as dask_randomized_svd

        return dask_randomized_svd(
            A,
            k,
            n_oversamples=n_oversamples,
            n_iter=n_iter,
            method=method,
            tol=tol,
            rng=rng,
            compute=compute,
            progress=progress,
        )
    progress = check_progress(progress)
    if method == "single_pass":
        raise ValueError(
            "`method` must be 'subspace' or 'krylov' for in-memory input; got "
            "'single_pass' (the single-pass mode is for Dask arrays)"
        )
    op = as_operator(A)
    k, n_oversamples, n_iter, method = _check_common(op, k, n_oversamples, n_iter, method)
    rng = check_rng(rng)
    xp = op.xp
    out_dtype = op.dtype
    m, n = op.shape
    # Work on the tall orientation: the test matrix and Z = A.T @ Q are small blocks.
    transposed = m < n
    work = op.T if transposed else op
    if tol is not None:
        tol = check_scalar(tol, "tol", low=0, high=1, high_inclusive=False)
        if work.frobenius2 is None:
            raise TypeError(
                "`tol` needs ||A||_F, which a LinearOperator cannot give; pass a dense or "
                "sparse matrix, or use a fixed rank k without tol"
            )
        with _progress_bar(progress, work, "nl.linalg.randomized_svd", None) as bar:
            Q, W, s, X, rank = _fixed_precision(
                work, k, n_oversamples, n_iter, method, tol, rng, bar=bar
            )
    else:
        size = _choose_size(k, n_oversamples, op.shape)
        with _progress_bar(progress, work, "nl.linalg.randomized_svd",
                           _pass_total(n_iter, method)) as bar:
            sketch = _sketch(work, size, k=k, n_iter=n_iter, method=method, rng=rng, bar=bar)
        Q, W, s, X = _rayleigh_ritz(sketch, work, size)
        rank = k
    U = Q @ X[:, :rank]
    S = s[:rank]
    Vt = W[:, :rank].T
    if transposed:
        U, Vt = Vt.T, U.T
    U, Vt = _flip_signs(U, Vt, xp)
    S = xp.astype(S, out_dtype) if op.scale == 1.0 else xp.astype(S / op.scale, out_dtype)
    return xp.astype(U, out_dtype), S, xp.astype(Vt, out_dtype)


def _deflated(op, Q, Z):
    """The operator A - Q B with B = Z.T (what is left after the found blocks)."""
    if Q is None:
        return op
    return dataclasses.replace(
        op,
        matmat=lambda X: op.matmat(X) - Q @ (Z.T @ X),
        rmatmat=lambda Y: op.rmatmat(Y) - Z @ (Q.T @ Y),
        cast=None,
    )


def _fixed_precision(op, k, n_oversamples, n_iter, method, tol, rng, bar=None):
    """randQB_EI with per-block power iterations; returns (Q, W, s, X, rank)."""
    xp = op.xp
    wide = _wide_dtype(xp, op.device)
    m, n = op.shape
    total = op.frobenius2()
    target = tol * tol * total
    limit = _choose_size(k, n_oversamples, op.shape)
    # Small blocks: the rank is read off the final SVD, the block only sets the work.
    block = min(limit, max(16, 2 * n_oversamples))
    Q = Z = None
    captured = 0.0
    while True:
        done = 0 if Q is None else Q.shape[1]
        # Blocks grow with the basis (by half), so a rank r takes O(log r) blocks.
        b = min(max(block, done // 2), limit - done)
        deflated = _deflated(op, Q, Z)
        Omega = _backend.random_normal(rng, (n, b), xp=xp, device=op.device, dtype=op.dtype)
        sketch = _subspace_iteration(
            deflated, deflated, Omega, k=b, n_iter=n_iter, rtol=AUTO_RTOL, basis=Q, bar=bar
        )
        Q = sketch.Q if Q is None else xp.concat([Q, sketch.Q], axis=1)
        Z = sketch.Z if Z is None else xp.concat([Z, sketch.Z], axis=1)
        captured += squared_norm(sketch.Z, xp)
        if bar is not None and bar.shown:
            error = math.sqrt(max(total - captured, 0.0) / total) if total > 0 else 0.0
            bar.note(f"rank {Q.shape[1]}, error {error:.2e}, tol {tol:.1e}")
        # (A block that adds no direction would repeat forever: stop there too.)
        if total - captured <= target or Q.shape[1] >= limit or sketch.Q.shape[1] == 0:
            break
    Qw = xp.astype(Q, wide)
    Zw = xp.astype(Z, wide)
    W, s, Xt = xp.linalg.svd(Zw, full_matrices=False)
    rank = _rank_for_tol(np.asarray(_backend.to_numpy(s), dtype=np.float64), total, k, tol)
    return Qw, W, s, Xt.T, rank


def _rank_for_tol(s, total, k, tol):
    """The smallest rank ``r <= k`` with ``||A - U_r S_r Vt_r||_F <= tol ||A||_F``, or k
    (with a warning) when k does not reach it. ``s`` are the singular values of
    ``B = Q.T A`` and ``total = ||A||_F**2``: the rank-r error is then exactly
    ``total - sum_{j<=r} s_j**2``."""
    errors = total - np.cumsum(s**2)
    fits = np.nonzero(errors <= tol * tol * total)[0]
    if fits.size and fits[0] + 1 <= k:
        return int(fits[0]) + 1
    achieved = math.sqrt(max(errors[min(k, s.size) - 1], 0.0) / total) if total > 0 else 0.0
    warnings.warn(
        f"randomized_svd: rank k={k} does not reach tol={tol:g}; the relative "
        f"Frobenius error is about {achieved:.3g}. Increase `k` for a smaller error.",
        RuntimeWarning,
        stacklevel=4,
    )
    return k
