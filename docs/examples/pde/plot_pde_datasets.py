"""
The neural-operator benchmark data sets, made in one call each
===============================================================

The Fourier Neural Operator paper (Li et al., ICLR 2021) and every later operator paper
train on three data sets: 1-D Burgers, 2-D Darcy flow and 2-D Navier-Stokes. The
originals are MATLAB files behind a download link; :mod:`numlab.pde` generates them with
the papers' recipes, accurate to the last digits that matter, on NumPy (CuPy with
``like=`` a CuPy array, Dask with ``chunks=``). Sample ``i`` depends only on the seed and
``i``: a larger data set extends a smaller one.
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import numlab as nl

# %%
# Burgers: random initial data and the solution at t = 1
# ------------------------------------------------------
# :math:`u_t + (u^2/2)_x = \nu u_{xx}` on the periodic unit interval, initial data from the
# paper's Gaussian random field; viscosity 0.01 keeps visible steepening by :math:`t = 1`.

t = time.perf_counter()
u0, uT = nl.pde.burgers(64, 256, viscosity=0.01, rng=0)
print(f"Burgers: 64 samples at s = 256 in {time.perf_counter() - t:.2f} s")
x = np.arange(256) / 256
fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharey=True)
for ax, k in zip(axes, range(3), strict=True):
    ax.plot(x, u0[k], label="u(x, 0)")
    ax.plot(x, uT[k], label="u(x, 1)")
    ax.set_xlabel("x")
axes[0].legend()
fig.suptitle("nl.pde.burgers: three samples")
fig.tight_layout()

# %%
# The mean of ``u`` is conserved and its energy decays: the invariants the tests check.
print("max |mean drift|:", np.abs(uT.mean(axis=1) - u0.mean(axis=1)).max())
print("energy ratio E(1)/E(0), first samples:", np.round((uT**2).sum(1) / (u0**2).sum(1), 3)[:4])

# %%
# Darcy flow: a two-phase coefficient and the pressure
# -----------------------------------------------------
# :math:`-\nabla \cdot (a \nabla u) = 1` on the unit square with :math:`u = 0` on the
# boundary; :math:`a` is 12 or 3 where a random field is positive or negative.

t = time.perf_counter()
a, u = nl.pde.darcy(16, 85, rng=0)
print(f"Darcy: 16 samples at 85 x 85 in {time.perf_counter() - t:.2f} s")
fig, axes = plt.subplots(2, 3, figsize=(9, 6))
for k in range(3):
    axes[0, k].imshow(a[k], cmap="gray", origin="lower")
    axes[1, k].imshow(u[k], cmap="viridis", origin="lower")
    axes[0, k].set_axis_off()
    axes[1, k].set_axis_off()
axes[0, 0].set_title("coefficient a", loc="left")
axes[1, 0].set_title("pressure u", loc="left")
fig.tight_layout()

# %%
# Navier-Stokes: vorticity over time
# -----------------------------------
# The vorticity form on the unit torus with the paper's forcing, viscosity 1e-3, recorded
# every unit of time (the paper's task runs to T = 50; here T = 8 keeps the build fast).

t = time.perf_counter()
w0, w = nl.pde.navier_stokes(1, 64, viscosity=1e-3, t_final=8.0, record_every=1.0, rng=0)
print(f"Navier-Stokes: one sample to T = 8 in {time.perf_counter() - t:.2f} s")
frames = [w0[0]] + [w[0, i] for i in (1, 3, 5, 7)]
fig, axes = plt.subplots(1, len(frames), figsize=(13, 2.9))
for ax, frame, time_ in zip(axes, frames, (0, 2, 4, 6, 8), strict=True):
    ax.imshow(frame, cmap="RdBu_r", origin="lower")
    ax.set_title(f"t = {time_}")
    ax.set_axis_off()
fig.suptitle("nl.pde.navier_stokes: vorticity")
fig.tight_layout()
plt.show()
