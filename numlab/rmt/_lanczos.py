"""Lanczos tridiagonalisation, Ritz pairs, extremal eigenpairs, SLQ densities and traces.

Every routine here touches the operator only through ``matvec(v)`` and works on the
caller's backend: the Krylov basis lives where ``v0`` (or ``like``) lives, in its dtype.
The Lanczos coefficients are accumulated on the host in float64 and the small
tridiagonal eigenproblems are solved on the host with SciPy. The hot loop is one matvec
plus a Gram-Schmidt projection against the basis (two matrix-vector products with the
basis, i.e. BLAS-2), so no hand-written kernel is needed: both run at BLAS speed on
NumPy and cuBLAS speed on CuPy.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import _backend
from .._progress import Progress, check_progress
from .._results import CompactRepr
from .._validation import (
    check_array,
    check_bool,
    check_int,
    check_like,
    check_option,
    check_real_values,
    check_rng,
    check_scalar,
)

__all__ = [
    "EigResult",
    "lanczos",
    "ritz",
    "eigsh",
    "spectral_density",
    "smooth_density",
    "trace",
]


# --------------------------------------------------------------------------- helpers


def _template(matvec, v0=None, like=None):
    """The array whose namespace, device and dtype the Krylov vectors take."""
    like = check_like(like)
    if v0 is not None:
        v0 = check_array(v0, "v0", ndim=1, finite=False)  # values: _start_vector
        if like is not None:
            _backend.namespace(v0=v0, like=like)  # one library (the error names them)
        return v0
    if like is not None:
        return like
    return getattr(matvec, "like", None)


def _layout(template, n):
    """(xp, device, dtype) for vectors of length ``n`` on the template's backend."""
    if template is None:
        xp = _backend.namespace()
        return xp, None, xp.float64
    xp = _backend.namespace(template)
    dtype = (
        template.dtype
        if xp.isdtype(template.dtype, "real floating")
        else _backend.float_dtype(xp, template)
    )
    return xp, _backend.device(template), dtype


def _apply(matvec, v, n, xp, name="matvec"):
    """``matvec(v)`` with its shape checked (a wrong-shape operator is a caller's bug)."""
    w = matvec(v)
    shape = getattr(w, "shape", None)
    if shape is None or tuple(shape) != (n,):
        raise ValueError(
            f"`{name}` must return an array of shape ({n},) for a vector of shape ({n},); "
            f"got {type(w).__name__} with shape {shape}"
        )
    if w.dtype != v.dtype and xp.isdtype(w.dtype, "complex floating"):
        raise TypeError(f"`{name}` must return real values; got complex dtype {w.dtype}")
    if w.dtype != v.dtype:
        w = xp.astype(w, v.dtype)
    return w


def _finite(value, name="matvec"):
    """A host scalar computed from the operator's products (already synchronised)."""
    if not math.isfinite(value):
        raise ValueError(f"`{name}` returned NaN or infinity (its products are not finite)")
    return value


def _host_values(x, name):
    """``x`` (array_like of real numbers, any backend) as a flat float64 NumPy array."""
    return check_real_values(x, name).reshape(-1)


def _norm(xp, v) -> float:
    return math.sqrt(float(xp.vecdot(v, v)))


def _rademacher(rng, n, xp, device, dtype):
    signs = rng.integers(0, 2, size=n).astype(np.float64) * 2.0 - 1.0
    return _backend.asarray(signs, xp=xp, device=device, dtype=dtype)


def _start_vector(v0, n, rng, xp, device, dtype):
    if v0 is None:
        v = _backend.random_normal(rng, (n,), xp=xp, device=device, dtype=dtype)
    else:
        v = check_array(v0, "v0", ndim=1, shape=(n,))
        v = xp.astype(v, dtype)
    norm = _norm(xp, v)
    if norm == 0.0:
        raise ValueError("`v0` must be a non-zero vector; got the zero vector")
    return v / norm


# --------------------------------------------------------------------------- Lanczos


class _Lanczos:
    """The Lanczos process as a resumable iterator (used by lanczos, eigsh and SLQ).

    With ``reorth="full"`` every new vector is orthogonalised twice (classical
    Gram-Schmidt, "CGS2") against the whole basis. The first projection also checks the
    operator's symmetry: for a symmetric operator the new vector ``A q_j`` has no
    component along ``q_0 .. q_{j-2}`` and its component along ``q_{j-1}`` equals
    ``beta_{j-1}``; anything else means the operator is not symmetric.
    """

    def __init__(self, matvec, n, v, k, xp, reorth, check_symmetry=True):
        self.matvec, self.n, self.xp, self.reorth = matvec, n, xp, reorth
        self.check_symmetry = check_symmetry
        self.dtype = v.dtype
        self.eps = float(np.finfo(_backend.numpy_dtype(v.dtype, xp)).eps)
        self.Q = xp.zeros((k + 1, n), dtype=v.dtype, device=_backend.device(v))
        self.Q[0, :] = v
        self.alpha: list[float] = []
        self.beta: list[float] = []
        self.n_matvec = 0
        self.invariant = False  # the Krylov space became invariant (exact breakdown)
        self.scale = 0.0  # running estimate of the operator norm

    @property
    def m(self) -> int:
        return len(self.alpha)

    def step(self):
        xp, j = self.xp, self.m
        q = self.Q[j, :]
        w = _apply(self.matvec, q, self.n, xp)
        self.n_matvec += 1
        if self.reorth == "full":
            basis = self.Q[: j + 1, :]
            c = basis @ w
            c_host = np.asarray(_backend.to_numpy(c), dtype=np.float64)
            alpha = float(c_host[j])
            self.scale = max(self.scale, abs(alpha), _norm(xp, w))
            if self.check_symmetry and j > 0:
                self._check_symmetry(c_host, j)
            w = w - c @ basis
            w = w - (basis @ w) @ basis  # second pass: orthogonal to working precision
        else:
            alpha = float(xp.vecdot(q, w))
            w = w - alpha * q
            if j > 0:
                w = w - self.beta[-1] * self.Q[j - 1, :]
            self.scale = max(self.scale, abs(alpha), _norm(xp, w))
        beta = _norm(xp, w)
        _finite(alpha + beta)
        self.alpha.append(alpha)
        self.beta.append(beta)
        if beta <= 10 * self.eps * max(self.scale, 1e-300) * math.sqrt(self.n):
            self.invariant = True
            self.beta[-1] = 0.0
        elif j + 1 < self.Q.shape[0]:
            self.Q[j + 1, :] = w / beta

    def restart(self, v):
        """Go on from ``v``, made orthogonal to the basis, once the Krylov space of the
        first start vector is invariant (a low-rank or repeated-eigenvalue operator): the
        tridiagonal matrix then has a zero off-diagonal there. False when ``v`` lies in
        the span of the basis."""
        xp, j = self.xp, self.m
        basis = self.Q[:j, :]
        for _ in range(2):  # twice: orthogonal to working precision
            v = v - (basis @ v) @ basis
        norm = _norm(xp, v)
        if not norm > 0:
            return False
        self.Q[j, :] = v / norm
        self.invariant = False
        return True

    def _check_symmetry(self, c, j):
        # Rounding makes these O(eps * ||A|| * sqrt(n)); a real asymmetry is far larger.
        tol = max(1e-5, 1e4 * self.eps) * self.scale
        off = np.abs(c[:j].copy())
        off[j - 1] = abs(c[j - 1] - self.beta[j - 1])
        if off.max() > tol:
            raise ValueError(
                "`matvec` must be a symmetric operator (a Hessian); Lanczos found "
                f"q_i^T A q_j - q_j^T A q_i = {off.max():.3g} for an operator of norm about "
                f"{self.scale:.3g}"
            )

    def tridiagonal(self):
        return np.asarray(self.alpha, dtype=np.float64), np.asarray(self.beta, dtype=np.float64)


def lanczos(matvec, n, k, *, v0=None, reorth="full", rng=None, return_vectors=False, like=None):
    """Tridiagonalise a symmetric operator, given by its matvec, by the Lanczos process.

    Runs ``k`` steps of the Lanczos process from ``v0`` (or a random Gaussian start)
    and returns the tridiagonal matrix ``T = Q^T A Q``: ``alpha`` on its diagonal and
    ``beta`` on its off-diagonal. With full re-orthogonalisation (the default) the basis
    stays orthonormal to working precision, so each isolated eigenvalue appears once
    among the Ritz values; without it, ghost copies of converged eigenvalues appear
    (Paige 1976).

    Parameters
    ----------
    matvec : callable
        ``matvec(v) -> A v`` for a symmetric ``A``; ``v`` and the result are 1-D arrays
        of length ``n`` on the caller's backend.
    n : int
        Dimension of the operator.
    k : int
        Number of Lanczos steps (matvecs), ``1 <= k <= n``.
    v0 : array of shape (n,), optional
        Start vector (normalised here). Its backend, device and dtype are those of the
        Krylov basis.
    reorth : {"full", "none"}
        Full re-orthogonalisation (two passes of classical Gram-Schmidt) or the plain
        three-term recurrence.
    rng : None, int or numpy.random.Generator
        Seed of the random start vector when ``v0`` is None.
    return_vectors : bool
        Also return the Lanczos basis ``Q`` of shape ``(m, n)`` on the caller's backend.
    like : array, optional
        When ``v0`` is None, an array whose backend, device and dtype the basis takes
        (NumPy float64 when neither is given; numlab's built-in Hessian operators
        provide their own).

    Returns
    -------
    alpha : numpy.ndarray of shape (m,)
        Diagonal of ``T`` (float64, on the host). ``m = k`` unless the Krylov space
        became invariant earlier (then ``m < k`` and ``T`` holds exact eigenvalues).
    beta : numpy.ndarray of shape (m,)
        Off-diagonal of ``T`` in ``beta[:m-1]``; ``beta[m-1]`` is the norm of the last
        residual vector (0 at an invariant subspace), which bounds the Ritz residuals.
    Q : array of shape (m, n)
        Only with ``return_vectors=True``: the orthonormal Lanczos basis.

    Raises
    ------
    ValueError
        If ``k > n``, if ``matvec`` returns the wrong shape, or if the operator is
        detected not to be symmetric (full re-orthogonalisation only).

    References
    ----------
    C. Lanczos, J. Res. Natl. Bur. Stand. 45 (1950); C. C. Paige, IMA J. Appl. Math.
    18 (1976); B. N. Parlett, *The Symmetric Eigenvalue Problem* (1998).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> A = np.diag(np.arange(1.0, 101.0))
    >>> alpha, beta = nl.rmt.lanczos(lambda v: A @ v, 100, 30, rng=0)
    >>> theta, weights = nl.rmt.ritz(alpha, beta)
    >>> print(round(float(theta[-1]), 3))
    100.0
    """
    n = check_int(n, "n", low=1)
    k = check_int(k, "k", low=1)
    if k > n:
        raise ValueError(
            f"`k` must be <= n = {n} (a Krylov space has at most n dimensions); got {k}"
        )
    check_option(reorth, "reorth", ("full", "none"))
    return_vectors = check_bool(return_vectors, "return_vectors")
    if not callable(matvec):
        raise TypeError(f"`matvec` must be callable; got {type(matvec).__name__}")
    xp, device, dtype = _layout(_template(matvec, v0, like), n)
    v = _start_vector(v0, n, check_rng(rng), xp, device, dtype)
    run = _Lanczos(matvec, n, v, k, xp, reorth)
    while run.m < k and not run.invariant:
        run.step()
    alpha, beta = run.tridiagonal()
    if return_vectors:
        return alpha, beta, run.Q[: run.m, :]
    return alpha, beta


def ritz(alpha, beta):
    """Ritz values and quadrature weights of a Lanczos tridiagonal matrix.

    The eigenvalues ``theta`` of ``T`` are the Ritz values; the squared first
    components of its eigenvectors are the Gauss quadrature weights of the spectral
    measure of ``A`` seen from the start vector (Golub & Meurant): for a unit start
    vector ``v``, ``v^T f(A) v ~ sum_i weights[i] f(theta[i])``.

    Parameters
    ----------
    alpha : array_like of shape (m,)
        Diagonal of ``T``.
    beta : array_like of shape (m - 1,) or (m,)
        Off-diagonal of ``T`` (a trailing residual norm, as returned by
        :func:`lanczos`, is ignored).

    Returns
    -------
    theta : numpy.ndarray of shape (m,)
        Ritz values in ascending order (float64).
    weights : numpy.ndarray of shape (m,)
        Quadrature weights; they sum to 1.

    Examples
    --------
    >>> import numlab as nl
    >>> theta, w = nl.rmt.ritz([2.0, 2.0], [1.0])
    >>> theta.tolist(), w.round(3).tolist()
    ([1.0, 3.0], [0.5, 0.5])
    """
    theta, S = _ritz_pairs(alpha, beta)
    return theta, S[0, :] ** 2


def _ritz_pairs(alpha, beta):
    from scipy.linalg import eigh_tridiagonal

    alpha = _host_values(alpha, "alpha")
    beta = _host_values(beta, "beta")
    m = alpha.shape[0]
    if m == 0:
        raise ValueError("`alpha` must not be empty")
    if beta.shape[0] not in (m - 1, m):
        raise ValueError(
            f"`beta` must have length m - 1 or m for m = len(`alpha`) = {m}; got {beta.shape[0]}"
        )
    if not (np.all(np.isfinite(alpha)) and np.all(np.isfinite(beta))):
        raise ValueError("`alpha` and `beta` must contain only finite values; got NaN or infinity")
    if m == 1:
        return alpha.copy(), np.ones((1, 1))
    return eigh_tridiagonal(alpha, beta[: m - 1])


# --------------------------------------------------------------------------- eigsh


@dataclasses.dataclass(frozen=True, repr=False)
class EigResult(CompactRepr):
    """Extremal eigenpairs of a symmetric operator with a residual certificate.

    Parameters
    ----------
    values : numpy.ndarray of shape (n_eig,)
        Eigenvalue estimates (Ritz values, float64, ascending).
    vectors : array of shape (n, n_eig)
        Unit Ritz vectors on the caller's backend, in its dtype.
    residuals : numpy.ndarray of shape (n_eig,)
        ``||A y - theta y||`` for each pair: by Weyl's theorem an eigenvalue of ``A``
        lies within ``residuals[i]`` of ``values[i]`` (a certificate, not an estimate).
        Computed from the Lanczos recurrence (``beta_m |s_{m,i}|``) without extra
        matvecs; exact to rounding with full re-orthogonalisation.
    errors : numpy.ndarray of shape (n_eig,)
        Estimated eigenvalue errors ``min(r, r**2 / gap)`` (Kato-Temple form), with
        ``gap`` the distance to the nearest other Ritz value: far below the residual once
        a pair has converged, but an estimate, since Ritz gaps only approximate the true
        ones.
    n_matvec : int
        Matvecs used.
    converged : bool
        Whether every error estimate reached ``tol * |value|``.
    n_iter : int
        Lanczos steps (equal to ``n_matvec``).
    history : tuple of float
        Largest relative residual of the wanted pairs after each step.

    Notes
    -----
    The result unpacks as SciPy's ``eigsh`` return value: ``w, v = result`` gives
    ``values`` and ``vectors`` (``result[0]``, ``result[1]`` too); the other fields are
    attributes.
    """

    values: np.ndarray
    vectors: object
    residuals: np.ndarray
    errors: np.ndarray
    n_matvec: int
    converged: bool
    n_iter: int
    history: tuple

    def __iter__(self):
        return iter((self.values, self.vectors))

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return (self.values, self.vectors)[index]


def _wanted(theta, n_eig, which):
    m = theta.shape[0]
    if which == "LA":
        return np.arange(m - min(n_eig, m), m)
    if which == "SA":
        return np.arange(0, min(n_eig, m))
    if which == "LM":
        order = np.argsort(np.abs(theta))
        return np.sort(order[m - min(n_eig, m) :])
    low = n_eig // 2  # "BE": half from each end, the extra one from the high end
    high = n_eig - low
    if low + high >= m:
        return np.arange(m)
    return np.concatenate([np.arange(low), np.arange(m - high, m)])


def _error_estimates(theta, residuals):
    """``min(r, r^2 / gap)`` per Ritz pair; the gap never counts as smaller than ``r``."""
    if theta.shape[0] == 1:
        return residuals.copy()
    gaps = np.abs(theta[:, None] - theta[None, :])
    np.fill_diagonal(gaps, np.inf)
    gaps = np.maximum(gaps.min(axis=1), residuals)
    return np.minimum(residuals, residuals**2 / np.maximum(gaps, np.finfo(np.float64).tiny))


def _dimension(matvec, n, name="n"):
    """``n``, or the ``n_params`` of an operator that carries it (numlab's Hessians)."""
    own = getattr(matvec, "n_params", None)
    if n is None:
        if own is None:
            raise TypeError(f"`{name}` is missing: pass the dimension with a matvec callable")
        return check_int(own, f"{name} (the operator's n_params)", low=1)
    n = check_int(n, name, low=1)
    if own is not None and n != own:
        raise ValueError(f"`{name}` must be the operator's n_params ({own}) or omitted; got {n}")
    return n


def _operator(A, n):
    """``(matvec, n, template)`` for a callable, an array, a sparse matrix or a LinearOperator."""
    if _backend.is_sparse(A):
        kind, shape = "sparse matrix", tuple(A.shape)
    elif _backend.is_array(A):
        A = check_array(A, "A", ndim=2)
        kind, shape = "array", tuple(A.shape)
    elif hasattr(A, "matvec") and hasattr(A, "shape"):  # scipy.sparse.linalg.LinearOperator
        kind, shape = "LinearOperator", tuple(A.shape)
    elif callable(A):
        return A, _dimension(A, n), None
    else:
        raise TypeError(
            "`A` (or `matvec`) must be a matvec callable (with `n`), an array, a sparse "
            f"matrix or a LinearOperator; got {type(A).__name__}"
        )
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"`A` must be square; got a {kind} of shape {shape}")
    if n is not None and check_int(n, "n", low=1) != shape[0]:
        raise ValueError(f"`n` must be the size of `A` ({shape[0]}) or omitted; got {n}")
    if kind == "array":
        return (lambda v: A @ v), shape[0], A
    dtype = np.dtype(getattr(A, "dtype", None) or np.float64)
    dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
    if kind == "LinearOperator":
        return (lambda v: np.ravel(A.matvec(v))), shape[0], np.empty(0, dtype=dtype)
    if type(A).__module__.startswith("cupyx"):
        import cupy

        return (lambda v: A @ v), shape[0], cupy.empty(0, dtype=dtype)
    return (lambda v: A @ v), shape[0], np.empty(0, dtype=dtype)


def _alias(ours, ours_name, scipy_value, scipy_name, default):
    if ours is not None and scipy_value is not None:
        raise TypeError(
            f"`{ours_name}` and `{scipy_name}` (SciPy's name for `{ours_name}`) were both "
            "given; pass one of them"
        )
    value = scipy_value if ours is None else ours
    return default if value is None else value


def eigsh(
    A=None,
    n=None,
    *,
    matvec=None,
    n_eig=None,
    which="LA",
    tol=1e-6,
    max_matvec=None,
    v0=None,
    rng=None,
    like=None,
    k=None,
    maxiter=None,
):
    """Extremal eigenpairs of a symmetric operator by Lanczos with full re-orthogonalisation.

    The counterpart of :func:`scipy.sparse.linalg.eigsh` for Hessians given by
    Hessian-vector products (a ``matvec`` callable and the dimension ``n``), and for
    SciPy's inputs: a dense array, a sparse matrix or a ``LinearOperator``.

    .. warning::

       **Different default from SciPy:** ``which="LA"`` (largest algebraic, the top of
       a Hessian's spectrum), where SciPy's default is ``"LM"`` (largest magnitude).
       They agree on positive semi-definite operators; on an indefinite one pass
       ``which="LM"`` to get SciPy's eigenvalues. Also: ``n_eig`` (alias ``k``)
       defaults to 1 (SciPy: 6); ``tol`` is relative and must be in ``(0, 1)`` (SciPy's
       ``tol=0``, machine precision, is refused); ``max_matvec`` (alias ``maxiter``)
       counts matvecs (default 300); shift-invert (``sigma``), the generalized problem
       (``M``), ``ncv`` and ``return_eigenvectors`` are not accepted.

    The result unpacks as SciPy's does, ``w, v = eigsh(A, k=2)``, eigenvalues in
    ascending order, and carries the certificate below as attributes.

    Lanczos runs one matvec at a time and stops as soon as
    the estimated eigenvalue error of every wanted Ritz pair, ``min(r, r**2 / gap)``
    for the residual ``r = ||A y - theta y||``, is at most ``tol * |theta|``. The result
    also carries the residuals themselves: a certificate (Weyl) that an eigenvalue lies
    within ``r`` of ``theta``. Power iteration (PyHessian) stops on the change of the
    Rayleigh quotient, which is no error bound, and needs several times more matvecs.

    Parameters
    ----------
    A : callable, array, sparse matrix or LinearOperator
        The symmetric operator: ``matvec(v) -> A v`` (1-D arrays of length ``n`` on the
        caller's backend), or SciPy's inputs, a square array (NumPy, CuPy, any
        array-API library: the vectors take its library, device and dtype), a sparse
        matrix (SciPy or CuPy) or a ``scipy.sparse.linalg.LinearOperator``.
    n : int, optional
        Dimension of the operator: ``A.shape[0]``, or ``A.n_params`` for a callable that
        has it (numlab's Hessian operators); required with any other callable.
    matvec : callable, optional
        The callable by keyword (``eigsh(matvec=f, n=n)``, numlab's earlier spelling),
        instead of ``A``.
    n_eig : int, optional
        Number of eigenpairs wanted (default 1); ``k`` is SciPy's name for it.
    which : {"LA", "SA", "BE", "LM"}
        Largest algebraic, smallest algebraic, both ends (half from each end), or
        largest magnitude.
    tol : float
        Relative tolerance on the eigenvalue error estimate, in ``(0, 1)``.
    max_matvec : int, optional
        Largest number of matvecs (Lanczos steps), default 300; at most ``n`` are used.
        ``maxiter`` is SciPy's name for it.
    v0 : array of shape (n,), optional
        Start vector; sets the backend, device and dtype of the result vectors.
    rng : None, int or numpy.random.Generator
        Seed of the random start vector.
    like : array, optional
        Backend, device and dtype template when ``v0`` is None (see :func:`lanczos`).
    k, maxiter : int, optional
        SciPy's names of ``n_eig`` and ``max_matvec`` (give one name of each).

    Returns
    -------
    EigResult
        ``values`` (ascending), ``vectors``, ``residuals``, ``errors``, ``n_matvec``,
        ``converged``; ``w, v = result`` unpacks as SciPy's ``(w, v)``.

    Warns
    -----
    RuntimeWarning
        If the tolerance is not reached within ``max_matvec`` matvecs.

    References
    ----------
    B. N. Parlett, *The Symmetric Eigenvalue Problem* (1998), ch. 13; Z. Yao et al.,
    PyHessian (2020), for the power-iteration baseline.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> A = np.diag(np.linspace(0.0, 10.0, 500))
    >>> res = nl.rmt.eigsh(lambda v: A @ v, 500, rng=0)
    >>> bool(abs(res.values[-1] - 10.0) < 1e-5), res.converged
    (True, True)

    SciPy's call, on the matrix itself:

    >>> w, v = nl.rmt.eigsh(A, k=2, which="LM", rng=0)
    >>> bool(np.allclose(w, [9.97996, 10.0], atol=1e-5)), v.shape
    (True, (500, 2))
    """
    import warnings

    if matvec is not None:
        if A is not None:
            raise TypeError("`A` and `matvec` were both given; pass the operator once")
        A = matvec
    matvec, n, template = _operator(A, n)
    n_eig = check_int(_alias(n_eig, "n_eig", k, "k", 1), "n_eig", low=1, high=n)
    max_matvec = _alias(max_matvec, "max_matvec", maxiter, "maxiter", 300)
    if like is None and v0 is None:
        like = template
    check_option(which, "which", ("LA", "SA", "BE", "LM"))
    tol = check_scalar(tol, "tol", low=0.0, high=1.0, high_inclusive=False)
    max_matvec = check_int(max_matvec, "max_matvec", low=1)
    k = min(max_matvec, n)
    if k < n_eig:
        raise ValueError(f"`max_matvec` must be >= n_eig = {n_eig}; got {max_matvec}")
    xp, device, dtype = _layout(_template(matvec, v0, like), n)
    rng = check_rng(rng)
    v = _start_vector(v0, n, rng, xp, device, dtype)
    run = _Lanczos(matvec, n, v, k, xp, "full")
    history = []
    converged = False
    while run.m < k:
        run.step()
        if run.m < n_eig and not run.invariant:
            continue
        alpha, beta = run.tridiagonal()
        theta, S = _ritz_pairs(alpha, beta)
        sel = _wanted(theta, n_eig, which)
        residuals = abs(beta[-1]) * np.abs(S[-1, :])
        errors = _error_estimates(theta, residuals)[sel]
        residuals = residuals[sel]
        relative = errors / np.maximum(np.abs(theta[sel]), np.finfo(np.float64).tiny)
        history.append(float(relative.max()))
        if sel.shape[0] == n_eig and (run.invariant or relative.max() <= tol):
            converged = True
            break
        if run.invariant:
            # Fewer Ritz values than wanted (a zero or low-rank operator, or a repeated
            # eigenvalue seen once from the start vector): go on from a fresh random
            # vector orthogonal to the invariant space instead of returning too few.
            fresh = _backend.random_normal(rng, (n,), xp=xp, device=device, dtype=dtype)
            if run.m >= n or not run.restart(fresh):
                break
    if not converged:
        warnings.warn(
            f"eigsh: the relative error estimate {history[-1]:.2e} did not reach tol = {tol:g} "
            f"within max_matvec = {max_matvec} matvecs",
            RuntimeWarning,
            stacklevel=2,
        )
    S_sel = _backend.asarray(np.ascontiguousarray(S[:, sel]), xp=xp, device=device, dtype=dtype)
    vectors = xp.matrix_transpose(run.Q[: run.m, :]) @ S_sel
    return EigResult(
        values=theta[sel],
        vectors=vectors,
        residuals=residuals,
        errors=errors,
        n_matvec=run.n_matvec,
        converged=converged,
        n_iter=run.m,
        history=tuple(history),
    )


# --------------------------------------------------------------------------- densities and traces


def spectral_density(matvec, n=None, *, n_probes=10, k=80, rng=None, like=None, progress=False):
    """Spectral density of a symmetric operator by stochastic Lanczos quadrature (SLQ).

    For each of ``n_probes`` Rademacher probes, ``k`` Lanczos steps (full
    re-orthogonalisation) give a ``k``-point Gauss quadrature of the spectral measure
    seen from the probe; their average estimates the empirical spectral distribution
    ``(1/n) sum_i delta(lambda_i)``. The extreme nodes converge to the extreme
    eigenvalues (outliers to machine precision after a few tens of steps); the bulk is
    resolved to about ``range / k`` in Wasserstein-1 distance. Costs exactly
    ``n_probes * k`` matvecs.

    Parameters
    ----------
    matvec : callable
        ``matvec(v) -> A v`` for a symmetric ``A`` on the caller's backend.
    n : int, optional
        Dimension of the operator; default ``matvec.n_params`` for an operator that
        has it (the Hessians of :mod:`numlab.rmt`'s and :mod:`numlab.operators`' models).
    n_probes : int
        Number of random probes.
    k : int
        Lanczos steps per probe, ``k <= n``.
    rng : None, int or numpy.random.Generator
        Seed of the probes.
    like : array, optional
        Backend, device and dtype of the probes (see :func:`lanczos`).
    progress : bool, default False
        Show a progress bar on stderr (tqdm) over the probes (``k`` matvecs each). The
        result is the same bit for bit.

    Returns
    -------
    nodes : numpy.ndarray of shape (n_probes * k,)
        Ritz values of all probes (float64, host).
    weights : numpy.ndarray of shape (n_probes * k,)
        Their weights, summing to 1 (each probe's weights sum to ``1 / n_probes``).

    References
    ----------
    G. H. Golub & G. Meurant, *Matrices, Moments and Quadrature* (2010); S. Ubaru,
    J. Chen & Y. Saad, SIAM J. Matrix Anal. Appl. 38 (2017); B. Ghorbani, S. Krishnan
    & Y. Xiao, ICML 2019; D. Granziol, S. Zohren & S. Roberts, JMLR 23 (2022).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> A = np.diag(np.append(np.linspace(-1.0, 1.0, 399), 5.0))  # a bulk and an outlier
    >>> nodes, weights = nl.rmt.spectral_density(lambda v: A @ v, 400, k=40, rng=0)
    >>> bool(abs(nodes.max() - 5.0) < 1e-8), bool(abs(weights.sum() - 1.0) < 1e-12)
    (True, True)
    """
    n = _dimension(matvec, n)
    n_probes = check_int(n_probes, "n_probes", low=1)
    k = check_int(k, "k", low=1)
    if k > n:
        raise ValueError(
            f"`k` must be <= n = {n} (a Krylov space has at most n dimensions); got {k}"
        )
    if not callable(matvec):
        raise TypeError(f"`matvec` must be callable; got {type(matvec).__name__}")
    progress = check_progress(progress)
    rng = check_rng(rng)
    xp, device, dtype = _layout(_template(matvec, None, like), n)
    nodes, weights = [], []
    with Progress(progress, "nl.rmt.spectral_density", total=n_probes, unit="probe") as bar:
        for _ in range(n_probes):
            v = _rademacher(rng, n, xp, device, dtype) / math.sqrt(n)
            run = _Lanczos(matvec, n, v, k, xp, "full")
            while run.m < k and not run.invariant:
                run.step()
            theta, w = ritz(*run.tridiagonal())
            nodes.append(theta)
            weights.append(w / n_probes)
            bar.update()
            bar.note(f"top Ritz value {float(theta.max()):.6g}")
    return np.concatenate(nodes), np.concatenate(weights)


def smooth_density(nodes, weights, *, grid=None, sigma=None):
    """A smooth density from a discrete spectral measure (Gaussian kernel).

    Parameters
    ----------
    nodes : array_like of shape (m,)
        Ritz values (from :func:`spectral_density`).
    weights : array_like of shape (m,)
        Their non-negative weights.
    grid : array_like of shape (g,) or int, optional
        Points at which to evaluate the density, or their number (default 1000) on the
        range of the nodes widened by ``5 sigma``.
    sigma : float, optional
        Kernel width; default 1 % of the range of the nodes (Ghorbani et al. use
        variances of 1e-5 to 1e-1 times the range).

    Returns
    -------
    grid : numpy.ndarray of shape (g,)
        The evaluation points.
    density : numpy.ndarray of shape (g,)
        The density; it integrates to ``sum(weights)`` up to the grid's resolution.

    Examples
    --------
    >>> import numlab as nl
    >>> x, p = nl.rmt.smooth_density([0.0, 1.0], [0.5, 0.5], sigma=0.1)
    >>> round(float((p[1:] * (x[1:] - x[:-1])).sum()), 2)
    1.0
    """
    nodes = _host_values(nodes, "nodes")
    weights = _host_values(weights, "weights")
    if nodes.shape != weights.shape or nodes.size == 0:
        raise ValueError(
            "`nodes` and `weights` must be non-empty and of the same length; "
            f"got {nodes.shape} and {weights.shape}"
        )
    if not (np.all(np.isfinite(nodes)) and np.all(np.isfinite(weights))):
        raise ValueError("`nodes` and `weights` must contain only finite values")
    if np.any(weights < 0):
        raise ValueError(f"`weights` must be non-negative; got a minimum of {weights.min()!r}")
    span = float(nodes.max() - nodes.min())
    if sigma is None:
        sigma = 0.01 * span if span > 0 else 1e-3 * max(1.0, abs(float(nodes[0])))
    sigma = check_scalar(sigma, "sigma", low=0.0)
    if grid is None or isinstance(grid, (int, np.integer)):
        size = 1000 if grid is None else check_int(grid, "grid", low=2)
        with np.errstate(over="ignore", invalid="ignore"):
            grid = np.linspace(nodes.min() - 5 * sigma, nodes.max() + 5 * sigma, size)
        if not np.all(np.isfinite(grid)):
            raise ValueError(
                f"`sigma` must keep the grid (nodes +- 5 sigma) finite; got sigma={sigma!r}"
            )
    grid = _host_values(grid, "grid")
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError(f"`grid` must be an int >= 2 or a non-empty array of finite points; got {grid!r}")
    with np.errstate(over="ignore"):  # z * z = inf far from a node of a tiny sigma: exp gives 0
        z = (grid[:, None] - nodes[None, :]) / sigma
        density = np.exp(-0.5 * z * z) @ weights / (sigma * math.sqrt(2 * math.pi))
    if not np.all(np.isfinite(density)):
        raise ValueError(f"`sigma` must keep the density finite; got sigma={sigma!r}")
    return grid, density


def trace(matvec, n=None, *, n_probes=30, method="hutch++", rng=None, like=None):
    """Trace of a symmetric operator from matvecs: Hutch++ or Hutchinson.

    Hutchinson averages ``z^T A z`` over Rademacher probes (variance ``2 ||A||_F^2``
    per probe for a symmetric ``A``). Hutch++ spends a third of the budget on a
    sketch ``Q = orth(A S)`` of the dominant range, takes ``tr(Q^T A Q)`` exactly and
    applies Hutchinson only to the deflated rest: its error falls like ``1/m`` instead
    of ``1/sqrt(m)`` for ``m`` matvecs when the spectrum decays, as Hessian spectra do.

    Parameters
    ----------
    matvec : callable
        ``matvec(v) -> A v`` on the caller's backend.
    n : int, optional
        Dimension of the operator; default ``matvec.n_params`` for an operator that
        has it (the Hessians of :mod:`numlab.rmt`'s and :mod:`numlab.operators`' models).
    n_probes : int
        Total number of matvecs (Hutch++ uses a multiple of 3 at most this; at least 3).
    method : {"hutch++", "hutchinson"}
        Estimator.
    rng : None, int or numpy.random.Generator
        Seed of the probes.
    like : array, optional
        Backend, device and dtype of the probes (see :func:`lanczos`).

    Returns
    -------
    float
        The trace estimate.

    References
    ----------
    M. F. Hutchinson, Commun. Stat. Simul. Comput. 18 (1989); R. A. Meyer, C. Musco,
    C. Musco & D. P. Woodruff, "Hutch++: optimal stochastic trace estimation", SOSA 2021.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> A = np.diag(1.0 / np.arange(1.0, 201.0) ** 2)
    >>> est = nl.rmt.trace(lambda v: A @ v, 200, n_probes=60, rng=0)
    >>> bool(abs(est - np.trace(A)) / np.trace(A) < 0.01)
    True
    """
    n = _dimension(matvec, n)
    n_probes = check_int(n_probes, "n_probes", low=1)
    check_option(method, "method", ("hutch++", "hutchinson"))
    if not callable(matvec):
        raise TypeError(f"`matvec` must be callable; got {type(matvec).__name__}")
    rng = check_rng(rng)
    xp, device, dtype = _layout(_template(matvec, None, like), n)

    def quad(z):
        return _finite(float(xp.vecdot(z, _apply(matvec, z, n, xp))))

    if method == "hutchinson":
        return sum(quad(_rademacher(rng, n, xp, device, dtype)) for _ in range(n_probes)) / n_probes
    if n_probes < 3:
        raise ValueError(f"`n_probes` must be >= 3 for method='hutch++'; got {n_probes}")
    s = min(n_probes // 3, n)
    g = n_probes // 3
    sketch = xp.stack(
        [_apply(matvec, _rademacher(rng, n, xp, device, dtype), n, xp) for _ in range(s)], axis=1
    )
    Q, _ = xp.linalg.qr(sketch)  # (n, s) orthonormal basis of the sketched range
    exact = sum(quad(Q[:, i]) for i in range(s))
    rest = 0.0
    for _ in range(g):
        z = _rademacher(rng, n, xp, device, dtype)
        z = z - Q @ (xp.matrix_transpose(Q) @ z)
        rest += quad(z)
    return exact + rest / g
