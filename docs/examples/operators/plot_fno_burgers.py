"""
Train a Fourier Neural Operator on Burgers, then evaluate it at twice the resolution
====================================================================================

The Fourier Neural Operator (Li et al., ICLR 2021) learns the map from an initial condition
``u(., 0)`` to the solution ``u(., 1)`` of Burgers' equation. Its spectral convolutions act on
Fourier modes, not grid points, so a model trained on one grid can be evaluated on a finer one
without retraining ("zero-shot super-resolution").

numlab's FNO is plain array code with hand-written gradients (no deep-learning framework);
its architecture and parameter names are those of neuraloperator 2.0, and
:meth:`~numlab.operators.FNO.to_neuraloperator` hands a trained model over to PyTorch.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import numlab as nl

# %%
# Data from nl.pde
# ----------------
# Viscosity 0.01 on 128 points: 256 training and 100 test samples. The test set is made at
# 256 points too, from the same seeds: sample ``i`` is the same random function on every
# grid.

u0, uT = nl.pde.burgers(356, 128, viscosity=0.01, rng=0, dtype=np.float32)
x_train, y_train = u0[:256, None], uT[:256, None]
x_test, y_test = u0[256:, None], uT[256:, None]

# %%
# Model and training
# ------------------
# 16 Fourier modes, width 32, four layers; Adam with cosine annealing, 20 epochs.

model = nl.operators.FNO((16,), hidden_channels=32, in_channels=1, out_channels=1, rng=0)
print(model, f"{model.n_params:,} parameters")
t = time.perf_counter()
result = nl.operators.train(model, x_train, y_train, epochs=20, batch_size=32, lr=3e-3,
                            validation=(x_test, y_test), progress=False, rng=0)
print(f"trained in {time.perf_counter() - t:.1f} s")


def relative_l2(pred, truth):
    return float(np.mean(np.linalg.norm(pred - truth, axis=-1) / np.linalg.norm(truth, axis=-1)))


error_128 = relative_l2(model(x_test), y_test)
print(f"test relative L2 at s = 128: {error_128:.4f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
epochs = np.arange(1, len(result.train_loss) + 1)
ax.semilogy(epochs, result.train_loss, label="train")
ax.semilogy(epochs, result.validation_loss, label="test")
ax.set_xlabel("epoch")
ax.set_ylabel("relative L2")
ax.legend()
fig.tight_layout()

# %%
# Zero-shot super-resolution
# --------------------------
# The same 100 test functions on 256 points; the model has never seen this grid.

v0, vT = nl.pde.burgers(356, 256, viscosity=0.01, rng=0, dtype=np.float32)
prediction_256 = model(v0[256:, None])
error_256 = relative_l2(prediction_256, vT[256:, None])
print(f"zero-shot relative L2 at s = 256: {error_256:.4f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 3), sharey=True)
for ax, k in zip(axes, range(3), strict=True):
    ax.plot(np.arange(256) / 256, vT[256 + k], "k", lw=2, label="truth (s = 256)")
    ax.plot(np.arange(128) / 128, model(x_test[k:k + 1])[0, 0], "--", label="FNO at s = 128")
    ax.plot(np.arange(256) / 256, prediction_256[k, 0], ":", label="FNO at s = 256 (zero-shot)")
    ax.set_xlabel("x")
axes[0].legend(fontsize=8)
fig.tight_layout()

# %%
# Hand the model over to neuraloperator
# -------------------------------------
# Where PyTorch and neuraloperator are installed (``pip install 'numlab-toolkit[neuralop]'``,
# or ``'.[neuralop]'`` from a checkout), the trained weights run unchanged in neuraloperator's
# ``FNO``, and a neuraloperator model comes back with
# :meth:`~numlab.operators.FNO.from_neuraloperator`.

try:
    import torch
except ImportError:
    print("torch is not installed: skipping the neuraloperator comparison")
else:
    module = model.to_neuraloperator()
    with torch.no_grad():
        theirs = module(torch.from_numpy(x_test)).numpy()
    ours = model(x_test)
    print(f"neuraloperator vs numlab forward: max rel. difference "
          f"{np.abs(theirs - ours).max() / np.abs(ours).max():.1e}")
    back = nl.operators.FNO.from_neuraloperator(module)
    print("round trip identical:", all(np.array_equal(back.params[k], model.params[k])
                                       for k in model.params))
plt.show()
