"""
Tensorized FNO: compression against error, and the multi-grid patches of MG-TFNO
================================================================================

A Fourier layer's weight is a complex tensor of shape ``(C_in, C_out, modes...)``, most of
an FNO's parameters. Kossaifi et al. (TMLR 2024) learn it in a low-rank form instead:
Tucker, CP or tensor-train. ``rank=0.1`` keeps about a tenth of the dense parameters.
Here the three factorizations and the dense FNO are trained on the same Darcy data, the
multi-grid domain decomposition of MG-TFNO is pictured, and the benchmark's MG-TFNO table
(error and training memory against the full-domain TFNO) is quoted.
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

# %%
# MG-TFNO against the full-domain TFNO
# ------------------------------------
# An MG-TFNO is one constructor call away::
#
#     mg = nl.operators.MultigridPatching2D(levels=1, padding_fraction=1 / 16,
#                                           stitching=False)
#     model = nl.operators.MultigridModel(
#         nl.operators.TFNO((12, 12), hidden_channels=16, in_channels=2, out_channels=1), mg)
#     nl.operators.train(model, x, y, epochs=20, batch_size=8, lr=5e-3)
#
# Training it takes minutes, too long for this page; the figures below are quoted from
# ``python -m benchmarks.bench_operators_mg`` (nl.pde Navier-Stokes 64 x 64, viscosity
# 1e-3, the one-step map :math:`w(t) \mapsto w(t+1)`, 144 training pairs, TFNO n_modes (12, 12),
# hidden 16, Adam 5e-3 cosine, 20 epochs of 18 steps for both models, seeds 0 and 1, one
# thread). Memory is the peak of one training step per model input (a 64 x 64 field, or
# a 40 x 40 patch), traced by tracemalloc.
#
# =========================  =====  ==============  ==============  ============  ========
# model                      input  error, seeds    mean            MB per input  MB/field
# =========================  =====  ==============  ==============  ============  ========
# TFNO, full domain          64x64  0.0680, 0.0719  0.0699          7.73          7.73
# MG-TFNO levels=1 pad 1/16  40x40  0.0953, 0.0911  0.0932 (1.33x)  3.16 (0.41x)  12.64
# =========================  =====  ==============  ==============  ============  ========
#
# The targets are 1.15x the error at 0.4x the memory per input: both are missed
# at this scale. The patches cut the memory a device needs per input by 2.4x, but the
# patched model learns the one-step map less well, and training longer (60 epochs: 2.0x)
# or on 4x more data (1.51x) widens the gap rather than closing it; a wider margin (pad
# 1/8: 1.29x) costs memory (48 x 48 patches). See the benchmark's docstring for the rest.

quoted = {"TFNO, full domain": (0.0699, 7.73), "MG-TFNO, pad 1/16": (0.0932, 3.16)}
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
names = list(quoted)
axes[0].bar(names, [v[0] for v in quoted.values()], color=["C0", "C1"])
axes[0].axhline(1.15 * quoted[names[0]][0], color="k", ls="--", lw=1, label="target 1.15x")
axes[0].set_ylabel("test relative L2 (mean of 2 seeds)")
axes[0].legend(loc="lower right")
axes[1].bar(names, [v[1] for v in quoted.values()], color=["C0", "C1"])
axes[1].axhline(0.4 * quoted[names[0]][1], color="k", ls="--", lw=1, label="target 0.4x")
axes[1].set_ylabel("peak MB per model input")
axes[1].legend(loc="upper right")
for ax in axes:
    ax.tick_params(axis="x", labelsize=8)
fig.suptitle("Navier-Stokes 64 x 64, one-step map (quoted from the benchmark)")
fig.tight_layout()
plt.show()
