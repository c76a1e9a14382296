"""
Hessian spectra and the largest stable learning rate against batch size
=======================================================================

Granziol, Zohren & Roberts (JMLR 2022) show that the extreme eigenvalues of a
mini-batch Hessian exceed those of the full Hessian by a term that falls like
``1/B``, so the largest learning rate at which SGD stays stable, ``2 / lambda_max``,
grows with the batch size until a critical batch size and then saturates.

This example uses only Hessian-vector products:

1. the spectral density of a small network's Hessian by stochastic Lanczos
   quadrature (:func:`numlab.rmt.spectral_density`);
2. the top eigenvalue of the batch Hessian against batch size
   (:func:`numlab.rmt.batch_curvature`) and the fitted law
   (:func:`numlab.rmt.fit_batch_scaling`);
3. the predicted largest stable SGD learning rate
   (:func:`numlab.rmt.max_learning_rate`) against the rate at which SGD actually
   diverges, found by bisection (:func:`numlab.rmt.measure_max_learning_rate`);
4. the top eigenvalue by :func:`numlab.rmt.eigsh` against PyHessian's power iteration
   and SciPy's ARPACK: Hessian-vector products needed for a given accuracy.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse.linalg
from sklearn.datasets import load_breast_cancer, load_digits

import numlab as nl

X_digits, y_digits = load_digits(return_X_y=True)
X_digits = X_digits / 16.0

# %%
# The spectrum of a network's Hessian
# -----------------------------------
# A 64-16-10 tanh network with squared loss at initialisation. Twenty Lanczos
# steps on each of five random probes give a 100-node quadrature of the
# spectral measure; its extreme nodes are the extreme eigenvalues.
mlp = nl.rmt.MLP(X_digits, y_digits, hidden=16, loss="mse")
w = mlp.init_params(0)
H = mlp.hessian(w)
nodes, weights = nl.rmt.spectral_density(H, mlp.n_params, n_probes=5, k=20, rng=0)
top = nl.rmt.eigsh(H, mlp.n_params, rng=0)
grid, density = nl.rmt.smooth_density(nodes, weights)
print(
    f"{mlp.n_params} parameters; lambda_max = {top.values[-1]:.4f} "
    f"(residual {top.residuals[0]:.1e}, {top.n_matvec} HVPs); SLQ top node {nodes.max():.4f}"
)

# %%
# The batch Hessian's top eigenvalue falls like 1/B
# --------------------------------------------------
# Least squares on the digits: the Hessian of a batch is :math:`X_B^T X_B / B`.
lsq = nl.rmt.LeastSquares(X_digits, y_digits.astype(float))
H_lsq = lsq.hessian(lsq.init_params())
sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256]
curve = nl.rmt.batch_curvature(H_lsq, lsq.n_params, lsq.n_samples, sizes, n_batches=16, rng=0)
fit = nl.rmt.fit_batch_scaling(curve.batch_sizes, curve.mean, n_samples=lsq.n_samples)
print(
    f"fit: lambda_1 = {fit.lambda_full:.3f} (Lanczos on all data: {curve.lambda_full:.3f}), "
    f"R^2 = {fit.r2:.3f}, critical batch size B* = {fit.critical_batch_size:.2f}"
)

# %%
# Predicted against measured divergence of SGD
# --------------------------------------------
# Least squares on the (standardised) breast cancer data: for each batch size,
# the predicted rate, the mean-curvature rule :math:`2 / \mathbb{E}\,\lambda_{\max}(H_B)` and the
# rate at which 300 steps of SGD from zero blow up, found by bisection. At small
# batch sizes the batch curvature is heavy-tailed (a few samples are much
# sharper than the rest): the mean rule is then too high, and numlab predicts
# instead the rate at which the linearised SGD recursion over sampled batches
# grows, and warns that the threshold depends on the length of the run.
X_bc, y_bc = load_breast_cancer(return_X_y=True)
X_bc = (X_bc - X_bc.mean(0)) / X_bc.std(0)
bc = nl.rmt.LeastSquares(X_bc, y_bc.astype(float))
H_bc = bc.hessian(bc.init_params())
lr_sizes = [1, 2, 4, 16, 64, 256]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", nl.rmt.BatchScalingWarning)  # B = 1, 2, 4
    results = [
        nl.rmt.max_learning_rate(H_bc, bc.n_params, B, n_batches=16, n_steps=300, rng=0)
        for B in lr_sizes
    ]
predicted = [r.lr for r in results]
mean_rule = [r.lr_mean for r in results]
measured = [
    nl.rmt.measure_max_learning_rate(bc, B, n_steps=300, seeds=(0,), lr_start=p)
    for B, p in zip(lr_sizes, predicted, strict=True)
]
for B, r, m in zip(lr_sizes, results, measured, strict=True):
    print(
        f"B = {B:4d}: predicted {r.lr:.4f}, measured {m:.4f} (ratio {m / r.lr:.2f}; "
        f"mean rule {m / r.lr_mean:.2f}){' heavy-tailed' if r.heavy_tailed else ''}"
    )

# %%
# Plots
# -----
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
axes[0].plot(grid, density)
axes[0].set_yscale("log")
axes[0].set_ylim(1e-4 * density.max(), 2 * density.max())
axes[0].set(title="SLQ spectral density (MLP Hessian)", xlabel="eigenvalue", ylabel="density")

B = np.asarray(sizes)
axes[1].errorbar(
    B,
    curve.mean,
    yerr=[curve.mean - curve.ci_low, curve.ci_high - curve.mean],
    fmt="o",
    label="batch Lanczos",
)
Bs = np.geomspace(1, lsq.n_samples, 200)
axes[1].plot(Bs, fit.predict(Bs), label=r"$\lambda_1 + b\,(N-B)/(B(N-1))$")
axes[1].axhline(curve.lambda_full, color="gray", ls=":", label="full batch")
axes[1].set(
    xscale="log", title=r"$\lambda_{\max}(H_B)$, least squares on digits", xlabel="batch size B"
)
axes[1].legend(fontsize=8)

axes[2].plot(lr_sizes, predicted, "o-", label="predicted (numlab)")
axes[2].plot(lr_sizes, mean_rule, "^:", label="2 / E lambda_max(H_B)")
axes[2].plot(lr_sizes, measured, "s--", label="measured divergence (bisection)")
axes[2].set(
    xscale="log",
    title="largest stable SGD rate, breast cancer",
    xlabel="batch size B",
    ylabel="learning rate",
)
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Against power iteration and SciPy
# ---------------------------------
# The top eigenvalue of the MLP Hessian of the first section, three ways, counting
# Hessian-vector products (HVPs), the unit of cost when each one is a pass over the data:
#
# - power iteration as PyHessian runs it (``hessian.eigenvalues``): normalise, multiply,
#   take the Rayleigh quotient, stop when it changes by less than ``tol = 1e-3``
#   (relative); written out below, and run on past its stop to show its rate;
# - :func:`scipy.sparse.linalg.eigsh` (ARPACK) on a ``LinearOperator`` that counts its
#   calls, ``which="LA"``, at several ``tol``;
# - :func:`numlab.rmt.eigsh` (Lanczos with full re-orthogonalisation) at the same ``tol``.
#
# The reference value is SciPy's at ``tol=1e-14``.

n_hvp = 0


def counted_hvp(v):
    global n_hvp
    n_hvp += 1
    return H(np.ravel(v))


H_op = scipy.sparse.linalg.LinearOperator((mlp.n_params,) * 2, matvec=counted_hvp, dtype=float)
start = np.random.default_rng(0).standard_normal(mlp.n_params)
lam_ref = scipy.sparse.linalg.eigsh(H_op, k=1, which="LA", tol=1e-14, v0=start)[0][0]

v = start / np.linalg.norm(start)
power, power_stop, previous = [], None, None
for step in range(1, 41):
    Hv = H(v)
    rayleigh = v @ Hv
    power.append(abs(rayleigh - lam_ref) / lam_ref)
    if power_stop is None and previous is not None:
        if abs(rayleigh - previous) < 1e-3 * (abs(previous) + 1e-6):
            power_stop = step
    previous = rayleigh
    v = Hv / np.linalg.norm(Hv)

tols = [1e-2, 1e-3, 1e-4, 1e-6, 1e-8]
scipy_points, numlab_points = [], []
for tol in tols:
    n_hvp = 0
    lam = scipy.sparse.linalg.eigsh(H_op, k=1, which="LA", tol=tol, v0=start)[0][0]
    scipy_points.append((n_hvp, abs(lam - lam_ref) / lam_ref))
    res = nl.rmt.eigsh(H, mlp.n_params, tol=tol, rng=0)
    numlab_points.append((res.n_matvec, abs(res.values[-1] - lam_ref) / lam_ref))

fig, ax = plt.subplots(figsize=(6.5, 4))
floor = 1e-16  # exact answers drawn at the bottom of the axis
ax.semilogy(np.arange(1, len(power) + 1), np.maximum(power, floor), ".-", color="tab:gray",
            label="power iteration (PyHessian)")
ax.semilogy(power_stop, max(power[power_stop - 1], floor), "*", ms=14, color="tab:gray",
            label="PyHessian's stop (change < 1e-3)")
for (name, points), marker in zip(
    (("scipy.sparse.linalg.eigsh", scipy_points), ("numlab.rmt.eigsh", numlab_points)), "so",
    strict=True,
):
    hvps, errors = np.array(points).T
    ax.semilogy(hvps, np.maximum(errors, floor), marker, ms=8, mfc="none",
                label=f"{name}, tol = 1e-2 ... 1e-8")
ax.set_xlabel("Hessian-vector products")
ax.set_ylabel(r"relative error of $\lambda_{\max}$")
ax.set_title(rf"MLP Hessian, {mlp.n_params} parameters: $\lambda_{{\max}}$ = {lam_ref:.3f}")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()


def hvps_to_reach(points, level):
    return min((h for h, e in points if e <= level), default=None)


power_points = list(enumerate(power, start=1))
for level in (1e-3, 1e-6):
    print(f"HVPs to a relative error {level:g}: "
          f"power iteration {hvps_to_reach(power_points, level)}, "
          f"SciPy {hvps_to_reach(scipy_points, level)}, "
          f"numlab {hvps_to_reach(numlab_points, level)}")
print(f"PyHessian's rule stops power iteration after {power_stop} HVPs, "
      f"relative error {power[power_stop - 1]:.1e}")

# %%
# This top eigenvalue is well separated, so even power iteration converges quickly:
# PyHessian's rule stops it after 9 HVPs at a relative error of 4e-4 (its stopping test
# bounds the change, not the error). Lanczos reaches 1e-3 in 6 HVPs and 1e-6 in 9, where
# power iteration needs 8 and 16; SciPy's ARPACK builds a 20-vector Krylov basis before
# it checks anything, so it always spends 21 HVPs here, and is then exact to rounding.
# numlab's result also carries the residual, a bound on the error.
