"""The scikit-learn transformer. Imported on first use: it needs scikit-learn."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
    from sklearn.exceptions import DataDimensionalityWarning
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "numlab.random_projection.VerySparseRandomProjection needs scikit-learn "
        "(pip install scikit-learn); very_sparse_random_matrix works without it"
    ) from exc

from .. import _backend
from .._dispatch import kernel
from .._validation import check_array, check_int, check_rng, check_scalar, check_sparse_structure
from ._hash import _dense_columns, gap_table
from ._matrix import check_density, draw_seed, hashed_matrix, johnson_lindenstrauss_min_dim


def _is_foreign(X) -> bool:
    """True for arrays that scikit-learn's validation would convert to NumPy (CuPy, ...)."""
    if _backend.is_sparse(X):
        return type(X).__module__.startswith("cupyx")
    return _backend.is_array(X) and not isinstance(X, np.ndarray)


def _name_X(exc):
    """Raise ``exc`` again, naming ``X`` if scikit-learn's message does not.

    Its messages ("Found array with 0 sample(s)") name no argument; their words are
    kept (check_estimator matches them).
    """
    message = str(exc)
    if "`X`" in message or message.startswith("Input X"):
        raise exc
    raise type(exc)(f"`X` is not valid input: {message}") from None


def _has_sparse(xp) -> bool:
    return _backend.is_numpy(xp) or _backend.is_cupy(xp)


class VerySparseRandomProjection(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Dimension reduction by a very sparse random projection (Li, Hastie & Church, 2006).

    ``transform(X) = X @ R.T`` with the ``(n_components, n_features)`` matrix ``R`` of
    :func:`very_sparse_random_matrix`: entries ``+-sqrt(s / n_components)`` with
    probability ``1 / (2 s)`` each, ``s = 1 / density``. A drop-in for scikit-learn's
    ``SparseRandomProjection`` (same parameters, same ``n_components_``, same
    distribution of ``R``) that builds the matrix in one vectorised pass instead of
    one sampling call per row (tens of times faster for a million features), only when
    ``components_`` is read, and which can run without storing ``R`` at all
    (``matrix_free=True``).

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Dimension of the projected space. "auto" uses the Johnson-Lindenstrauss bound
        :func:`johnson_lindenstrauss_min_dim` ``(n_samples, eps)``, exactly as
        scikit-learn does (a conservative bound: it ignores the data's structure).
    density : float in (0, 1] or "auto", default="auto"
        Probability of a nonzero entry of ``R``; "auto" is ``1 / sqrt(n_features)``.
    eps : float, default=0.1
        Distortion allowed by the Johnson-Lindenstrauss bound when
        ``n_components="auto"``.
    dense_output : bool, default=False
        Return a dense array even for sparse input. With sparse input and False the
        result is a sparse matrix, like scikit-learn's.
    matrix_free : bool, default=False
        Never store ``R`` (no ``components_``): each feature's column is regenerated
        inside the projection kernel from a counter-based hash of (``seed_``, feature
        index). Memory is ``O(n_samples * n_components)``, features beyond
        ``n_features_in_`` would have well-defined columns, and the Numba and CuPy
        kernels return the same numbers bit for bit. The matrix is the one
        ``matrix_free=False`` stores for the same ``random_state``, and the projections
        are identical.
    random_state : None, int or numpy.random.Generator, default=None
        Source of the 64-bit seed drawn at ``fit``. The legacy ``RandomState`` is
        refused.

    Attributes
    ----------
    n_components_ : int
        The number of components used.
    density_ : float
        The density used.
    seed_ : int
        The 64-bit seed of the counter-based matrix.
    components_ : CSR matrix of shape ``(n_components_, n_features_in_)``
        The matrix ``R`` (absent with ``matrix_free=True``). A dense array on array
        libraries without sparse matrices (array-api-strict).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    Accepts NumPy arrays and ``scipy.sparse`` matrices (validated by scikit-learn),
    CuPy arrays and ``cupyx.scipy.sparse`` matrices (projected on the GPU), and any
    other array-API array (dense). float32 input gives float32 output.

    Dask arrays chunked by rows (NumPy or ``scipy.sparse`` blocks, one chunk across
    the columns): ``fit`` reads only their shape (no pass over the data),
    ``transform`` returns a lazy Dask array chunked by the same rows, each block
    projected on its worker by the in-memory ``transform`` with ``R`` regenerated
    there from ``seed_`` (the matrix is neither built on the client nor shipped), so
    its value is that of the in-memory call bit for bit, whatever the chunking;
    ``inverse_transform`` is lazy too, ``pinv(R)`` computed once on the client and
    shared by the blocks. Data checks (NaN, infinity) run on the workers, when the
    result is computed. Refused with an error naming ``X``: column chunks, and a
    ``components_`` assigned by hand.

    ``transform`` regenerates the columns of ``R`` from ``seed_`` even when the
    matrix is stored (a hash is cheaper than a cache miss; the numbers are the same);
    assigning a new matrix to ``components_`` makes ``transform`` use that matrix
    instead (modifying the stored matrix in place is not detected).

    Li et al. (their Lemma 3) show that the variance of ``||R x||**2 / ||x||**2`` is
    ``(2 + (s - 3) sum x_j**4 / (sum x_j**2)**2) / k``: for very sparse rows the extra
    term makes the distortion larger than a Gaussian projection's; pass a larger
    ``density`` if that matters.

    References
    ----------
    P. Li, T. J. Hastie and K. W. Church, "Very sparse random projections", KDD 2006.
    D. Achlioptas, "Database-friendly random projections", JCSS 66(4), 2003.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse
    >>> import numlab as nl
    >>> X = scipy.sparse.random_array((100, 10_000), density=0.01, format="csr", rng=0)
    >>> rp = nl.random_projection.VerySparseRandomProjection(500, random_state=0)
    >>> Y = rp.fit_transform(X)
    >>> Y.shape
    (100, 500)
    """

    def __init__(
        self,
        n_components="auto",
        *,
        density="auto",
        eps=0.1,
        dense_output=False,
        matrix_free=False,
        random_state=None,
    ):
        self.n_components = n_components
        self.density = density
        self.eps = eps
        self.dense_output = dense_output
        self.matrix_free = matrix_free
        self.random_state = random_state

    # ------------------------------------------------------------------ validation

    def _validate(self, X, *, reset):
        if _backend.is_lazy(X):
            from ._dask import check_rows

            X = check_rows(X)
            if reset:
                self.n_features_in_ = int(X.shape[1])
                self.__dict__.pop("feature_names_in_", None)
            return X
        if _is_foreign(X):
            X = check_array(X, "X", ndim=2, allow_sparse=True)
            if reset:
                self.n_features_in_ = int(X.shape[1])
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"`X` must have {self.n_features_in_} features, as in fit; got {X.shape[1]}"
                )
            return X
        if isinstance(X, np.ndarray) and X.dtype == object:
            # scikit-learn's convention (check_estimator tests it): an object array of
            # numbers is taken as float64; anything else is refused naming X, keeping
            # Python's reason (which check_estimator matches)
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise type(exc)(
                    f"`X` must hold real numbers; got an object array with an entry that "
                    f"is not one ({exc})"
                ) from None
        try:
            Y = validate_data(
                self,
                _check_structure(X),
                accept_sparse=["csr", "csc"],
                dtype=[np.float64, np.float32],
                reset=reset,
            )
        except (TypeError, ValueError) as exc:
            _name_X(exc)
        return _check_structure(Y, given=X)

    def _check_params(self):
        if isinstance(self.n_components, str):
            if self.n_components != "auto":
                raise ValueError(f"`n_components` must be 'auto' or an integer >= 1; got {self.n_components!r}")
        else:
            check_int(self.n_components, "n_components", low=1)
        if not isinstance(self.eps, numbers.Real) or isinstance(self.eps, bool):
            raise TypeError(f"`eps` must be a float in (0, 1); got {self.eps!r}")
        check_scalar(self.eps, "eps", low=0.0, high=1.0, high_inclusive=False)
        for name in ("dense_output", "matrix_free"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"`{name}` must be True or False; got {getattr(self, name)!r}")

    # ------------------------------------------------------------------ fit / transform

    def fit(self, X, y=None):
        """Draw the seed and fix the shape (and dtype) of the matrix.

        Only the shape of ``X`` is used (and its dtype, for ``components_``). For NumPy
        and scipy.sparse ``X`` the matrix is built when ``components_`` is first read;
        for other libraries (CuPy, ...) it is built here, unless ``matrix_free``.

        Parameters
        ----------
        X : array, sparse matrix or Dask array of shape (n_samples, n_features)
            Training data; only its shape (and dtype) is used, so a Dask array is
            not computed (its row count is needed only for ``n_components="auto"``).
        y : Ignored
            Not used; accepted so that the transformer fits in scikit-learn pipelines.

        Returns
        -------
        object
            The fitted estimator (``self``).
        """
        self._check_params()
        X = self._validate(X, reset=True)
        n_samples, n_features = X.shape
        if self.n_components == "auto":
            if math.isnan(n_samples):
                raise ValueError(
                    "`X` must have known chunk sizes for n_components='auto' (the bound needs "
                    "n_samples); call `X.compute_chunk_sizes()` or pass an integer n_components"
                )
            n_components = int(johnson_lindenstrauss_min_dim(n_samples, eps=self.eps))
            if n_components <= 0:
                raise ValueError(
                    f"`n_components`='auto' is invalid here: eps={self.eps:f} and "
                    f"n_samples={n_samples} lead to a target dimension "
                    f"of {n_components} which is invalid"
                )
            if n_components > n_features:
                raise ValueError(
                    f"`n_components`='auto' is invalid here: eps={self.eps:f} and "
                    f"n_samples={n_samples} lead to a target dimension "
                    f"of {n_components} which is larger than the original space with "
                    f"n_features={n_features}"
                )
        else:
            n_components = int(self.n_components)
            if n_components > n_features:
                warnings.warn(
                    "The number of components is higher than the number of features: "
                    f"n_features < n_components ({n_features} < {n_components}). "
                    "The dimensionality of the problem will not be reduced.",
                    DataDimensionalityWarning,
                    stacklevel=2,
                )
        self.n_components_ = n_components
        self.density_ = check_density(self.density, n_features)
        self.seed_ = draw_seed(check_rng(self.random_state, "random_state"))
        for name in _STATE:
            self.__dict__.pop(name, None)
        if not self.matrix_free:
            if _backend.is_lazy(X) or _backend.is_numpy(_backend.namespace(X)):
                # R is a function of seed_: build it when components_ is first read, so
                # that fit (and fit_transform, whose transform regenerates the columns
                # anyway) costs no pass over n_features columns.
                self._components_dtype = np.dtype(X.dtype)
            else:
                self._seeded_columns = self._materialise(X)
        self._n_features_out = n_components
        return self

    @property
    def components_(self):
        """The matrix ``R``, CSR of shape ``(n_components_, n_features_in_)``.

        For NumPy and scipy.sparse input, built from ``seed_`` on first access (in the
        dtype of the data given to ``fit``) and kept; for other libraries, built at
        ``fit`` on the data's device. Absent with ``matrix_free=True``. Assigning a
        matrix replaces it, and ``transform`` then uses that matrix.
        """
        state = self.__dict__
        if "_components" in state:
            return state["_components"]
        if "_components_csr" in state:
            return state["_components_csr"]
        if "_components_dtype" in state:
            state["_components_csr"] = hashed_matrix(
                self.seed_, self.n_components_, self.n_features_in_, self.density_,
                xp=_backend.namespace(np.empty(0)), dtype=state["_components_dtype"],
            )
            return state["_components_csr"]
        columns = state.get("_seeded_columns")
        if columns is None:
            raise AttributeError(
                f"'{type(self).__name__}' has no attribute 'components_' "
                "(not fitted, or fitted with matrix_free=True)"
            )
        state["_components_csr"] = columns.tocsr() if _backend.is_sparse(columns) else columns
        return state["_components_csr"]

    @components_.setter
    def components_(self, value):
        self.__dict__["_components"] = value

    @components_.deleter
    def components_(self):
        for name in _STATE:
            self.__dict__.pop(name, None)

    def _scale(self) -> float:
        return math.sqrt(1.0 / self.density_) / math.sqrt(self.n_components_)

    def _materialise(self, X):
        """``R`` on the backend of ``X``, in ``X``'s dtype."""
        xp = _backend.namespace(X)
        dtype = X.dtype
        if _has_sparse(xp):
            return hashed_matrix(
                self.seed_, self.n_components_, self.n_features_in_, self.density_,
                xp=xp, device=_backend.device(X), dtype=dtype, format="csc",
            )
        table = _backend.asarray(gap_table(self.density_, self.n_components_), xp=xp, device=_backend.device(X))
        return _dense_columns(xp, self.seed_, table, self.n_features_in_, self._scale(), dtype).T

    def transform(self, X):
        """Project ``X``: ``X @ R.T``.

        Parameters
        ----------
        X : array, sparse matrix or Dask array of shape (n_samples, n_features_in_)
            The data to project. A Dask array must be chunked by rows (NumPy or
            ``scipy.sparse`` blocks); see Notes of the class.

        Returns
        -------
        array, sparse matrix or Dask array of shape (n_samples, n_components_)
            The projected data; sparse only for sparse ``X`` (or ``scipy.sparse``
            blocks) with ``dense_output=False``; dtype of ``X``. For a Dask ``X``, a
            lazy Dask array chunked by the rows of ``X``, identical once computed to
            the in-memory projection.
        """
        check_is_fitted(self, "seed_")
        if _backend.is_lazy(X):
            from ._dask import transform

            return transform(self, X)
        X = self._validate(X, reset=False)
        xp = _backend.namespace(X)
        sparse_in = _backend.is_sparse(X)
        if "_components" not in self.__dict__:
            # The stored matrix is the seed's: regenerating a column from the hash costs
            # less than fetching it from memory, and gives the same numbers.
            if sparse_in and not self.dense_output and _backend.is_numpy(xp):
                return self._project_matrix_free_sparse(X)
            Y = self._project_matrix_free(X, xp)
        elif sparse_in and _backend.is_sparse(self.components_):
            X = _backend.as_csr(X)
            columns = self.components_.tocsc()  # R by feature: what each nonzero of X needs
            Y = kernel("random_projection.csr_times_columns", xp)(
                X.indptr, X.indices, X.data, columns.indptr, columns.indices, columns.data,
                self.n_components_,
            )
        else:
            components = self.components_
            if components.dtype != X.dtype:
                components = components.astype(X.dtype) if _has_sparse(xp) else xp.astype(components, X.dtype)
            Y = X @ components.T
            if _backend.is_sparse(Y):
                Y = Y.toarray()
        if sparse_in and not self.dense_output:
            Y = _sparse_output(Y, xp)
        return Y

    def _project_matrix_free(self, X, xp):
        dev = _backend.device(X)
        table = _backend.asarray(gap_table(self.density_, self.n_components_), xp=xp, device=dev)
        scale = self._scale()
        if _backend.is_sparse(X):
            X = _backend.as_csr(X)
            return kernel("random_projection.hash_project_csr", xp)(
                self.seed_, table, X.indptr, X.indices, X.data, self.n_features_in_, scale
            )
        return kernel("random_projection.hash_project_dense", xp)(self.seed_, table, X, scale)

    def _project_matrix_free_sparse(self, X):
        """``X @ R.T`` as a CSR matrix, built row by row (scipy.sparse ``X``)."""
        import scipy.sparse

        X = _backend.as_csr(X)
        table = gap_table(self.density_, self.n_components_)
        indptr, indices, data = kernel("random_projection.hash_project_csr_sparse", _backend.namespace(X))(
            self.seed_, table, X.indptr, X.indices, X.data, self.n_features_in_, self._scale()
        )
        return scipy.sparse.csr_matrix((data, indices, indptr), shape=(X.shape[0], self.n_components_))

    def inverse_transform(self, X):
        """Map projected points back: ``X @ pinv(R).T`` (dense, ``(n, n_features_in_)``).

        The pseudo-inverse of the densified ``R`` is computed at each call, as in
        scikit-learn without ``compute_inverse_components``: ``O(n_components**2 *
        n_features)`` time and ``n_components * n_features`` memory.

        Parameters
        ----------
        X : array, sparse matrix or Dask array of shape (n_samples, n_components_)
            Projected data; a Dask array must be chunked by rows.

        Returns
        -------
        array or Dask array of shape (n_samples, n_features_in_)
            The reconstruction ``X @ pinv(R).T``, as a dense array; for a Dask ``X``,
            a lazy Dask array chunked by the same rows (``pinv(R)`` computed once on
            the client and shipped to the workers as one key).
        """
        check_is_fitted(self, "seed_")
        if _backend.is_lazy(X):
            from ._dask import inverse_transform

            return inverse_transform(self, X)
        foreign = _is_foreign(X)
        if foreign:
            X = check_array(X, "X", ndim=2, allow_sparse=True)
        else:
            try:
                X = _check_structure(_sk_check(_check_structure(X), self), given=X)
            except (TypeError, ValueError) as exc:
                _name_X(exc)
        xp = _backend.namespace(X)
        if X.shape[1] != self.n_components_:
            raise ValueError(
                f"`X` must have {self.n_components_} columns (n_components_); got {X.shape[1]}"
            )
        if self.matrix_free or (foreign and "_components" not in self.__dict__):
            R = self._materialise(X)  # the seed's matrix, on X's library and device
        else:
            R = self.components_
            _backend.namespace(X=X, components_=R)  # an assigned matrix of another library
        R = xp.astype(R.toarray() if _backend.is_sparse(R) else R, X.dtype)
        pinv = xp.linalg.pinv(R)
        Y = X @ pinv.T
        return Y.toarray() if _backend.is_sparse(Y) else Y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags


#: Private attributes holding (or describing) the matrix; reset by fit.
_STATE = ("_components", "_components_csr", "_components_dtype", "_seeded_columns")


def _sparse_output(Y, xp):
    """The dense projection ``Y`` as a CSR matrix of its library."""
    sparse = _backend.sparse_module(xp)
    if not _backend.is_numpy(xp):
        return sparse.csr_matrix(Y)
    indptr, indices, data = kernel("random_projection.dense_to_csr", xp)(Y)
    return sparse.csr_matrix((data, indices, indptr), shape=Y.shape)


def _check_structure(X, given=None):
    """Check the index arrays of sparse ``X`` (O(nnz), vectorised) before scikit-learn's
    validation converts it: a COO or BSR matrix with an index out of range crashes
    SciPy's conversion. With ``given`` (the caller's input), ``X`` is what the validation
    returned: checked only when it is a new matrix of another format than ``given``
    (DOK and LIL inputs, whose CSR form is what the kernels read)."""
    if not _backend.is_sparse(X):
        return X
    if given is not None and _backend.is_sparse(given) and (X is given or X.format == given.format):
        return X
    return check_sparse_structure(X, "X")


def _sk_check(X, estimator):
    from sklearn.utils.validation import check_array as sk_check_array

    return sk_check_array(
        X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], estimator=estimator, input_name="X"
    )
