"""nl.rmt: HVP counts, SLQ accuracy and predicted vs measured learning rates (issue 8).

- ``TopEigenvalue``: HVPs and accuracy of the top Hessian eigenvalue of a 2,410-parameter
  MLP (digits, 64-32-10 tanh) for numlab's Lanczos against the anchors: PyHessian-style
  power iteration (its default stopping rule, and an oracle stop at 1e-6 relative error,
  the fewest HVPs power iteration can need) and ARPACK (``scipy.sparse.linalg.eigsh``).
- ``SLQDensity``: extremes and Wasserstein-1 error of the SLQ density against ``eigvalsh``.
- ``LearningRate``: predicted largest stable SGD learning rate against the rate at which
  SGD actually diverges (bisection; the anchor), for least squares and logistic
  regression on scikit-learn's breast cancer and digits data: the default rule (growth of
  the linearised SGD recursion over sampled batches) and the mean-curvature rule
  ``2 / E lambda_max(H_B)`` side by side.
- ``BatchScaling``: R^2, exponent and critical batch size of the fitted 1/B law.
- ``LanczosOverhead``: share of Lanczos time spent outside the HVPs (re-orthogonalisation),
  the measurement behind "no hand-written kernel".

Run: ``cd benchmarks && asv run --python=same --quick --show-stderr -b bench_rmt``, or
``python -m benchmarks.bench_rmt`` for the table of measured / predicted learning rates
(set ``NUMLAB_BENCH_CACHE`` to an empty folder to re-measure the divergence rates).
"""

import functools
import time
import warnings

import numpy as np

import numlab as nl

from .common import cached

rmt = nl.rmt


# --------------------------------------------------------------------------- data


@functools.cache
def _data(name):
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "breast":
        X, y = load_breast_cancer(return_X_y=True)
        return (X - X.mean(0)) / X.std(0), y
    X, y = load_digits(return_X_y=True)
    if name == "digits":
        return X / 16.0, y
    std = X.std(0)  # "zdigits": z-scored pixels, heavy-tailed per-sample curvature
    std[std == 0] = 1.0
    return (X - X.mean(0)) / std, y


@functools.cache
def _mlp(loss):
    X, y = _data("digits")
    model = rmt.MLP(X, y, hidden=32, loss=loss)
    w = model.init_params(0)
    return model, w, model.hessian(w)


@functools.cache
def _reference_top(loss):
    """ARPACK to 1e-14: the reference top eigenvalue."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    model, _, H = _mlp(loss)
    n = model.n_params
    op = LinearOperator((n, n), matvec=lambda v: H(np.ravel(v)), dtype=np.float64)
    return float(eigsh(op, k=1, which="LA", tol=1e-14, v0=np.ones(n))[0][0])


def _dense_eigenvalues(loss):
    model, _, H = _mlp(loss)
    start = time.perf_counter()
    values = np.linalg.eigvalsh(np.asarray(H.dense()))
    return values, time.perf_counter() - start


class _Counted:
    def __init__(self, H):
        self.H, self.count = H, 0

    def __call__(self, v, idx=None):
        self.count += 1
        return self.H(v, idx)


def _power_iteration(H, n, seed, *, ref=None, tol=1e-3, max_iter=500):
    """PyHessian's power iteration: Rayleigh quotient, stop on its relative change.

    With ``ref``, stop instead as soon as the relative error reaches 1e-6 (an oracle:
    the fewest HVPs power iteration can use for that accuracy).
    """
    v = np.random.default_rng(seed).standard_normal(n)
    v /= np.linalg.norm(v)
    value, n_hvp = None, 0
    for _ in range(max_iter):
        hv = H(v)
        n_hvp += 1
        new = float(v @ hv)
        v = hv / np.linalg.norm(hv)
        if ref is not None:
            if abs(new - ref) <= 1e-6 * abs(ref):
                return new, n_hvp
        elif value is not None and abs(new - value) / (abs(value) + 1e-6) < tol:
            return new, n_hvp
        value = new
    return new, n_hvp


# --------------------------------------------------------------------------- top eigenvalue


class TopEigenvalue:
    """Top eigenvalue of a 2,410-parameter MLP Hessian: HVPs and relative error."""

    params = (
        ["numlab-lanczos", "power-iteration-oracle", "pyhessian-default", "scipy-eigsh"],
        ["mse", "ce"],
    )
    param_names = ["method", "loss"]
    seeds = range(5)
    timeout = 600  # the track methods run five seeds

    def setup(self, method, loss):
        self.model, self.w, self.H = _mlp(loss)
        self.ref = _reference_top(loss)

    def _run(self, method, seed):
        n = self.model.n_params
        H = _Counted(self.H)
        if method == "numlab-lanczos":
            value = rmt.eigsh(H, n, tol=1e-6, rng=seed).values[-1]
        elif method == "power-iteration-oracle":
            value, _ = _power_iteration(H, n, seed, ref=self.ref)
        elif method == "pyhessian-default":
            value, _ = _power_iteration(H, n, seed, tol=1e-3, max_iter=100)
        else:
            from scipy.sparse.linalg import LinearOperator, eigsh

            op = LinearOperator((n, n), matvec=lambda v: H(np.ravel(v)), dtype=np.float64)
            v0 = np.random.default_rng(seed).standard_normal(n)
            value = float(eigsh(op, k=1, which="LA", tol=1e-6, v0=v0)[0][0])
        return float(value), H.count

    def time_top_eigenvalue(self, method, loss):
        self._run(method, 0)

    def track_hvp_count(self, method, loss):
        return float(np.median([self._run(method, s)[1] for s in self.seeds]))

    track_hvp_count.unit = "HVPs"

    def track_relative_error(self, method, loss):
        return float(
            np.median([abs(self._run(method, s)[0] - self.ref) / self.ref for s in self.seeds])
        )

    track_relative_error.unit = "relative error"


# --------------------------------------------------------------------------- SLQ density


class SLQDensity:
    """SLQ (10 probes) against eigvalsh of the dense 2,410 x 2,410 MLP Hessian."""

    params = ([30, 80], ["mse", "ce"])
    param_names = ["k", "loss"]
    timeout = 900  # the dense reference (2,410 HVPs + eigvalsh) is built once and cached on disk

    def setup(self, k, loss):
        self.model, self.w, self.H = _mlp(loss)
        self.values, _ = cached("rmt-mlp-eigvalsh", _dense_eigenvalues, loss)

    def _density(self, k):
        return rmt.spectral_density(self.H, self.model.n_params, n_probes=10, k=k, rng=0)

    def time_spectral_density(self, k, loss):
        self._density(k)

    def track_w1_over_range(self, k, loss):
        from scipy.stats import wasserstein_distance

        nodes, weights = self._density(k)
        span = self.values[-1] - self.values[0]
        return float(wasserstein_distance(nodes, self.values, u_weights=weights) / span)

    track_w1_over_range.unit = "W1 / range"

    def track_extreme_error(self, k, loss):
        nodes, _ = self._density(k)
        span = self.values[-1] - self.values[0]
        return float(
            max(abs(nodes.max() - self.values[-1]), abs(nodes.min() - self.values[0])) / span
        )

    track_extreme_error.unit = "error / range"


# --------------------------------------------------------------------------- learning rates


@functools.cache
def _problem(dataset, model):
    """(model to train, Hessian operator): least squares from w = 0, or the quadratic
    model of L2-regularised logistic regression at its minimiser (its SGD is the
    linearised SGD; the logistic loss itself never blows up, see the notes)."""
    X, y = _data(dataset)
    if model == "lsq":
        m = rmt.LeastSquares(X, y.astype(float))
        return m, m.hessian(m.init_params())
    quad = rmt.LocalQuadratic.at_minimum(rmt.LogisticRegression(X, y, alpha=1e-2))
    return quad, quad.hessian()


@functools.cache
def _predicted(dataset, model, batch_size, method="batch"):
    m, H = _problem(dataset, model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", rmt.BatchScalingWarning)
        result = rmt.max_learning_rate(
            H, m.n_params, batch_size, n_samples=m.n_samples, n_batches=32, method=method, rng=0
        )
    return result, any(issubclass(w.category, rmt.BatchScalingWarning) for w in caught)


def _measured(dataset, model, batch_size):
    m, _ = _problem(dataset, model)
    return rmt.measure_max_learning_rate(
        m,
        batch_size,
        n_steps=500,
        seeds=(0, 1, 2),
        lr_start=_predicted(dataset, model, batch_size)[0].lr,
    )


class LearningRate:
    """Predicted largest stable SGD rate vs the measured divergence rate (bisection, 3 seeds)."""

    params = (["breast", "digits", "zdigits"], ["lsq", "logistic"], [1, 4, 16, 64, 256])
    param_names = ["dataset", "model", "batch_size"]
    timeout = 900

    def setup(self, dataset, model, batch_size):
        if dataset == "zdigits" and model == "logistic":
            raise NotImplementedError  # z-scored digits: least squares only (the heavy-tailed case)
        self.args = (dataset, model, batch_size)

    def time_predict(self, dataset, model, batch_size):
        m, H = _problem(dataset, model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rmt.max_learning_rate(
                H, m.n_params, batch_size, n_samples=m.n_samples, n_batches=32, rng=1
            )

    def track_measured_over_predicted(self, dataset, model, batch_size):
        measured = cached("rmt-measured-lr", _measured, *self.args)
        return float(measured / _predicted(*self.args)[0].lr)

    track_measured_over_predicted.unit = "ratio"

    def track_measured_over_mean_rule(self, dataset, model, batch_size):
        """The same ratio for ``2 / E lambda_max(H_B)`` (``method="mean"``)."""
        measured = cached("rmt-measured-lr", _measured, *self.args)
        return float(measured / _predicted(*self.args)[0].lr_mean)

    track_measured_over_mean_rule.unit = "ratio"

    def track_predicted_lr(self, dataset, model, batch_size):
        return float(_predicted(*self.args)[0].lr)

    track_predicted_lr.unit = "lr"

    def track_hvp_count(self, dataset, model, batch_size):
        return float(_predicted(*self.args)[0].n_hvp)

    track_hvp_count.unit = "HVPs"

    def track_heavy_tail_warning(self, dataset, model, batch_size):
        return float(_predicted(*self.args)[1])

    track_heavy_tail_warning.unit = "warned"


class BatchScaling:
    """Fit of lambda_max(H_B) = a + b (N - B) / (B (N - 1)) over B = 1 ... 256 (64 batches each)."""

    params = (["breast", "digits", "zdigits"], ["lsq", "logistic"])
    param_names = ["dataset", "model"]
    timeout = 600
    sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256]

    def setup(self, dataset, model):
        if dataset == "zdigits" and model == "logistic":
            raise NotImplementedError
        m, H = _problem(dataset, model)
        self.curve = rmt.batch_curvature(
            H, m.n_params, m.n_samples, self.sizes, n_batches=64, rng=0
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", rmt.BatchScalingWarning)
            self.fit = rmt.fit_batch_scaling(
                self.curve.batch_sizes, self.curve.mean, n_samples=m.n_samples
            )
        self.warned = any(issubclass(w.category, rmt.BatchScalingWarning) for w in caught)

    def track_kurtosis_batch_of_one(self, dataset, model):
        """Excess kurtosis of the per-sample top curvature: large means heavy-tailed data."""
        return float(self.curve.kurtosis[0])

    track_kurtosis_batch_of_one.unit = "excess kurtosis"

    def track_r2(self, dataset, model):
        return float(self.fit.r2)

    track_r2.unit = "R^2"

    def track_exponent(self, dataset, model):
        return float(self.fit.exponent)

    track_exponent.unit = "exponent"

    def track_critical_batch_size(self, dataset, model):
        return float(self.fit.critical_batch_size)

    track_critical_batch_size.unit = "samples"

    def track_poor_fit_warning(self, dataset, model):
        return float(self.warned)

    track_poor_fit_warning.unit = "warned"


# --------------------------------------------------------------------------- where the time goes


class LanczosOverhead:
    """Share of an 80-step Lanczos run spent outside the HVPs (re-orthogonalisation, host work)."""

    params = (["mlp-2410"],)
    param_names = ["operator"]
    timeout = 600

    def setup(self, operator):
        self.model, self.w, self.H = _mlp("mse")
        self.v = np.random.default_rng(0).standard_normal(self.model.n_params)

    def time_lanczos_80(self, operator):
        rmt.lanczos(self.H, self.model.n_params, 80, rng=0)

    def time_80_hvps(self, operator):
        for _ in range(80):
            self.H(self.v)

    def track_overhead_fraction(self, operator):
        runs = []
        for _ in range(3):  # interleaved repeats (a loaded machine makes single runs noisy)
            start = time.perf_counter()
            rmt.lanczos(self.H, self.model.n_params, 80, rng=0)
            lanczos = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(80):
                self.H(self.v)
            hvps = time.perf_counter() - start
            runs.append(max(lanczos - hvps, 0.0) / lanczos)
        return float(np.median(runs))

    track_overhead_fraction.unit = "fraction"


def learning_rate_table(with_chain=True):
    """Measured / predicted learning rate for every LearningRate case (the issue-8 target).

    With ``with_chain``, also the ratio and HVP count of ``method="chain"`` (linearised
    SGD in the full space over fresh batches, the default before the pooled factors).
    """
    bench = LearningRate()
    datasets, models, sizes = LearningRate.params
    print(
        "dataset  model     B     measured  predicted  ratio  mean-rule ratio  warned  n_hvp"
        "  | chain ratio  chain n_hvp"
    )
    for dataset in datasets:
        for model in models:
            for batch_size in sizes:
                try:
                    bench.setup(dataset, model, batch_size)
                except NotImplementedError:
                    continue
                result, warned = _predicted(dataset, model, batch_size)
                chain = _predicted(dataset, model, batch_size, "chain")[0] if with_chain else None
                measured = cached("rmt-measured-lr", _measured, dataset, model, batch_size)
                line = (
                    f"{dataset:8s} {model:8s} {batch_size:4d}  {measured:9.4g}  {result.lr:9.4g}"
                    f"  {measured / result.lr:5.2f}  {measured / result.lr_mean:15.2f}"
                    f"  {warned!s:6s}  {result.n_hvp:5d}"
                )
                if chain is not None:
                    line += f"  | {measured / chain.lr:11.2f}  {chain.n_hvp:11d}"
                print(line, flush=True)


if __name__ == "__main__":
    import sys

    learning_rate_table(with_chain="--no-chain" not in sys.argv)
