"""The training loss of a neural operator as a function of one flat parameter vector.

:class:`OperatorLoss` puts numlab's operator models (FNO, TFNO, LSM, a multi-grid
model) behind the model protocol of :mod:`numlab.rmt` (``loss(w, idx)``,
``gradient(w, idx)``, ``hvp(w, v, idx)``, ``gauss_newton(w, v, idx)``), so that Lanczos,
spectral densities, batch curvature and learning-rate estimates run on them unchanged.

Parameters are flattened in the order of ``model.params``; a complex weight counts as
pairs of reals, interleaved ``(Re, Im)`` per entry (torch's ``view_as_real``, and the
layout of numlab's Adam state), and its gradient block is ``(dL/dRe, dL/dIm)``.

Curvature products are differences of the exact (hand-written) gradients, not
forward-over-reverse: the layers have backward passes but no forward-mode derivatives.
Centred differences along ``v / ||v||`` with the step ``h = eps**(1/3) * (1 + rms(w))``
balance the ``h**2`` truncation against the ``eps / h`` rounding; in float64 the
product agrees with torch's double-backward Hessian-vector product to about 1e-9
relative (tests/test_operators_curvature.py), far below what Lanczos needs. The
Gauss-Newton product ``J^T H_loss J v`` takes ``J v`` from centred differences of the
output, the loss's Hessian in output space exactly, and ``J^T`` from the backward pass.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from .. import _backend
from .._validation import check_array, check_option
from ..rmt._models import _checked_vectors, _Model
from ._layers import LOSS_EPS, _central_differences, _per_function
from ._layers import LOSSES as _LOSSES
from ._train import _as_complex, _as_real

__all__ = ["OperatorLoss"]


def _rebound(model, params, dtype_name, buffers_dtype):
    """A shallow copy of ``model`` computing with ``params`` in ``dtype_name``: the model
    itself is never written (LSM's training forward updates the copy's own buffers)."""
    inner = getattr(model, "model", None)
    if inner is not None and not hasattr(model, "config"):  # MultigridModel
        clone = copy.copy(model)
        clone.model = _rebound(inner, params, dtype_name, buffers_dtype)
        return clone
    clone = copy.copy(model)
    clone.params = params
    clone.config = {**model.config, "dtype": dtype_name}
    buffers = getattr(model, "buffers", None)
    if buffers is not None:
        xp = _backend.namespace(next(iter(params.values())))
        clone.buffers = {k: xp.astype(v, buffers_dtype) for k, v in buffers.items()}
    return clone


class OperatorLoss(_Model):
    """The relative training loss of a neural operator on ``(x, y)``, over flat parameters.

    ``loss(w, idx)`` is what :meth:`numlab.operators.FNO.loss_and_grad` returns on the
    samples ``idx`` (all when None) with the parameters ``w``; ``gradient``, ``hvp`` and
    ``gauss_newton`` are its derivatives as flat real vectors. The model passed in is
    not modified: every evaluation runs on a copy that shares its architecture.

    Parameters
    ----------
    model : FNO, TFNO, LSM or MultigridModel
        The operator; its current parameters are :attr:`w0`.
    x : array, shape (n_samples, in_channels, n_1, ..., n_d)
        Inputs of the training set.
    y : array, shape (n_samples, out_channels, n_1, ..., n_d)
        Targets of the training set.
    loss : {"l2", "h1", "l2sq"}
        The relative loss (as :meth:`~numlab.operators.FNO.loss_and_grad`). The
        learning-rate rules of :mod:`numlab.rmt` assume a loss quadratic in the
        prediction, ``"l2sq"``: the relative L2 norm has a bounded gradient and a
        curvature growing like ``1 / ||error||``, so SGD on it does not blow up
        exponentially above ``2 / lambda_max`` (the error grows until the curvature
        has fallen to ``2 / lr``).
    dtype : {"float64", "float32"}
        Precision of the vectors and of the computation. float64 (the default) is the
        precision the difference quotients of :meth:`hvp` are designed for; float32 is
        about twice as fast for training runs (:func:`numlab.rmt.measure_max_learning_rate`).

    Attributes
    ----------
    n_params : int
        Real parameters (a complex weight counts twice).
    n_samples : int
        Training samples.
    w0 : array of shape (n_params,)
        The model's parameters at construction, flattened.

    Notes
    -----
    LSM normalises with batch statistics in training mode, so its loss on a batch is
    not the mean of per-sample losses; the products here are those of the training
    loss of each batch, as its optimiser sees it. Its ReLUs and max-pooling also make
    the loss only piecewise smooth: a difference step that crosses a kink mixes the
    curvatures of two pieces (FNO and TFNO, with GELU, are smooth).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> u0, u1 = nl.pde.burgers(16, 64, viscosity=0.05, rng=0)
    >>> model = nl.operators.FNO((8,), hidden_channels=8, in_channels=1, out_channels=1,
    ...                          n_layers=2, rng=0)
    >>> f = nl.operators.OperatorLoss(model, u0[:, None], u1[:, None])
    >>> H = f.hessian(f.w0)
    >>> top = nl.rmt.eigsh(H, tol=1e-6, rng=0)
    >>> bool(top.converged and top.values[-1] > 0)
    True
    """

    def __init__(self, model, x, y, *, loss="l2", dtype="float64"):
        if not all(hasattr(model, a) for a in ("params", "_forward", "loss_and_grad")):
            raise TypeError(
                "`model` must be a numlab operator model (FNO, TFNO, LSM or MultigridModel); "
                f"got {type(model).__name__}"
            )
        self.loss_name = check_option(loss, "loss", tuple(_LOSSES))
        check_option(dtype, "dtype", ("float64", "float32"))
        first = next(iter(model.params.values()))
        self.xp = xp = _backend.namespace(first)
        self._numpy = _backend.is_numpy(xp)
        self.device = _backend.device(first)
        self.dtype = getattr(xp, dtype)
        self._dtype_name = dtype
        self._complex = getattr(xp, "complex128" if dtype == "float64" else "complex64")
        x = check_array(x, "x", xp=xp)
        y = check_array(y, "y", xp=xp)
        if x.ndim < 3 or y.ndim != x.ndim:
            raise ValueError(
                "`x` and `y` must be (n_samples, channels, *grid) arrays of the same rank; "
                f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"`y` must have one target per input: {x.shape[0]} samples; got {y.shape[0]}"
            )
        self.X, self.Y = xp.astype(x, self.dtype), xp.astype(y, self.dtype)
        self.n_samples = x.shape[0]
        self.model = model
        self._names = list(model.params)
        self._shapes = {}
        self._sizes = {}
        for name, value in model.params.items():
            is_complex = xp.isdtype(value.dtype, "complex floating")
            self._shapes[name] = (tuple(value.shape), is_complex)
            self._sizes[name] = math.prod(value.shape) * (2 if is_complex else 1)
        self.n_params = sum(self._sizes.values())
        self.w0 = self.flatten(model.params)
        self._stitched = getattr(getattr(model, "patching", None), "stitching", True)
        # The model must accept the data (grid, channels): fail here, naming x and y.
        self._at(self.w0).loss_and_grad(x[:1, ...], y[:1, ...], self.loss_name)

    # ------------------------------------------------------------------ flat <-> dict

    def flatten(self, params):
        """A dict shaped like ``model.params`` as one flat real vector.

        Parameters
        ----------
        params : dict of str to array
            Same names and shapes as ``model.params``; complex entries are split into
            interleaved ``(Re, Im)`` pairs (entries already split that way, of shape
            ``shape + (2,)``, are taken as they are: numlab's Adam state).

        Returns
        -------
        array of shape (n_params,)
            In :attr:`dtype`, on the model's backend.
        """
        xp = self.xp
        parts = []
        for name in self._names:
            value = params[name]
            if xp.isdtype(value.dtype, "complex floating"):
                value = _as_real(value, xp)
            parts.append(xp.reshape(xp.astype(value, self.dtype), (-1,)))
        return xp.concat(parts)

    def unflatten(self, w):
        """The flat vector ``w`` as a dict like ``model.params`` (in :attr:`dtype`).

        Parameters
        ----------
        w : array of shape (n_params,)
            Flat parameters.

        Returns
        -------
        dict of str to array
            Load it into a model with ``model.load_params(...)``.
        """
        xp = self.xp
        w = xp.astype(self._check_vector(w, "w"), self.dtype)
        out, start = {}, 0
        for name in self._names:
            (shape, is_complex), size = self._shapes[name], self._sizes[name]
            block = w[start:start + size]
            start += size
            if is_complex:
                pairs = xp.reshape(block, (*shape, 2))
                out[name] = _as_complex(pairs, self._complex, xp)
            else:
                out[name] = xp.reshape(block, shape)
        return out

    def _at(self, w):
        return _rebound(self.model, self.unflatten(w), self._dtype_name, self.dtype)

    def init_params(self, rng=None):
        """The model's parameters at construction (:attr:`w0`): where training starts.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            Unused (a neural operator is initialised by its constructor); kept for the
            model protocol of :func:`numlab.rmt.measure_max_learning_rate`.

        Returns
        -------
        array of shape (n_params,)
            A copy of :attr:`w0`.
        """
        return self.xp.asarray(self.w0, copy=True)

    # ------------------------------------------------------------------ loss and derivatives

    def _batch(self, idx):
        return self._rows(self.X, idx), self._rows(self.Y, idx)

    @_checked_vectors
    def loss(self, w, idx=None):
        """The mean relative loss over the samples ``idx`` (all when None).

        Parameters
        ----------
        w : array of shape (n_params,)
            Flat parameters.
        idx : array of int, optional
            The batch.

        Returns
        -------
        float
            The loss.
        """
        x, y = self._batch(idx)
        clone = self._at(w)
        if not self._stitched:  # the training loss is on cropped patches
            return clone.loss_and_grad(x, y, self.loss_name)[0]
        pred, _ = clone._forward(x, train=True)
        value, _ = _LOSSES[self.loss_name](pred, y, train=False)
        return float(value)

    def _gradient(self, w, idx):
        x, y = self._batch(idx)
        _, grads = self._at(w).loss_and_grad(x, y, self.loss_name)
        return self.flatten(grads)

    @_checked_vectors
    def gradient(self, w, idx=None):
        """The gradient of :meth:`loss` with respect to the flat parameters.

        Parameters
        ----------
        w : array of shape (n_params,)
            Flat parameters.
        idx : array of int, optional
            The batch.

        Returns
        -------
        array of shape (n_params,)
            ``dL/dw``; for a complex weight, the ``(dL/dRe, dL/dIm)`` pairs.
        """
        return self._gradient(w, idx)

    def _difference_step(self, w, v):
        """``(d, scale)`` of a centred difference along ``v``: the step ``d = h v / ||v||``
        and the factor ``||v|| / (2 h)``; None for ``v = 0``. ``h = eps**(1/3) (1 +
        rms(w))`` balances the ``h**2`` truncation against the ``eps / h`` rounding."""
        xp = self.xp
        norm = float(xp.sqrt(xp.vecdot(v, v)))
        if norm == 0.0:
            return None
        eps = float(np.finfo(self._dtype_name).eps)
        h = eps ** (1.0 / 3.0) * (1.0 + float(xp.sqrt(xp.vecdot(w, w) / self.n_params)))
        return v * (h / norm), norm / (2.0 * h)

    @_checked_vectors
    def hvp(self, w, v, idx=None):
        """The Hessian-vector product of :meth:`loss`, by centred differences of gradients.

        Costs two gradient evaluations on the batch. In float64 the relative error is
        about 1e-9 (see the module notes).

        Parameters
        ----------
        w : array of shape (n_params,)
            Flat parameters.
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            ``H v``.
        """
        step = self._difference_step(w, v)
        if step is None:
            return self.xp.zeros_like(w)
        d, scale = step
        return (self._gradient(w + d, idx) - self._gradient(w - d, idx)) * scale

    @_checked_vectors
    def gauss_newton(self, w, v, idx=None):
        """The generalised Gauss-Newton product ``J^T H_loss J v`` (positive semi-definite).

        ``J`` is the Jacobian of the predictions on the batch, ``H_loss`` the Hessian of
        the relative loss with respect to them (exact: a norm's Hessian,
        ``(M / |e|_M - M e e^T M / |e|_M^3) / ||y||_M`` per function, ``M`` the identity
        or the H1 metric; ``2 I / ||y||^2`` for ``"l2sq"``). Costs three forward passes and
        one backward pass.

        Parameters
        ----------
        w : array of shape (n_params,)
            Flat parameters.
        v : array of shape (n_params,)
            The vector.
        idx : array of int, optional
            The batch (all samples when None).

        Returns
        -------
        array of shape (n_params,)
            ``G v``.
        """
        if not self._stitched:
            raise ValueError(
                "gauss_newton needs the loss on the model's output: a MultigridModel with "
                "stitching=False has its loss on cropped patches; use hvp"
            )
        step = self._difference_step(w, v)
        if step is None:
            return self.xp.zeros_like(w)
        d, scale = step
        x, y = self._batch(idx)
        plus, _ = self._at(w + d)._forward(x, train=True)
        minus, _ = self._at(w - d)._forward(x, train=True)
        jv = (plus - minus) * scale
        pred, backprop = self._at(w)._forward(x, train=True)
        return self.flatten(backprop(self._loss_hessian(pred, y, jv)))

    def _metric(self, a):
        """``M a``: the identity for the L2 losses, ``I + sum_i D_i^T D_i`` for H1."""
        if self.loss_name != "h1":
            return a
        out = a
        for axis in range(2, a.ndim):
            d = _central_differences(self.xp, a, axis)
            out = out - _central_differences(self.xp, d, axis)  # D^T = -D
        return out

    def _loss_hessian(self, pred, y, u):
        """The Hessian of the batch-mean relative loss at ``pred``, applied to ``u``."""
        xp = self.xp
        count = pred.shape[0] * pred.shape[1]
        shape = (pred.shape[0], pred.shape[1]) + (1,) * (pred.ndim - 2)
        if self.loss_name == "l2sq":  # constant: 2 / (||y||^2 + eps) per function
            flat_y = _per_function(xp, y)
            denom = xp.vecdot(flat_y, flat_y, axis=-1) + LOSS_EPS
            return xp.reshape(2.0 / (denom * count), shape) * u
        e = pred - y
        Me, Mu = self._metric(e), self._metric(u)
        flat = lambda a: _per_function(xp, a)  # noqa: E731
        q = xp.vecdot(flat(e), flat(Me), axis=-1)
        s = xp.sqrt(xp.vecdot(flat(y), flat(self._metric(y)), axis=-1)) + LOSS_EPS
        r = xp.sqrt(q)
        safe = xp.where(r > 0, r, xp.ones_like(r))
        # A zero residual has no second derivative (the norm's kink): give it none.
        a = xp.where(r > 0, 1.0 / (safe * s * count), xp.zeros_like(r))
        b = xp.where(r > 0, xp.vecdot(flat(e), flat(Mu), axis=-1) / (safe**3 * s * count),
                     xp.zeros_like(r))
        return xp.reshape(a, shape) * Mu - xp.reshape(b, shape) * Me

    def hessian(self, w=None, *, gauss_newton=False):
        """The matrix-free Hessian (or Gauss-Newton matrix) at ``w``: an ``hvp(v, idx=None)``.

        Pass it to :func:`numlab.rmt.eigsh`, :func:`~numlab.rmt.spectral_density`,
        :func:`~numlab.rmt.batch_curvature`, :func:`~numlab.rmt.max_learning_rate` or
        :class:`~numlab.rmt.SLQLearner` directly: it carries ``n_params`` and
        ``n_samples``.

        Parameters
        ----------
        w : array of shape (n_params,), optional
            Flat parameters (default :attr:`w0`, the model's).
        gauss_newton : bool
            The generalised Gauss-Newton matrix instead of the Hessian.

        Returns
        -------
        HessianOperator
            Callable ``hvp(v, idx=None)``.
        """
        return super().hessian(self.w0 if w is None else w, gauss_newton=gauss_newton)
