"""Training of neural operators: :func:`train`, the Adam/AdamW optimiser, learning-rate
schedules and the point-wise Gaussian normaliser of the FNO paper.

Everything a training loop needs lives here, once:

- :class:`Adam`: ``torch.optim.Adam`` / ``torch.optim.AdamW`` step for step (same update
  order, same bias corrections), on a dict of live arrays; complex parameters are pairs of
  independent reals, as torch's ``view_as_real`` makes them (the second moment is kept per
  component);
- :func:`lr_schedule`: the learning rate of every epoch, equal to torch's
  ``CosineAnnealingLR(T_max=epochs)`` and ``StepLR`` stepped once per epoch;
- :class:`UnitGaussianNormalizer`: zero mean and unit standard deviation per grid point
  (Li et al.) or per channel (neuraloperator's ``channel-wise`` encoding);
- :func:`train`: shuffled mini-batches, validation, a tqdm progress bar, a callback that
  may stop the run, a stop at the first non-finite loss or gradient that keeps the
  last finite parameters, and a checkpoint file from which an interrupted run resumes.

A model is anything with ``params`` (dict name -> array; complex arrays stay complex),
``loss_and_grad(x, y, loss) -> (float, grads)`` with complex gradients
``dL/dRe + 1j dL/dIm`` (torch's convention), ``__call__(x)`` for inference and ``dtype``:
:class:`numlab.operators.FNO` is one.

References
----------
D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
I. Loshchilov, F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
Z. Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations",
ICLR 2021 (``UnitGaussianNormalizer`` and the training recipes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import time
import warnings

import numpy as np

from .. import _backend
from .._progress import check_progress
from .._results import CompactRepr
from .._validation import check_array, check_int, check_option, check_rng, check_scalar

__all__ = ["Adam", "lr_schedule", "UnitGaussianNormalizer", "TrainResult", "train"]

_OPTIMIZERS = ("adam", "adamw")
_SCHEDULERS = ("cosine", "step", None)
_LOSSES = ("l2", "h1", "l2sq")
#: ``scheduler="step"`` divides the rate by 2 five times over the run: ``StepLR(step_size=
#: max(epochs // 5, 1), gamma=0.5)`` (the FNO paper's Darcy recipe: 500 epochs, 100, 0.5).
STEP_GAMMA = 0.5
STEP_PARTS = 5


# --------------------------------------------------------------------------- complex as real


def _as_real(a, xp):
    """A real array of shape ``a.shape + (2,)`` (real, imaginary) for a complex ``a``.

    A view on NumPy and CuPy (what torch's ``view_as_real`` gives), a copy elsewhere.
    """
    if _backend.is_numpy(xp) or _backend.is_cupy(xp):
        if not a.flags.c_contiguous:
            a = a.copy()
        real = a.real.dtype
        return a.reshape(*a.shape, 1).view(real)
    return xp.stack((xp.real(a), xp.imag(a)), axis=-1)


def _as_complex(r, dtype, xp):
    """Inverse of :func:`_as_real`: ``r[..., 0] + 1j r[..., 1]`` with complex ``dtype``."""
    if _backend.is_numpy(xp) or _backend.is_cupy(xp):
        return r.view(dtype)[..., 0]
    return xp.astype(r[..., 0], dtype) + xp.astype(r[..., 1], dtype) * 1j


# --------------------------------------------------------------------------- optimiser


class Adam:
    """Adam (``torch.optim.Adam``) or AdamW (``torch.optim.AdamW``) on a dict of arrays.

    One :meth:`step` does what torch's does, in the same order (so float64 runs agree
    to rounding)::

        g = grad + weight_decay * p           # Adam: L2 penalty added to the gradient
        p = p * (1 - lr * weight_decay)       # AdamW: decoupled decay, instead
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    A complex parameter is a pair of independent real parameters: ``m`` and ``v`` are kept
    per real and imaginary component (torch's ``view_as_real``), so ``v`` is not
    ``|g|^2``. The gradient convention is torch's, ``dL/dRe + 1j dL/dIm``.

    Parameters
    ----------
    params : dict of str to array
        The model's live parameters. :meth:`step` replaces the entries with the updated
        arrays (the arrays passed in are never written).
    lr : float, default=1e-3
        Learning rate; the attribute ``lr`` may be changed between steps (schedules).
    betas : (float, float), default=(0.9, 0.999)
    eps : float, default=1e-8
    weight_decay : float, default=0.0
    decoupled : bool, default=False
        AdamW's decoupled weight decay instead of Adam's L2 penalty. (torch's AdamW
        defaults to ``weight_decay=0.01``; here the default is 0 for both.)

    Attributes
    ----------
    t : int
        Steps taken.

    Examples
    --------
    >>> import numpy as np
    >>> from numlab.operators._train import Adam
    >>> params = {"w": np.array([1.0, -2.0]), "c": np.array([1.0 + 1.0j])}
    >>> opt = Adam(params, lr=0.1)
    >>> opt.step({"w": np.array([0.5, 0.5]), "c": np.array([1.0 - 3.0j])})
    >>> params["w"], params["c"]
    (array([ 0.9, -2.1]), array([0.9+1.1j]))
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled=False):
        self.params = params
        self.lr = check_scalar(lr, "lr", low=0.0)
        self.betas = (check_scalar(betas[0], "betas[0]", low=0.0, low_inclusive=True, high=1.0,
                                   high_inclusive=False),
                      check_scalar(betas[1], "betas[1]", low=0.0, low_inclusive=True, high=1.0,
                                   high_inclusive=False))
        self.eps = check_scalar(eps, "eps", low=0.0, low_inclusive=True)
        self.weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0,
                                         low_inclusive=True)
        self.decoupled = bool(decoupled)
        self.t = 0
        self._m = {}
        self._v = {}

    def _real(self, a):
        xp = _backend.namespace(a)
        return _as_real(a, xp) if xp.isdtype(a.dtype, "complex floating") else a

    def step(self, grads):
        """Update every parameter from its gradient (same keys, shapes and dtypes)."""
        self.t += 1
        b1, b2 = self.betas
        lr, wd = self.lr, self.weight_decay
        step_size = lr / (1.0 - b1**self.t)
        bias2_sqrt = (1.0 - b2**self.t) ** 0.5
        for name, value in self.params.items():
            xp = _backend.namespace(value)
            p, g = self._real(value), self._real(grads[name])
            if wd != 0.0:
                if self.decoupled:
                    p = p * (1.0 - lr * wd)
                else:
                    g = g + wd * p
            if name not in self._m:
                self._m[name] = xp.zeros_like(p)
                self._v[name] = xp.zeros_like(p)
            m = self._m[name] + (1.0 - b1) * (g - self._m[name])
            v = self._v[name] * b2 + (1.0 - b2) * (g * g)
            self._m[name], self._v[name] = m, v
            p = p - step_size * (m / (xp.sqrt(v) / bias2_sqrt + self.eps))
            if xp.isdtype(value.dtype, "complex floating"):
                p = _as_complex(p, value.dtype, xp)
            self.params[name] = p


# --------------------------------------------------------------------------- schedules


def lr_schedule(scheduler, lr, epochs):
    """The learning rate of each epoch under ``scheduler`` (torch's schedulers, per epoch).

    Parameters
    ----------
    scheduler : {"cosine", "step", None} or callable
        - ``"cosine"``: ``CosineAnnealingLR(T_max=epochs, eta_min=0)``,
          ``lr (1 + cos(pi e / epochs)) / 2`` in epoch ``e = 0, 1, ...``;
        - ``"step"``: ``StepLR(step_size=max(epochs // 5, 1), gamma=0.5)``, the rate
          halved five times over the run (the paper's Darcy recipe: 500 epochs, halved
          every 100);
        - ``None``: constant;
        - a callable ``f(e) -> factor``: ``lr * f(e)`` (torch's ``LambdaLR``), e.g.
          ``lambda e: 0.5 ** (e // 50)`` for ``StepLR(50, 0.5)``.
    lr : float
        The initial rate.
    epochs : int

    Returns
    -------
    list of float, length ``epochs``

    Examples
    --------
    >>> from numlab.operators._train import lr_schedule
    >>> lr_schedule("step", 1.0, 10)
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625, 0.0625]
    """
    if callable(scheduler):
        rates = []
        for e in range(epochs):
            factor = scheduler(e)
            if (isinstance(factor, bool) or not isinstance(factor, numbers.Real)
                    or not math.isfinite(factor) or factor < 0):
                raise ValueError(
                    f"`scheduler` must return a finite factor >= 0; got {factor!r} at epoch {e}"
                )
            rates.append(lr * float(factor))
        return rates
    check_option(scheduler, "scheduler", _SCHEDULERS)
    if scheduler == "cosine":
        return [lr * (1.0 + math.cos(math.pi * e / epochs)) / 2.0 for e in range(epochs)]
    if scheduler == "step":
        step_size = max(epochs // STEP_PARTS, 1)
        return [lr * STEP_GAMMA ** (e // step_size) for e in range(epochs)]
    return [lr] * epochs


# --------------------------------------------------------------------------- normaliser


class UnitGaussianNormalizer:
    """Zero mean, unit standard deviation: the FNO paper's point-wise Gaussian normaliser.

    ``encode(a) = (a - mean) / (std + eps)`` and ``decode(a) = a (std + eps) + mean``, with
    ``mean`` and ``std`` (unbiased, as ``torch.std``) taken over the training samples:
    per grid point and channel by default, as in Li et al.'s ``UnitGaussianNormalizer``;
    with ``axis=(0, 2, ..., d + 1)`` per channel, as neuraloperator's ``channel-wise``
    encoding, which applies at any resolution (zero-shot super-resolution needs it).

    The FNO recipe: encode the inputs and the targets, train on them, and decode the
    model's output before measuring the error in the original units::

        xn = UnitGaussianNormalizer().fit(x_train)
        yn = UnitGaussianNormalizer().fit(y_train)
        train(model, xn.encode(x_train), yn.encode(y_train), ...,
              validation=(xn.encode(x_test), y_test), output_normalizer=yn)
        prediction = yn.decode(model(xn.encode(x_test)))

    With ``output_normalizer``, :func:`train` measures every loss in the original units:
    the decoded prediction against the decoded target (Li et al.'s ``fourier_2d.py``);
    without it the training loss is that of the encoded values (neuraloperator's
    ``Trainer``), and the caller decodes to measure a test error.

    Parameters
    ----------
    axis : int or tuple of int, default=0
        Axes that ``mean`` and ``std`` reduce over; must include 0 (the samples).
    eps : float, default=1e-5
        Added to ``std`` (Li et al.'s value): a constant grid point does not divide by 0.

    Attributes
    ----------
    mean, std : arrays
        Shaped like one sample with the reduced axes kept as length 1 (axis 0 dropped),
        so that they broadcast against a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from numlab.operators import UnitGaussianNormalizer
    >>> a = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 1, 8))
    >>> norm = UnitGaussianNormalizer().fit(a)
    >>> z = norm.encode(a)
    >>> bool(np.allclose(z.mean(axis=0), 0.0)), bool(np.allclose(norm.decode(z), a))
    (True, True)
    """

    def __init__(self, axis=0, eps=1e-5):
        if isinstance(axis, numbers.Integral):
            axes = (axis,)
        elif isinstance(axis, (tuple, list)):
            axes = tuple(axis)
        else:
            raise TypeError(f"`axis` must be an int or a tuple of ints; got {axis!r}")
        for a in axes:
            check_int(a, "axis", low=0)
        if 0 not in axes:
            raise ValueError(f"`axis` must include 0 (the samples); got {axis!r}")
        self.axis = tuple(sorted(set(axes)))
        self.eps = check_scalar(eps, "eps", low=0.0, low_inclusive=True)
        self.mean = None
        self.std = None

    def fit(self, a):
        """Fit ``mean`` and ``std`` on samples ``a``.

        Parameters
        ----------
        a : array, shape (n_samples, channels, n_1, ..., n_d)
            Training data, samples first.

        Returns
        -------
        UnitGaussianNormalizer
            ``self``, fitted.
        """
        a = check_array(a, "a", ndim=tuple(range(max(self.axis) + 1, 33)))
        xp = _backend.namespace(a)
        count = math.prod(a.shape[i] for i in self.axis)
        if count < 2:
            raise ValueError(
                f"`a` must hold at least 2 values per statistic (axes {self.axis}); "
                f"got shape {tuple(a.shape)}"
            )
        mean = xp.mean(a, axis=self.axis, keepdims=True)
        self.std = xp.std(a, axis=self.axis, keepdims=True, correction=1)[0, ...]
        self.mean = mean[0, ...]
        return self

    def _checked(self, a, name):
        if self.mean is None:
            raise ValueError("`UnitGaussianNormalizer` must be fitted first (call fit)")
        a = check_array(a, name, ndim=self.mean.ndim + 1, finite=False)
        fixed = [i for i in range(1, a.ndim) if i not in self.axis]
        want = tuple(self.mean.shape[i - 1] for i in fixed)
        if tuple(a.shape[i] for i in fixed) != want:
            raise ValueError(
                f"`{name}` must match the fitted data on axes {tuple(fixed)}, sizes {want}; "
                f"got shape {tuple(a.shape)}"
            )
        xp = _backend.namespace(a)
        if a.dtype != self.mean.dtype:
            return a, xp.astype(self.mean, a.dtype), xp.astype(self.std, a.dtype)
        return a, self.mean, self.std

    def encode(self, a):
        """Normalise a batch: ``(a - mean) / (std + eps)``.

        Parameters
        ----------
        a : array, shape (batch, channels, n_1, ..., n_d)
            Data in the original units, samples first.

        Returns
        -------
        array
            The normalised batch, of ``a``'s dtype.
        """
        a, mean, std = self._checked(a, "a")
        return (a - mean) / (std + self.eps)

    def decode(self, a):
        """Map a normalised batch back: ``a (std + eps) + mean``, the inverse of :meth:`encode`.

        Parameters
        ----------
        a : array, shape (batch, channels, n_1, ..., n_d)
            Normalised data.

        Returns
        -------
        array
            The batch in the original units.
        """
        return self.decode_with_scale(a)[0]

    def decode_with_scale(self, a):
        """Decode a batch and give the derivative of the decoding.

        Parameters
        ----------
        a : array, shape (batch, channels, n_1, ..., n_d)
            Normalised data.

        Returns
        -------
        decoded : array
            ``decode(a)``.
        scale : array
            ``std + eps``, the derivative of ``decode`` (broadcasts against ``a``).
        """
        a, mean, std = self._checked(a, "a")
        scale = std + self.eps
        return a * scale + mean, scale


# --------------------------------------------------------------------------- training


@dataclasses.dataclass(frozen=True, repr=False)
class TrainResult(CompactRepr):
    """What :func:`train` did, epoch by epoch.

    Attributes
    ----------
    train_loss : tuple of float
        Mean training loss of each completed epoch (over its mini-batches, weighted by
        their sizes), measured during the epoch, as torch training loops report it.
    validation_loss : tuple of float or None
        Loss on the validation set after each completed epoch (decoded by the
        ``output_normalizer`` when one was given); None without validation data.
    epoch_time : tuple of float
        Wall-clock seconds of each completed epoch (training and validation).
    lr : tuple of float
        The learning rate used in each completed epoch.
    n_epochs : int
        Epochs completed.
    n_steps : int
        Optimiser steps taken.
    stopped : {"completed", "callback", "non-finite", "running"}
        Why training ended: all epochs ran, the callback returned True, or a loss or
        gradient was NaN or infinite (see ``message``); ``"running"`` in the results
        passed to the callback.
    message : str
        A sentence saying how training ended.
    """

    train_loss: tuple
    validation_loss: tuple | None
    epoch_time: tuple
    lr: tuple
    n_epochs: int
    n_steps: int
    stopped: str
    message: str

    @property
    def total_time(self) -> float:
        """Wall-clock seconds of all completed epochs."""
        return float(sum(self.epoch_time))


def _check_data(model, x, y, name_x, name_y):
    x = check_array(x, name_x, ndim=tuple(range(2, 33)))
    y = check_array(y, name_y, ndim=tuple(range(2, 33)))
    _backend.namespace(**{name_x: x, name_y: y})  # one library and device
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`{name_y}` must have as many samples (axis 0) as `{name_x}`, {x.shape[0]}; "
            f"got {y.shape[0]}"
        )
    dtype = getattr(model, "dtype", None)
    if dtype is not None:
        xp = _backend.namespace(x)
        # Once here rather than in every mini-batch of the model.
        x = x if x.dtype == dtype else xp.astype(x, dtype)
        y = y if y.dtype == dtype else xp.astype(y, dtype)
    return x, y


def _loss_function(loss):
    from . import _layers

    return _layers.LOSSES[loss]


def _loss_and_grad(model, x, y, loss, output_normalizer):
    """The model's loss and gradient on a mini-batch; with ``output_normalizer``, the loss
    of the decoded prediction against the decoded target (the chain rule through the
    affine decoding multiplies the gradient of the prediction by ``std + eps``)."""
    if output_normalizer is None:
        return model.loss_and_grad(x, y, loss=loss)
    pred, backprop = model._forward(x, train=True)
    decoded, scale = output_normalizer.decode_with_scale(pred)
    value, loss_backprop = _loss_function(loss)(decoded, output_normalizer.decode(y), train=True)
    return float(value), backprop(loss_backprop() * scale)


def _evaluate(model, x, y, loss, batch_size, output_normalizer):
    """Mean loss of the model's prediction over all samples of ``(x, y)`` (no gradients)."""
    loss_fn = _loss_function(loss)
    n = x.shape[0]
    total = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)  # the array API has no out-of-bounds slices
        pred = model(x[start:stop, ...])
        if output_normalizer is not None:
            pred = output_normalizer.decode(pred)
        value, _ = loss_fn(pred, y[start:stop, ...])
        total += float(value) * pred.shape[0]
    return total / n


_CHECKPOINT_KEY = "__numlab_train__"
_CHECKPOINT_FORMAT = 1


def _save_checkpoint(path, settings, model, opt, rng, history, epochs_done):
    """Write the state to resume from after ``epochs_done`` epochs (atomically)."""
    arrays = {f"param:{k}": _backend.to_numpy(v) for k, v in model.params.items()}
    arrays.update({f"m:{k}": _backend.to_numpy(v) for k, v in opt._m.items()})
    arrays.update({f"v:{k}": _backend.to_numpy(v) for k, v in opt._v.items()})
    state = {"format": _CHECKPOINT_FORMAT, "settings": settings, "epochs_done": epochs_done,
             "steps": opt.t, "rng": rng.bit_generator.state, "history": history}
    arrays[_CHECKPOINT_KEY] = np.array(json.dumps(state))
    path = os.fspath(path)
    partial = path + ".partial"
    with open(partial, "wb") as f:  # a file object: np.savez would append ".npz" to a name
        np.savez(f, **arrays)
    os.replace(partial, path)


def _resume(path, settings, model, opt, rng, history):
    """Load a checkpoint into ``model``, ``opt``, ``rng`` and ``history``; epochs done."""
    with np.load(path, allow_pickle=False) as f:
        if _CHECKPOINT_KEY not in f.files:
            raise ValueError(f"`checkpoint` {os.fspath(path)!r} is not a numlab training "
                             "checkpoint; pass another path or delete the file")
        state = json.loads(str(f[_CHECKPOINT_KEY]))
        arrays = {k: f[k] for k in f.files if k != _CHECKPOINT_KEY}
    saved = state["settings"]
    if state.get("format") != _CHECKPOINT_FORMAT or saved != json.loads(json.dumps(settings)):
        differ = sorted(k for k in settings | saved if saved.get(k) != settings.get(k))
        raise ValueError(
            f"`checkpoint` {os.fspath(path)!r} was written by a different run (it differs "
            f"in {', '.join(differ) or 'its format'}); pass the same arguments to resume, or "
            "another path to start afresh"
        )
    for name, current in model.params.items():
        xp = _backend.namespace(current)
        dev = _backend.device(current)
        dtype = current.dtype
        model.params[name] = _backend.asarray(arrays[f"param:{name}"], xp=xp, device=dev,
                                              dtype=dtype)
        if f"m:{name}" in arrays:
            real = opt._real(model.params[name]).dtype
            opt._m[name] = _backend.asarray(arrays[f"m:{name}"], xp=xp, device=dev, dtype=real)
            opt._v[name] = _backend.asarray(arrays[f"v:{name}"], xp=xp, device=dev, dtype=real)
    opt.t = state["steps"]
    rng.bit_generator.state = state["rng"]
    for key, values in state["history"].items():
        history[key][:] = values
    return state["epochs_done"]


def _first_non_finite(grads, xp):
    """Name of a gradient with a NaN or infinite entry, or None (one device sync)."""
    flags = [xp.all(xp.isfinite(g)) for g in grads.values()]
    ok = flags[0]
    for f in flags[1:]:
        ok = ok & f
    if bool(ok):
        return None
    for name, g in grads.items():
        if not bool(xp.all(xp.isfinite(g))):
            return name
    return None


def train(model, x, y, *, epochs, batch_size=32, lr=1e-3, weight_decay=0.0, optimizer="adam",
          scheduler="cosine", loss="l2", validation=None, output_normalizer=None, callback=None,
          progress=True, rng=None, checkpoint=None):
    """Train a neural operator by mini-batch Adam or AdamW.

    Each epoch shuffles the samples (from ``rng``), takes one optimiser step per
    mini-batch of ``batch_size`` samples (the last one may be smaller: all samples are
    used, as torch's ``DataLoader``), then evaluates the validation set, updates the
    progress bar and calls ``callback``. The learning rate follows ``scheduler``, stepped
    once per epoch. The model's parameters are updated in ``model.params`` (entries
    replaced by the updated arrays).

    Parameters
    ----------
    model : FNO or a model with the same interface
        ``model.params``, ``model.loss_and_grad(x, y, loss=)``, ``model(x)``, ``model.dtype``.
    x : array, shape (n_samples, in_channels, n_1, ..., n_d)
        Inputs, samples first; cast to ``model.dtype`` once.
    y : array, shape (n_samples, out_channels, n_1, ..., n_d)
        Targets, encoded by ``output_normalizer`` when one is given.
    epochs : int
        Passes over the data, >= 1.
    batch_size : int, default=32
        Samples per step (``min(batch_size, n_samples)``).
    lr : float, default=1e-3
        Initial learning rate, > 0.
    weight_decay : float, default=0.0
        Adam: L2 penalty added to the gradient (``torch.optim.Adam``); AdamW: decoupled
        decay (``torch.optim.AdamW``).
    optimizer : {"adam", "adamw"}, default="adam"
        See :class:`Adam` (betas (0.9, 0.999), eps 1e-8, as torch).
    scheduler : {"cosine", "step", None} or callable, default="cosine"
        Learning rate per epoch, see :func:`lr_schedule`: cosine annealing to 0 over
        ``epochs`` (measured to make short runs 2-3x less noisy than a constant rate),
        ``StepLR(max(epochs // 5, 1), 0.5)``, constant, or ``lr * f(epoch)``.
    loss : {"l2", "h1", "l2sq"}, default="l2"
        Relative L2 or H1 loss, or the squared relative L2 error, mean over samples and
        output channels (the model's).
    validation : (x_val, y_val), optional
        Evaluated after every epoch with the same loss; ``y_val`` in the original units
        when ``output_normalizer`` is given.
    output_normalizer : UnitGaussianNormalizer, optional
        The fitted normaliser of the targets. Then the losses are measured in the data's
        units, as in the FNO paper: training on the decoded prediction against the
        decoded ``y``, validation on the decoded prediction against ``y_val``. The
        model must expose its forward pass with backpropagation,
        ``model._forward(x, train=True) -> (pred, backprop)`` with ``backprop(dpred) ->
        grads`` (numlab's FNO does). Without it, the model learns the encoded targets
        with the loss of the encoded values (neuraloperator's ``Trainer``).
    callback : callable, optional
        ``callback(epoch, result, model)`` after every epoch, with ``epoch`` the number of
        epochs completed (1, 2, ...) and ``result`` the :class:`TrainResult` so far.
        Returning True stops training (``result.stopped == "callback"``).
    progress : bool, default=True
        Show a tqdm progress bar over epochs with the training (and validation) loss.
    rng : None, int or numpy.random.Generator
        Source of the shuffling; a fixed seed gives the same run on a fixed backend.
    checkpoint : str or path-like, optional
        A ``.npz`` file written after every epoch (to a temporary file, then renamed, so
        an interruption never leaves a torn file): the parameters, the optimiser's
        moments and step count, the state of ``rng`` and the history so far. When the
        file exists at the start, training resumes from it: the model's parameters are
        replaced by the saved ones and the run continues with the next epoch, so a run
        interrupted and called again with the same arguments ends with the parameters
        of an uninterrupted one (bit for bit on a fixed backend). The file records the
        run's settings and refuses to resume a different run. (neuraloperator's
        ``Trainer`` has ``save_every`` / ``resume_from_dir`` for the same purpose.)

    Returns
    -------
    TrainResult
        Per-epoch losses, learning rates and times, and how training stopped.

    Warns
    -----
    RuntimeWarning
        When a loss or gradient is NaN or infinite: training stops at that step, says at
        which epoch and step, and the model keeps the parameters of the step before (the
        last finite ones); ``result.stopped == "non-finite"``.

    References
    ----------
    Z. Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations",
    ICLR 2021 (Adam, relative L2 loss, normalised data).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((64, 1, 32)).astype(np.float32)
    >>> y = np.cumsum(x, axis=-1) / 32
    >>> model = nl.operators.FNO((8,), 8, 1, 1, n_layers=2, rng=0)
    >>> result = nl.operators.train(model, x, y, epochs=5, lr=1e-2, progress=False, rng=0)
    >>> result.n_epochs, result.train_loss[-1] < result.train_loss[0]
    (5, True)
    """
    epochs = check_int(epochs, "epochs", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    lr = check_scalar(lr, "lr", low=0.0)
    weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0, low_inclusive=True)
    check_option(optimizer, "optimizer", _OPTIMIZERS)
    if not callable(scheduler):
        check_option(scheduler, "scheduler", _SCHEDULERS)
    check_option(loss, "loss", _LOSSES)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None; got {type(callback).__name__}")
    progress = check_progress(progress)
    if output_normalizer is not None and not hasattr(output_normalizer, "decode"):
        raise TypeError(
            "`output_normalizer` must be None or a fitted UnitGaussianNormalizer; "
            f"got {type(output_normalizer).__name__}"
        )
    if output_normalizer is not None and not hasattr(model, "_forward"):
        raise TypeError(
            "`model` must expose `_forward(x, train=True)` (as numlab's FNO) to train with "
            f"an `output_normalizer`; got {type(model).__name__}"
        )
    rng = check_rng(rng)
    if checkpoint is not None and not isinstance(checkpoint, str | os.PathLike):
        raise TypeError(
            f"`checkpoint` must be None or a file path; got {type(checkpoint).__name__}"
        )
    x, y = _check_data(model, x, y, "x", "y")
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError(
                "`validation` must be None or a pair (x_val, y_val); "
                f"got {type(validation).__name__}"
            )
        x_val, y_val = _check_data(model, *validation, "validation[0]", "validation[1]")
    if output_normalizer is not None:
        model(x[0:1, ...])  # the model's own input checks, which _forward skips
    rates = lr_schedule(scheduler, lr, epochs)

    xp = _backend.namespace(x, y)
    dev = _backend.device(x)
    n = x.shape[0]
    batch_size = min(batch_size, n)
    steps = math.ceil(n / batch_size)
    opt = Adam(model.params, lr=lr, weight_decay=weight_decay, decoupled=optimizer == "adamw")

    from tqdm.auto import tqdm

    bar = tqdm(total=epochs, desc="train", unit="epoch", disable=not progress, leave=True)
    history = {"train": [], "validation": [], "time": [], "lr": []}

    def result(stopped, message):
        return TrainResult(
            train_loss=tuple(history["train"]),
            validation_loss=tuple(history["validation"]) if validation is not None else None,
            epoch_time=tuple(history["time"]),
            lr=tuple(history["lr"]),
            n_epochs=len(history["train"]),
            n_steps=opt.t,
            stopped=stopped,
            message=message,
        )

    settings = {
        "epochs": epochs, "batch_size": batch_size, "n_samples": n, "lr": rates,
        "weight_decay": weight_decay, "optimizer": optimizer, "loss": loss,
        "validation": validation is not None,
        "params": {k: [list(v.shape), str(_backend.numpy_dtype(v.dtype, xp))]
                   for k, v in model.params.items()},
    }
    first = 0
    if checkpoint is not None and os.path.exists(checkpoint):
        first = _resume(checkpoint, settings, model, opt, rng, history)
        bar.update(first)

    stopped, message = "completed", f"trained for {epochs} epochs"
    try:
        for epoch in range(first, epochs):
            start = time.perf_counter()
            opt.lr = rates[epoch]
            order = _backend.asarray(rng.permutation(n), xp=xp, device=dev)
            total = 0.0
            bad = None
            for s in range(steps):
                rows = order[s * batch_size:min((s + 1) * batch_size, n)]
                value, grads = _loss_and_grad(
                    model, xp.take(x, rows, axis=0), xp.take(y, rows, axis=0), loss,
                    output_normalizer,
                )
                if not math.isfinite(value):
                    bad = f"the loss is {value}"
                else:
                    name = _first_non_finite(grads, xp)
                    if name is not None:
                        bad = f"the gradient of `{name}` has NaN or infinite entries"
                if bad is not None:
                    stopped = "non-finite"
                    message = (
                        f"training stopped at epoch {epoch + 1}, step {s + 1} of {steps}: {bad}; "
                        f"the model keeps the parameters before that step (the last finite "
                        f"ones). Lower `lr`, normalise the data or check it for extreme values."
                    )
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
                    break
                opt.step(grads)
                total += value * rows.shape[0]
            if bad is not None:
                break
            history["train"].append(total / n)
            history["lr"].append(rates[epoch])
            if validation is not None:
                history["validation"].append(
                    _evaluate(model, x_val, y_val, loss, batch_size, output_normalizer)
                )
            history["time"].append(time.perf_counter() - start)
            shown = {"loss": f"{history['train'][-1]:.4g}"}
            if validation is not None:
                shown["val"] = f"{history['validation'][-1]:.4g}"
            bar.set_postfix(shown, refresh=False)
            bar.update(1)
            if checkpoint is not None:
                _save_checkpoint(checkpoint, settings, model, opt, rng, history, epoch + 1)
            if callback is not None and callback(epoch + 1, result("running", "training"), model):
                stopped = "callback"
                message = f"the callback stopped training after epoch {epoch + 1}"
                break
    finally:
        bar.close()
    return result(stopped, message)
