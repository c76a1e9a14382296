"""nl.rmt on numlab's neural operators: Hessian spectra and learning rates of an FNO (issue 20).

The FNO issue's small configuration (n_modes 16, hidden 32: 86,817 real parameters) on nl.pde
Burgers (viscosity 0.01, s = 128, 256 training and 100 test samples), float32 training, the
curvature in float64 (``nl.operators.OperatorLoss``, centred differences of the exact
gradients). The loss is the squared relative L2 error (``loss="l2sq"``): the learning-rate
theory is about losses quadratic in the prediction. The model is first trained for 5 epochs
of Adam (lr 3e-3, batch 16), the point where the rates are predicted and measured.

- ``top``: Lanczos HVPs to the top Hessian eigenvalue at ``tol=1e-6``, against a
  ``tol=1e-12`` reference run.
- ``scaling``: ``lambda_max(H_B)`` over 16-96 random batches per ``B = 4 ... 128`` and the
  weighted fit ``lambda_1 + slope c(B)``, ``c(B) = (N - B) / (B (N - 1))`` (R^2, exponent of
  the excess).
- ``sgd``: ``max_learning_rate`` (``method="batch"``, the pool bounded by ``max_memory``)
  against the rate at which SGD diverges (``measure_max_learning_rate``: bisection on real
  training runs of ``N_STEPS`` steps from the same point), ``B = 4, 16, 64, 256``; with the
  estimate's time over one training epoch's at that batch size.
- ``cheap``: the cheapest estimates (``method="rmt"``; ``2 / lambda_max`` of 32 samples in
  float32) against the measured rate and the time of a training epoch.
- ``memory``: the prediction at ``B = 16`` with the pool bounded to 1-8 Ritz vectors per
  batch (``max_memory``) against the unbounded pool.
- ``adam``: the measured Adam divergence rates against the square-root rule carried from
  ``B = 16`` (``scale_learning_rate(..., optimizer="adam")``), pure and saturating at the
  gradient noise scale. (Adam's 10x-spike rate is set by its first steps, where every
  coordinate moves by about ``lr`` whatever the batch, not by the batch size.)
- ``slq``: SGD from the initialisation for 20 epochs (batch 16) with ``SLQLearner`` setting
  the learning rate every 40 steps from the Hessian of 64 fixed samples, against the best of 5
  constant rates: test relative L2 errors, seeds 0 and 1 (initialisation, shuffling and
  probes). Plain SGD on both sides (``max_momentum=0``): with momentum, noisy small-batch
  SGD diverged well inside heavy ball's linear-stability bound (momentum 0.9: at 0.008 ~
  2 / lambda, where the bound is 3.8 / lambda). The learner runs twice: given the loss on
  its 64 samples at each estimate (``update(..., loss=)``: the rate is lowered only once
  that loss has risen) and without it (every estimate's rate is taken).
  Measured 2026-12-03 (one thread):

  ====== ===================================================== =============== ==============
  seed   constant 0.001 / 0.002 / 0.004 / 0.008 / 0.016        given the loss  without it
  ====== ===================================================== =============== ==============
  0      0.882 / 0.681 / 0.623 / **0.532** / diverged          0.548 (1.03x)   0.606 (1.14x)
  1      0.888 / 0.673 / 0.617 / **0.530** / diverged          0.526 (0.99x)   0.532 (1.00x)
  ====== ===================================================== =============== ==============

  Without the loss, seed 0's rates at steps 0, 40, ..., 280 were 0.0080, 0.0070, 0.0112,
  0.0066, 0.0062, 0.0060, 0.0059, 0.0057: setting ``2 / lambda_max`` again and again follows
  the progressive sharpening that training at that rate causes, so the rate keeps falling,
  while the constant 0.008 trains at the edge of stability, where the sharpness settles a
  little above ``2 / 0.008`` (Cohen et al. 2021; a run by hand holding the first
  estimate's 0.0080 throughout: test error 0.531, and its later estimates 0.0063-0.0079,
  a sharpness 1.0-1.3x ``2 / 0.008``). Given the loss, the learner keeps 0.0080 until
  step 160, when the loss has risen, then 0.0068.

Run: ``python -m benchmarks.bench_rmt_operators [top] [scaling] [sgd] [cheap] [memory] [adam]
[slq]``; results are kept by ``benchmarks.common.cached`` (set ``NUMLAB_BENCH_CACHE`` to an
empty folder to re-measure). asv reads the same numbers (``OperatorLearningRates``).
"""

import functools
import sys
import time
import warnings

import numpy as np

import numlab as nl

from .common import cached

N_TRAIN, N_TEST, GRID = 256, 100, 128
N_STEPS = 100  # SGD / Adam steps of each divergence run
BATCHES = (4, 16, 64, 256)


@functools.cache
def _data():
    u0, u1 = nl.pde.burgers(N_TRAIN + N_TEST, GRID, viscosity=0.01, rng=0, dtype=np.float32)
    x, y = u0[:, None], u1[:, None]
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def _fno(seed=0):
    return nl.operators.FNO((16,), hidden_channels=32, in_channels=1, out_channels=1, rng=seed)


@functools.cache
def _trained():
    """The model after 5 epochs of Adam, its float64 loss (curvature) and float32 loss (runs)."""
    x, y, _, _ = _data()
    model = _fno()
    nl.operators.train(model, x, y, epochs=5, batch_size=16, lr=3e-3, loss="l2sq",
                       progress=False, rng=0)
    f64 = nl.operators.OperatorLoss(model, x, y, loss="l2sq")
    f32 = nl.operators.OperatorLoss(model, x, y, loss="l2sq", dtype="float32")
    return model, f64, f32


def _epoch_time(batch_size):
    """Median wall time of one training epoch (Adam, float32) at ``batch_size``."""
    x, y, _, _ = _data()
    model = _fno()
    result = nl.operators.train(model, x, y, epochs=3, batch_size=batch_size, lr=1e-3,
                                loss="l2sq", progress=False, rng=0)
    return float(np.median(result.epoch_time))


# --------------------------------------------------------------------------- measurements


def top_eigenvalue():
    _, f64, _ = _trained()
    H = f64.hessian()
    start = time.perf_counter()
    res = nl.rmt.eigsh(H, tol=1e-6, rng=0)
    seconds = time.perf_counter() - start
    ref = nl.rmt.eigsh(H, tol=1e-12, max_matvec=100, rng=1)
    return {"lambda": float(res.values[-1]), "reference": float(ref.values[-1]),
            "n_hvp": res.n_matvec, "seconds": seconds,
            "relative_error": abs(res.values[-1] / ref.values[-1] - 1)}


# Random batches per size: the per-sample curvature is heavy-tailed (the relative loss
# weighs each sample by 1 / ||y||^2), so small batches need many draws for their mean.
SCALING_BATCHES = {4: 96, 8: 64, 16: 48, 32: 32, 64: 24, 128: 16}


def batch_scaling():
    _, f64, _ = _trained()
    H = f64.hessian()
    curves = [nl.rmt.batch_curvature(H, batch_sizes=[b], n_batches=n, k=30, rng=b)
              for b, n in SCALING_BATCHES.items()]
    sizes = np.array(list(SCALING_BATCHES))
    mean = np.array([c.mean[0] for c in curves])
    counts = np.array(list(SCALING_BATCHES.values()))
    error = np.array([c.std[0] for c in curves]) / np.sqrt(counts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", nl.rmt.BatchScalingWarning)
        fit = nl.rmt.fit_batch_scaling(sizes, mean, n_samples=N_TRAIN, sigma=error)
    return {"sizes": sizes.tolist(), "mean": mean.tolist(), "error": error.tolist(),
            "kurtosis": [float(c.kurtosis[0]) for c in curves],
            "lambda_full": curves[0].lambda_full, "fit_lambda_1": fit.lambda_full,
            "slope": fit.slope, "r2": fit.r2, "exponent": fit.exponent,
            "critical_batch_size": fit.critical_batch_size,
            "n_hvp": sum(c.n_hvp for c in curves), "warned": bool(caught)}


def sgd_rate(batch_size):
    _, f64, f32 = _trained()
    H = f64.hessian()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = nl.rmt.max_learning_rate(H, batch_size=batch_size, n_batches=8, max_hvp=300,
                                        rng=0)
    seconds = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in diverging runs
        measured = nl.rmt.measure_max_learning_rate(f32, batch_size, n_steps=N_STEPS,
                                                    seeds=(0,), rtol=0.05, lr_start=pred.lr)
    return {"predicted": pred.lr, "mean_rule": pred.lr_mean, "lambda_full": pred.lambda_full,
            "measured": measured, "ratio": measured / pred.lr, "n_hvp": pred.n_hvp,
            "seconds": seconds, "epoch_seconds": _epoch_time(batch_size)}


def _spike(optimizer, batch_size, lr_start):
    """The rate at which the training loss first spikes 10x (checked at every step)."""
    _, _, f32 = _trained()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return nl.rmt.measure_max_learning_rate(
            f32, batch_size, n_steps=N_STEPS, seeds=(0,), rtol=0.05, lr_start=lr_start,
            optimizer=optimizer, check_every=1, peak=10.0)


def sgd_spike(batch_size):
    return _spike("sgd", batch_size, cached("rmt-op-sgd", sgd_rate, batch_size)["predicted"])


def adam_spike(batch_size):
    return _spike("adam", batch_size, 1e-2)


def cheap_estimates():
    """The cheapest estimates: ``method="rmt"`` (one full-Hessian Lanczos run and 8 batch
    HVPs along its top vector, valid for every batch size at once) and ``2 / lambda_max``
    of the Hessian of 32 samples in float32; their rates and seconds."""
    model, f64, _ = _trained()
    x, y, _, _ = _data()
    out = {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = nl.rmt.max_learning_rate(f64.hessian(), batch_size=16, method="rmt", n_batches=8,
                                     rng=0)
    out["rmt"] = (r.lr, time.perf_counter() - start)
    sub = nl.operators.OperatorLoss(model, x[:32], y[:32], loss="l2sq", dtype="float32")
    start = time.perf_counter()
    top = nl.rmt.eigsh(sub.hessian(), tol=1e-3, rng=0)
    out["subsample"] = (2.0 / float(top.values[-1]), time.perf_counter() - start)
    return out


def pool_memory(n_keep):
    """``max_learning_rate`` at B = 16 with the pool bounded to ``n_keep`` Ritz vectors per
    batch (None: all, up to ``k = 30``): the rate and the bound in MiB."""
    _, f64, _ = _trained()
    n_max = max(8, N_TRAIN // 16)
    keep = 30 if n_keep is None else n_keep
    max_memory = keep * n_max * f64.n_params * 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = nl.rmt.max_learning_rate(f64.hessian(), batch_size=16, n_batches=8, max_hvp=300,
                                     max_memory=max_memory, rng=0)
    return {"lr": r.lr, "mib": max_memory / 2**20, "n_hvp": r.n_hvp}


def noise_scale():
    """McCandlish's B_simple at the trained point (32 gradients of 16 samples)."""
    _, _, f32 = _trained()
    w = f32.w0
    return nl.rmt.gradient_noise_scale(lambda idx=None: f32.gradient(w, idx), N_TRAIN,
                                       batch_size=16, n_batches=32, rng=0).simple


def adam_rate(batch_size):
    _, _, f32 = _trained()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return nl.rmt.measure_max_learning_rate(f32, batch_size, n_steps=N_STEPS, seeds=(0,),
                                                rtol=0.05, lr_start=1e-2, optimizer="adam")


@np.errstate(over="ignore", invalid="ignore")  # a diverging run overflows
def _heavy_ball(f, w, schedule, epochs, batch_size, seed):
    """Heavy-ball SGD on the flat loss ``f``; ``schedule(step, w, idx) -> (lr, momentum)``."""
    rng = np.random.default_rng(seed)
    velocity, step = None, 0
    for _ in range(epochs):
        order = rng.permutation(f.n_samples)
        for i in range(f.n_samples // batch_size):
            idx = np.sort(order[i * batch_size:(i + 1) * batch_size])
            lr, momentum = schedule(step, w, idx)
            g = f.gradient(w, idx)
            velocity = g if velocity is None else momentum * velocity + g
            w = w - lr * velocity
            step += 1
            if not np.all(np.isfinite(w)):
                return None
    return w


def _test_error(w):
    if w is None:
        return float("inf")
    x, y, xt, yt = _data()
    model = _fno()
    f = nl.operators.OperatorLoss(model, x, y, dtype="float32")
    model.load_params(f.unflatten(w))
    pred = model(xt)
    return float(np.mean(np.linalg.norm((pred - yt)[:, 0], axis=-1)
                         / np.linalg.norm(yt[:, 0], axis=-1)))


SLQ_EPOCHS, SLQ_BATCH, SLQ_SEEDS = 20, 16, (0, 1)
GRID_LRS = (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2)


def constant_rate(lr, seed=0):
    """Test error after plain SGD at ``lr`` (``seed``: initialisation and shuffling)."""
    x, y, _, _ = _data()
    f32 = nl.operators.OperatorLoss(_fno(seed), x, y, loss="l2sq", dtype="float32")
    w = _heavy_ball(f32, f32.w0, lambda step, w, idx: (lr, 0.0), SLQ_EPOCHS, SLQ_BATCH, seed)
    return _test_error(w)


def slq_learner(seed=0, follow_loss=True):
    """Plain SGD with ``SLQLearner``'s rate, given the probe loss (``follow_loss``) or not."""
    x, y, _, _ = _data()
    model = _fno(seed)
    f32 = nl.operators.OperatorLoss(model, x, y, loss="l2sq", dtype="float32")
    f64 = nl.operators.OperatorLoss(model, x, y, loss="l2sq")
    learner = nl.rmt.SLQLearner(f64.n_params, every=40, k=20, n_probes=2, max_momentum=0.0,
                                rng=seed)
    probe = np.sort(np.random.default_rng(seed + 1).choice(N_TRAIN, 64, replace=False))
    in_force = []

    def schedule(step, w, idx):
        w64 = w.astype(np.float64)
        estimate = step % learner.every == 0
        loss = f64.loss(w64, probe) if follow_loss and estimate else None
        s = learner.update(step, f64.hessian(w64), probe, loss=loss)
        if estimate:
            in_force.append(s.lr)
        return s.lr, s.momentum

    start = time.perf_counter()
    w = _heavy_ball(f32, f32.w0, schedule, SLQ_EPOCHS, SLQ_BATCH, seed)
    return {"error": _test_error(w), "seconds": time.perf_counter() - start,
            "steps": [(step, s.lr, lr) for (step, s), lr in
                      zip(learner.history, in_force, strict=True)]}


def _slq_ratio(seed):
    best = min(cached("rmt-op-constant-sgd", constant_rate, lr, seed) for lr in GRID_LRS)
    return cached("rmt-op-slq-sgd", slq_learner, seed, True)["error"] / best


# --------------------------------------------------------------------------- asv


class OperatorLearningRates:
    """The figures of issue 20 (cached measurements; see the module docstring)."""

    timeout = 3600

    def track_top_eigenvalue_hvps(self):
        return float(cached("rmt-op-top", top_eigenvalue)["n_hvp"])

    track_top_eigenvalue_hvps.unit = "HVPs"

    def track_batch_scaling_r2(self):
        return float(cached("rmt-op-scaling", batch_scaling)["r2"])

    track_batch_scaling_r2.unit = "R^2"

    def track_sgd_measured_over_predicted(self):
        return max(cached("rmt-op-sgd", sgd_rate, b)["ratio"] for b in BATCHES)

    track_sgd_measured_over_predicted.unit = "ratio (worst B)"

    def track_slq_over_best_constant(self):
        return max(_slq_ratio(seed) for seed in SLQ_SEEDS)

    track_slq_over_best_constant.unit = "ratio (worst seed)"


# --------------------------------------------------------------------------- report


def main(parts):
    if "top" in parts:
        r = cached("rmt-op-top", top_eigenvalue)
        print(f"top eigenvalue {r['lambda']:.6g} in {r['n_hvp']} HVPs ({r['seconds']:.1f} s), "
              f"relative error {r['relative_error']:.1e} against tol=1e-12")
    if "scaling" in parts:
        r = cached("rmt-op-scaling", batch_scaling)
        # Goodness of fit against the standard errors: chi^2 per degree of freedom ~ 1 when
        # the law holds within the sampling noise.
        sizes = np.array(r["sizes"])
        law = r["fit_lambda_1"] + r["slope"] * nl.rmt.finite_sample_factor(sizes, N_TRAIN)
        residual = (np.array(r["mean"]) - law) / np.array(r["error"])
        chi2 = float(residual @ residual / (sizes.size - 2))
        print("batch curvature: B " + " ".join(f"{b:>7d}" for b in r["sizes"]))
        print("   E lambda_max(H_B) " + " ".join(f"{v:7.1f}" for v in r["mean"]))
        print("      standard error " + " ".join(f"{v:7.1f}" for v in r["error"]))
        print("     excess kurtosis " + " ".join(f"{v:7.1f}" for v in r["kurtosis"]))
        print(f"   fit lambda_1 {r['fit_lambda_1']:.1f} (full Hessian {r['lambda_full']:.1f}), "
              f"R^2 {r['r2']:.3f}, chi^2/dof {chi2:.2f}, exponent {r['exponent']:.2f}, "
              f"B* {r['critical_batch_size']:.2f}, {r['n_hvp']} HVPs"
              + (" (heavy-tail warning)" if r["warned"] else ""))
    if "sgd" in parts:
        print(f"SGD ({N_STEPS} steps)   B   predicted   2/E lam_B    blow-up  /pred  10x spike"
              "  /pred   HVPs  estimate s  epoch s")
        for b in BATCHES:
            r = cached("rmt-op-sgd", sgd_rate, b)
            spike = cached("rmt-op-sgd-spike", sgd_spike, b)
            print(f"{'':>15}{b:>4d}  {r['predicted']:10.4g}  {r['mean_rule']:10.4g}  "
                  f"{r['measured']:9.4g}  {r['ratio']:5.2f}  {spike:9.4g}  "
                  f"{spike / r['predicted']:5.2f}  {r['n_hvp']:5d}  "
                  f"{r['seconds']:10.1f}  {r['epoch_seconds']:7.2f}")
    if "cheap" in parts:
        r = cached("rmt-op-cheap", cheap_estimates)
        spike = cached("rmt-op-sgd-spike", sgd_spike, 16)
        epoch = cached("rmt-op-sgd", sgd_rate, 16)["epoch_seconds"]
        for name, (lr, seconds) in r.items():
            print(f"cheap estimate {name:>9}: lr {lr:.4g} ({spike / lr:.2f}x below the 10x "
                  f"spike at B = 16) in {seconds:.2f} s = {seconds / epoch:.1f} epochs at B = 16")
    if "memory" in parts:
        print("pool bound (B = 16): Ritz vectors per batch, MiB, predicted lr")
        ref = cached("rmt-op-memory", pool_memory, None)["lr"]
        for keep in (None, 8, 4, 2, 1):
            r = cached("rmt-op-memory", pool_memory, keep)
            print(f"{'':>15}{'all' if keep is None else keep:>4}  {r['mib']:8.0f}  "
                  f"{r['lr']:.4g} ({r['lr'] / ref:.3f}x)")
    if "adam" in parts:
        noise = cached("rmt-op-noise", noise_scale)
        print(f"Adam ({N_STEPS} steps), the square-root rule from B = 16, pure and saturating "
              f"at the gradient noise scale B_simple = {noise:.1f}:")
        print(f"{'':>15}   B  criterion   measured   sqrt rule  meas/rule  saturating  meas/rule")
        for name, key, fn in (("blow-up", "rmt-op-adam", adam_rate),
                              ("10x spike", "rmt-op-adam-spike", adam_spike)):
            measured = {b: cached(key, fn, b) for b in BATCHES}
            for b in BATCHES:
                rule = nl.rmt.scale_learning_rate(measured[16], 16, b, "adam")
                sat = nl.rmt.scale_learning_rate(measured[16], 16, b, "adam",
                                                 critical_batch_size=noise)
                print(f"{'':>15}{b:>4d}  {name:>9}  {measured[b]:9.4g}  {rule:10.4g}  "
                      f"{measured[b] / rule:9.2f}  {sat:10.4g}  {measured[b] / sat:9.2f}")
    if "slq" in parts:
        for seed in SLQ_SEEDS:
            errors = {lr: cached("rmt-op-constant-sgd", constant_rate, lr, seed)
                      for lr in GRID_LRS}
            best = min(errors, key=errors.get)
            print(f"seed {seed}: constant rates (plain SGD): "
                  + ", ".join(f"{lr:g}: {e:.4f}" for lr, e in errors.items()))
            for follow in (True, False):
                r = cached("rmt-op-slq-sgd", slq_learner, seed, follow)
                print(f"  SLQ learner {'given the loss' if follow else 'without the loss'}: "
                      f"test error {r['error']:.4f} = {r['error'] / errors[best]:.2f}x the best "
                      f"constant rate ({best:g}); {r['seconds']:.0f} s; (step, estimate, rate "
                      "in force): "
                      + ", ".join(f"({s}, {e:.3g}, {lr:.3g})" for s, e, lr in r["steps"]))


if __name__ == "__main__":
    main(sys.argv[1:] or ["top", "scaling", "sgd", "cheap", "memory", "adam", "slq"])
