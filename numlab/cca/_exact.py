"""Exact regularised CCA, PLS and multiview CCA through one generalized eigenproblem.

For views ``X_1 .. X_M`` (centred, ``p_i`` features each) with covariance blocks
``S_ij``, the top canonical directions solve the generalized eigenvalue problem (GEP)

    A u = lambda B u,   A = [S_ij]_{i != j} (zero diagonal blocks),
                        B = blockdiag((1 - c_i) S_ii + c_i I),

with shrinkage ``c_i`` in [0, 1] per view: 0 is CCA, 1 is PLS (``B = I``). For two
views the positive eigenvalues are the canonical correlations (``c = 0``) or the
singular values of the cross-covariance (``c = 1``).

The pencil is solved by whitening: ``B_i^{-1/2}`` from an eigendecomposition of each
``B_i`` (a pseudo-inverse, so that constant or collinear features get zero weight
instead of an error), then one symmetric ``eigh`` of the whitened ``A``. Everything is
array-API code: it runs on NumPy, CuPy and array-api-strict alike.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from .. import _backend
from .._results import CompactRepr
from .._validation import check_array, check_int, check_scalar

__all__ = ["CCAResult", "cca", "pls"]


@dataclasses.dataclass(frozen=True, repr=False)
class CCAResult(CompactRepr):
    """The top canonical directions of two or more views.

    Attributes
    ----------
    correlations : array of shape (n_components,)
        The generalized eigenvalues, in decreasing order. For two views and ``reg=0``
        these are the canonical correlations; for ``reg=1`` (PLS) the singular values
        of the cross-covariance; for ``M`` views the MCCA eigenvalues, at most
        ``M - 1``; with ``reg=0`` they are the top eigenvalues of the sum of the views'
        projection matrices minus one (Carroll's generalized CCA, MAXVAR), so MCCA
        and GCCA give the same directions.
    weights : tuple of arrays, one per view, each (n_features_i, n_components)
        Weights normalised so that ``w^T B_i w = 1`` for every component: with
        ``reg=0`` each projection has unit variance.
    means : tuple of arrays, one per view, each (n_features_i,)
        The view means removed before projecting.
    """

    correlations: object
    weights: tuple
    means: tuple

    @property
    def x_weights(self):
        """Weights of the first view, (n_features_x, n_components)."""
        return self.weights[0]

    @property
    def y_weights(self):
        """Weights of the second view, (n_features_y, n_components)."""
        return self.weights[1]

    @property
    def x_mean(self):
        return self.means[0]

    @property
    def y_mean(self):
        return self.means[1]

    def transform(self, *views):
        """Project each view on its canonical directions: ``(X_i - mean_i) @ W_i``.

        Parameters
        ----------
        *views : arrays of shape (n_samples, n_features_i)
            One array per fitted view, in the order of the fit.

        Returns
        -------
        tuple of arrays of shape (n_samples, n_components)
            The projections, one per view.
        """
        if len(views) != len(self.weights):
            raise ValueError(
                f"`views` must be {len(self.weights)} arrays, one per fitted view; got {len(views)}"
            )
        xp = _backend.namespace(*self.weights)
        for i, v in enumerate(views):
            check_fitted_library(v, f"views[{i}]", self.weights[0])
        views = [
            check_array(v, f"views[{i}]", xp=xp, ndim=2, shape=(None, w.shape[0]))
            for i, (v, w) in enumerate(zip(views, self.weights, strict=False))
        ]
        return tuple((v - m) @ w for v, m, w in zip(views, self.means, self.weights, strict=False))


# --------------------------------------------------------------------------- input checks


def check_views(X, Y, name_x="X", name_y="Y"):
    """The list of views from ``(X, Y)`` or ``(views, None)``, checked and on one dtype.

    Returns ``(views, xp, dtype)``; integer views become floating.
    """
    if _is_view_sequence(X):
        if Y is not None:
            raise TypeError(
                f"`{name_y}` must be omitted when `{name_x}` is a sequence of views; "
                "pass n_components by keyword"
            )
        if len(X) < 2:
            raise ValueError(f"`{name_x}` must hold at least two views; got {len(X)}")
        names = view_names(X, len(X), name_x, name_y)
        raw = list(X)
    else:
        if Y is None:
            raise TypeError(f"`{name_y}` is missing: pass two views X, Y or a sequence of views")
        names = [name_x, name_y]
        raw = [X, Y]
    # Dask is refused below, with a hint of what to do instead
    views = [check_array(v, n, ndim=2, allow_lazy=True) for v, n in zip(raw, names, strict=False)]
    xp = _backend.namespace(**dict(zip(names, views, strict=False)))
    if _backend.is_dask(xp):
        raise TypeError(
            f"`{name_x}` must not be a Dask array: nl.cca works in memory; StochasticCCA / "
            "StochasticPLS fit Dask views by streaming their row blocks"
        )
    n = views[0].shape[0]
    for v, nm in zip(views[1:], names[1:], strict=False):
        if v.shape[0] != n:
            raise ValueError(
                f"`{nm}` must have as many samples (rows) as `{names[0]}`; "
                f"got {v.shape[0]} rows against {n}"
            )
    dtype = _backend.float_dtype(xp, *views)
    views = [xp.astype(v, dtype) if v.dtype != dtype else v for v in views]
    return views, xp, dtype


def check_fitted_library(x, name, fitted):
    """Refuse an array ``x`` of another library than the ``fitted`` weights, naming both.

    Projecting needs the fitted arrays and the data in one library; numlab never moves
    data between libraries or devices silently.
    """
    if _backend.is_array(x) and not _backend.is_sparse(x):
        if isinstance(x, np.ndarray) and isinstance(fitted, np.ndarray):
            return  # NumPy, memmaps included (a model unpickled by joblib holds memmaps)
        ours, theirs = _backend.library_name(fitted), _backend.library_name(x)
        if ours != theirs:
            raise TypeError(
                f"`{name}` must be an array of the library the model was fitted on "
                f"({ours}); got {theirs}. Convert it, or fit on that library"
            )


def _is_view_sequence(X):
    # a sequence of views, not one view given as nested lists of numbers (rows)
    if not isinstance(X, (list, tuple)) or not len(X) or isinstance(X[0], numbers.Number):
        return False
    first = X[0]
    if isinstance(first, (list, tuple)):
        # a list of rows of numbers is one view; a list of lists of rows, views
        return bool(len(first)) and isinstance(first[0], (list, tuple))
    return True


def view_names(X, n_views, name_x="X", name_y="Y"):
    """The argument names of the views, as :func:`check_views` reads ``(X, Y)``."""
    if _is_view_sequence(X):
        return [f"{name_x}[{i}]" for i in range(n_views)]
    return [name_x, name_y][:n_views]


def check_shrinkage(reg, n_views, name="reg"):
    """Per-view shrinkage values in [0, 1] from a scalar or a sequence."""
    if isinstance(reg, (list, tuple)) or (hasattr(reg, "shape") and getattr(reg, "ndim", 0) == 1):
        values = [float(r) if hasattr(r, "dtype") else r for r in reg]
        if len(values) != n_views:
            raise ValueError(
                f"`{name}` must be a scalar or one value per view ({n_views}); got {len(values)}"
            )
    else:
        values = [reg] * n_views
    return [check_scalar(r, name, low=0.0, high=1.0, low_inclusive=True) for r in values]


def check_n_components(n_components, views, name="n_components"):
    smallest = min(v.shape[1] for v in views)
    return check_int(n_components, name, low=1, high=smallest)


# --------------------------------------------------------------------------- the GEP


def _inverse_sqrt(M, xp):
    """Pseudo-inverse square root of a symmetric positive semi-definite matrix."""
    evals, evecs = xp.linalg.eigh(M)
    top = xp.max(evals)
    # Eigenvalues below the rounding level of the largest are treated as zero (as
    # numpy.linalg.pinv does), so that constant or collinear features get no weight.
    eps = xp.finfo(M.dtype).eps
    cutoff = top * eps * M.shape[0] * 10
    keep = evals > cutoff
    safe = xp.where(keep, evals, xp.ones_like(evals))
    scale = xp.where(keep, 1.0 / xp.sqrt(safe), xp.zeros_like(evals))
    return (evecs * scale) @ evecs.T


def solve_gep(cov, sizes, constraints, n_components, xp):
    """Top ``n_components`` of the block GEP ``(offdiag(cov), blockdiag(constraints))``.

    Parameters
    ----------
    cov : (D, D) array
        Covariance of the stacked views; only its off-diagonal blocks are used.
    sizes : list of int
        Feature count of each view (summing to D).
    constraints : list of arrays
        ``B_i``, one (p_i, p_i) symmetric positive semi-definite matrix per view.

    Returns
    -------
    eigenvalues : (n_components,) array, decreasing
    weights : list of (p_i, n_components) arrays with ``w^T B_i w = 1`` per column
        (zero where a view takes no part in a component).
    """
    offsets = [0]
    for s in sizes:
        offsets.append(offsets[-1] + s)
    whiten = [_inverse_sqrt(B, xp) for B in constraints]
    rows = []
    for i in range(len(sizes)):
        blocks = []
        for j in range(len(sizes)):
            if i == j:
                blocks.append(
                    xp.zeros((sizes[i], sizes[j]), dtype=cov.dtype, device=_backend.device(cov))
                )
            else:
                block = cov[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]
                blocks.append(whiten[i] @ block @ whiten[j])
        rows.append(xp.concat(blocks, axis=1))
    A = xp.concat(rows, axis=0)
    A = (A + A.T) / 2
    evals, evecs = xp.linalg.eigh(A)
    order = xp.flip(xp.argsort(evals))[:n_components]
    evals = xp.take(evals, order)
    evecs = xp.take(evecs, order, axis=1)
    weights = []
    for i in range(len(sizes)):
        part = evecs[offsets[i] : offsets[i + 1], :]
        # u_i^T B_i u_i = |v_i|^2 on B_i's range: normalising v_i per view gives each
        # view's projection unit B-norm.
        norm = xp.sqrt(xp.sum(part * part, axis=0))
        tiny = xp.finfo(cov.dtype).eps
        norm = xp.where(norm > tiny, norm, xp.ones_like(norm))
        weights.append(whiten[i] @ (part / norm))
    return evals, weights


def covariance(views, xp):
    """Means of the views and the covariance of the stacked, centred views (divides by n-1)."""
    means = [xp.mean(v, axis=0) for v in views]
    stacked = xp.concat([v - m for v, m in zip(views, means, strict=False)], axis=1)
    n = stacked.shape[0]
    return means, (stacked.T @ stacked) / (n - 1)


def _max_abs(X, xp):
    """Per column: the largest absolute value, 1 for an all-zero column."""
    m = xp.max(xp.abs(X), axis=0)
    return xp.where(m > 0, m, xp.ones_like(m))


def constraint_scales(X, c, xp):
    """Per column of ``X``: ``1 / sqrt(B_jj)``, ``B = (1 - c) S + c I`` in the data's
    units, without overflow or underflow (0 for a constant feature when ``c = 0``).

    Also returns the largest magnitude ``m`` of each column (1 for an all-zero one)
    and the variance ``s`` of ``X / m``, the column scaled into [-1, 1].
    """
    m = _max_abs(X, xp)
    Xm = X / m
    s = xp.var(Xm, axis=0, correction=1) if X.shape[0] > 1 else xp.zeros_like(m)
    # sqrt(B_jj) = sqrt(m^2 (1 - c) s + c) without squaring a huge or tiny m (s <= 1)
    root = xp.hypot(m * xp.sqrt((1 - c) * s), xp.full_like(m, math.sqrt(c)))
    keep = root > xp.finfo(X.dtype).smallest_normal
    inv = xp.where(keep, 1.0 / xp.where(keep, root, xp.ones_like(root)), xp.zeros_like(root))
    return inv, m, s


def scaled_problem(views, shrinkage, xp):
    """The GEP in columns scaled to unit constraint diagonal, free of overflow.

    Column ``j`` of a view is divided by ``sqrt(B_jj)``, with ``B = (1 - c) S + c I``
    in the data's own units, so the scaled constraint has a unit diagonal. The
    eigenvalues are unchanged (a congruence) and the cut-off of the pseudo-inverse
    becomes relative to each feature's own scale: with ``c = 0`` the problem is the
    correlation matrix's, the same for features in any units (``1e-300`` or ``1e300``).
    The data are first divided by each column's largest magnitude, so no square of a
    huge or tiny number is ever formed.

    Returns
    -------
    means : list of (p_i,) arrays
    cov : (D, D) array
        Covariance of the stacked scaled views.
    constraints : list of (p_i, p_i) arrays
        ``B_i`` in the scaled columns (unit diagonal, zero for a constant feature
        without shrinkage).
    scales : list of (p_i,) arrays
        ``1 / sqrt(B_jj)`` per column (0 for a constant feature without shrinkage):
        weights of the scaled problem times ``scales`` are weights of the data.
    """
    pre = [_max_abs(v, xp) for v in views]
    _, cov = covariance([v / m for v, m in zip(views, pre, strict=False)], xp)
    means = [m * xp.mean(v / m, axis=0) for v, m in zip(views, pre, strict=False)]
    tiny = xp.finfo(cov.dtype).smallest_normal
    sizes = [v.shape[1] for v in views]
    inv, ridges, start = [], [], 0
    for m, p, c in zip(pre, sizes, shrinkage, strict=False):
        s = (1 - c) * xp.linalg.diagonal(cov[start : start + p, start : start + p])
        # sqrt(B_jj) = sqrt(m^2 s + c) without squaring a huge or tiny m (s <= 1)
        root = xp.hypot(m * xp.sqrt(s), xp.full_like(m, math.sqrt(c)))
        keep = root > tiny
        safe = xp.where(keep, root, xp.ones_like(root))
        inv.append(xp.where(keep, 1.0 / safe, xp.zeros_like(root)))
        # the ridge in scaled columns, c / B_jj (squared after the division: no overflow)
        ridges.append(xp.where(keep, (math.sqrt(c) / safe) ** 2, xp.zeros_like(root)))
        start += p
    # scaled columns: X_j / sqrt(B_jj) = (X_j / m_j) * (m_j / sqrt(B_jj))
    factor = xp.concat([m * i for m, i in zip(pre, inv, strict=False)])
    # with shrinkage, huge features keep huge covariances: the caller refuses inf
    with np.errstate(over="ignore", invalid="ignore"):
        cov = cov * factor[:, None] * factor[None, :]
        constraints, start = [], 0
        for p, c, r in zip(sizes, shrinkage, ridges, strict=False):
            S = cov[start : start + p, start : start + p]
            eye = xp.eye(p, dtype=cov.dtype, device=_backend.device(cov))
            constraints.append((1 - c) * S + eye * r[None, :])
            start += p
    return means, cov, constraints, inv


# --------------------------------------------------------------------------- public API


def cca(X, Y=None, n_components=1, *, reg=0.0):
    """Exact regularised canonical correlation analysis (two or more views).

    Solves the generalized eigenvalue problem of Chapman, Aguila & Wells (2024),
    ``A u = lambda B u`` with ``A`` the between-view covariance blocks and ``B`` the
    block diagonal of shrunk within-view covariances ``(1 - c) S_ii + c I``: ``reg=0``
    is CCA, ``reg=1`` is PLS, values in between ridge CCA. With more than two views
    (a sequence in ``X``) the same problem is multiview CCA (MCCA).

    Parameters
    ----------
    X : array of shape (n_samples, n_features_x), or sequence of such arrays
        The first view, or all views (then ``Y`` must be omitted).
    Y : array of shape (n_samples, n_features_y), optional
        The second view.
    n_components : int, default=1
        Number of directions, at most the smallest view's feature count.
    reg : float in [0, 1] or sequence of them (one per view), default=0.0
        Shrinkage of each view's covariance towards the identity, in the features'
        own units (cca-zoo's ``RidgeCCA`` convention): ``B = (1 - c) S + c I``.

    Returns
    -------
    CCAResult
        ``correlations`` (decreasing), ``weights`` / ``x_weights`` / ``y_weights``
        and the view ``means``; arrays of the inputs' namespace, device and dtype.

    Raises
    ------
    ValueError
        With ``reg > 0``, when the covariances of the views overflow the dtype.

    Notes
    -----
    Cost: one ``(D, D)`` covariance (``D`` the total feature count) and ``M + 1``
    symmetric eigendecompositions. Constant or collinear features get zero weight
    (the within-view covariance is pseudo-inverted, with a cut-off relative to each
    feature's own variance).

    With ``reg=0`` the result is scale invariant: multiplying any feature by any
    factor (``1e-300`` to ``1e300``) leaves the correlations unchanged and divides
    that feature's weight by the factor (the problem is solved on columns scaled to
    unit variance). Shrinkage is not: ``c I`` is a ridge in the data's units, so a
    feature measured in larger units is shrunk less, as in cca-zoo's ``RidgeCCA``
    and ``pls``. Standardise the features first (as scikit-learn's ``CCA`` does with
    ``scale=True``) for a ridge that treats all features alike.

    References
    ----------
    J. Chapman, A. L. Aguila, L. Wells, "Unconstrained Stochastic CCA: Unifying
    Multiview and Self-Supervised Learning", ICLR 2024, arXiv:2310.01012.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((500, 1))
    >>> X = np.hstack([z, rng.standard_normal((500, 3))])
    >>> Y = np.hstack([z + 0.1 * rng.standard_normal((500, 1)), rng.standard_normal((500, 2))])
    >>> res = nl.cca.cca(X, Y, 1)
    >>> bool(res.correlations[0] > 0.99)
    True
    """
    views, xp, _ = check_views(X, Y)
    n_components = check_n_components(n_components, views)
    shrinkage = check_shrinkage(reg, len(views))
    if views[0].shape[0] < 2:
        raise ValueError(f"`X` must have at least 2 samples; got {views[0].shape[0]}")
    sizes = [v.shape[1] for v in views]
    means, cov, constraints, scales = scaled_problem(views, shrinkage, xp)
    if not bool(xp.all(xp.isfinite(cov))):
        # only with shrinkage: a ridge in the data's units keeps their scale
        raise ValueError(
            "`X`, `Y`: the covariances of the views overflow "
            f"{cov.dtype} with reg > 0 (shrinkage towards the identity is not scale "
            "invariant); divide the views by a common factor first"
        )
    evals, weights = solve_gep(cov, sizes, constraints, n_components, xp)
    weights = [w * s[:, None] for w, s in zip(weights, scales, strict=False)]
    return CCAResult(evals, tuple(weights), tuple(means))


def pls(X, Y=None, n_components=1, *, reg=1.0):
    """Exact partial least squares (PLS-SVD), two or more views.

    :func:`cca` with ``reg=1``: the directions maximising the covariance between views
    under unit-norm weights, i.e. the top singular vectors of the cross-covariance (two
    views). ``correlations`` then holds the covariances (singular values). Smaller
    ``reg`` blends towards CCA.

    Parameters
    ----------
    X : array of shape (n_samples, n_features_x), or sequence of such arrays
        The first view, or all views (then ``Y`` must be omitted).
    Y : array of shape (n_samples, n_features_y), optional
        The second view.
    n_components : int, default=1
        Number of directions, at most the smallest view's feature count.
    reg : float in [0, 1] or sequence, default=1.0
        Shrinkage; 1 is PLS.

    Returns
    -------
    CCAResult
        Weights with orthonormal columns per view (for ``reg=1``).

    References
    ----------
    J. Chapman, A. L. Aguila, L. Wells, ICLR 2024, arXiv:2310.01012.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((200, 5)), rng.standard_normal((200, 4))
    >>> res = nl.cca.pls(X, Y, 2)
    >>> np.allclose(res.x_weights.T @ res.x_weights, np.eye(2))
    True
    """
    return cca(X, Y, n_components, reg=reg)


def projection_correlations(projections, xp):
    """The GEP (CCA, ``reg=0``) eigenvalues of the stacked projections: their sum is the
    total canonical correlation captured, invariant to any invertible map within a view."""
    k = projections[0].shape[1]
    sizes = [z.shape[1] for z in projections]
    _, cov, constraints, scales = scaled_problem(projections, [0.0] * len(sizes), xp)
    evals, weights = solve_gep(cov, sizes, constraints, k, xp)
    return evals, [w * s[:, None] for w, s in zip(weights, scales, strict=False)]
