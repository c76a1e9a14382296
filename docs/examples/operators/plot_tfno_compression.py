"""
Tensorized FNO: compression against error, and the multi-grid patches of MG-TFNO
================================================================================

A Fourier layer's weight is a complex tensor of shape ``(C_in, C_out, modes...)``, most of
an FNO's parameters. Kossaifi et al. (TMLR 2024) learn it in a low-rank form instead:
Tucker, CP or tensor-train. ``rank=0.1`` keeps about a tenth of the dense parameters.
Here the three factorizations and the dense FNO are trained on the same Darcy data, and the
multi-grid domain decomposition of MG-TFNO is pictured.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import numlab as nl

# %%
# Darcy flow at 16 x 16
# ---------------------
# Coefficient ``a`` (12 / 3) to pressure ``u``; both normalised point-wise as in the FNO
# paper, the loss taken on decoded values.

a, u = nl.pde.darcy(400, 16, rng=0, dtype=np.float32)
x, y = a[:, None], u[:, None]
x_train, y_train, x_test, y_test = x[:300], y[:300], x[300:], y[300:]
x_norm = nl.operators.UnitGaussianNormalizer().fit(x_train)
y_norm = nl.operators.UnitGaussianNormalizer().fit(y_train)


def fit(model):
    t = time.perf_counter()
    nl.operators.train(model, x_norm.encode(x_train), y_norm.encode(y_train), epochs=10,
                       lr=5e-3, output_normalizer=y_norm, progress=False, rng=0)
    prediction = y_norm.decode(model(x_norm.encode(x_test)))
    n = len(y_test)
    error = np.mean(np.linalg.norm((prediction - y_test).reshape(n, -1), axis=1)
                    / np.linalg.norm(y_test.reshape(n, -1), axis=1))
    return error, time.perf_counter() - t


# %%
# Dense, Tucker, CP and TT side by side
# -------------------------------------

rows = []
for factorization in (None, "tucker", "cp", "tt"):
    model = nl.operators.FNO((8, 8), hidden_channels=16, in_channels=1, out_channels=1,
                             factorization=factorization, rank=0.1, rng=0)
    error, seconds = fit(model)
    rows.append((factorization or "dense", model.n_params_spectral, model.compression, error))
    print(f"{factorization or 'dense':>6}: {model.n_params_spectral:7,} spectral parameters "
          f"({model.compression:4.1f}x compression), test rel. L2 {error:.4f} in {seconds:.1f} s")

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, n_spectral, _, error in rows:
    ax.scatter(n_spectral, error, s=60)
    ax.annotate(name, (n_spectral, error), textcoords="offset points", xytext=(6, 4))
ax.set_xscale("log")
ax.set_xlabel("spectral parameters")
ax.set_ylabel("test relative L2")
ax.set_title("Darcy 16 x 16: compression against error")
fig.tight_layout()

# %%
# Multi-grid patches
# ------------------
# MG-TFNO cuts the domain into ``2**levels`` patches per axis, each with a margin from its
# (periodic) neighbours, and gives the model, for every level, a coarser and wider view of
# the same pixel size as extra channels. The model sees smaller inputs: less memory per
# training sample.

w0, w = nl.pde.navier_stokes(1, 64, t_final=2.0, rng=0)
patching = nl.operators.MultigridPatching2D(levels=1, padding_fraction=1 / 16)
patches = patching.patch(w[:, :1])
print("field", w[:, :1].shape, "-> patches", patches.shape)
fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for j in range(4):
    axes[0, j].imshow(patches[j, 0], cmap="RdBu_r", origin="lower")
    axes[0, j].set_title(f"patch {j}: fine")
    axes[1, j].imshow(patches[j, 1], cmap="RdBu_r", origin="lower")
    axes[1, j].set_title(f"patch {j}: coarse view")
for ax in axes.ravel():
    ax.set_axis_off()
fig.tight_layout()
print("unpatch(patch(x)) == x:", np.array_equal(patching.unpatch(patches)[:, :1], w[:, :1]))
plt.show()
