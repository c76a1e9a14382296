"""Curvature of mini-batch losses and the learning rates it allows (Granziol et al., 2022).

The mini-batch Hessian ``H_B = (1/B) sum_{i in S} h_i`` of a batch ``S`` of ``B`` samples
drawn without replacement fluctuates around the full Hessian ``H``; its extreme
eigenvalues are pushed outwards by an amount that falls like ``1/B``. numlab uses the
model-free form of that result (second-order perturbation averaged over batches,
equivalently the mean-square stability of SGD along the top eigenvector ``u``)::

    E lambda_max(H_B) ~ lambda_1 + c(B) tau_u / lambda_1,
    c(B) = (N - B) / (B (N - 1)),   tau_u = E_i ||(h_i - H) u||^2,

where ``c(B)`` is the exact variance factor of a mean of ``B`` of ``N`` samples drawn
without replacement (``c -> 1/B`` for ``B << N``, ``c(N) = 0``). The largest stable SGD
learning rate ``2 / lambda_max(H_B)`` then grows linearly with ``B`` below the critical
batch size ``B* = tau_u / lambda_1**2`` and saturates at ``2 / lambda_1`` above it.

At small batch sizes ``lambda_max(H_B)`` is spread out and the stable rate is not a
function of its mean: :func:`max_learning_rate` then finds the rate at which the
linearised SGD recursion ``e <- (I - lr H_B) e`` over sampled batches starts to grow,
running it over Lanczos factors of a pool of batch Hessians so that the search over
``lr`` costs no Hessian-vector product.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from .. import _backend
from .._progress import Progress, check_progress
from .._results import CompactRepr
from .._validation import (
    check_array,
    check_int,
    check_option,
    check_real_values,
    check_rng,
    check_scalar,
)
from ._lanczos import (
    _apply,
    _dimension,
    _finite,
    _host_values,
    _Lanczos,
    _layout,
    _ritz_pairs,
    _template,
    eigsh,
)

__all__ = [
    "BatchCurvature",
    "BatchScalingFit",
    "BatchScalingWarning",
    "LRResult",
    "NoiseScale",
    "batch_curvature",
    "fit_batch_scaling",
    "max_learning_rate",
    "scale_learning_rate",
    "gradient_noise_scale",
    "measure_max_learning_rate",
    "finite_sample_factor",
]


class BatchScalingWarning(UserWarning):
    """The batch-size scaling law fits the data poorly (heavy-tailed per-sample curvature)."""


def finite_sample_factor(batch_size, n_samples=None):
    """The variance factor ``c(B) = (N - B) / (B (N - 1))`` of a mean of ``B`` of ``N`` samples.

    The variance of the mean of ``B`` samples drawn without replacement from ``N`` is
    ``c(B)`` times the per-sample variance; ``c(B) = 1/B`` when ``n_samples`` is None
    (an infinite population, or sampling with replacement).

    Parameters
    ----------
    batch_size : int or array_like of int
        ``1 <= B <= N``.
    n_samples : int, optional
        Population size ``N >= 2``.

    Returns
    -------
    float or numpy.ndarray
        ``c(B)``.

    Examples
    --------
    >>> import numlab as nl
    >>> nl.rmt.finite_sample_factor(1, 100), nl.rmt.finite_sample_factor(100, 100)
    (1.0, 0.0)
    """
    B = check_real_values(batch_size, "batch_size")
    if not np.all(np.isfinite(B)) or np.any(B < 1):
        raise ValueError(f"`batch_size` must be finite and >= 1; got {batch_size!r}")
    if n_samples is None:
        c = 1.0 / B
    else:
        N = float(check_int(n_samples, "n_samples", low=2))
        if np.any(B > N):
            raise ValueError(f"`batch_size` must be <= n_samples = {int(N)}; got {batch_size!r}")
        c = (N - B) / (B * (N - 1.0))
    return float(c) if c.ndim == 0 else c


# --------------------------------------------------------------------------- helpers


def _batch_operator(hvp, idx):
    return lambda v: hvp(v, idx)


def _draw_batch(rng, n_samples, batch_size, xp, device):
    idx = np.sort(rng.choice(n_samples, size=batch_size, replace=False)).astype(np.int64)
    return _backend.asarray(idx, xp=xp, device=device)


def _check_hvp(hvp, n_params, like):
    if not callable(hvp):
        raise TypeError(f"`hvp` must be callable as hvp(v, idx=None); got {type(hvp).__name__}")
    n_params = _dimension(hvp, n_params, "n_params")
    xp, device, dtype = _layout(_template(hvp, None, like), n_params)
    return n_params, xp, device, dtype


def _shape_checked(hvp, n_params, xp):
    """``hvp`` with its output shape checked, so that errors name the caller's ``hvp``."""

    def checked(v, idx=None):
        return _apply(lambda u: hvp(u, idx), v, n_params, xp, "hvp")

    return checked


def _n_samples(n_samples, hvp, low=2):
    own = getattr(hvp, "n_samples", None)  # a HessianOperator knows its data
    if n_samples is None:
        n_samples = own
    if n_samples is None:
        return None
    n_samples = check_int(n_samples, "n_samples", low=low)
    if isinstance(own, int) and n_samples != own:
        # batches are drawn from range(n_samples): more indices than the data has, or
        # fewer (a subset, with the finite-sample factor of another N)
        raise ValueError(
            f"`n_samples` must be the number of samples of `hvp` ({own}); got {n_samples}"
        )
    return n_samples


def _top(op, n_params, k, tol, rng, like, vectors=False):
    """Top eigenvalue (and vector) of ``op``; a non-convergence is reported by the caller."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = eigsh(op, n_params, which="LA", tol=tol, max_matvec=k, rng=rng, like=like)
    return res


def _kurtosis(x):
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 4 or np.std(x) == 0:
        return 0.0
    z = (x - x.mean()) / x.std()
    return float(np.mean(z**4) - 3.0)


# Renormalise the linearised iterate every few steps: each norm is a host sync on a GPU.
_RENORM_EVERY = 4
_N_CHAINS = 3


def _epoch_batches(rng, n_samples, batch_size, n_steps, xp, device):
    """Batch indices of ``n_steps`` SGD steps with epoch-wise reshuffling (as in training)."""
    batches, order, pos = [], rng.permutation(n_samples), 0
    for _ in range(n_steps):
        if pos + batch_size > n_samples:  # a short tail batch is skipped
            order, pos = rng.permutation(n_samples), 0
        idx = np.sort(order[pos : pos + batch_size]).astype(np.int64)
        batches.append(_backend.asarray(idx, xp=xp, device=device))
        pos += batch_size
    return batches


def _log_growth(step_fns, e0, lr, momentum, xp, stop):
    """``log(||e_T|| / ||e_0||)`` of linearised heavy-ball SGD ``v <- m v + H_B e; e <- e - lr v``.

    ``step_fns[t](e)`` is the product of the ``t``-th batch Hessian with ``e``. On a
    quadratic loss the error of SGD obeys this recursion (plus an additive
    gradient-noise term that does not change its stability); the batches are fixed
    so that the growth is a deterministic function of ``lr`` (common random numbers).
    The run stops early once the growth exceeds ``stop``, SGD's check of a loss
    blow-up on the way.
    """
    e, v, total = e0, None, 0.0
    for step, apply in enumerate(step_fns, 1):
        g = apply(e)
        v = g if v is None or momentum == 0 else momentum * v + g
        e = e - lr * v
        if step % _RENORM_EVERY == 0 or step == len(step_fns):
            norm = math.sqrt(float(xp.vecdot(e, e)))
            if not math.isfinite(norm) or norm == 0.0:
                return math.inf if not math.isfinite(norm) else -math.inf
            total += math.log(norm)
            if total > stop:
                return total
            e, v = e / norm, v / norm
    return total


# The divergence criterion of measure_max_learning_rate, with the loss ~ ||e||^2 on a
# quadratic: above 1e3 times its start at any point or above 10 times at the end.
# n_steps -> inf gives the almost-sure (top Lyapunov exponent) threshold.
_LEVEL, _PEAK = 0.5 * math.log(10.0), 0.5 * math.log(1e3)


def _chain_threshold(chains, momentum, lr0, rtol, xp, bar=None):
    """The smallest over ``chains`` of the rate at which the chain's growth fails
    SGD's criterion; each is bracketed from ``lr0`` (then from the previous chain's
    rate) and located by geometric bisection to ``rtol``. ``chains`` holds pairs
    ``(step_fns, e0)``. Returns ``(lr, n_trials)``. ``bar`` (a Progress) counts the
    trial rates.
    """
    rates, trials = [], 0
    for chain, (step_fns, e0) in enumerate(chains, 1):

        def grows(lr, step_fns=step_fns, e0=e0, chain=chain):
            nonlocal trials
            trials += 1
            grew = _log_growth(step_fns, e0, lr, momentum, xp, _PEAK) > _LEVEL
            if bar is not None:
                bar.update()
                bar.note(f"chain {chain}/{len(chains)}, lr {lr:.4g}")
            return grew

        rates.append(_threshold(grows, rates[-1] if rates else lr0, rtol, 60)[0])
    return float(min(rates)), trials


def _itemsize(xp, dtype):
    return int(xp.finfo(dtype).bits) // 8


def _unit_normal(rng, n_params, xp, device, dtype):
    e0 = _backend.random_normal(rng, (n_params,), xp=xp, device=device, dtype=dtype)
    return e0 / math.sqrt(float(xp.vecdot(e0, e0)))


def _stable_rate_chains(
    op, n_params, n_samples, batch_size, momentum, lr0, n_steps, rtol, rng, like, bar=None
):
    """``method="chain"``: linearised SGD in the full space over fresh batches.

    For each of ``_N_CHAINS`` independent batch sequences and start vectors, the
    threshold of :func:`_chain_threshold`; a trial rate costs up to ``n_steps`` batch
    HVPs (6,000-13,000 in all on the benchmarks). The smallest rate over the chains is
    returned: gradient noise injects fresh error at every step and the loss is driven by
    the worst of the random products that follow, which the median of the chains misses
    when the batch curvature is heavy-tailed (it over-predicted the measured
    divergence by 1.2-1.5x on breast-cancer logistic regression at B = 1-16; the
    minimum of three is within 0.8-1.15x). Returns ``(lr, n_hvp)``.
    """
    xp, device, dtype = _layout(like, n_params)
    n_hvp = 0

    def hvp_step(idx):
        def apply(e):
            nonlocal n_hvp
            n_hvp += 1
            return _apply(lambda u: op(u, idx), e, n_params, xp, "hvp")

        return apply

    chains = []
    for _ in range(_N_CHAINS):
        batches = _epoch_batches(rng, n_samples, batch_size, n_steps, xp, device)
        e0 = _unit_normal(rng, n_params, xp, device, dtype)
        chains.append(([hvp_step(idx) for idx in batches], e0))
    lr, _ = _chain_threshold(chains, momentum, lr0, rtol, xp, bar)
    return lr, n_hvp


@dataclasses.dataclass(frozen=True)
class _Factor:
    """A batch Hessian as ``sigma I + Y^T diag(d) Y`` (Lanczos; exact at an invariant subspace).

    ``Y`` (shape ``(r, n)``) holds the Ritz vectors whose Ritz value ``sigma + d`` differs
    from the smallest one, ``sigma``, which stands for the curvature of the directions
    outside the Krylov space.
    """

    Y: object
    d: object
    sigma: float
    top: float
    n_hvp: int

    def step(self):
        def apply(e):
            return self.sigma * e + (self.d * (self.Y @ e)) @ self.Y

        return apply


def _factor(op, n_params, k, tol, rng, like, n_keep=None):
    """Lanczos on a batch Hessian to ``k`` steps, or until the residual ``beta_m`` falls
    below ``tol`` times the operator's scale (the Krylov space is then invariant to
    that accuracy: a batch of ``B`` samples has rank about ``B`` times the per-sample
    rank, so small batches need few HVPs). With ``n_keep``, only the top ``n_keep``
    Ritz pairs are kept (the rest of the space takes the smallest Ritz value)."""
    xp, device, dtype = _layout(like, n_params)
    v = _unit_normal(rng, n_params, xp, device, dtype)
    k = min(k, n_params)
    run = _Lanczos(op, n_params, v, k, xp, "full")
    while run.m < k and not run.invariant:
        run.step()
        if run.beta[-1] <= tol * run.scale:
            break
    alpha, beta = run.tridiagonal()
    theta, S = _ritz_pairs(alpha, beta)
    # Negative curvature (non-convex losses: networks) counts as flat: the loss falls
    # along it, so it is no divergence, although the linearised error along it grows.
    theta = np.maximum(theta, 0.0)
    sigma = float(theta[0])
    keep = np.flatnonzero(theta - sigma > tol * max(abs(theta[-1]), abs(sigma), 1e-300))
    if n_keep is not None:
        keep = keep[-n_keep:]  # theta ascends: the top pairs, which set the stability
    S_keep = np.ascontiguousarray(S[:, keep].T)
    Y = _backend.asarray(S_keep, xp=xp, device=device, dtype=dtype) @ run.Q[: run.m, :]
    d = _backend.asarray(theta[keep] - sigma, xp=xp, device=device, dtype=dtype)
    return _Factor(Y=Y, d=d, sigma=sigma, top=float(theta[-1]), n_hvp=run.n_matvec)


def _batch_pool(op, n_params, n_samples, batch_size, n_min, n_max, max_hvp, k, tol, rng, like,
                n_keep=None, bar=None):
    """Factors of the Hessians of consecutive training batches (epoch-wise reshuffling):
    ``n_max`` of them (one epoch's worth covers every sample once, the rare sharp ones
    included), at least ``n_min``, and no more once ``max_hvp`` HVPs are used; each keeps
    at most ``n_keep`` Ritz vectors."""
    xp, device, _ = _layout(like, n_params)
    pool, n_hvp = [], 0
    order, pos = rng.permutation(n_samples), 0
    while len(pool) < n_max and (len(pool) < n_min or n_hvp < max_hvp):
        if pos + batch_size > n_samples:  # a short tail batch is skipped
            order, pos = rng.permutation(n_samples), 0
        idx = np.sort(order[pos : pos + batch_size]).astype(np.int64)
        pos += batch_size
        idx = _backend.asarray(idx, xp=xp, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            f = _factor(_batch_operator(op, idx), n_params, k, tol, rng, like, n_keep)
        pool.append(f)
        n_hvp += f.n_hvp
        if bar is not None:
            bar.update()
            bar.note(f"lambda_max(H_B) {f.top:.4g}, {n_hvp} HVPs")
    return pool, n_hvp


def _stable_rate_pool(pool, n_params, momentum, lr0, n_steps, rtol, rng, like, bar=None):
    """``method="batch"``: the chains of :func:`_chain_threshold` over the pooled batch
    factors, reshuffled epoch by epoch of the pool; no HVPs."""
    xp, device, dtype = _layout(like, n_params)
    steps = [f.step() for f in pool]
    chains = []
    for _ in range(_N_CHAINS):
        seq = []
        while len(seq) < n_steps:
            seq.extend(rng.permutation(len(pool)).tolist())
        e0 = _unit_normal(rng, n_params, xp, device, dtype)
        chains.append(([steps[j] for j in seq[:n_steps]], e0))
    return _chain_threshold(chains, momentum, lr0, rtol, xp, bar)[0]


#: Cap of the geometric bisection of :func:`_threshold` (log2(log(2**60) / log(1 + 1e-12))
#: is about 45).
_MAX_BISECTIONS = 100

#: Smallest ``rtol`` accepted for a bisection (a few float64 roundings).
_MIN_RTOL = 1e-12


def _threshold(fails, start, rtol, limit):
    """The rate where ``fails`` turns True, to relative ``rtol``: bracketed from ``start``
    by at most ``limit`` halvings or doublings, then located by geometric bisection.

    Returns ``(rate, bracketed)``; ``bracketed`` is False when ``limit`` steps found no
    change of ``fails`` (the rate is then the last one tried).
    """
    lo = hi = start
    bracketed = False
    if fails(hi):
        for _ in range(limit):
            hi, lo = lo, lo / 2
            if not fails(lo):
                bracketed = True
                break
    else:
        for _ in range(limit):
            lo, hi = hi, hi * 2
            if fails(hi):
                bracketed = True
                break
    # Each bisection halves log(hi / lo) (at most log(2**limit)): _MAX_BISECTIONS steps
    # reach any rtol above rounding; the loop also ends when the midpoint is no longer
    # strictly inside (lo and hi adjacent floats), where it used to spin forever.
    for _ in range(_MAX_BISECTIONS):
        if not (bracketed and hi / lo > 1 + rtol):
            break
        mid = math.sqrt(lo * hi)
        if not lo < mid < hi:
            break
        if fails(mid):
            hi = mid
        else:
            lo = mid
    return math.sqrt(lo * hi), bracketed


# --------------------------------------------------------------------------- batch curvature


@dataclasses.dataclass(frozen=True, repr=False)
class BatchCurvature(CompactRepr):
    """The top eigenvalue of the mini-batch Hessian against batch size.

    Parameters
    ----------
    batch_sizes : numpy.ndarray of shape (m,)
        The batch sizes ``B``.
    mean, median, q90, std : numpy.ndarray of shape (m,)
        Mean, median, 90th percentile and standard deviation of ``lambda_max(H_B)``
        over the random batches.
    ci_low, ci_high : numpy.ndarray of shape (m,)
        Confidence interval of the mean (normal approximation).
    kurtosis : numpy.ndarray of shape (m,)
        Excess kurtosis of ``lambda_max(H_B)`` across batches: large values flag the
        heavy-tailed per-sample curvature under which the scaling law fails.
    samples : tuple of numpy.ndarray
        The per-batch values for each batch size.
    lambda_full : float
        Top eigenvalue of the full-data Hessian.
    n_samples : int
        ``N``.
    n_hvp : int
        Hessian-vector products used.
    converged : bool
        Whether every Lanczos run reached its tolerance within ``k`` steps.
    """

    batch_sizes: np.ndarray
    mean: np.ndarray
    median: np.ndarray
    q90: np.ndarray
    std: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    kurtosis: np.ndarray
    samples: tuple
    lambda_full: float
    n_samples: int
    n_hvp: int
    converged: bool


def batch_curvature(
    hvp,
    n_params=None,
    n_samples=None,
    batch_sizes=None,
    *,
    n_batches=32,
    k=30,
    tol=1e-6,
    confidence=0.95,
    rng=None,
    like=None,
    progress=False,
):
    """The extremal eigenvalue of the mini-batch Hessian against batch size.

    For each batch size ``B``, draws ``n_batches`` batches of ``B`` samples without
    replacement and computes ``lambda_max(H_B)`` by Lanczos (:func:`eigsh`, at most
    ``k`` HVPs each), and summarises its distribution. Granziol, Zohren & Roberts
    (2022) show that the extremes of the batch Hessian exceed those of the full
    Hessian by a term that falls like ``1/B``; fit it with :func:`fit_batch_scaling`.

    Parameters
    ----------
    hvp : callable
        ``hvp(v, idx=None)``: the Hessian-vector product of the mean loss over the
        samples ``idx`` (an integer array on the caller's backend; all samples when
        None).
    n_params : int, optional
        Number of parameters (default ``hvp.n_params``: numlab's Hessian operators,
        e.g. ``model.hessian(x, y)`` of a neural operator, carry it).
    n_samples : int, optional
        Number of training samples ``N`` (default ``hvp.n_samples``).
    batch_sizes : sequence of int
        Batch sizes, each in ``[1, N]`` (required).
    n_batches : int
        Random batches per batch size.
    k : int
        Largest number of HVPs per Lanczos run.
    tol : float
        Relative tolerance of each top eigenvalue.
    confidence : float
        Level of the confidence interval of the mean.
    rng : None, int or numpy.random.Generator
        Seed of the batches and of the Lanczos start vectors.
    like : array, optional
        Backend, device and dtype of the vectors (see :func:`lanczos`).
    progress : bool, default False
        Show a progress bar on stderr (tqdm) over the Lanczos runs (the full Hessian,
        then each batch), with the batch size. The result is the same bit for bit.

    Returns
    -------
    BatchCurvature
        Mean, median, q90, spread and confidence interval per batch size.

    References
    ----------
    D. Granziol, S. Zohren & S. Roberts, "Learning rates as a function of batch size: a
    random matrix theory approach to neural network training", JMLR 23(173), 2022.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> X = np.random.default_rng(0).standard_normal((200, 5))
    >>> model = nl.rmt.LeastSquares(X, X[:, 0])
    >>> H = model.hessian(model.init_params())
    >>> curve = nl.rmt.batch_curvature(H, model.n_params, 200, [4, 16, 64], n_batches=8, rng=0)
    >>> bool(curve.mean[0] > curve.mean[-1] > curve.lambda_full)
    True
    """
    from scipy.stats import norm

    n_params, xp, device, dtype = _check_hvp(hvp, n_params, like)
    n_samples = _n_samples(n_samples, hvp, low=1)
    if n_samples is None:
        raise TypeError("`n_samples` is missing: the number of training samples N")
    if batch_sizes is None:
        raise TypeError("`batch_sizes` is missing: the batch sizes B to sample")
    sizes = np.asarray(
        [check_int(b, "batch_sizes", low=1, high=n_samples) for b in np.ravel(batch_sizes)]
    )
    if sizes.size == 0:
        raise ValueError("`batch_sizes` must not be empty")
    n_batches = check_int(n_batches, "n_batches", low=1)
    k = check_int(k, "k", low=1)
    confidence = check_scalar(confidence, "confidence", low=0.0, high=1.0, high_inclusive=False)
    progress = check_progress(progress)
    rng = check_rng(rng)
    template = _template(hvp, None, like)
    hvp = _shape_checked(hvp, n_params, xp)
    runs = 1 + sum(1 if B == n_samples else n_batches for B in sizes)
    with Progress(progress, "nl.rmt.batch_curvature", total=runs, unit="run") as bar:
        bar.note("full Hessian")
        full = _top(_batch_operator(hvp, None), n_params, k, tol, rng, template)
        bar.update()
        n_hvp, converged = full.n_matvec, full.converged
        samples = []
        for B in sizes:
            bar.note(f"batch size {int(B)}")
            values = []
            for _ in range(1 if B == n_samples else n_batches):
                idx = None if B == n_samples else _draw_batch(rng, n_samples, int(B), xp, device)
                res = _top(_batch_operator(hvp, idx), n_params, k, tol, rng, template)
                n_hvp += res.n_matvec
                converged &= res.converged
                values.append(float(res.values[-1]))
                bar.update()
            samples.append(np.asarray(values))
    if not converged:
        warnings.warn(
            f"batch_curvature: some Lanczos runs did not reach tol = {tol:g} within k = {k} "
            "HVPs; increase `k`",
            RuntimeWarning,
            stacklevel=2,
        )
    z = norm.ppf(0.5 + confidence / 2)
    mean = np.array([s.mean() for s in samples])
    std = np.array([s.std(ddof=1) if s.size > 1 else 0.0 for s in samples])
    half = z * std / np.sqrt([s.size for s in samples])
    return BatchCurvature(
        batch_sizes=sizes,
        mean=mean,
        median=np.array([np.median(s) for s in samples]),
        q90=np.array([np.quantile(s, 0.9) for s in samples]),
        std=std,
        ci_low=mean - half,
        ci_high=mean + half,
        kurtosis=np.array([_kurtosis(s) for s in samples]),
        samples=tuple(samples),
        lambda_full=float(full.values[-1]),
        n_samples=n_samples,
        n_hvp=n_hvp,
        converged=bool(converged),
    )


# --------------------------------------------------------------------------- the scaling law


@dataclasses.dataclass(frozen=True, repr=False)
class BatchScalingFit(CompactRepr):
    """The fit ``lambda(B) = lambda_full + slope * c(B)`` of batch curvature against batch size.

    Parameters
    ----------
    lambda_full : float
        The fitted full-batch curvature ``lambda_1`` (intercept).
    slope : float
        The fitted coefficient of ``c(B)``, an estimate of ``tau_u / lambda_1``.
    critical_batch_size : float
        ``B* = slope / lambda_full = tau_u / lambda_1**2``: the batch size at which the
        batch noise doubles the curvature; SGD's stable learning rate grows linearly
        below it and saturates above it.
    r2 : float
        Coefficient of determination of the fit.
    exponent : float
        Power-law exponent of the excess ``lambda(B) - lambda_full`` against ``B``
        (``-1`` under the theory); NaN with fewer than two positive excesses.
    exponent_ci : tuple of float
        95 % confidence interval of the exponent (NaN with fewer than three points).
    n_samples : int or None
        ``N`` used in ``c(B)`` (None: ``c(B) = 1/B``).
    """

    lambda_full: float
    slope: float
    critical_batch_size: float
    r2: float
    exponent: float
    exponent_ci: tuple
    n_samples: int | None

    def predict(self, batch_size):
        """The fitted curvature at a batch size.

        Parameters
        ----------
        batch_size : int or array_like of int
            Batch sizes.

        Returns
        -------
        float or numpy.ndarray
            ``lambda_full + slope * c(B)``.
        """
        return self.lambda_full + self.slope * finite_sample_factor(batch_size, self.n_samples)


def fit_batch_scaling(batch_sizes, lambdas, *, n_samples=None, sigma=None):
    """Fit the random-matrix law of batch curvature: ``lambda(B) = a + b (N - B) / (B (N - 1))``.

    Granziol, Zohren & Roberts (2022) show that the extreme eigenvalue of the batch
    Hessian exceeds the full-data one by a term that falls like ``1/B``; with the
    finite-sample factor ``c(B) = (N - B) / (B (N - 1))`` the excess vanishes at ``B = N``.
    The fit is ordinary least squares in ``(1, c(B))``; it also reports the power-law
    exponent of the excess (``-1`` under the theory) and the critical batch size
    ``B* = b / a``.

    Parameters
    ----------
    batch_sizes : array_like of shape (m,)
        Batch sizes (``m >= 3``).
    lambdas : array_like of shape (m,)
        Batch curvature at each batch size (e.g. ``BatchCurvature.mean``).
    n_samples : int, optional
        ``N``; None uses ``c(B) = 1/B``.

    sigma : array_like of shape (m,), optional
        Standard errors of ``lambdas`` (e.g. ``BatchCurvature.std / sqrt(n_batches)``):
        the fit and ``r2`` are then weighted by ``1 / sigma**2`` (batch means at small
        ``B`` are far noisier than at large ``B``). Zero errors (the full batch) get the
        weight of the smallest positive error.

    Returns
    -------
    BatchScalingFit
        ``lambda_full``, ``slope``, ``critical_batch_size``, ``r2``, ``exponent``.

    Warns
    -----
    BatchScalingWarning
        If ``r2 < 0.9`` or the exponent's confidence interval lies outside
        ``[-1.2, -0.8]``: the curvature is
        then not governed by the ``1/B`` law (typically heavy-tailed per-sample
        curvature), and learning rates predicted from it are unreliable.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> B = np.array([1, 2, 4, 8, 16, 64])
    >>> fit = nl.rmt.fit_batch_scaling(B, 10.0 + 30.0 / B)
    >>> round(fit.lambda_full, 6), round(fit.critical_batch_size, 6), round(fit.r2, 6)
    (10.0, 3.0, 1.0)
    """
    from scipy.stats import t as student_t

    B = _host_values(batch_sizes, "batch_sizes")
    lam = _host_values(lambdas, "lambdas")
    if B.shape != lam.shape:
        raise ValueError(
            "`batch_sizes` and `lambdas` must have the same length; "
            f"got {B.shape[0]} and {lam.shape[0]}"
        )
    if B.shape[0] < 3:
        raise ValueError(
            f"`batch_sizes` must hold at least 3 batch sizes to fit 2 parameters; got {B.shape[0]}"
        )
    if not (np.all(np.isfinite(B)) and np.all(np.isfinite(lam))):
        raise ValueError("`batch_sizes` and `lambdas` must contain only finite values")
    if np.any(B < 1):
        raise ValueError(f"`batch_sizes` must be >= 1; got a minimum of {B.min()!r}")
    if n_samples is not None:
        n_samples = check_int(n_samples, "n_samples", low=2)
        if B.max() > n_samples:
            raise ValueError(f"`batch_sizes` must be <= n_samples = {n_samples}; got {B.max():g}")
    c = finite_sample_factor(B, n_samples)
    if np.ptp(c) == 0:
        raise ValueError("`batch_sizes` must contain at least two different batch sizes")
    weights = np.ones_like(lam)
    if sigma is not None:
        sigma = _host_values(sigma, "sigma")
        if sigma.shape != lam.shape or not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
            raise ValueError(
                f"`sigma` must hold {lam.shape[0]} finite non-negative standard errors"
            )
        if np.any(sigma > 0):
            sigma = np.where(sigma > 0, sigma, sigma[sigma > 0].min())
            weights = 1.0 / sigma**2
    root = np.sqrt(weights)
    design = np.stack([np.ones_like(c), c], axis=1)
    (a, b), *_ = np.linalg.lstsq(design * root[:, None], lam * root, rcond=None)
    residual = lam - design @ np.array([a, b])
    center = np.sum(weights * lam) / np.sum(weights)
    total = np.sum(weights * (lam - center) ** 2)
    flat = np.all(np.abs(lam - center) <= 1e-10 * np.max(np.abs(lam)))  # nothing to explain
    r2 = 1.0 if flat else 1.0 - float(np.sum(weights * residual**2) / total)
    critical = float(b / a) if a > 0 and b > 0 else (0.0 if b <= 0 else float("nan"))
    exponent, ci = float("nan"), (float("nan"), float("nan"))
    excess = lam - a
    keep = (excess > 0) & (c > 0)
    if keep.sum() >= 2 and np.ptp(np.log(B[keep])) > 0:
        x, y = np.log(B[keep]), np.log(excess[keep])
        slope, intercept = np.polyfit(x, y, 1)
        exponent = float(slope)
        dof = x.shape[0] - 2
        if dof > 0:
            s2 = np.sum((y - (intercept + slope * x)) ** 2) / dof
            se = math.sqrt(s2 / np.sum((x - x.mean()) ** 2))
            q = student_t.ppf(0.975, dof)
            ci = (exponent - q * se, exponent + q * se)
    # The exponent of a small excess is noisy: only a confidence interval clear of
    # [-1.2, -0.8] (or a point estimate, without an interval) counts against the law.
    low, high = ci if np.isfinite(ci[0]) else (exponent, exponent)
    if r2 < 0.9 or (np.isfinite(exponent) and (high < -1.2 or low > -0.8)):
        warnings.warn(
            f"fit_batch_scaling: the 1/B law fits poorly (R^2 = {r2:.3f}, "
            f"excess exponent {exponent:.2f}, "
            "expected -1); the per-sample curvature is probably heavy-tailed, so learning rates "
            "predicted from this fit are unreliable",
            BatchScalingWarning,
            stacklevel=2,
        )
    return BatchScalingFit(
        lambda_full=float(a),
        slope=float(b),
        critical_batch_size=critical,
        r2=r2,
        exponent=exponent,
        exponent_ci=ci,
        n_samples=n_samples,
    )


# --------------------------------------------------------------------------- learning rates


@dataclasses.dataclass(frozen=True, repr=False)
class LRResult(CompactRepr):
    """The largest linearly stable learning rate at a batch size.

    ``float(result)`` is the learning rate.

    Parameters
    ----------
    lr : float
        The largest stable learning rate.
    lambda_max : float
        The batch-averaged top eigenvalue ``E lambda_max(H_B)`` of the mini-batch
        Hessian (preconditioned for Adam; over the pooled batches for ``"batch"``);
        the full-batch one without a batch size, and the random-matrix estimate for
        ``method="rmt"``.
    lambda_full : float
        The top eigenvalue of the full-data (preconditioned) Hessian.
    critical_batch_size : float
        ``B* = tau_u / lambda_1**2`` (NaN when it cannot be estimated, e.g. full batch).
    batch_size : int or None
        The batch size (None: full batch).
    optimizer : str
        ``"sgd"`` or ``"adam"``.
    method : str
        ``"batch"``, ``"chain"``, ``"mean"`` or ``"rmt"``.
    n_hvp : int
        Hessian-vector products used.
    lambda_std : float
        Standard deviation of the batch top eigenvalue across batches.
    kurtosis : float
        Excess kurtosis of the batch top eigenvalue across batches.
    lr_mean : float
        ``2 (1 + m) / lambda_max``: the rate of the batch-averaged curvature, which
        ``"batch"`` and ``"chain"`` refine (equal to ``lr`` for ``"mean"`` and ``"rmt"``).
    heavy_tailed : bool
        Whether the batch curvature was found heavy-tailed (see the warning of
        :func:`max_learning_rate`).
    """

    lr: float
    lambda_max: float
    lambda_full: float
    critical_batch_size: float
    batch_size: int | None
    optimizer: str
    method: str
    n_hvp: int
    lambda_std: float = 0.0
    kurtosis: float = 0.0
    lr_mean: float = float("nan")
    heavy_tailed: bool = False

    def __float__(self):
        return float(self.lr)


def _stability_factor(optimizer, momentum, betas):
    if optimizer == "sgd":
        return 2.0 * (1.0 + momentum)  # heavy ball v <- m v + g, w <- w - lr v
    beta1 = betas[0]
    return 2.0 * (1.0 + beta1) / (1.0 - beta1)  # Adam's EMA momentum, frozen preconditioner


def _is_heavy_tailed(values):
    """Rare sharp batches: the second moment of lambda_B well above the squared mean.

    ``E l^2 / (E l)^2 = 1 + CV^2`` is what separates the mean-square from the mean rate;
    above 1.5 they differ by more than the 1.5x the predictions are meant to reach, and
    the threshold of SGD then depends on how long it runs. The kurtosis catches heavy
    tails that a few batches show only as outliers.
    """
    m2 = float(np.mean(values**2)) / float(np.mean(values)) ** 2
    return m2 > 1.5 or _kurtosis(values) > 5.0, m2


def max_learning_rate(
    hvp,
    n_params=None,
    batch_size=None,
    *,
    n_samples=None,
    optimizer="sgd",
    momentum=0.0,
    betas=(0.9, 0.999),
    preconditioner=None,
    method="batch",
    n_batches=16,
    n_steps=500,
    max_hvp=1200,
    max_memory=1 << 30,
    k=30,
    tol=1e-6,
    rng=None,
    like=None,
    progress=False,
):
    """The largest linearly stable learning rate at a batch size, from batch Hessians.

    On a quadratic loss, full-batch SGD with learning rate ``lr`` and heavy-ball
    momentum ``m`` is stable iff ``lr < 2 (1 + m) / lambda_1``. With mini-batches the
    error follows the random linear recursion ``e <- (I - lr H_B) e`` (plus gradient
    noise, which does not change its stability), whose batch Hessians ``H_B`` have a
    top eigenvalue exceeding ``lambda_1`` by a term falling like ``1/B`` (Granziol,
    Zohren & Roberts, 2022). The rules, for ``method``:

    - ``"batch"`` (default): the largest ``lr`` at which that recursion, run over
      ``n_steps`` batches from a random start, grows the error by less than
      ``sqrt(10)`` at the end and ``sqrt(1e3)`` on the way (the loss criteria of
      :func:`measure_max_learning_rate`); the smallest such rate over three batch
      orders and start vectors, a stand-in for the fresh error that gradient noise
      injects at every step. ``n_steps -> inf`` gives the almost-sure threshold, where
      the top Lyapunov exponent of the product of the ``I - lr H_B`` vanishes. The
      batch Hessians are factored once: a pool of consecutive training batches
      (epoch-wise reshuffling; one epoch's worth, at least ``n_batches``, and no more
      once ``max_hvp`` HVPs are spent) each gets a Lanczos run of at most ``k`` steps,
      stopped early when the Krylov space is invariant to ``tol`` (a batch of ``B``
      samples has rank about ``B`` times the per-sample rank, so small batches cost
      ``B + 1`` HVPs or so), and is replaced by ``sigma I + Y^T diag(d) Y`` from its
      Ritz pairs, ``sigma`` the smallest Ritz value (negative ones count as zero: a
      network's loss falls along negative curvature). The recursion then runs over the
      pool, reshuffled epoch by epoch, and the bisection over ``lr`` (common random
      numbers: one batch sequence per chain for every trial rate) costs no HVP at all.
      ``n_hvp`` is the pool's Lanczos steps plus one run on the full Hessian: 560-1,220
      HVPs on the benchmarks. The pool keeps its Ritz vectors, about ``max_hvp``
      vectors of length ``n_params``, within ``max_memory``: where all of them would
      not fit (networks: 1e5-1e6 parameters), each batch keeps only its top Ritz
      pairs, as many as fit, which carry the instability (the rest of its space
      takes the batch's smallest Ritz value); where not even one per batch fits,
      ``"chain"`` runs instead, with a warning.
    - ``"chain"``: the same recursion in the full space over fresh batches for each
      of the three chains, ``n_steps`` batch HVPs per trial rate (about 25 trials;
      6,000-12,600 HVPs on the benchmarks, 5-20x ``"batch"``). Same accuracy where
      the batch curvature is not heavy-tailed, somewhat less spread across seeds where
      it is (breast cancer, ``B <= 16``; see the benchmark figures below).
    - ``"mean"``: ``2 (1 + m) / E lambda_max(H_B)`` over ``n_batches`` random batches
      (one Lanczos run each): the curvature-noise rule. It is right when
      ``lambda_max(H_B)`` concentrates (large ``B``) but too high when it is
      heavy-tailed (small ``B``: a few sharp batches make SGD diverge).
    - ``"rmt"``: ``2 (1 + m) / (lambda_1 + c(B) tau_u / lambda_1)``, the mean-square
      stability of SGD along the top eigenvector ``u``, from one Lanczos run on the
      full Hessian and ``n_batches`` batch HVPs along ``u`` for
      ``tau_u = E ||(H_B - H) u||^2 / c(B)``: cheapest and valid for every batch size
      at once, but conservative for ``B < B*``.

    Why this rule: at small ``B`` the top eigenvalue ``l`` of ``H_B`` is spread out,
    and neither moment rule follows the measured divergence. ``2 / E[l]`` ignores the
    rare sharp batches (2-4x too high for logistic regression on breast cancer at
    ``B = 1``). Mean-square stability, ``E ||e||^2`` bounded, is far too cautious: its
    sufficient form ``lambda_max(E[(I - lr H_B)^2]) <= 1`` (Wu, Ma & E, 2018), computed
    exactly from the per-sample Hessians, is 7.0x and 7.8x below the measured rate at
    ``B = 1`` on breast cancer (least squares, logistic; 4.8x and 5.6x at ``B = 4``,
    1.7x on digits logistic at ``B = 1``), and its scalar version ``2 E[l] / E[l^2]``
    is 2.5x too low: runs of SGD survive long stretches in which the second moment of
    the recursion grows. The growth rule measures what a run does: measured / predicted
    was 0.80-1.12 (``"batch"``) and 0.82-1.06 (``"chain"``) for least squares and
    logistic regression on breast cancer and digits at ``B = 1 ... 256`` with seed 0,
    and 0.73-1.24 and 0.79-1.14 over seeds 0-5 (``benchmarks/bench_rmt.py``).

    Adam (EMA momentum ``beta1``, preconditioner frozen at ``D``) is heavy-ball SGD with
    momentum ``beta1`` and rate ``lr (1 - beta1)`` on ``D^-1/2 H_B D^-1/2``, stable at
    full batch iff ``lr < 2 (1 + beta1) / ((1 - beta1) lambda_max)`` (``38 / lambda``
    for ``beta1 = 0.9``; Cohen et al. 2022).

    This is the *linear-stability* rate: exact for quadratic losses (least squares,
    the local quadratic model of a convex loss), a lower bound for nonlinear
    networks, which often train beyond it (catapult and edge-of-stability dynamics,
    1.5-5x above it) while their loss first stops decreasing monotonically near it.

    Parameters
    ----------
    hvp : callable
        ``hvp(v, idx=None)``: Hessian-vector product of the mean loss over samples
        ``idx`` (all when None), on the caller's backend.
    n_params : int, optional
        Number of parameters (default ``hvp.n_params``, which numlab's Hessian
        operators carry).
    batch_size : int, optional
        The batch size; None means the full batch.
    n_samples : int, optional
        Number of training samples ``N`` (taken from ``hvp.n_samples`` when the
        operator has one); needed for a batch size.
    optimizer : {"sgd", "adam"}
        The optimiser.
    momentum : float
        SGD heavy-ball momentum in ``[0, 1)`` (PyTorch convention).
    betas : tuple of float
        Adam's ``(beta1, beta2)``; only ``beta1`` enters the bound.
    preconditioner : array of shape (n_params,), optional
        Adam's denominator ``sqrt(v_hat) + eps`` (positive); required for ``"adam"``.
    method : {"batch", "chain", "mean", "rmt"}
        The rule (see above).
    n_batches : int
        Number of random batches of the Lanczos runs (``"chain"``, ``"mean"``), the
        least number of pooled batches (``"batch"``), or the number of HVPs along
        ``u`` (``"rmt"``).
    n_steps : int
        Length of the training run whose stability ``"batch"`` and ``"chain"`` predict
        (the threshold falls slowly with it when the batch curvature is heavy-tailed).
    max_hvp : int
        ``"batch"``: the pool stops growing once its Lanczos runs have used this many
        HVPs (and it holds ``n_batches`` batches).
    max_memory : int
        ``"batch"``: bound in bytes on the pool's Ritz vectors (default 1 GiB); the
        pool keeps fewer Ritz pairs per batch (the top ones) to stay within it.
    k : int
        Largest number of HVPs per Lanczos run.
    tol : float
        Relative tolerance of each top eigenvalue.
    rng : None, int or numpy.random.Generator
        Seed of the batches and start vectors.
    like : array, optional
        Backend, device and dtype of the vectors (see :func:`lanczos`).
    progress : bool, default False
        Show progress bars on stderr (tqdm): one over the Lanczos runs (the full
        Hessian, then the pool's batches for ``"batch"``, which may stop early at
        ``max_hvp``, or the ``n_batches`` batches of the other methods), then, for
        ``"batch"`` and ``"chain"``, a counter of the trial rates of the bisection. The
        result is the same bit for bit.

    Returns
    -------
    LRResult
        ``lr`` (also ``float(result)``), ``lambda_max``, ``critical_batch_size``,
        ``n_hvp``, ``lr_mean``, ``heavy_tailed``, ...

    Warns
    -----
    BatchScalingWarning
        When the batch top eigenvalues are heavy-tailed (``E l^2 / (E l)^2 > 1.5`` or
        excess kurtosis above 5 over the sampled batches, or, for ``"batch"`` and
        ``"chain"``, a rate below ``lr_mean / 1.5``; all methods but ``"rmt"``). Rare
        sharp batches then make the divergence rate depend on the length of the run
        (breast cancer, least squares, ``B = 1``: 0.84x the 500-step rate after 2,000
        steps; pass the run length as ``n_steps``), ``"mean"`` is too high (up to 3-4x)
        and ``"rmt"`` unreliable. Where low-curvature but high-variance directions bind
        (z-scored digits, least squares, ``B <= 16``), ``"batch"`` was 1.7-2.0x below
        the measured rate with seed 0 (``"chain"`` 1.6-2.5x), and 0.53-2.7x over seeds
        0-5 (``"chain"`` 1.0-2.5x): the pool can miss the rare sharp samples.

    References
    ----------
    D. Granziol, S. Zohren & S. Roberts, JMLR 23(173), 2022; J. M. Cohen et al.,
    "Adaptive gradient methods at the edge of stability", 2022; L. Wu, C. Ma & W. E,
    "How SGD selects the global minima in over-parameterized learning: a dynamical
    stability perspective", NeurIPS 2018 (linear stability of SGD, the mean-square
    criterion); C. Lanczos, J. Res. Natl. Bur. Stand. 45 (1950), for the batch factors.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> X = np.random.default_rng(0).standard_normal((500, 10))
    >>> model = nl.rmt.LeastSquares(X, X[:, 0])
    >>> H = model.hessian(model.init_params())
    >>> full = nl.rmt.max_learning_rate(H, model.n_params, rng=0)
    >>> small = nl.rmt.max_learning_rate(H, model.n_params, 8, rng=0)
    >>> bool(float(small) < float(full))
    True
    """
    n_params, xp, device, dtype = _check_hvp(hvp, n_params, like)
    n_samples = _n_samples(n_samples, hvp)
    if batch_size is not None:
        if n_samples is None:
            raise ValueError(
                "`n_samples` must be given with a batch size (the number of training samples)"
            )
        batch_size = check_int(batch_size, "batch_size", low=1, high=n_samples)
    check_option(optimizer, "optimizer", ("sgd", "adam"))
    check_option(method, "method", ("batch", "chain", "mean", "rmt"))
    momentum = check_scalar(
        momentum, "momentum", low=0.0, high=1.0, low_inclusive=True, high_inclusive=False
    )
    if len(betas) != 2:
        raise ValueError(f"`betas` must be a pair (beta1, beta2); got {betas!r}")
    check_scalar(betas[0], "betas[0]", low=0.0, high=1.0, low_inclusive=True, high_inclusive=False)
    n_batches = check_int(n_batches, "n_batches", low=1)
    n_steps = check_int(n_steps, "n_steps", low=1)
    max_hvp = check_int(max_hvp, "max_hvp", low=0)
    k = check_int(k, "k", low=1)
    tol = check_scalar(tol, "tol", low=0.0, high=1.0, high_inclusive=False)
    progress = check_progress(progress)
    rng = check_rng(rng)
    template = _template(hvp, None, like)

    op = hvp = _shape_checked(hvp, n_params, xp)
    if optimizer == "adam":
        if preconditioner is None:
            raise ValueError(
                "`preconditioner` must be given for optimizer='adam': Adam's denominator "
                "sqrt(v_hat) + eps, an array of shape (n_params,)"
            )
        d = check_array(preconditioner, "preconditioner", ndim=1, shape=(n_params,))
        if bool(xp.any(d <= 0)):
            raise ValueError("`preconditioner` must be positive (Adam's sqrt(v_hat) + eps)")
        scale = 1.0 / xp.sqrt(xp.astype(d, dtype))

        def op(v, idx=None):
            return scale * hvp(scale * v, idx)

    with Progress(progress, "nl.rmt.max_learning_rate: Lanczos", total=1, unit="run") as bar:
        bar.note("full Hessian")
        full = _top(_batch_operator(op, None), n_params, k, tol, rng, template)
        bar.update()
        lambda_1 = float(full.values[-1])
        n_hvp = full.n_matvec
        lam, spread, kurt, critical, heavy, m2 = lambda_1, 0.0, 0.0, float("nan"), False, 1.0
        c = 0.0 if batch_size is None else finite_sample_factor(batch_size, n_samples)
        factor = _stability_factor(optimizer, momentum, betas)
        pool, n_keep = None, None
        max_memory = check_int(max_memory, "max_memory", low=1)
        if c > 0 and method == "batch":
            # At most n_max batch factors; each keeps n_keep Ritz vectors so that all fit.
            n_max = max(n_batches, n_samples // batch_size)
            per_factor = max_memory // (n_max * n_params * _itemsize(xp, dtype))
            if per_factor < 1:
                warnings.warn(
                    f"max_learning_rate: method='batch' cannot keep even one Ritz vector per "
                    f"batch for {n_max} batches of {n_params} parameters within max_memory = "
                    f"{max_memory / 2**30:.2g} GiB; running method='chain' instead (O(n_params) "
                    "memory, about 10x the HVPs). Raise max_memory, or pass method='mean' for "
                    "the cheap curvature-noise rule",
                    RuntimeWarning,
                    stacklevel=2,
                )
                method = "chain"
            elif per_factor < k:
                n_keep = int(per_factor)
        if c > 0 and method == "batch":
            bar.set_total(1 + n_max)
            pool, used = _batch_pool(
                op, n_params, n_samples, batch_size, n_batches, n_max, max_hvp, k, tol, rng,
                template, n_keep, bar=bar,
            )
            n_hvp += used
            values = np.asarray([f.top for f in pool])
        elif c > 0 and method in ("chain", "mean"):
            bar.set_total(1 + n_batches)
            values = []
            for _ in range(n_batches):
                idx = _draw_batch(rng, n_samples, batch_size, xp, device)
                res = _top(_batch_operator(op, idx), n_params, k, tol, rng, template)
                n_hvp += res.n_matvec
                values.append(float(res.values[-1]))
                bar.update()
            values = np.asarray(values)
        elif c > 0:  # method == "rmt"
            u = full.vectors[:, 0]
            Hu = _apply(lambda v: op(v, None), u, n_params, xp, "hvp")
            n_hvp += 1
            tau = 0.0
            bar.set_total(1 + n_batches)
            for _ in range(n_batches):
                idx = _draw_batch(rng, n_samples, batch_size, xp, device)
                diff = _apply(lambda v, idx=idx: op(v, idx), u, n_params, xp, "hvp") - Hu
                tau += float(xp.vecdot(diff, diff)) / c
                bar.update()
            n_hvp += n_batches
            tau /= n_batches
            if lambda_1 > 0:
                lam = lambda_1 + c * tau / lambda_1
                critical = tau / lambda_1**2
    if c > 0 and method != "rmt":
        lam, spread, kurt = float(values.mean()), float(values.std()), _kurtosis(values)
        if lambda_1 > 0:
            critical = max(lam / lambda_1 - 1.0, 0.0) / c
        heavy, m2 = _is_heavy_tailed(values) if lam > 0 else (False, 1.0)
    lr = lr_mean = factor / lam if lam > 0 else float("inf")
    if not lam > 0:
        warnings.warn(
            f"max_learning_rate: the top curvature is {lam:.3g} (<= 0: a zero, negative or "
            "flat Hessian), so no learning rate makes the quadratic model diverge; "
            "returning lr = inf",
            RuntimeWarning,
            stacklevel=2,
        )
    if c > 0 and method in ("batch", "chain") and lam > 0:
        # Adam: heavy ball with momentum beta1 at rate lr (1 - beta1) on the
        # preconditioned Hessian; search in that rate, whose full-batch bound is
        # 2 (1 + beta1) / lambda like SGD's.
        beta = momentum if optimizer == "sgd" else float(betas[0])
        to_step = 1.0 if optimizer == "sgd" else 1.0 - beta
        with Progress(progress, "nl.rmt.max_learning_rate: bisection", unit="rate") as bar:
            if method == "batch":
                step = _stable_rate_pool(
                    pool, n_params, beta, lr_mean * to_step, n_steps, 0.02, rng, template, bar
                )
            else:
                step, used = _stable_rate_chains(
                    op, n_params, n_samples, batch_size, beta, lr_mean * to_step, n_steps, 0.02,
                    rng, template, bar,
                )
                n_hvp += used
        lr = step / to_step
        # Sharp batches that bind show up directly as a growth rate well below the mean
        # rule, even when a few Lanczos samples miss the tail.
        heavy = heavy or lr < lr_mean / 1.5
    if heavy:
        warnings.warn(
            "max_learning_rate: the batch curvature is heavy-tailed "
            f"(E l^2 / (E l)^2 = {m2:.2f}, excess kurtosis {kurt:.1f} over "
            f"{n_batches} batches of {batch_size}); rare sharp batches make the "
            "divergence rate depend on the run: runs longer than "
            f"n_steps = {n_steps} diverge at lower rates (pass the run length as n_steps)"
            + ("" if method in ("batch", "chain") else f"; method={method!r} is then too high"),
            BatchScalingWarning,
            stacklevel=2,
        )
    return LRResult(
        lr=lr,
        lambda_max=lam,
        lambda_full=lambda_1,
        critical_batch_size=critical,
        batch_size=batch_size,
        optimizer=optimizer,
        method=method,
        n_hvp=n_hvp,
        lambda_std=spread,
        kurtosis=kurt,
        lr_mean=lr_mean,
        heavy_tailed=bool(heavy),
    )


def scale_learning_rate(lr, batch_from, batch_to, optimizer="sgd", *, critical_batch_size=None):
    """Transfer a learning rate from one batch size to another.

    SGD's largest stable learning rate is ``(2/lambda_1) / (1 + B*/B)`` (up to the
    finite-sample factor): linear in ``B`` below the critical batch size ``B*`` and
    constant above it. Adam's grows like the square root of the same factor
    (Granziol, Zohren & Roberts, 2022). Without ``critical_batch_size`` the rules are
    the pure linear and square-root ones.

    Parameters
    ----------
    lr : float
        Learning rate at ``batch_from``.
    batch_from, batch_to : float
        Batch sizes (positive).
    optimizer : {"sgd", "adam"}
        Linear (SGD) or square-root (Adam) scaling.
    critical_batch_size : float, optional
        ``B*`` (e.g. from :func:`fit_batch_scaling` or :func:`max_learning_rate`);
        scaling saturates above it.

    Returns
    -------
    float
        The learning rate at ``batch_to``.

    Examples
    --------
    >>> import numlab as nl
    >>> nl.rmt.scale_learning_rate(0.1, 32, 128), nl.rmt.scale_learning_rate(0.1, 32, 128, "adam")
    (0.4, 0.2)
    """
    lr = check_scalar(lr, "lr", low=0.0)
    batch_from = check_scalar(batch_from, "batch_from", low=0.0)
    batch_to = check_scalar(batch_to, "batch_to", low=0.0)
    check_option(optimizer, "optimizer", ("sgd", "adam"))
    if critical_batch_size is None:
        ratio = batch_to / batch_from
    else:
        bstar = check_scalar(
            critical_batch_size, "critical_batch_size", low=0.0, low_inclusive=True
        )
        ratio = (batch_to / (batch_to + bstar)) / (batch_from / (batch_from + bstar))
    return lr * (ratio if optimizer == "sgd" else math.sqrt(ratio))


# --------------------------------------------------------------------------- gradient noise scale


@dataclasses.dataclass(frozen=True, repr=False)
class NoiseScale(CompactRepr):
    """McCandlish et al.'s gradient noise scales.

    Parameters
    ----------
    simple : float
        ``B_simple = tr(Sigma) / |G|^2``, the usual estimate of the critical batch size.
    noise : float
        ``B_noise = tr(H Sigma) / (G^T H G)`` (NaN without an ``hvp``).
    grad_norm_sq : float
        ``|G|^2`` of the full gradient.
    trace_cov : float
        ``tr(Sigma)``, the trace of the per-sample gradient covariance.
    n_gradients : int
        Gradient evaluations used (batches plus one full gradient).
    """

    simple: float
    noise: float
    grad_norm_sq: float
    trace_cov: float
    n_gradients: int


def gradient_noise_scale(gradient, n_samples, *, batch_size=32, n_batches=16, hvp=None, rng=None):
    """McCandlish et al.'s gradient noise scale, to compare with the critical batch size.

    Uses the full gradient ``G`` and ``n_batches`` batch gradients ``G_B``: since
    ``E ||G_B - G||^2 = c(B) tr(Sigma)`` exactly for batches drawn without replacement,
    ``tr(Sigma)`` is estimated without bias; with ``hvp``, ``tr(H Sigma)`` likewise
    from ``(G_B - G)^T H (G_B - G)``.

    Parameters
    ----------
    gradient : callable
        ``gradient(idx=None)``: gradient of the mean loss over samples ``idx`` (all
        when None), a 1-D array on the caller's backend.
    n_samples : int
        Number of training samples ``N``.
    batch_size : int
        Batch size of the noisy gradients, ``1 <= B < N``.
    n_batches : int
        Number of batch gradients.
    hvp : callable, optional
        ``hvp(v, idx=None)``; gives ``B_noise`` as well.
    rng : None, int or numpy.random.Generator
        Seed of the batches.

    Returns
    -------
    NoiseScale
        ``simple`` (``B_simple``), ``noise`` (``B_noise``), ``grad_norm_sq``, ``trace_cov``.

    References
    ----------
    S. McCandlish, J. Kaplan, D. Amodei et al., "An empirical model of large-batch
    training", arXiv:1812.06162 (2018).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> X = np.random.default_rng(0).standard_normal((300, 4))
    >>> model = nl.rmt.LeastSquares(X, X[:, 0] + 0.5)
    >>> w = model.init_params()
    >>> gns = nl.rmt.gradient_noise_scale(lambda idx=None: model.gradient(w, idx), 300, rng=0)
    >>> bool(gns.simple > 0)
    True
    """
    if not callable(gradient):
        raise TypeError(
            f"`gradient` must be callable as gradient(idx=None); got {type(gradient).__name__}"
        )
    n_samples = check_int(n_samples, "n_samples", low=2)
    batch_size = check_int(batch_size, "batch_size", low=1, high=n_samples - 1)
    n_batches = check_int(n_batches, "n_batches", low=1)
    rng = check_rng(rng)
    G = gradient(None)
    xp = _backend.namespace(G)
    device = _backend.device(G)
    n = G.shape[0]
    c = finite_sample_factor(batch_size, n_samples)
    gg = _finite(float(xp.vecdot(G, G)), "gradient")
    trace_cov, trace_hcov = 0.0, 0.0
    for _ in range(n_batches):
        idx = _draw_batch(rng, n_samples, batch_size, xp, device)
        d = _apply(lambda _v, idx=idx: gradient(idx), G, n, xp, "gradient") - G
        trace_cov += _finite(float(xp.vecdot(d, d)), "gradient")
        if hvp is not None:
            trace_hcov += float(xp.vecdot(d, _apply(hvp, d, n, xp, "hvp")))
    trace_cov /= n_batches * c
    noise = float("nan")
    if hvp is not None:
        gHg = float(xp.vecdot(G, _apply(hvp, G, n, xp, "hvp")))
        noise = (trace_hcov / (n_batches * c)) / gHg if gHg > 0 else float("inf")
    return NoiseScale(
        simple=trace_cov / gg if gg > 0 else float("inf"),
        noise=noise,
        grad_norm_sq=gg,
        trace_cov=trace_cov,
        n_gradients=n_batches + 1,
    )


# --------------------------------------------------------------------------- measured divergence


def _sgd_diverges(model, w0, lr, batch_size, n_steps, momentum, seed, check_every, adam=None,
                  peak=1e3):
    """Whether a training run from ``w0`` diverges: SGD with heavy-ball ``momentum``, or
    Adam (torch's update) when ``adam = (beta1, beta2, eps)``."""
    xp = model.xp
    rng = np.random.default_rng(seed)
    N = model.n_samples
    loss0 = model.loss(w0)
    w, velocity, m, v = w0, None, None, None
    order, pos = rng.permutation(N), 0
    for step in range(1, n_steps + 1):
        if pos + batch_size > N:  # epoch-wise reshuffling; a short tail batch is skipped
            order, pos = rng.permutation(N), 0
        idx = (
            None
            if batch_size == N
            else _backend.asarray(order[pos : pos + batch_size], xp=xp, device=model.device)
        )
        pos += batch_size
        try:
            g = model.gradient(w, idx)
        except ValueError:
            # a NumPy model refuses the overflowed w of a huge rate: that is divergence
            if not bool(xp.all(xp.isfinite(w))):
                return True
            raise
        if adam is not None:
            beta1, beta2, eps = adam
            m = (1.0 - beta1) * g if m is None else beta1 * m + (1.0 - beta1) * g
            v = (1.0 - beta2) * g * g if v is None else beta2 * v + (1.0 - beta2) * g * g
            denom = xp.sqrt(v) / math.sqrt(1.0 - beta2**step) + eps
            w = w - (lr / (1.0 - beta1**step)) * m / denom
        else:
            velocity = g if velocity is None or momentum == 0 else momentum * velocity + g
            w = w - lr * velocity
        if step % check_every == 0 or step == n_steps:
            if not bool(xp.all(xp.isfinite(w))):
                return True
            loss = model.loss(w)
            if not math.isfinite(loss) or loss > peak * loss0:
                return True
    return model.loss(w) > 10 * loss0


def measure_max_learning_rate(
    model,
    batch_size=None,
    *,
    w0=None,
    n_steps=500,
    momentum=0.0,
    seeds=(0, 1, 2),
    rtol=0.02,
    lr_start=None,
    optimizer="sgd",
    betas=(0.9, 0.999),
    eps=1e-8,
    check_every=25,
    peak=1e3,
    progress=False,
):
    """The learning rate at which training actually diverges, found by bisection (the reference).

    Runs plain SGD (epoch-wise reshuffling, optional heavy-ball momentum), or Adam, for
    ``n_steps`` steps from ``w0`` and calls a run diverged when the full loss becomes
    non-finite or exceeds ``peak`` (``1e3``) times the initial loss at a check (every
    ``check_every`` steps), or ends above ``10`` times it. A geometric bisection locates
    the threshold to ``rtol`` for each seed; the median over seeds is returned. This is
    what :func:`max_learning_rate` predicts for quadratic losses.

    A network can *recover* from an instability: above its linear-stability rate the
    loss of a neural operator first spikes by 100-1000x, then the curvature falls below
    ``2 / lr`` and training goes on (the catapult of Lewkowycz et al., 2020). The
    default criteria count such a run as stable; ``check_every=1, peak=10`` counts the
    spike, the onset of instability.

    Parameters
    ----------
    model : LeastSquares, LogisticRegression, MLP or numlab.operators.OperatorLoss
        A built-in model (anything with ``loss(w, idx)``, ``gradient(w, idx)``,
        ``n_samples``, ``xp``, ``device`` and ``init_params()``), or a neural
        operator's training loss.
    batch_size : int, optional
        Batch size (None: full batch).
    w0 : array of shape (n_params,), optional
        Start point (default ``model.init_params(0)``).
    n_steps : int
        SGD steps per run.
    momentum : float
        Heavy-ball momentum, in ``[0, 1)``.
    seeds : sequence of int
        Seeds of the batch orders; the median threshold is returned.
    rtol : float
        Relative precision of the bisection, ``>= 1e-12`` (the bisection stops at
        float64 rounding in any case, after at most 100 halvings).
    lr_start : float, optional
        First learning rate tried (default 1).
    optimizer : {"sgd", "adam"}
        The optimiser of the runs; Adam is torch's (bias-corrected, ``momentum``
        unused).
    betas : tuple of float
        Adam's ``(beta1, beta2)``.
    eps : float
        Adam's ``eps``.
    check_every : int
        Steps between two evaluations of the full loss.
    peak : float
        A run whose loss exceeds ``peak`` times its start at a check has diverged
        (``> 1``).
    progress : bool, default False
        Show a progress bar on stderr (tqdm) counting the training runs of the
        bisections (each ``n_steps`` steps), with the seed and the rate tried. The
        result is the same bit for bit.

    Returns
    -------
    float
        The median divergence threshold.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> X = np.random.default_rng(0).standard_normal((200, 3))
    >>> model = nl.rmt.LeastSquares(X, X[:, 0])
    >>> lr = nl.rmt.measure_max_learning_rate(model, n_steps=100, seeds=(0,))
    >>> lam = np.linalg.eigvalsh(model.hessian(model.init_params()).dense())[-1]
    >>> bool(0.9 < lr * lam / 2 < 1.1)
    True
    """
    N = model.n_samples
    batch_size = N if batch_size is None else check_int(batch_size, "batch_size", low=1, high=N)
    n_steps = check_int(n_steps, "n_steps", low=1)
    rtol = check_scalar(rtol, "rtol", low=_MIN_RTOL, low_inclusive=True)
    momentum = check_scalar(
        momentum, "momentum", low=0.0, high=1.0, low_inclusive=True, high_inclusive=False
    )
    check_option(optimizer, "optimizer", ("sgd", "adam"))
    check_every = check_int(check_every, "check_every", low=1)
    peak = check_scalar(peak, "peak", low=1.0)
    progress = check_progress(progress)
    adam = None
    if optimizer == "adam":
        if len(betas) != 2:
            raise ValueError(f"`betas` must be a pair (beta1, beta2); got {betas!r}")
        adam = (
            check_scalar(betas[0], "betas[0]", low=0.0, high=1.0, low_inclusive=True,
                         high_inclusive=False),
            check_scalar(betas[1], "betas[1]", low=0.0, high=1.0, low_inclusive=True,
                         high_inclusive=False),
            check_scalar(eps, "eps", low=0.0),
        )
    if w0 is None:
        w0 = model.init_params(0)
    elif hasattr(model, "_check_vector"):  # numlab's models: named as the caller knows it
        w0 = model._check_vector(w0, "w0")
    seeds = list(seeds) if hasattr(seeds, "__iter__") and not isinstance(seeds, str) else None
    if not seeds:
        raise ValueError("`seeds` must be a non-empty sequence of integer seeds")
    thresholds = []
    with Progress(progress, "nl.rmt.measure_max_learning_rate", unit="run") as bar:
        for seed in seeds:

            def diverges(lr, seed=seed):
                bar.note(f"seed {seed}, lr {lr:.4g}")
                with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows
                    failed = _sgd_diverges(
                        model, w0, lr, batch_size, n_steps, momentum, seed, check_every, adam, peak
                    )
                bar.update()
                return failed

            start = 1.0 if lr_start is None else check_scalar(lr_start, "lr_start", low=0.0)
            lr, bracketed = _threshold(diverges, start, rtol, 40)
            if not bracketed and lr_start is not None:
                raise ValueError(
                    f"`lr_start` must be within a factor 2**40 of the divergence threshold: SGD "
                    f"diverged at every rate or at none between lr = {start / 2**40:.3g} and "
                    f"{start * 2**40:.3g}; got lr_start={lr_start!r}"
                )
            if not bracketed:
                raise RuntimeError(
                    f"measure_max_learning_rate: {optimizer} diverged at every rate or at none "
                    f"between lr = {start / 2**40:.3g} and {start * 2**40:.3g}"
                )
            thresholds.append(lr)
    return float(np.median(thresholds))
