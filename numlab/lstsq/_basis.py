"""Orthonormal bases of L2(mu): tensor Legendre, tensor Hermite and finite feature maps.

Each basis spans ``V_m = span{phi_1, ..., phi_m}`` with ``phi_j`` orthonormal in
``L2(mu)`` for a *probability* measure ``mu``, so that the inverse Christoffel function
``k_m(x) = sum_j phi_j(x)^2`` integrates to ``m`` and ``k_m / m`` is a probability
density with respect to ``mu`` (the optimal sampling density of Cohen & Migliorati).
Evaluation is written against the array API: the points' namespace, device and dtype
are kept.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._validation import check_array, check_int, check_option, check_scalar

__all__ = ["LegendreBasis", "HermiteBasis", "FeatureBasis", "multi_indices"]

INDEX_SETS = ("total", "hyperbolic", "tensor")

#: The largest index set built (10 million rows of ``dim`` int64: 80 MB per dimension).
_MAX_INDICES = 10_000_000


def multi_indices(dim, degree, index_set="total"):
    """The multi-indices ``alpha`` (one row each) of a downward closed index set.

    ``"total"``: ``sum(alpha) <= degree``; ``"hyperbolic"``: ``prod(alpha + 1) <= degree + 1``
    (hyperbolic cross); ``"tensor"``: ``max(alpha) <= degree``. Rows are sorted by total
    degree, then lexicographically, so that ``phi_0 = 1``.

    Parameters
    ----------
    dim : int
        Dimension ``d >= 1``.
    degree : int
        Degree ``>= 0`` of the index set.
    index_set : {"total", "hyperbolic", "tensor"}, default="total"
        Total degree, hyperbolic cross or full tensor (max) degree.

    Returns
    -------
    numpy.ndarray of int64, shape (n_indices, dim)
        The multi-indices, one per row; the first row is all zeros.
    """
    dim = check_int(dim, "dim", low=1)
    degree = check_int(degree, "degree", low=0)
    check_option(index_set, "index_set", INDEX_SETS)
    # Total and tensor sets have closed-form sizes: refuse before building anything.
    size = math.comb(dim + degree, degree) if index_set == "total" else (degree + 1) ** dim
    if index_set != "hyperbolic" and size > _MAX_INDICES:
        raise ValueError(
            f"`dim` and `degree` must give at most {_MAX_INDICES:,} multi-indices; got "
            f"dim={dim}, degree={degree}, index_set={index_set!r}: {size:,} indices"
        )
    # Built one coordinate at a time: the prefixes kept after j coordinates are the
    # index set's projection on them (downward closed: each extends by zeros), so no
    # step holds more rows than the result and no rejected candidate is ever made.
    # Each prefix's largest admissible next entry is known, so a step is a repeat and
    # an arange: O(n_indices * dim) in all, where enumerating the (degree + 1)**dim
    # tensor grid took minutes for dim=12, degree=4.
    rows = np.zeros((1, 0), dtype=np.int64)
    # The prefix's sum, product of (a + 1), or nothing (tensor: every entry <= degree).
    cost = np.full(1, 1 if index_set == "hyperbolic" else 0, dtype=np.int64)
    for j in range(dim):
        if index_set == "total":
            largest = degree - cost
        elif index_set == "hyperbolic":
            largest = (degree + 1) // cost - 1
        else:
            largest = np.full_like(cost, degree)
        counts = largest + 1  # >= 1: a kept prefix extends by a zero
        n_next = int(counts.sum())
        if n_next > _MAX_INDICES:
            raise ValueError(
                f"`dim` and `degree` must give at most {_MAX_INDICES:,} multi-indices; "
                f"got dim={dim}, degree={degree}, index_set={index_set!r} (at least "
                f"{n_next:,} after {j + 1} of {dim} coordinates)"
            )
        parent = np.repeat(np.arange(rows.shape[0]), counts)
        a = np.arange(n_next, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        rows = np.column_stack([rows[parent], a])
        if index_set == "total":
            cost = cost[parent] + a
        elif index_set == "hyperbolic":
            cost = cost[parent] * (a + 1)
        else:
            cost = cost[parent]
    # Sorted by total degree, then lexicographically with larger leading entries first.
    order = np.lexsort(tuple(-rows[:, i] for i in range(dim - 1, -1, -1)) + (rows.sum(axis=1),))
    return np.ascontiguousarray(rows[order])


def _recurrence_coefficients(kind, degree):
    """``b_k`` of the orthonormal recurrence ``x p_k = b_{k+1} p_{k+1} + b_k p_{k-1}``."""
    k = np.arange(degree + 1, dtype=np.float64)
    if kind == "legendre":  # orthonormal for dx/2 on [-1, 1]
        return k / np.sqrt(np.maximum(4.0 * k * k - 1.0, 1.0))
    return np.sqrt(k)  # probabilists' Hermite, orthonormal for the standard Gaussian


class _TensorBasis:
    """Shared code of the tensor-product polynomial bases."""

    kind = ""

    def __init__(self, dim, degree, *, index_set="total", indices=None):
        if indices is not None:
            idx = np.asarray(indices)
            if idx.ndim != 2 or idx.shape[0] == 0 or not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(
                    f"`indices` must be a non-empty 2-D integer array of multi-indices; got {idx!r}"
                )
            if np.any(idx < 0):
                raise ValueError("`indices` must be non-negative multi-indices")
            if len({tuple(r) for r in idx.tolist()}) != len(idx):
                raise ValueError("`indices` must not repeat a multi-index")
            self.indices = idx.astype(np.int64)
            self.dim = idx.shape[1]
            self.degree = int(idx.max())
            self.index_set = "custom"
        else:
            self.dim = check_int(dim, "dim", low=1)
            self.degree = check_int(degree, "degree", low=0)
            self.index_set = check_option(index_set, "index_set", INDEX_SETS)
            self.indices = multi_indices(self.dim, self.degree, self.index_set)
        self.indices.flags.writeable = False
        self._b = _recurrence_coefficients(self.kind, self.degree + 1)

    @property
    def m(self) -> int:
        """The dimension of the space (number of basis functions)."""
        return int(self.indices.shape[0])

    def __len__(self):
        return self.m

    def __repr__(self):
        return (
            f"{type(self).__name__}(dim={self.dim}, degree={self.degree}, "
            f"index_set={self.index_set!r}, m={self.m})"
        )

    def _check_points(self, x):
        x = check_array(x, "x", ndim=(1, 2), allow_lazy=True)  # elementwise: Dask blocks
        xp = _backend.namespace(x)
        if x.ndim == 1:
            x = xp.reshape(x, (-1, 1)) if self.dim == 1 else xp.reshape(x, (1, -1))
        if x.shape[1] != self.dim:
            raise ValueError(f"`x` must have shape (n, {self.dim}); got {tuple(x.shape)}")
        return x, xp

    def _univariate(self, t, xp):
        """Values of the orthonormal 1-D polynomials of degree 0..degree at ``t``: (degree+1, n)."""
        b = [float(v) for v in self._b]  # Python floats: array-api-strict refuses NumPy scalars
        rows = [xp.ones_like(t)]
        if self.degree >= 1:
            rows.append(t / b[1])
        for k in range(1, self.degree):
            rows.append((t * rows[k] - b[k] * rows[k - 1]) / b[k + 1])
        return xp.stack(rows, axis=0)

    def __call__(self, x):
        """Evaluate the basis at the points ``x``.

        Parameters
        ----------
        x : array of shape (n, dim) or (n,)
            The points; a 1-D array is ``n`` points when ``dim == 1``, else one point.

        Returns
        -------
        array of shape (n, m)
            ``phi_j(x_i)``, in the namespace, device and dtype of ``x``.
        """
        x, xp = self._check_points(x)
        dev = _backend.device(x)
        out = None
        for c in range(self.dim):
            values = self._univariate(x[:, c], xp)
            rows = _backend.asarray(self.indices[:, c], xp=xp, device=dev)
            factor = xp.take(values, rows, axis=0)
            out = factor if out is None else out * factor
        return xp.permute_dims(out, (1, 0))

    def k_m(self, x):
        """Evaluate the inverse Christoffel function ``k_m(x) = sum_j phi_j(x)^2``.

        Parameters
        ----------
        x : array of shape (n, dim) or (n,)
            The points, as for calling the basis.

        Returns
        -------
        array of shape (n,)
            ``k_m`` at each point, in the namespace, device and dtype of ``x``.
        """
        phi = self(x)
        xp = _backend.namespace(phi)
        return xp.sum(phi * phi, axis=1)

    def _numpy_values(self, x):
        """``self(x)`` for float64 NumPy points already checked (the samplers' fast path)."""
        b = self._b
        values = np.empty((self.degree + 1, *x.shape))
        values[0] = 1.0
        if self.degree >= 1:
            values[1] = x / b[1]
        for k in range(1, self.degree):
            values[k + 1] = (x * values[k] - b[k] * values[k - 1]) / b[k + 1]
        phi = values[self.indices[:, 0], :, 0]
        for c in range(1, self.dim):
            phi = phi * values[self.indices[:, c], :, c]
        return phi.T


class LegendreBasis(_TensorBasis):
    """Tensor Legendre polynomials, orthonormal for the uniform probability on ``[-1, 1]^d``.

    ``phi_alpha(x) = prod_i sqrt(2 alpha_i + 1) P_{alpha_i}(x_i)``: orthonormal with respect
    to the *probability* measure ``dx / 2^d`` (DPPy's ``MultivariateJacobiOPE`` uses the
    Lebesgue measure instead, whose orthonormal functions are ``2^{-d/2}`` times these).

    Parameters
    ----------
    dim : int
        Dimension ``d >= 1``.
    degree : int
        Polynomial degree ``>= 0`` of the index set.
    index_set : {"total", "hyperbolic", "tensor"}, default="total"
        Total degree, hyperbolic cross or full tensor (max) degree; see :func:`multi_indices`.
    indices : array of int, shape (m, d), optional
        Explicit multi-indices (overrides ``dim``, ``degree``, ``index_set``).

    Attributes
    ----------
    m : int
        Number of basis functions.
    indices : numpy.ndarray of int64, shape (m, d)
        The multi-indices, one row per basis function (read-only).

    References
    ----------
    A. Nouy and B. Michel, "Weighted least-squares approximation with determinantal point
    processes and generalized volume sampling", SMAI J. Comput. Math. (2025).

    Examples
    --------
    >>> import numpy as np, numlab as nl
    >>> basis = nl.lstsq.LegendreBasis(2, 3)
    >>> basis.m
    10
    >>> basis(np.zeros((4, 2))).shape
    (4, 10)
    """

    kind = "legendre"

    def _check_points(self, x):
        x, xp = super()._check_points(x)
        if not _backend.is_lazy(x) and bool(xp.any(xp.abs(x) > 1.0)):
            raise ValueError("`x` must lie in the domain [-1, 1]^d of the Legendre basis")
        return x, xp


class HermiteBasis(_TensorBasis):
    """Tensor Hermite polynomials, orthonormal for the standard Gaussian measure on ``R^d``.

    ``phi_alpha(x) = prod_i He_{alpha_i}(x_i) / sqrt(alpha_i!)`` with the probabilists'
    Hermite polynomials ``He_k``.

    Parameters
    ----------
    dim : int
        Dimension ``d >= 1``.
    degree : int
        Polynomial degree ``>= 0`` of the index set.
    index_set : {"total", "hyperbolic", "tensor"}, default="total"
        Total degree, hyperbolic cross or full tensor (max) degree; see :func:`multi_indices`.
    indices : array of int, shape (m, d), optional
        Explicit multi-indices (overrides ``dim``, ``degree``, ``index_set``).

    Attributes
    ----------
    m : int
        Number of basis functions.
    indices : numpy.ndarray of int64, shape (m, d)
        The multi-indices, one row per basis function (read-only).

    Examples
    --------
    >>> import numpy as np, numlab as nl
    >>> basis = nl.lstsq.HermiteBasis(1, 4)
    >>> float(basis.k_m(np.zeros((1, 1)))[0])  # 1 + 0 + 1/2 + 0 + 9/24
    1.875
    """

    kind = "hermite"


def _feature_values(feature_map, X, where, p=None):
    """``feature_map(X)`` as a finite float64 NumPy array of shape (len(X), p)."""
    N = X.shape[0]
    F = feature_map(X)
    if isinstance(F, (list, tuple)):
        F = np.asarray(F)
    expected = f"an (N, {'p' if p is None else p}) array of real numbers for the N = {N} rows of `{where}`"
    if not _backend.is_array(F) or _backend.is_sparse(F):
        raise TypeError(f"`feature_map` must return {expected}; got {type(F).__name__}")
    F = _backend.to_numpy(F)
    if F.dtype.kind not in "biuf":
        raise TypeError(f"`feature_map` must return {expected}; got dtype {F.dtype}")
    if F.ndim != 2 or F.shape[0] != N or (p is not None and F.shape[1] != p):
        raise ValueError(f"`feature_map` must return {expected}; got shape {F.shape}")
    F = np.asarray(F, dtype=np.float64)
    if not np.all(np.isfinite(F)):
        raise ValueError(f"`feature_map` returned NaN or infinity on `{where}`")
    return F


class FeatureBasis:
    """A user feature map orthonormalised on a finite candidate set.

    ``mu = sum_i w_i delta_{x_i}`` is a discrete probability measure on the candidates
    (uniform by default). The features ``feature_map(candidates)`` (``(N, p)``) are
    orthonormalised in ``L2(mu)`` by a pivoted QR; linearly dependent features are dropped,
    so ``m`` is the numerical rank. The samplers of :mod:`numlab.sampling` then select
    candidates (a finite projection DPP for ``projection_dpp``).

    Parameters
    ----------
    feature_map : callable
        Maps an ``(n, d)`` array to an ``(n, p)`` array of features.
    candidates : array, shape (N, d)
        The finite candidate set.
    weights : array, shape (N,), optional
        Probability weights of ``mu`` (default uniform).
    rtol : float, default=1e-10
        Relative threshold on the diagonal of ``R`` below which a feature is dependent.

    Attributes
    ----------
    m : int
        Number of basis functions (the numerical rank of the features).

    Examples
    --------
    >>> import numpy as np, numlab as nl
    >>> X = np.linspace(-1, 1, 200)[:, None]
    >>> basis = nl.lstsq.FeatureBasis(lambda x: np.hstack([x**0, x, x**2]), X)
    >>> basis.m
    3
    """

    kind = "finite"

    def __init__(self, feature_map, candidates, *, weights=None, rtol=1e-10):
        import scipy.linalg

        if not callable(feature_map):
            raise TypeError(f"`feature_map` must be callable; got {type(feature_map).__name__}")
        rtol = check_scalar(rtol, "rtol", low=0.0, high=1.0, low_inclusive=True, high_inclusive=False)
        X = _backend.to_numpy(check_array(candidates, "candidates", ndim=2, allow_lazy=True))
        X = np.asarray(X, dtype=np.float64)
        N = X.shape[0]
        if weights is None:
            w = np.full(N, 1.0 / N)
        else:
            from .._validation import check_probability_vector

            w = np.asarray(
                _backend.to_numpy(check_probability_vector(weights, "weights", N)), dtype=np.float64
            )
        F = _feature_values(feature_map, X, "candidates")
        Q, R, piv = scipy.linalg.qr(np.sqrt(w)[:, None] * F, mode="economic", pivoting=True)
        diag = np.abs(np.diag(R))
        rank = int(np.sum(diag > rtol * diag[0])) if diag.size and diag[0] > 0 else 0
        if rank == 0:
            raise ValueError("`feature_map` gives only zero features on `candidates`")
        self.feature_map = feature_map
        self.candidates = X
        self.measure_weights = w
        self.dim = X.shape[1]
        self.indices = np.arange(rank, dtype=np.int64)[:, None]
        # phi(x) = feature_map(x)[:, piv[:rank]] @ inv(R[:rank, :rank]); on the candidates
        # sqrt(w) phi = Q[:, :rank], orthonormal columns.
        self._n_features = F.shape[1]
        self._columns = piv[:rank]
        self._R = R[:rank, :rank]
        self._Q = Q[:, :rank]

    @property
    def m(self) -> int:
        return int(self._R.shape[0])

    def __len__(self):
        return self.m

    def __repr__(self):
        return f"FeatureBasis(N={self.candidates.shape[0]}, dim={self.dim}, m={self.m})"

    def candidate_values(self):
        """Evaluate the basis at the candidates.

        Returns
        -------
        numpy.ndarray of shape (N, m)
            ``phi`` at the candidates (``sqrt(w) phi`` has orthonormal columns).
        """
        return self._Q / np.sqrt(self.measure_weights)[:, None]

    def __call__(self, x):
        """Evaluate the orthonormalised features at ``x``.

        Parameters
        ----------
        x : array of shape (n, d)
            The points (any points ``feature_map`` accepts, not only candidates).

        Returns
        -------
        array of shape (n, m)
            ``phi_j(x_i)``, in the namespace, device and dtype of ``x``.
        """
        import scipy.linalg

        x = check_array(x, "x", ndim=2, shape=(None, self.dim), allow_lazy=True)  # evaluated in memory
        xp = _backend.namespace(x)
        F = _feature_values(self.feature_map, _backend.to_numpy(x), "x", self._n_features)
        F = F[:, self._columns]
        phi = scipy.linalg.solve_triangular(self._R, F.T, trans="T").T
        return _backend.asarray(phi, xp=xp, device=_backend.device(x), dtype=x.dtype)

    def k_m(self, x):
        """Evaluate the inverse Christoffel function ``k_m(x) = sum_j phi_j(x)^2``.

        Parameters
        ----------
        x : array of shape (n, d)
            The points.

        Returns
        -------
        array of shape (n,)
            ``k_m`` at each point, in the namespace, device and dtype of ``x``.
        """
        phi = self(x)
        xp = _backend.namespace(phi)
        return xp.sum(phi * phi, axis=1)
