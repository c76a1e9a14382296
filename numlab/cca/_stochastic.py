"""Stochastic CCA / PLS by mini-batch gradient descent on the Eckhart-Young loss.

Imported on first use: the estimators build on scikit-learn's ``BaseEstimator``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.validation import check_array as sk_check_array
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "numlab.cca.StochasticCCA needs scikit-learn (pip install scikit-learn); "
        "numlab.cca.cca works without it"
    ) from exc

from .. import _backend
from .._validation import check_array, check_int, check_option, check_rng, check_scalar
from ._exact import (
    _is_view_sequence,
    check_fitted_library,
    check_n_components,
    check_shrinkage,
    check_views,
    constraint_scales,
    covariance,
    projection_correlations,
    solve_gep,
    view_names,
)
from ._loss import batch_moments, ey_loss_and_gradient

__all__ = ["StochasticCCA", "StochasticPLS"]

#: Default initial learning rates, per optimiser, in the preconditioned coordinates.
_DEFAULT_LR = {"adam": 0.03, "sgd": 0.05}
_SCHEDULES = ("adaptive", "step", "cosine", "constant")
#: The "adaptive" schedule: rows of the fixed sub-sample that measures the objective,
_MONITOR_ROWS = 4096
#: steps without an improvement of ``tol`` before the rate is cut (one check at least),
_PATIENCE_STEPS = 50
#: and the most steps between two checks.
_CHECK_STEPS = 100
#: the factor of a cut, and the cuts before a stall means convergence.
_CUT = 4.0
_CUTS = 4
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8
#: Rows of the sub-sample that estimates the whitening preconditioner (at least).
_WHITEN_ROWS = 4000
#: precondition="auto" whitens a view with at most this many features (O(p^2) memory,
#: an O(p^3) eigendecomposition) ...
_AUTO_WHITEN_FEATURES = 2048
#: ... when its scaled constraint's condition number exceeds this.
_AUTO_WHITEN_CONDITION = 10.0


def _schedule_factor(schedule, fraction):
    """The learning-rate multiplier after ``fraction`` (in [0, 1)) of the training."""
    if callable(schedule):
        value = schedule(fraction)
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"`lr_schedule` must return a finite multiplier >= 0; got {value!r} "
                f"at fraction {fraction:g}"
            )
        return float(value)
    if schedule == "step":
        # Halve the rate six times over the run (every 5 epochs of 30).
        return 0.5 ** math.floor(6 * fraction)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * fraction))
    return 1.0


def _row_major(X, xp):
    """``X`` in C order: gathering mini-batch rows of a Fortran-ordered NumPy array is
    hundreds of times slower (one strided pass per row)."""
    if (_backend.is_numpy(xp) or _backend.is_cupy(xp)) and not X.flags.c_contiguous:
        return X.copy(order="C")
    return X


class _Plateau:
    """The "adaptive" schedule: watch the objective, cut the rate when it stalls.

    The objective, the GEP eigenvalues in the learned subspace (the canonical
    correlations captured, for CCA), is evaluated on a fixed sub-sample of rows (the
    whole data when small): a deterministic function of the weights, where mini-batch
    losses are too noisy to tell a plateau on small data. It is checked after every
    epoch, or every ``_CHECK_STEPS`` steps of a long one. When no eigenvalue has
    improved by ``tol`` (relative) for ``_PATIENCE_STEPS`` gradient steps (one check at
    least), the rate is divided by ``_CUT``; after ``_CUTS`` cuts a further stall is
    convergence.
    """

    def __init__(self, model, views, xp, rng, steps):
        n = views[0].shape[0]
        rows = min(n, _MONITOR_ROWS)
        index = model._indices(rng.choice(n, rows, replace=False), views[0], xp)
        self.sample = views if rows == n else [xp.take(v, index, axis=0) for v in views]
        self.model, self.xp = model, xp
        # checked every epoch, or every _CHECK_STEPS steps of a long one
        self.every = min(steps, _CHECK_STEPS)
        self.patience = math.ceil(_PATIENCE_STEPS / self.every)
        self.best, self.stalled, self.cuts = None, 0, 0

    def objective(self):
        """The GEP eigenvalues in the learned subspace on the sub-sample (the canonical
        correlations captured, for CCA), decreasing, as floats; None after a blow-up.

        Unlike the EY loss, they are blind to the scale of the weights along
        directions the data barely visit, which Adam's steps let drift.
        """
        model, xp = self.model, self.xp
        weights = model._apply(model._P, model._params)
        check = sum(float(xp.sum(X @ W)) for X, W in zip(self.sample, weights, strict=False))
        if not math.isfinite(check):
            return None  # a stall here; the epoch's divergence check restores weights
        evals, _ = model._ritz(self.sample, weights, xp)
        return [float(v) for v in _backend.to_numpy(evals)]

    def update(self, lr):
        """The next learning rate, or None once converged."""
        value = self.objective()
        if value is not None and self.best is None:
            self.best = value
            return lr
        if value is not None:
            # Progress is any eigenvalue up by tol relative to itself: a small last
            # component (PLS: a small singular value) moves the sum too little to
            # tell. Components below 1e-3 of the top one are noise.
            floor = 1e-3 * max(abs(b) for b in self.best)
            gains = [
                v > b + self.model.tol * max(abs(b), floor)
                for v, b in zip(value, self.best, strict=True)
            ]
            if any(gains):
                self.best = [max(v, b) for v, b in zip(value, self.best, strict=True)]
                self.stalled = 0
                return lr
        self.stalled += 1
        if self.stalled < self.patience:
            return lr
        if self.cuts == _CUTS:
            return None
        # Measured from here on: the best values seen at the larger rate may be
        # lucky fluctuations that the smaller one takes long to beat.
        self.cuts, self.stalled = self.cuts + 1, 0
        self.best = value if value is not None else self.best
        return lr / _CUT


def _is_foreign(X) -> bool:
    """True for arrays that scikit-learn's validation would convert to NumPy (CuPy, ...)."""
    return _backend.is_array(X) and not isinstance(X, np.ndarray)


def _lazy(X, Y):
    """True when a view is a lazy (Dask) array: the row-block streaming path."""
    raw = list(X) if Y is None and _is_view_sequence(X) else [X, Y]
    return any(_backend.is_lazy(v) for v in raw if v is not None)


def _second_view(Y, y):
    """``Y``, or scikit-learn's keyword ``y`` for it (pipelines and checks pass ``y=``)."""
    if y is not None:
        if Y is not None:
            raise TypeError("`Y` and `y` (scikit-learn's name for `Y`) were both given; pass one")
        return y
    return Y


def _renamed(exc, name):
    """Raise ``exc`` again naming ``name`` when scikit-learn's message does not (its
    words are kept: check_estimator matches them)."""
    message = str(exc)
    if message.startswith(f"Input {name} contains"):  # NaN or infinity
        first = message.splitlines()[0]
        raise ValueError(f"`{name}` must contain only finite values: {first}") from None
    if f"`{name}`" in message or message.startswith(f"Input {name}"):
        raise exc
    raise type(exc)(f"`{name}` is not valid input: {message}") from None


class StochasticCCA(TransformerMixin, BaseEstimator):
    """Stochastic (regularised, multiview) CCA by SGD on the Eckhart-Young loss.

    Minimises the unconstrained loss of Chapman, Aguila & Wells (2024),
    ``L(U) = tr(-2 U^T A U + (U^T B U)^2)`` for the CCA generalized eigenproblem
    ``(A, B)``, estimated from mini-batch covariances, by SGD or Adam with a decaying
    learning rate. Its minimisers span the top canonical subspace; after fitting, the
    learned subspace is rotated to ordered canonical directions (a small exact CCA of
    the projections, i.e. Rayleigh-Ritz), so ``x_weights_[:, 0]`` is the top direction.
    An epoch whose loss is not finite, or far above every earlier epoch's, counts as
    divergence: the fit warns (``RuntimeWarning``) and keeps the previous epoch's weights.
    At its defaults the fit stops on convergence (``tol``, at most ``max_iter`` epochs)
    and whitens the views that need it (``precondition="auto"``). With ``reg=0`` the fit
    is scale invariant: any feature may be in any units (``1e-300`` to ``1e300``).

    A scikit-learn transformer that passes ``check_estimator``. **Coming from
    scikit-learn's CCA:** ``fit(X, Y)`` takes the second view where scikit-learn takes
    ``y`` (``y=`` is accepted too; a 1-D ``Y`` is one feature); ``transform(X, Y)``
    returns both projections; ``fit_transform(X, Y)`` returns the projection of ``X``
    only (the transformer convention a ``Pipeline`` relies on; scikit-learn's CCA
    returns both); ``score`` is the total canonical correlation, not an R²; there is
    no ``predict``. Two or more views can also be passed as a list, as cca-zoo does.

    **Dask:** :meth:`fit` and :meth:`partial_fit` take views that are Dask arrays of
    NumPy blocks chunked by rows only, with the same row chunks: the blocks stream to
    the client one at a time (each computed on the workers, the next one computed
    while the current one is trained on) and never all at once; :meth:`transform`
    returns lazy projections (``map_blocks``). See :meth:`fit` for what equals the
    in-memory fit.

    Parameters
    ----------
    n_components : int, default=1
        Number of canonical directions.
    reg : float in [0, 1] or sequence (one per view), default=0.0
        Shrinkage of each within-view covariance towards the identity: 0 is CCA,
        1 is PLS (see :class:`StochasticPLS`).
    objective : {"ey"}, default="ey"
        The loss: the Eckhart-Young objective (the only one implemented).
    batch_size : int, default=128
        Rows per gradient step (split into two independent halves when
        ``unbiased``). Clipped to the number of samples.
    epochs : int, optional
        A fixed number of passes over the data in :meth:`fit`, with the "step"
        schedule unless ``lr_schedule`` says otherwise (the behaviour before
        ``max_iter`` existed). None (default): run until converged.
    max_iter : int, default=1000
        The most epochs of a fit that stops on convergence (``epochs=None``); a fit
        that reaches it warns (``sklearn.exceptions.ConvergenceWarning``).
    tol : float, default=1e-4
        Convergence tolerance of the "adaptive" schedule: the relative improvement of
        any GEP eigenvalue of the learned subspace (a canonical correlation, for CCA),
        on a fixed sub-sample of up to 4096 rows, that counts as progress. Without
        progress for 50 steps (checked every epoch, or every 100 steps) the learning
        rate is divided by 4; after four such cuts, it is convergence.
    lr : float, optional
        Initial learning rate, in the preconditioned coordinates (features scaled to
        unit variance, or whitened): scale free. SGD divides it by each view's largest
        eigenvalue of the preconditioned constraint (power iteration on a sample).
        Default 0.03 for Adam, 0.05 for SGD. Plain SGD is fragile on heavy-tailed
        features (a rare 30-sigma row makes one huge step); Adam is the robust default.
    optimizer : {"adam", "sgd"}, default="adam"
        Adam, or plain SGD (see ``lr``).
    lr_schedule : {"adaptive", "step", "cosine", "constant"}, callable or None
        Decay of the learning rate over :meth:`fit`: "adaptive" cuts it when the fit
        stops improving and stops on convergence (see ``tol``; capped by ``epochs``
        when given, else ``max_iter``); over a fixed run of ``epochs``, "step" halves
        it six times (every 5 epochs of 30), "cosine" anneals it to zero, and a
        callable maps the fraction of the run done (in [0, 1)) to a multiplier. A
        constant rate slowly degrades the fit after many epochs. None (default):
        "adaptive" when ``epochs`` is None, else "step". :meth:`partial_fit` uses
        ``lr`` unchanged.
    unbiased : bool, default=True
        Use the paper's unbiased estimate from two independent half-batches;
        False uses one batch (a biased estimate of the quadratic term).
    precondition : bool or "auto", default="auto"
        Optimise in whitened coordinates ``W_i = P_i W'_i`` with
        ``P_i = (B_i + ridge I)^{-1/2}`` (features first scaled to a unit diagonal
        of ``B_i``) estimated from a random sub-sample of at least 4000 rows (or
        ``10 p_i``). Much faster on ill-conditioned views; costs ``O(p_i^2)`` memory
        and an ``O(p_i^3)`` eigendecomposition. False scales each feature to a unit
        diagonal of ``B_i`` (unit variance for CCA) only. "auto" whitens each view of
        at most 2048 features, with at least ``10 p_i`` rows, whose scaled ``B_i``
        has a condition number above 10 (correlated features; ``B = I`` for PLS
        never needs it).
    precondition_ridge : float, default=1e-2
        Ridge of the whitening, relative to the (unit) feature variance: a
        sub-sample covariance misjudges rare features, and whitening them without a
        ridge makes the first steps explode.
    progress : bool, default=False
        Show a progress bar (epochs and loss) on stderr.
    callback : callable, optional
        ``callback(model, epoch, loss)`` after every epoch of :meth:`fit`; the
        model's ``weights_`` hold the current (unrotated) weights, so
        :meth:`score` and :meth:`transform` work. Returning True stops the fit.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the initial weights and the shuffling.

    Attributes
    ----------
    weights_ : list of arrays (n_features_i, n_components)
        Weights per view, ordered canonical directions after :meth:`fit`.
    x_weights_, y_weights_ : arrays
        The first two views' weights.
    means_ : list of arrays (n_features_i,)
    correlations_ : array (n_components,)
        The GEP eigenvalues of the learned subspace on the training data
        (canonical correlations for ``reg=0``), decreasing.
    history_ : list of float
        Mean mini-batch loss of every epoch.
    n_iter_ : int
        Epochs run.
    converged_ : bool
        Whether the "adaptive" schedule met its criterion (``tol``) before the epoch
        cap; True for a fixed-length run that did not diverge, which has no
        criterion.
    n_steps_ : int
        Gradient steps taken.
    n_features_in_ : int
        Features of the first view.

    References
    ----------
    J. Chapman, A. L. Aguila, L. Wells, "Unconstrained Stochastic CCA: Unifying
    Multiview and Self-Supervised Learning", ICLR 2024, arXiv:2310.01012.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((2000, 2))
    >>> X = np.hstack([z, rng.standard_normal((2000, 8))])
    >>> Y = np.hstack([z + 0.3 * rng.standard_normal((2000, 2)), rng.standard_normal((2000, 6))])
    >>> model = nl.cca.StochasticCCA(2, random_state=0).fit(X, Y)
    >>> exact = nl.cca.cca(X, Y, 2).correlations.sum()
    >>> bool(model.converged_ and model.score(X, Y) > 0.99 * exact)
    True
    """

    def __init__(
        self,
        n_components=1,
        *,
        reg=0.0,
        objective="ey",
        batch_size=128,
        epochs=None,
        max_iter=1000,
        tol=1e-4,
        lr=None,
        optimizer="adam",
        lr_schedule=None,
        unbiased=True,
        precondition="auto",
        precondition_ridge=1e-2,
        progress=False,
        callback=None,
        random_state=None,
    ):
        self.n_components = n_components
        self.reg = reg
        self.objective = objective
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_iter = max_iter
        self.tol = tol
        self.lr = lr
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.unbiased = unbiased
        self.precondition = precondition
        self.precondition_ridge = precondition_ridge
        self.progress = progress
        self.callback = callback
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters

    def _check_params(self, views):
        check_option(self.objective, "objective", ("ey",))
        check_option(self.optimizer, "optimizer", ("adam", "sgd"))
        if self.lr_schedule is not None and not callable(self.lr_schedule):
            check_option(self.lr_schedule, "lr_schedule", _SCHEDULES)
        self._k = check_n_components(self.n_components, views)
        self._shrinkage = check_shrinkage(self.reg, len(views))
        self._batch = check_int(self.batch_size, "batch_size", low=4 if self.unbiased else 2)
        if self.epochs is not None:
            check_int(self.epochs, "epochs", low=1)
        check_int(self.max_iter, "max_iter", low=1)
        check_scalar(self.tol, "tol", low=0.0, low_inclusive=True)
        if not (isinstance(self.precondition, (bool, np.bool_)) or self.precondition == "auto"):
            raise TypeError(
                f"`precondition` must be True, False or 'auto'; got {self.precondition!r}"
            )
        lr = _DEFAULT_LR[self.optimizer] if self.lr is None else self.lr
        self._lr = check_scalar(lr, "lr", low=0.0)
        check_scalar(self.precondition_ridge, "precondition_ridge", low=0.0, low_inclusive=True)
        for name in ("unbiased", "progress"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"`{name}` must be True or False; got {getattr(self, name)!r}")
        if self.callback is not None and not callable(self.callback):
            raise TypeError(
                f"`callback` must be callable or None; got {type(self.callback).__name__}"
            )

    # ------------------------------------------------------------------ set-up

    def _preconditioners(self, views, xp, rng):
        """Per view: a (p,) scale vector (diagonal) or a (p, p) whitening matrix.

        Columns are first scaled to a unit constraint diagonal (``1 / sqrt(B_jj)``,
        computed without overflow: data in any units give the same fit); a view whose
        scaled constraint is ill conditioned (``precondition="auto"``) is then
        whitened, ``(B_i + ridge I)^{-1/2}``, estimated on a sub-sample. One common
        factor ``sqrt(mean variance / mean B_jj)`` sets the scale of the eigenvalues
        (1 for CCA, the covariance for PLS), so that the learning rate means the same
        for data in any units. Adam is invariant to the scale of the loss, so for PLS
        this reparametrisation is as good as rescaling the data.
        """
        n = views[0].shape[0]
        scales, variance, constraint = [], 0.0, 0.0
        for X, c in zip(views, self._shrinkage, strict=False):
            inv, m, s = constraint_scales(X, c, xp)
            scales.append(inv)
            with np.errstate(over="ignore"):  # only shrinkage needs it: checked below
                v = float(xp.mean((m * xp.sqrt(s)) ** 2))
            if c and not math.isfinite(v):
                # a ridge in the data's units keeps their scale: as nl.cca.cca
                raise ValueError(
                    f"`X`, `Y`: the covariances of the views overflow {X.dtype} with "
                    "reg > 0 (shrinkage towards the identity is not scale invariant); "
                    "divide the views by a common factor first"
                )
            variance += v
            constraint += (1 - c) * v + c
        gain = math.sqrt(variance / constraint) if variance > 0 and constraint > 0 else 1.0
        if not any(self._shrinkage):  # exactly 1 for CCA (and no overflow)
            gain = 1.0
        out = []
        for X, c, inv in zip(views, self._shrinkage, scales, strict=False):
            p = X.shape[1]
            rows = min(n, max(_WHITEN_ROWS, 10 * p))
            whiten = self.precondition is True or (
                self.precondition == "auto" and p <= _AUTO_WHITEN_FEATURES and rows >= 10 * p
            )
            if whiten and c < 1:
                index = self._indices(rng.choice(n, rows, replace=False), X, xp)
                sample = X if rows == n else xp.take(X, index, axis=0)
                _, S = covariance([sample * inv], xp)
                eye = xp.eye(p, dtype=X.dtype, device=_backend.device(X))
                # c / B_jj: the ridge of the constraint in the scaled columns
                B = (1 - c) * S + eye * ((math.sqrt(c) * inv) ** 2)[None, :]
                ridge = (1 - c) * self.precondition_ridge
                evals, evecs = xp.linalg.eigh(B + ridge * eye)
                if self.precondition == "auto":
                    # Well-conditioned views (e.g. uncorrelated features) need no
                    # whitening: the diagonal scaling already makes SGD converge fast.
                    top, low = float(evals[-1]) - ridge, float(evals[0]) - ridge
                    whiten = top > 0 and low < top / _AUTO_WHITEN_CONDITION
                if whiten:
                    root = xp.sqrt(xp.where(evals > 0, evals, xp.ones_like(evals)))
                    W = (evecs / root) @ evecs.T
                    out.append(gain * (inv[:, None] * W))
                    continue
            out.append(gain * inv)
        return out

    @staticmethod
    def _indices(index, like, xp):
        return _backend.asarray(
            np.asarray(index, dtype=np.int64), xp=xp, device=_backend.device(like)
        )

    def _apply(self, P, params):
        """Weights ``W_i = P_i W'_i`` from the optimised parameters."""
        return [p[:, None] * w if p.ndim == 1 else p @ w for p, w in zip(P, params, strict=False)]

    def _initial_params(self, views, xp, rng, P):
        """Random directions, signed and scaled to minimise the loss on one batch.

        Each view's column j is signed so that it correlates positively with the first
        view's, then all weights are scaled by the ``s`` minimising
        ``L(sU) = -2 s^2 tr C + s^4 |V|^2``, i.e. ``s^2 = tr C / |V|^2``: the start is
        then at the optimum's scale (about 1 for CCA, the covariance for PLS).
        """
        n = views[0].shape[0]
        rows = self._indices(
            rng.choice(n, min(n, max(self._batch, 4 * self._k)), replace=False), views[0], xp
        )
        batch = [xp.take(X, rows, axis=0) for X in views]
        params, first = [], None
        for _i, (X, p) in enumerate(zip(batch, P, strict=False)):
            W0 = _backend.random_normal(
                rng, (X.shape[1], self._k), xp=xp, device=_backend.device(X), dtype=X.dtype
            )
            Z = X @ self._apply([p], [W0])[0]
            Z = Z - xp.mean(Z, axis=0)
            std = xp.sqrt(xp.sum(Z * Z, axis=0))
            W0 = W0 / xp.where(std > 0, std, xp.ones_like(std))
            Z = Z / xp.where(std > 0, std, xp.ones_like(std))
            if first is None:
                first = Z
            else:
                sign = xp.where(
                    xp.sum(first * Z, axis=0) < 0, -xp.ones_like(std), xp.ones_like(std)
                )
                W0 = W0 * sign
            params.append(W0)
        cross, V = batch_moments(batch, self._apply(P, params), self._shrinkage, xp)
        cross, quad = float(cross), float(xp.sum(V * V))
        if cross > 0 and quad > 0:
            params = [w * math.sqrt(cross / quad) for w in params]
        return params

    def _curvatures(self, views, xp, rng):
        """Per view, the largest eigenvalue of ``P B P`` on a sample (power iteration).

        The EY loss's curvature in view i's weights scales with it, so plain SGD
        divides its step by it (Adam's steps are scale free already).
        """
        n = views[0].shape[0]
        rows = self._indices(
            rng.choice(n, min(n, max(self._batch, 1000)), replace=False), views[0], xp
        )
        out = []
        for X, P, c in zip(views, self._P, self._shrinkage, strict=False):
            S = xp.take(X, rows, axis=0)
            S = S - xp.mean(S, axis=0)
            v = _backend.random_normal(
                rng, (X.shape[1], 1), xp=xp, device=_backend.device(X), dtype=X.dtype
            )
            top = 1.0
            for _ in range(20):
                u = self._apply([P], [v])[0]
                Bu = (1 - c) * (S.T @ (S @ u)) / (S.shape[0] - 1) + c * u
                w = P[:, None] * Bu if P.ndim == 1 else P.T @ Bu  # P^T B P v
                top = float(xp.sqrt(xp.sum(w * w)))
                if top == 0.0:
                    top = 1.0
                    break
                v = w / top
            out.append(top)
        return out

    def _start(self, views, xp, rng):
        self._P = self._preconditioners(views, xp, rng)
        self._step_scale = self._curvatures(views, xp, rng) if self.optimizer == "sgd" else None
        self._params = self._initial_params(views, xp, rng, self._P)
        self._moments = [[xp.zeros_like(w) for w in self._params] for _ in range(2)]
        self._t = 0
        self.n_steps_ = 0
        self.history_ = []
        self.n_features_in_ = views[0].shape[1]

    # ------------------------------------------------------------------ one step

    def _step(self, batch, lr, xp):
        weights = self._apply(self._P, self._params)
        loss, grads = ey_loss_and_gradient(
            batch, weights, self._shrinkage, xp, groups=2 if self.unbiased else 1
        )
        # Chain rule through W = P W': the gradient in W' is P^T dL/dW.
        grads = [
            p[:, None] * g if p.ndim == 1 else p.T @ g for p, g in zip(self._P, grads, strict=False)
        ]
        self._t += 1
        if self.optimizer == "sgd":
            self._params = [
                w - (lr / L) * g
                for w, g, L in zip(self._params, grads, self._step_scale, strict=False)
            ]
        else:
            b1, b2 = _ADAM_BETAS
            m, v = self._moments
            m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads, strict=False)]
            v = [b2 * vi + (1 - b2) * (g * g) for vi, g in zip(v, grads, strict=False)]
            self._moments = [m, v]
            step = lr * math.sqrt(1 - b2**self._t) / (1 - b1**self._t)
            self._params = [
                w - step * mi / (xp.sqrt(vi) + _ADAM_EPS)
                for w, mi, vi in zip(self._params, m, v, strict=False)
            ]
        self.n_steps_ += 1
        return loss

    def _train(self, epoch_blocks, sizes, first, xp, rng):
        """The epochs of :meth:`fit` over row blocks (one block: the in-memory data).

        ``epoch_blocks(epoch)`` yields each block's views in the order of ``sizes``
        (rows per block); ``first`` (the first block's views) holds the sub-sample the
        "adaptive" schedule monitors. Each block's rows are visited in a random order
        (``rng.permutation``), ``batch_size`` rows per step (the block's rows when
        fewer), ``rows // batch_size`` steps per block (at least one): with one block
        this is the in-memory fit. A generator that ``epoch_blocks`` returns is closed
        when the epoch ends early.
        """
        batches = [min(self._batch, s) for s in sizes]
        block_steps = [max(s // b, 1) for s, b in zip(sizes, batches, strict=True)]
        steps = sum(block_steps)
        schedule = self.lr_schedule
        if schedule is None:
            schedule = "adaptive" if self.epochs is None else "step"
        cap = self.max_iter if self.epochs is None else self.epochs
        plateau = _Plateau(self, first, xp, rng, steps) if schedule == "adaptive" else None
        lr = self._lr
        from tqdm.auto import tqdm

        self.n_iter_ = 0
        self.converged_ = schedule != "adaptive"  # a fixed-length run has no criterion
        # An epoch counter under the adaptive schedule (no known length), else a bar.
        with tqdm(total=self.epochs, desc=type(self).__name__, unit="epoch",
                  disable=not self.progress, leave=True) as bar:
            for epoch in range(cap):
                kept = [xp.asarray(w, copy=True) for w in self._params]
                total = None
                done = 0
                stream = epoch_blocks(epoch)
                try:
                    for views, n, batch, count in zip(
                        stream, sizes, batches, block_steps, strict=False
                    ):
                        order = self._indices(rng.permutation(n), views[0], xp)
                        for s in range(count):
                            if schedule != "adaptive":
                                fraction = (epoch + done / steps) / cap
                                lr = self._lr * _schedule_factor(schedule, fraction)
                            rows = order[s * batch : (s + 1) * batch]
                            loss = self._step([xp.take(v, rows, axis=0) for v in views], lr, xp)
                            total = loss if total is None else total + loss
                            done += 1
                            if schedule == "adaptive" and done % plateau.every == 0:
                                lr = plateau.update(lr)
                                if lr is None:  # converged: this epoch ends here
                                    break
                        if lr is None:
                            break
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
                steps_done = done
                # One device sync per epoch; non-finite weights turn the sum into NaN.
                for w in self._params:
                    total = total + 0.0 * xp.sum(w)
                mean_loss = float(total) / steps_done
                # The loss starts at or below zero (the initial scale minimises it) and its
                # minimum is -sum(lambda^2): a loss far above everything seen is a blow-up
                # that has not overflowed yet.
                worst = max((abs(h) for h in self.history_), default=math.inf)
                if not math.isfinite(mean_loss) or mean_loss > 100 * worst:
                    self._params = kept
                    warnings.warn(
                        f"{type(self).__name__} diverged in epoch {epoch + 1}; keeping the weights "
                        f"of epoch {epoch}. Lower `lr` or use precondition=True.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                    self.converged_ = False
                    break
                self.history_.append(mean_loss)
                self.n_iter_ = epoch + 1
                bar.set_postfix(loss=f"{mean_loss:.5g}", refresh=False)
                bar.update(1)
                if self.callback is not None:
                    self.weights_ = self._apply(self._P, self._params)
                    if self.callback(self, epoch + 1, mean_loss):
                        break
                if schedule == "adaptive" and lr is None:
                    self.converged_ = True
                    break
            else:
                if schedule == "adaptive":
                    warnings.warn(
                        f"{type(self).__name__} stopped at max_iter={cap} epochs before the "
                        f"objective settled (tol={self.tol:g}); raise `max_iter` or `lr`",
                        ConvergenceWarning,
                        stacklevel=3,
                    )

    # ------------------------------------------------------------------ rotation

    def _order(self, views, xp):
        """Rotate the learned subspace to ordered canonical directions (Rayleigh-Ritz).

        The EY loss fixes the subspace only up to an invertible k x k map per view;
        the exact GEP restricted to the span of each view's weights orders it.
        """
        weights = self._apply(self._P, self._params)
        evals, rotations = self._ritz(views, weights, xp, self.means_)
        self.weights_ = [W @ R for W, R in zip(weights, rotations, strict=False)]
        self.correlations_ = evals

    def _ritz(self, views, weights, xp, means=None):
        """The GEP (with the model's shrinkage) restricted to the span of ``weights``:
        its eigenvalues and the k x k rotation of each view's weights."""
        if means is None:
            projections = [X @ W for X, W in zip(views, weights, strict=False)]
        else:  # X @ W - mean @ W: no centred copy of the data
            projections = [X @ W - m @ W for X, m, W in zip(views, means, weights, strict=False)]
        _, cov = covariance(projections, xp)
        return self._ritz_solve(cov, weights, xp)

    def _ritz_solve(self, cov, weights, xp):
        """:meth:`_ritz` from the covariance ``cov`` of the stacked projections."""
        k = self._k
        constraints = []
        for i, (W, c) in enumerate(zip(weights, self._shrinkage, strict=False)):
            block = cov[i * k : (i + 1) * k, i * k : (i + 1) * k]
            # no W^T W without shrinkage: weights of features near 1e-300 overflow it
            constraints.append((1 - c) * block + c * (W.T @ W) if c else block)
        return solve_gep(cov, [k] * len(weights), constraints, k, xp)

    # ------------------------------------------------------------------ validation

    def _sk_views(self, X, Y, *, reset):
        """``(X, Y)`` checked as scikit-learn checks them, for the two-view NumPy path.

        As scikit-learn's CCA / PLSCanonical: a 1-D ``Y`` is one feature (a column);
        lists, object arrays of numbers and read-only memmaps are converted; complex
        data, NaN, infinity, empty arrays are refused with scikit-learn's messages
        (naming the view). A sequence of views (``Y`` omitted) and CuPy / array-API
        views go through numlab's own checks, keeping their library and device.
        """
        if Y is None and _is_view_sequence(X):
            return X, Y
        if Y is None and reset:
            # scikit-learn's words (check_estimator matches them), then numlab's
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "`Y` is missing; pass two views X, Y or a sequence of views"
            )
        if _is_foreign(X) or _is_foreign(Y):
            if Y is not None and getattr(Y, "ndim", 2) == 1:
                xp = _backend.namespace(Y)
                Y = xp.reshape(Y, (Y.shape[0], 1))
            return X, Y
        def dtypes(v):
            # float16 is fitted in float32 (numlab's rule); other non-float types in float64
            half = getattr(v, "dtype", None) == np.float16
            return [np.float32, np.float64] if half else [np.float64, np.float32]

        expected = getattr(self, "n_features_in_", None)
        shape = getattr(X, "shape", None)
        width = tuple(shape)[1:2] if shape is not None and len(shape) == 2 else ()
        if not reset and expected is not None and width and width[0] != expected:
            name = type(self).__name__
            raise ValueError(
                f"`X` must have {expected} features (columns), as in fit; got {width[0]} "
                f"(X has {width[0]} features, but {name} is expecting {expected} features as input)"
            )
        try:
            # np.asarray: a memmap (or other subclass) in gives plain arrays out
            X = np.asarray(validate_data(self, X, dtype=dtypes(X), reset=reset))
        except (TypeError, ValueError) as exc:
            _renamed(exc, "X")
        if Y is not None:
            try:
                Y = sk_check_array(
                    Y, dtype=dtypes(Y), ensure_2d=False, input_name="Y", estimator=self
                )
            except (TypeError, ValueError) as exc:
                _renamed(exc, "Y")
            Y = np.asarray(Y)
            if Y.ndim == 1:
                Y = Y.reshape(-1, 1)
        return X, Y

    # ------------------------------------------------------------------ public API

    def fit(self, X, Y=None, *, y=None):
        """Fit on two views ``X, Y`` (or a sequence of views in ``X``).

        Dask views (data larger than the client's memory) are streamed by row blocks:
        each block of every view is computed on the workers and sent to the client,
        which runs the in-memory mini-batch steps over it while the next block is
        computed (``client.compute`` futures under a ``distributed.Client``, else
        ``dask.compute`` in one background thread); at most two blocks are held. The
        first block sets up the fit (feature scales and whitening, initial weights,
        the sub-sample the "adaptive" schedule monitors: give it a few thousand rows,
        ``10 n_features`` to be whitened); each epoch visits the blocks in their order
        and each block's rows in a random order, ``rows // batch_size`` steps per
        block (mini-batches never straddle two blocks); a last parallel pass over the
        blocks computes the means and the rotation to ordered canonical directions.
        One block is the in-memory fit (the same steps, bit for bit; the rotation to
        rounding). Several blocks differ from it by the sample order only (it shuffles
        across the whole data) and reach the same correlations; every step is
        :meth:`partial_fit`'s, so with ``lr_schedule="constant"`` the fit equals the
        in-memory fit of one epoch on the first block followed by :meth:`partial_fit`
        on the same mini-batches, bit for bit. Each epoch reads the data once more.

        Parameters
        ----------
        X : array (n_samples, n_features_x) or sequence of arrays
            The first view, or a sequence of two or more views (then ``Y`` is omitted).
            NumPy, CuPy or other array-API arrays, or Dask arrays of NumPy blocks chunked
            by rows only (every view with the same row chunks, of known sizes, at least
            4 rows each, 2 with ``unbiased=False``).
        Y : array (n_samples, n_features_y) or (n_samples,), optional
            The second view, with the same samples as ``X``; a 1-D ``Y`` is one
            feature (as in scikit-learn's CCA).
        y : array, optional
            scikit-learn's name for ``Y`` (pipelines pass ``y=``); give one of them.

        Returns
        -------
        object
            The fitted estimator (``self``).
        """
        Y = _second_view(Y, y)
        if _lazy(X, Y):
            from . import _stochastic_dask

            return _stochastic_dask.fit(self, X, Y)
        X, Y = self._sk_views(X, Y, reset=True)
        views, xp, _ = check_views(X, Y)
        views = [_row_major(v, xp) for v in views]
        self._check_params(views)
        rng = check_rng(self.random_state, "random_state")
        n = views[0].shape[0]
        batch = min(self._batch, n)
        if batch < (4 if self.unbiased else 2):
            raise ValueError(
                f"`X` must have at least {4 if self.unbiased else 2} samples; got {n} sample(s)"
            )
        self.means_ = [xp.mean(v, axis=0) for v in views]
        self._seen = n  # partial_fit may go on from here
        self._start(views, xp, rng)
        self._train(lambda epoch: iter([views]), [n], views, xp, rng)
        self._order(views, xp)
        return self

    def partial_fit(self, X, Y=None, *, y=None):
        """One gradient step on a mini-batch (for streams of mini-batches).

        The first call sets the preconditioner from this batch; the means are running
        means over all batches seen; ``weights_`` are ordered on the latest batch
        (the learned subspace, and :meth:`score`, do not depend on that ordering).
        Dask views (chunked by rows, the same row chunks) are one call per row block,
        in order, each block computed on the workers while the previous one is used.

        Parameters
        ----------
        X : array (batch, n_features_x) or sequence of arrays
            The mini-batch of the first view, or of every view (then ``Y`` is omitted);
            at least 4 rows (2 with ``unbiased=False``), and the same views and feature
            counts at every call. Or Dask arrays of such mini-batches as row chunks.
        Y : array (batch, n_features_y), optional
            The mini-batch of the second view.
        y : array, optional
            scikit-learn's name for ``Y``; give one of them.

        Returns
        -------
        object
            The updated estimator (``self``).
        """
        Y = _second_view(Y, y)
        if _lazy(X, Y):
            from . import _stochastic_dask

            return _stochastic_dask.partial_fit(self, X, Y)
        X, Y = self._sk_views(X, Y, reset=not hasattr(self, "_params"))
        views, xp, _ = check_views(X, Y)
        n = views[0].shape[0]
        if n < (4 if self.unbiased else 2):
            raise ValueError(
                f"`X` must hold at least {4 if self.unbiased else 2} rows per "
                f"partial_fit call; got {n}"
            )
        first = not hasattr(self, "_params")
        if not first and len(views) != len(self.means_):
            raise ValueError(f"`X` must hold {len(self.means_)} views, as before; got {len(views)}")
        if first:
            self._check_params(views)
            self._rng = check_rng(self.random_state, "random_state")
            self._start(views, xp, self._rng)
            self.means_ = [xp.mean(v, axis=0) for v in views]
            self._seen = 0
            self.n_iter_ = 0
        else:
            for name, v, m in zip(view_names(X, len(views)), views, self.means_, strict=False):
                if v.shape[1] != m.shape[0]:
                    raise ValueError(
                        f"`{name}` must keep its feature count ({m.shape[0]} columns); "
                        f"got {v.shape[1]}"
                    )
        loss = self._step(views, self._lr, xp)
        total = self._seen + n
        self.means_ = [
            m + (n / total) * (xp.mean(v, axis=0) - m)
            for v, m in zip(views, self.means_, strict=False)
        ]
        self._seen = total
        self.history_.append(float(loss))
        self._order(views, xp)
        return self

    def _check_transform_input(self, X, Y):
        check_is_fitted(self, "weights_")
        X, Y = self._sk_views(X, Y, reset=False)
        raw = list(X) if _is_view_sequence(X) else [X, Y]
        for name, v in zip(view_names(X, len(raw)), raw, strict=False):
            check_fitted_library(v, name, self.weights_[0])
        if Y is None and not isinstance(X, (list, tuple)):  # the first view alone
            views = [check_array(X, "X", ndim=2)]
            xp = _backend.namespace(views[0])
        else:
            views, xp, _ = check_views(X, Y)
        if len(views) > len(self.weights_):
            raise ValueError(f"`X` must hold at most {len(self.weights_)} views; got {len(views)}")
        names = view_names(X, len(views))
        for name, v, W in zip(names, views, self.weights_, strict=False):
            if v.shape[1] != W.shape[0]:
                raise ValueError(
                    f"`{name}` must have {W.shape[0]} features (columns), as in fit; "
                    f"got {v.shape[1]}"
                )
        return views, xp

    def transform(self, X, Y=None, *, y=None):
        """Project the views on the canonical directions.

        Parameters
        ----------
        X : array (n_samples, n_features_x) or sequence of arrays
            The first view alone, or all views. Dask arrays chunked by rows (NumPy
            blocks; a model fitted on NumPy) give lazy Dask projections, computed block
            by block (``map_blocks``) with the fitted means and weights.
        Y : array (n_samples, n_features_y), optional
            The second view.
        y : array, optional
            scikit-learn's name for ``Y``; give one of them.

        Returns
        -------
        Zx : array (n_samples, n_components)
            When only ``X`` (one array) is given.
        (Zx, Zy, ...) : tuple of arrays
            When two or more views are given.
        """
        Y = _second_view(Y, y)
        if _lazy(X, Y):
            from . import _stochastic_dask

            check_is_fitted(self, "weights_")
            return _stochastic_dask.transform(self, X, Y)
        views, xp = self._check_transform_input(X, Y)
        out = tuple(
            (v - xp.astype(m, v.dtype)) @ xp.astype(W, v.dtype)
            for v, m, W in zip(views, self.means_, self.weights_, strict=False)
        )
        return out[0] if len(out) == 1 else out

    def fit_transform(self, X, Y=None, *, y=None):
        """Fit, then project ``X``: ``fit(X, Y).transform(X)``.

        scikit-learn's transformer convention (what a ``Pipeline`` expects); its
        ``CCA.fit_transform(X, y)`` returns both views' scores instead, which is
        ``fit(X, Y).transform(X, Y)`` here.

        Parameters
        ----------
        X, Y, y : arrays or sequence of arrays
            As in :meth:`fit`.

        Returns
        -------
        array (n_samples, n_components) or tuple of arrays
            The projection of ``X``; a tuple of every view's projection when ``X`` is
            a sequence of views.
        """
        self.fit(X, _second_view(Y, y))
        return self.transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # two views: the second goes where scikit-learn passes y (1-D: one feature)
        tags.target_tags.required = True
        tags.target_tags.one_d_labels = False
        return tags

    def score(self, X, Y=None, *, y=None):
        """Total canonical correlation captured on ``(X, Y)``.

        The sum of the canonical correlations between the views' projections (the
        sum of the MCCA eigenvalues for more than two views): invariant to any
        invertible map within the learned subspace, so it measures the subspace.

        Parameters
        ----------
        X : array (n_samples, n_features_x) or sequence of arrays
            The first view, or a sequence of two or more views (then ``Y`` is omitted).
            Dask views are projected on the workers; the projections (n_samples x
            n_components each) are computed to the client.
        Y : array (n_samples, n_features_y), optional
            The second view; required when ``X`` is a single array.
        y : array, optional
            scikit-learn's name for ``Y``; give one of them.

        Returns
        -------
        float
            The sum of the canonical correlations (MCCA eigenvalues) of the projections.
        """
        Y = _second_view(Y, y)
        if _lazy(X, Y):
            import dask

            check_is_fitted(self, "weights_")
            projections = self.transform(X, Y)
            if not isinstance(projections, tuple):
                raise ValueError("`Y` is missing: the score needs every view")
            # the (n_samples, n_components) projections, computed in one pass
            X, Y = list(dask.compute(*projections)), None
            evals, _ = projection_correlations(X, np)
            return float(np.sum(evals))
        views, xp = self._check_transform_input(X, Y)
        if len(views) < 2:
            raise ValueError("`Y` is missing: the score needs every view")
        projections = self.transform(views)
        evals, _ = projection_correlations(list(projections), xp)
        return float(xp.sum(evals))

    @property
    def x_weights_(self):
        check_is_fitted(self, "weights_")
        return self.weights_[0]

    @property
    def y_weights_(self):
        check_is_fitted(self, "weights_")
        return self.weights_[1]


class StochasticPLS(StochasticCCA):
    """Stochastic PLS by SGD on the Eckhart-Young loss (:class:`StochasticCCA`, ``reg=1``).

    With ``B = I`` the problem is well conditioned: the weights converge to the top
    singular subspace of the cross-covariance; after fitting they are rotated to the
    ordered singular vectors (orthonormal columns per view).

    Parameters
    ----------
    n_components : int, default=1
        Number of directions (pairs of singular vectors).
    reg : float in [0, 1] or sequence (one per view), default=1.0
        Shrinkage of each within-view covariance towards the identity; 1 is PLS.
    objective : {"ey"}, default="ey"
        The loss: the Eckhart-Young objective (the only one implemented).
    batch_size : int, default=128
        Rows per gradient step (split into two halves when ``unbiased``).
    epochs : int, optional
        A fixed number of passes over the data; None (default): until converged.
    max_iter : int, default=1000
        The most epochs of a fit that stops on convergence.
    tol : float, default=1e-4
        Convergence tolerance, as in :class:`StochasticCCA`.
    lr : float, optional
        Initial learning rate, as in :class:`StochasticCCA`.
    optimizer : {"adam", "sgd"}, default="adam"
        Adam, or plain SGD.
    lr_schedule : {"adaptive", "step", "cosine", "constant"}, callable or None
        Decay of the learning rate over :meth:`fit`, as in :class:`StochasticCCA`.
    unbiased : bool, default=True
        Use the unbiased estimate from two independent half-batches.
    precondition : bool or "auto", default="auto"
        Optimise in whitened coordinates, as in :class:`StochasticCCA` ("auto" never
        whitens at ``reg=1``, where ``B = I``).
    precondition_ridge : float, default=1e-2
        Ridge of the whitening, relative to the (unit) feature variance.
    progress : bool, default=False
        Show a progress bar (epochs and loss) on stderr.
    callback : callable, optional
        ``callback(model, epoch, loss)`` after every epoch of :meth:`fit`; returning
        True stops the fit.
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the initial weights and the shuffling.

    References
    ----------
    J. Chapman, A. L. Aguila, L. Wells, ICLR 2024, arXiv:2310.01012.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((2000, 6)), rng.standard_normal((2000, 5))
    >>> Y[:, 0] += X[:, 0]
    >>> model = nl.cca.StochasticPLS(1, random_state=0).fit(X, Y)
    >>> model.x_weights_.shape
    (6, 1)
    """

    def __init__(
        self,
        n_components=1,
        *,
        reg=1.0,
        objective="ey",
        batch_size=128,
        epochs=None,
        max_iter=1000,
        tol=1e-4,
        lr=None,
        optimizer="adam",
        lr_schedule=None,
        unbiased=True,
        precondition="auto",
        precondition_ridge=1e-2,
        progress=False,
        callback=None,
        random_state=None,
    ):
        super().__init__(
            n_components,
            reg=reg,
            objective=objective,
            batch_size=batch_size,
            epochs=epochs,
            max_iter=max_iter,
            tol=tol,
            lr=lr,
            optimizer=optimizer,
            lr_schedule=lr_schedule,
            unbiased=unbiased,
            precondition=precondition,
            precondition_ridge=precondition_ridge,
            progress=progress,
            callback=callback,
            random_state=random_state,
        )
