"""
The Hessian of a Fourier Neural Operator and its largest stable learning rate
=============================================================================

numlab trains its neural operators with its own gradients, so :mod:`numlab.rmt` works on
them as on any model: ``model.hessian(x, y)`` is the matrix-free Hessian of the training
loss, an ``hvp(v, idx=None)`` over the flat real parameters (a complex spectral weight
counts as pairs of reals) that the Lanczos, spectral-density and learning-rate functions
take directly. The products are centred differences of the exact gradients in float64.

This example, on Burgers' equation (:func:`numlab.pde.burgers`):

1. the spectral density of an FNO's Hessian at initialisation and after training
   (stochastic Lanczos quadrature);
2. the predicted largest stable SGD learning rate against batch size
   (:func:`numlab.rmt.max_learning_rate`) and the rate at which SGD actually diverges
   (:func:`numlab.rmt.measure_max_learning_rate`, bisection on real training runs).

The learning-rate theory is about losses quadratic in the prediction, so the model is
trained on the squared relative L2 error, ``loss="l2sq"``.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

import numlab as nl

u0, u1 = nl.pde.burgers(64, 64, viscosity=0.01, rng=0, dtype=np.float32)
x, y = u0[:, None], u1[:, None]


def fno():
    return nl.operators.FNO((8,), hidden_channels=16, in_channels=1, out_channels=1, rng=0)


# %%
# The spectrum at initialisation and after training
# -------------------------------------------------
# Fifteen Lanczos steps on each of two random probes give a 30-node quadrature of the
# spectral measure of each Hessian; its extreme nodes are the extreme eigenvalues.
model = fno()
before = model.hessian(x, y, loss="l2sq")
nl.operators.train(model, x, y, epochs=20, batch_size=16, lr=3e-3, loss="l2sq",
                   progress=False, rng=0)
after = model.hessian(x, y, loss="l2sq")
print(f"{after.n_params:,} real parameters")

fig, ax = plt.subplots(figsize=(6, 3.5))
for H, label in ((before, "initialisation"), (after, "after 20 epochs")):
    nodes, weights = nl.rmt.spectral_density(H, n_probes=2, k=15, rng=0)
    grid, density = nl.rmt.smooth_density(nodes, weights, grid=600, sigma=2.0)
    ax.semilogy(grid, density + 1e-6, label=f"{label}: lambda_max = {nodes.max():.0f}")
ax.set_xlabel("Hessian eigenvalue")
ax.set_ylabel("spectral density")
ax.legend()
fig.tight_layout()

# %%
# Most of the spectrum sits near zero and a few outliers set the stable learning rate,
# as for the networks of Granziol, Zohren & Roberts (JMLR 2022); training moves the
# outliers.
#
# Predicted against measured learning rates
# -----------------------------------------
# At each batch size, the prediction runs the linearised SGD recursion over Lanczos
# factors of a pool of batch Hessians (``method="batch"``, each batch keeping its top
# Ritz pairs within ``max_memory``); the measurement trains the network with SGD from
# the same point at rates chosen by bisection, with two criteria of failure: the loss
# blows up (above 1000x its start at a check every 25 steps, or 10x at the end: the
# default), or it spikes 10x at any step (``check_every=1, peak=10``).
f32 = nl.operators.OperatorLoss(model, x, y, loss="l2sq", dtype="float32")
sizes = [4, 16, 64]
predicted, blow_up, spike = [], [], []
for B in sizes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a pool of one epoch of batches: small batches need all of them (rare sharp ones)
        r = nl.rmt.max_learning_rate(after, batch_size=B, n_batches=8, max_hvp=20 * (64 // B),
                                     k=20, rng=0)
    predicted.append(r.lr)
    runs = dict(n_steps=50, seeds=(0,), rtol=0.1, lr_start=r.lr)
    blow_up.append(nl.rmt.measure_max_learning_rate(f32, B, **runs))
    spike.append(nl.rmt.measure_max_learning_rate(f32, B, check_every=1, peak=10.0, **runs))
    print(f"B = {B:3d}: predicted {r.lr:.4f}; measured: 10x spike {spike[-1]:.4f} "
          f"({spike[-1] / r.lr:.2f}x), blow-up {blow_up[-1]:.4f} ({blow_up[-1] / r.lr:.2f}x); "
          f"heavy-tailed batch curvature: {r.heavy_tailed}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(sizes, predicted, "o-", label="predicted (linear stability)")
ax.loglog(sizes, spike, "^-", label="measured: 10x loss spike")
ax.loglog(sizes, blow_up, "v--", label="measured: blow-up")
ax.axhline(2 / r.lambda_full, color="grey", lw=0.8, label="2 / lambda_1 (full batch)")
ax.set_xlabel("batch size B")
ax.set_ylabel("largest stable learning rate")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The prediction is the *linear-stability* rate, exact for a quadratic loss, and it
# marks where the loss of this FNO starts to spike. A network is not quadratic, though:
# between that rate and the blow-up rate, the error along the top eigenvector grows, the
# loss jumps by 100-1000x, then the curvature falls below ``2 / lr`` and training
# recovers (the catapult of Lewkowycz et al. 2020; the edge of stability of Cohen et al.
# 2021). On the benchmark's larger FNO (``python -m benchmarks.bench_rmt_operators``)
# the spike came at 0.94-1.02x the prediction and the blow-up at 1.5-2.3x.
#
# At ``B = 4`` on these 64 samples the prediction is too high, and
# :func:`~numlab.rmt.max_learning_rate` says so: it flags the batch curvature as
# heavy-tailed (``heavy_tailed``, with a ``BatchScalingWarning``). The relative loss
# weighs each sample by ``1 / ||y||^2``, so a few samples are much sharper than the rest,
# and runs that meet them in small batches fail earlier than the pooled batches predict.
