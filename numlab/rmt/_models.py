"""Built-in models with exact Hessian-vector products: least squares, logistic regression, MLP.

Each model holds its data on the caller's backend and exposes, for a flat parameter
vector ``w``, the mean loss, its gradient and exact Hessian- and Gauss-Newton-vector
products over all samples or over a mini-batch ``idx``. The products are forward-over-
reverse (Pearlmutter's R-operator) written out by hand in array-API calls, so they run on
NumPy, CuPy or any array-API library without an autodiff framework.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import _backend
from .._validation import check_array, check_bool, check_int, check_option, check_rng, check_scalar

__all__ = ["HessianOperator", "LeastSquares", "LogisticRegression", "MLP", "LocalQuadratic"]


def _checked_vectors(method):
    """Check ``w`` (and ``v``) of a model's ``loss`` / ``gradient`` / ``hvp`` /
    ``gauss_newton``: shape, a real numeric dtype, finite values (NumPy)."""

    has_v = method.__name__ in ("hvp", "gauss_newton")

    @functools.wraps(method)
    def checked(self, w, *args, **kwargs):
        w = self._check_vector(w, "w")
        if has_v:
            if args:
                args = (self._check_vector(args[0], "v"), *args[1:])
            elif "v" in kwargs:
                kwargs["v"] = self._check_vector(kwargs["v"], "v")
        return method(self, w, *args, **kwargs)

    return checked


class HessianOperator:
    """The Hessian (or Gauss-Newton matrix) of a model's mean loss at fixed parameters.

    Calling it is the ``hvp(v, idx=None)`` protocol of :mod:`numlab.rmt`: the product
    with ``v`` of the curvature of the mean loss over the samples ``idx`` (all samples
    when None).

    Parameters
    ----------
    model : LeastSquares, LogisticRegression, MLP or LocalQuadratic
        The model.
    w : array of shape (n_params,)
        The parameters at which the curvature is taken.
    gauss_newton : bool
        The generalised Gauss-Newton matrix instead of the Hessian.

    Attributes
    ----------
    n_params : int
        Dimension of the parameter vector.
    n_samples : int
        Number of training samples.
    like : array
        The parameter vector: its backend, device and dtype are those of the products.
    """

    def __init__(self, model, w, gauss_newton=False):
        self.model, self.like, self.gauss_newton = model, w, gauss_newton
        self.n_params, self.n_samples = model.n_params, model.n_samples

    def __call__(self, v, idx=None):
        """The curvature-vector product with ``v`` over the samples ``idx``.

        Parameters
        ----------
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The product.
        """
        if self.gauss_newton:
            return self.model.gauss_newton(self.like, v, idx)
        return self.model.hvp(self.like, v, idx)

    def dense(self, idx=None):
        """The dense ``(n_params, n_params)`` matrix, built column by column (small models).

        Parameters
        ----------
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params, n_params)
            The matrix, on the parameters' backend.
        """
        xp = _backend.namespace(self.like)
        eye = xp.eye(self.n_params, dtype=self.like.dtype, device=_backend.device(self.like))
        return xp.stack([self(eye[i, :], idx) for i in range(self.n_params)], axis=1)


class _Model:
    """Shared plumbing: data on the backend, batch selection, flat parameter vectors."""

    def __init__(self, X, fit_intercept):
        if not isinstance(fit_intercept, (bool, np.bool_)):
            raise TypeError(f"`fit_intercept` must be True or False; got {fit_intercept!r}")
        X = check_array(X, "X", ndim=2)
        self.xp = _backend.namespace(X)
        self._numpy = _backend.is_numpy(self.xp)
        self.device = _backend.device(X)
        self.dtype = X.dtype
        if fit_intercept:
            ones = self.xp.ones((X.shape[0], 1), dtype=X.dtype, device=self.device)
            X = self.xp.concat([X, ones], axis=1)
        self.X = X
        self.n_samples = X.shape[0]

    def _labels(self, y, n):
        """Integer class labels as a one-hot float matrix on the backend."""
        if isinstance(y, (list, tuple)):
            y_host = np.asarray(y)
        elif _backend.is_array(y) and not _backend.is_sparse(y):
            y_host = _backend.to_numpy(y)
        else:
            raise TypeError(
                f"`y` must be an array or a list of {n} class labels; got {type(y).__name__}"
            )
        if y_host.ndim != 1 or y_host.shape[0] != n:
            raise ValueError(
                f"`y` must be a 1-D array of length {n} (one label per row of X); "
                f"got shape {y_host.shape}"
            )
        if y_host.dtype.kind == "c":
            raise TypeError(f"`y` must hold real class labels; got complex dtype {y_host.dtype}")
        if y_host.dtype.kind == "f" and not np.all(np.isfinite(y_host)):
            raise ValueError("`y` must contain only finite class labels; got NaN or infinity")
        classes, codes = np.unique(y_host, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(f"`y` must contain at least 2 classes; got {classes.shape[0]}")
        onehot = np.zeros((n, classes.shape[0]))
        onehot[np.arange(n), codes] = 1.0
        return classes, _backend.asarray(onehot, xp=self.xp, device=self.device, dtype=self.dtype)

    def _rows(self, A, idx):
        if idx is None:
            return A
        if isinstance(idx, (list, tuple, range)) or (
            isinstance(idx, np.ndarray) and not _backend.is_numpy(self.xp)
        ):
            idx = _backend.asarray(np.asarray(idx, dtype=np.int64), xp=self.xp, device=self.device)
        return self.xp.take(A, idx, axis=0)

    def _check_vector(self, v, name):
        if (
            type(v) is np.ndarray
            and self._numpy
            and v.shape == (self.n_params,)
            and v.dtype.kind in "fiu"
        ):
            # The common case, on every call of the training and Lanczos loops: a few us.
            if v.dtype.kind == "f" and not np.isfinite(v).all():
                raise ValueError(f"`{name}` must contain only finite values; got NaN or infinity")
            return v
        if not _backend.is_array(v) or _backend.is_sparse(v):
            raise TypeError(f"`{name}` must be an array of shape ({self.n_params},); got {type(v).__name__}")
        if tuple(v.shape) != (self.n_params,):
            raise ValueError(f"`{name}` must have shape ({self.n_params},); got {tuple(v.shape)}")
        xp = _backend.namespace(v)
        if xp is not self.xp:
            raise TypeError(
                f"`{name}` must be an array of the model's library ({self.xp.__name__}); "
                f"got {_backend.library_name(v)}"
            )
        if not xp.isdtype(v.dtype, ("real floating", "signed integer", "unsigned integer")):
            raise TypeError(f"`{name}` must have a real numeric dtype; got {v.dtype}")
        # Values on the host only (no device sync inside training and Lanczos loops).
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.isfinite(v).all():
            raise ValueError(f"`{name}` must contain only finite values; got NaN or infinity")
        return v

    def hessian(self, w, *, gauss_newton=False):
        """The matrix-free Hessian (or Gauss-Newton matrix) at ``w``: an ``hvp(v, idx=None)``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        gauss_newton : bool
            The generalised Gauss-Newton matrix instead of the Hessian.

        Returns
        -------
        HessianOperator
            Callable ``hvp(v, idx=None)``.
        """
        gauss_newton = check_bool(gauss_newton, "gauss_newton")
        return HessianOperator(self, self._check_vector(w, "w"), gauss_newton)

    def init_params(self, rng=None):
        """Zero parameters (the convex models' usual start).

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            Unused for convex models (kept for a common signature).

        Returns
        -------
        array of shape (n_params,)
            The start point.
        """
        return self.xp.zeros((self.n_params,), dtype=self.dtype, device=self.device)


class LeastSquares(_Model):
    """Linear least squares, ``L(w) = mean_i (x_i^T w - y_i)^2 / 2``.

    The Hessian ``X^T X / B`` does not depend on ``w``: the quadratic model on which the
    SGD stability threshold ``2 / lambda_max`` is exact.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Inputs on any backend.
    y : array of shape (n_samples,)
        Targets.
    fit_intercept : bool
        Append a constant feature (its weight is the last parameter).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> model = nl.rmt.LeastSquares(X, X @ np.ones(3))
    >>> w = model.init_params()
    >>> H = model.hessian(w)
    >>> model.n_params, H(np.ones(4)).shape
    (4, (4,))
    """

    def __init__(self, X, y, *, fit_intercept=True):
        super().__init__(X, fit_intercept)
        y = check_array(y, "y", xp=self.xp, ndim=1, shape=(self.n_samples,))
        self.y = self.xp.astype(y, self.dtype)
        self.n_params = self.X.shape[1]

    @_checked_vectors
    def loss(self, w, idx=None):
        """Mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        float
            The loss.
        """
        X, y = self._rows(self.X, idx), self._rows(self.y, idx)
        r = X @ w - y
        return 0.5 * float(self.xp.vecdot(r, r)) / X.shape[0]

    @_checked_vectors
    def gradient(self, w, idx=None):
        """Gradient of the mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The gradient.
        """
        X, y = self._rows(self.X, idx), self._rows(self.y, idx)
        return (X @ w - y) @ X / X.shape[0]

    @_checked_vectors
    def hvp(self, w, v, idx=None):
        """Hessian-vector product of the mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The product.
        """
        X = self._rows(self.X, idx)
        return (X @ v) @ X / X.shape[0]

    gauss_newton = hvp


class LogisticRegression(_Model):
    """Multinomial logistic regression (softmax cross-entropy) with optional L2 penalty.

    ``L(W) = mean_i [logsumexp(x_i W) - x_i W y_i] + alpha ||W||^2 / 2`` for one-hot
    ``y_i``; the parameters are ``W`` of shape ``(n_features + 1, n_classes)``,
    flattened row-major. The Gauss-Newton matrix equals the Hessian (canonical link).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Inputs on any backend.
    y : array of shape (n_samples,)
        Class labels (any values; at least two classes).
    alpha : float
        L2 penalty, ``>= 0``.
    fit_intercept : bool
        Append a constant feature.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> X = np.random.default_rng(0).standard_normal((60, 4))
    >>> model = nl.rmt.LogisticRegression(X, (X[:, 0] > 0).astype(int))
    >>> model.n_params
    10
    """

    def __init__(self, X, y, *, alpha=0.0, fit_intercept=True):
        super().__init__(X, fit_intercept)
        self.alpha = check_scalar(alpha, "alpha", low=0.0, low_inclusive=True)
        self.classes, self.Y = self._labels(y, self.n_samples)
        self.n_classes = self.Y.shape[1]
        self.n_params = self.X.shape[1] * self.n_classes

    def _probabilities(self, w, X):
        xp = self.xp
        Z = X @ xp.reshape(w, (X.shape[1], self.n_classes))
        Z = Z - xp.max(Z, axis=1, keepdims=True)
        E = xp.exp(Z)
        s = xp.sum(E, axis=1, keepdims=True)
        return Z, E / s, xp.log(s)

    @_checked_vectors
    def loss(self, w, idx=None):
        """Mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        float
            The loss.
        """
        X, Y = self._rows(self.X, idx), self._rows(self.Y, idx)
        Z, _, logs = self._probabilities(w, X)
        ce = float(self.xp.sum(logs[:, 0] - self.xp.sum(Z * Y, axis=1))) / X.shape[0]
        return ce + 0.5 * self.alpha * float(self.xp.vecdot(w, w))

    @_checked_vectors
    def gradient(self, w, idx=None):
        """Gradient of the mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The gradient.
        """
        X, Y = self._rows(self.X, idx), self._rows(self.Y, idx)
        _, P, _ = self._probabilities(w, X)
        G = self.xp.matrix_transpose(X) @ (P - Y) / X.shape[0]
        return self.xp.reshape(G, (-1,)) + self.alpha * w

    @_checked_vectors
    def hvp(self, w, v, idx=None):
        """Hessian-vector product of the mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The product.
        """
        xp = self.xp
        X = self._rows(self.X, idx)
        _, P, _ = self._probabilities(w, X)
        RZ = X @ xp.reshape(v, (X.shape[1], self.n_classes))
        RG = P * RZ - P * xp.sum(P * RZ, axis=1, keepdims=True)
        return xp.reshape(xp.matrix_transpose(X) @ RG, (-1,)) / X.shape[0] + self.alpha * v

    gauss_newton = hvp


class MLP(_Model):
    """A one-hidden-layer tanh network with mean-squared-error or cross-entropy loss.

    ``z = tanh(x W1 + b1) W2 + b2``; the loss is ``||z - y||^2 / 2`` (MSE, one-hot or
    real targets) or softmax cross-entropy, averaged over the samples. The parameters
    ``(W1, b1, W2, b2)`` are flattened in that order (row-major). ``hvp`` is the exact
    Hessian-vector product; ``gauss_newton`` drops the terms with the output residual
    (the generalised Gauss-Newton matrix, positive semi-definite).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Inputs on any backend.
    y : array of shape (n_samples,) or (n_samples, n_outputs)
        Class labels (one-hot encoded here) or, for ``loss="mse"``, real targets.
    hidden : int
        Width of the hidden layer.
    loss : {"mse", "ce"}
        Mean squared error or softmax cross-entropy.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> X = np.random.default_rng(0).standard_normal((100, 64))
    >>> model = nl.rmt.MLP(X, np.arange(100) % 10, hidden=32)
    >>> model.n_params  # 64*32 + 32 + 32*10 + 10
    2410
    """

    def __init__(self, X, y, *, hidden=32, loss="mse"):
        super().__init__(X, fit_intercept=False)
        self.hidden = check_int(hidden, "hidden", low=1)
        self.loss_name = check_option(loss, "loss", ("mse", "ce"))
        if getattr(y, "ndim", np.ndim(y)) == 2:
            if loss == "ce":
                raise ValueError("`y` must be 1-D class labels for loss='ce'; got a 2-D array")
            Y = check_array(y, "y", xp=self.xp, ndim=2, shape=(self.n_samples, None))
            self.Y = self.xp.astype(Y, self.dtype)
        else:
            _, self.Y = self._labels(y, self.n_samples)
        d, h, c = self.X.shape[1], self.hidden, self.Y.shape[1]
        self.shapes = ((d, h), (h,), (h, c), (c,))
        self.n_params = d * h + h + h * c + c

    def init_params(self, rng=None):
        """Gaussian weights with variance ``1 / fan_in`` and zero biases.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            Seed of the weights.

        Returns
        -------
        array of shape (n_params,)
            The flat parameter vector on the data's backend.
        """
        rng = check_rng(rng)
        (d, h), _, (_, c), _ = self.shapes
        w = np.concatenate(
            [
                rng.standard_normal(d * h) / math.sqrt(d),
                np.zeros(h),
                rng.standard_normal(h * c) / math.sqrt(h),
                np.zeros(c),
            ]
        )
        return _backend.asarray(w, xp=self.xp, device=self.device, dtype=self.dtype)

    def _unflatten(self, w):
        parts, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            parts.append(self.xp.reshape(w[start : start + size], shape))
            start += size
        return parts

    def _flatten(self, *parts):
        return self.xp.concat([self.xp.reshape(p, (-1,)) for p in parts])

    def _forward(self, w, idx):
        xp = self.xp
        X, Y = self._rows(self.X, idx), self._rows(self.Y, idx)
        W1, b1, W2, b2 = self._unflatten(w)
        H = xp.tanh(X @ W1 + b1)
        Z = H @ W2 + b2
        P = None
        if self.loss_name == "mse":
            dZ = (Z - Y) / X.shape[0]
        else:
            E = xp.exp(Z - xp.max(Z, axis=1, keepdims=True))
            P = E / xp.sum(E, axis=1, keepdims=True)
            dZ = (P - Y) / X.shape[0]
        return X, Y, W1, W2, H, Z, P, dZ

    @_checked_vectors
    def loss(self, w, idx=None):
        """Mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        float
            The loss.
        """
        xp = self.xp
        X, Y, _, _, _, Z, _, _ = self._forward(w, idx)
        if self.loss_name == "mse":
            return 0.5 * float(xp.sum((Z - Y) ** 2)) / X.shape[0]
        zmax = xp.max(Z, axis=1, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(Z - zmax), axis=1)) + zmax[:, 0]
        return float(xp.sum(lse - xp.sum(Z * Y, axis=1))) / X.shape[0]

    @_checked_vectors
    def gradient(self, w, idx=None):
        """Gradient of the mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The gradient.
        """
        xp = self.xp
        X, _, _, W2, H, _, _, dZ = self._forward(w, idx)
        dA = (dZ @ xp.matrix_transpose(W2)) * (1 - H * H)
        XT, HT = xp.matrix_transpose(X), xp.matrix_transpose(H)
        return self._flatten(XT @ dA, xp.sum(dA, axis=0), HT @ dZ, xp.sum(dZ, axis=0))

    def _curvature(self, w, v, idx, exact):
        xp = self.xp
        X, _, _, W2, H, _, P, dZ = self._forward(w, idx)
        V1, c1, V2, c2 = self._unflatten(v)
        W2T = xp.matrix_transpose(W2)
        S = 1 - H * H  # tanh'
        RH = S * (X @ V1 + c1)
        RZ = RH @ W2 + H @ V2 + c2
        if P is None:
            RdZ = RZ / X.shape[0]
        else:
            RdZ = (P * RZ - P * xp.sum(P * RZ, axis=1, keepdims=True)) / X.shape[0]
        HT = xp.matrix_transpose(H)
        gV2 = HT @ RdZ
        RdA = (RdZ @ W2T) * S
        if exact:  # second-order terms carried by the output residual dZ
            dH = dZ @ W2T
            gV2 = gV2 + xp.matrix_transpose(RH) @ dZ
            RdA = RdA + (dZ @ xp.matrix_transpose(V2)) * S - 2 * dH * H * RH
        return self._flatten(
            xp.matrix_transpose(X) @ RdA, xp.sum(RdA, axis=0), gV2, xp.sum(RdZ, axis=0)
        )

    @_checked_vectors
    def hvp(self, w, v, idx=None):
        """Exact Hessian-vector product of the mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The product.
        """
        return self._curvature(w, v, idx, exact=True)

    @_checked_vectors
    def gauss_newton(self, w, v, idx=None):
        """Generalised Gauss-Newton-vector product of the mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The product.
        """
        return self._curvature(w, v, idx, exact=False)


class LocalQuadratic:
    """The second-order Taylor model of another model's loss around ``center``.

    ``L_S(w) = L_S(c) + g_S(c) . (w - c) + (w - c)^T H_S(c) (w - c) / 2`` for every batch
    ``S``: the per-batch gradients and Hessians of the original model frozen at ``c``.
    SGD on it is the linearised SGD of the original model near ``c``, for which the
    stability threshold ``2 / lambda_max(H_B)`` is exact; for losses whose curvature
    falls away from the optimum (logistic regression) the original SGD does not blow up
    above the threshold, it only stops converging, so this is the model on which to
    measure the threshold (:func:`measure_max_learning_rate`).

    Parameters
    ----------
    model : LeastSquares, LogisticRegression or MLP
        The model to expand.
    center : array of shape (n_params,)
        The expansion point (typically the minimiser).
    gauss_newton : bool
        Use the Gauss-Newton matrix instead of the Hessian.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> X = np.random.default_rng(0).standard_normal((80, 3))
    >>> logistic = nl.rmt.LogisticRegression(X, X[:, 0] > 0, alpha=0.1)
    >>> quad = nl.rmt.LocalQuadratic(logistic, logistic.init_params())
    >>> w = quad.init_params() + 0.1
    >>> bool(abs(quad.loss(w) - logistic.loss(w)) < 1e-2)
    True
    """

    def __init__(self, model, center, *, gauss_newton=False):
        self.model = model
        self.center = model._check_vector(center, "center")
        self.gauss_newton = gauss_newton
        self.xp, self.device, self.dtype = model.xp, model.device, model.dtype
        self.n_samples, self.n_params = model.n_samples, model.n_params

    @classmethod
    def at_minimum(cls, model, w0=None, *, gauss_newton=False, gtol=1e-10, maxiter=5000):
        """The quadratic model of ``model`` at its minimiser, found by L-BFGS-B.

        The expansion point of choice for convex losses whose curvature falls away from
        the optimum (regularised logistic regression): SGD on the result is the
        linearised SGD of the model at its minimum.

        Parameters
        ----------
        model : LeastSquares, LogisticRegression or MLP
            The model to minimise and expand (its full-data loss and gradient).
        w0 : array of shape (n_params,), optional
            Start of the minimisation (default ``model.init_params(0)``).
        gauss_newton : bool
            Use the Gauss-Newton matrix instead of the Hessian.
        gtol : float
            Projected-gradient tolerance of L-BFGS-B.
        maxiter : int
            Largest number of L-BFGS-B iterations.

        Returns
        -------
        LocalQuadratic
            The expansion at the minimiser (on the model's backend and dtype).

        Examples
        --------
        >>> import numpy as np
        >>> import numlab as nl
        >>> X = np.random.default_rng(0).standard_normal((80, 3))
        >>> logistic = nl.rmt.LogisticRegression(X, X[:, 0] > 0, alpha=0.1)
        >>> quad = nl.rmt.LocalQuadratic.at_minimum(logistic)
        >>> bool(np.linalg.norm(logistic.gradient(quad.center)) < 1e-4)
        True
        """
        from scipy.optimize import minimize

        xp, device, dtype = model.xp, model.device, model.dtype
        start = model.init_params(0) if w0 is None else model._check_vector(w0, "w0")

        def on_backend(w):
            return _backend.asarray(w, xp=xp, device=device, dtype=dtype)

        res = minimize(
            lambda w: model.loss(on_backend(w)),
            np.asarray(_backend.to_numpy(start), dtype=np.float64),
            jac=lambda w: np.asarray(
                _backend.to_numpy(model.gradient(on_backend(w))), dtype=np.float64
            ),
            method="L-BFGS-B",
            options={
                "maxiter": check_int(maxiter, "maxiter", low=1),
                "gtol": check_scalar(gtol, "gtol", low=0.0),
            },
        )
        return cls(model, on_backend(res.x), gauss_newton=gauss_newton)

    def _curv(self, v, idx):
        if self.gauss_newton:
            return self.model.gauss_newton(self.center, v, idx)
        return self.model.hvp(self.center, v, idx)

    def init_params(self, rng=None):
        """Zero parameters (the original model's start), far from ``center``.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            Unused.

        Returns
        -------
        array of shape (n_params,)
            Zeros.
        """
        return self.xp.zeros((self.n_params,), dtype=self.dtype, device=self.device)

    @_checked_vectors
    def loss(self, w, idx=None):
        """The quadratic model's mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        float
            The loss.
        """
        d = w - self.center
        g = self.model.gradient(self.center, idx)
        return (
            self.model.loss(self.center, idx)
            + float(self.xp.vecdot(g, d))
            + 0.5 * float(self.xp.vecdot(d, self._curv(d, idx)))
        )

    @_checked_vectors
    def gradient(self, w, idx=None):
        """Gradient of the quadratic model's mean loss over the samples ``idx``.

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The gradient.
        """
        return self.model.gradient(self.center, idx) + self._curv(w - self.center, idx)

    @_checked_vectors
    def hvp(self, w, v, idx=None):
        """Hessian-vector product (independent of ``w``).

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The product.
        """
        return self._curv(v, idx)

    @_checked_vectors
    def gauss_newton(self, w, v, idx=None):
        """Same as :meth:`hvp` (the model is quadratic).

        Parameters
        ----------
        w : array of shape (n_params,)
            Parameters.
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            The product.
        """
        return self._curv(v, idx)

    def hessian(self, w=None, *, gauss_newton=False):
        """The matrix-free Hessian, an ``hvp(v, idx=None)``.

        Parameters
        ----------
        w : array, optional
            Ignored (the Hessian is constant); defaults to ``center``.
        gauss_newton : bool
            Ignored (the model is quadratic).

        Returns
        -------
        HessianOperator
            Callable ``hvp(v, idx=None)``.
        """
        return HessianOperator(self, self.center if w is None else w)

    def _check_vector(self, v, name):
        return self.model._check_vector(v, name)
