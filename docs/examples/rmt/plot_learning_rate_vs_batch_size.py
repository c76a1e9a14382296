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
   diverges, found by bisection (:func:`numlab.rmt.measure_max_learning_rate`).
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
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
