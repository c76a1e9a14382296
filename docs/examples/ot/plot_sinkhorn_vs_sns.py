"""
Sinkhorn vs Sinkhorn-Newton-Sparse: convergence, and a transport plan between two images
========================================================================================

At small regularisation, Sinkhorn's matrix scaling converges linearly and slowly. SNS
(Tang et al., ICLR 2024) runs Sinkhorn only until the marginal violation is about 1e-2,
then takes Newton steps on the dual whose Hessian keeps only the plan entries that
matter (a sparse matrix, solved by conjugate gradients). Near the solution the plan is
nearly sparse, so a Newton step costs about as much as a few Sinkhorn iterations while
the violation drops by orders of magnitude per step.

First: 1000 random points against 1000 Gaussian points, squared-Euclidean cost
normalised to 1, ``reg = 1e-3``. Then the same cost and marginals solved by POT, the
library whose ``ot.sinkhorn`` numlab's mirrors; last, a transport plan between two images.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import ot
from sklearn.datasets import load_digits

import numlab as nl

rng = np.random.default_rng(0)
n = 1000
x = rng.random((n, 2))
y = rng.normal(0.5, 0.2, (n, 2))
M = nl.ot.dist(x, y)
M /= M.max()
reg = 1e-3

nl.ot.sinkhorn(None, None, M[:50, :50].copy(), reg)  # compile the kernels once

runs = {}
for method in ("log", "sns"):
    res = nl.ot.sinkhorn(None, None, M, reg, method=method, tol=1e-9, max_iter=3000, warn=False)
    runs[method] = res
    print(f"{method:>4}: {res.n_sinkhorn} Sinkhorn + {res.n_newton} Newton iterations, "
          f"violation {res.violation:.1e}, cost {res.cost:.10f}")

# %%
# Time to reach each tolerance (one solve per tolerance).
tols = [1e-2, 1e-3, 1e-5, 1e-7, 1e-9]
seconds = {m: [] for m in runs}
for method in runs:
    for tol in tols:
        t0 = time.perf_counter()
        nl.ot.sinkhorn(None, None, M, reg, method=method, tol=tol, max_iter=3000, warn=False)
        seconds[method].append(time.perf_counter() - t0)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
labels = {"log": "Sinkhorn (log-stable)", "sns": "Sinkhorn-Newton-Sparse"}
for method, res in runs.items():
    ax1.semilogy(np.arange(len(res.history)), res.history, label=labels[method])
    ax2.loglog(seconds[method], tols, "o-", label=labels[method])
ax1.set_xlabel("convergence check (one per iteration)")
ax1.set_ylabel("marginal violation ||P1 - a||_1 + ||P^T 1 - b||_1")
ax1.legend()
ax2.set_xlabel("wall time to reach the tolerance (s)")
ax2.set_ylabel("tolerance")
ax2.legend()
fig.tight_layout()

# %%
# Against POT
# -----------
# The same cost matrix and uniform marginals, solved by POT's ``ot.sinkhorn`` (its
# default ``method="sinkhorn"``, matrix scaling with :math:`K = e^{-M/\varepsilon}`).
# At ``reg = 1e-3`` that kernel underflows (:math:`e^{-1000} = 0` in float64) and POT
# needs ``method="sinkhorn_log"``, which costs about 0.1 s per iteration at this size
# here, too slow for a tutorial; so this comparison uses ``reg = 2e-3``, where POT's
# fast solver is safe. The two libraries stop on different criteria (POT: the 2-norm
# of the column-marginal violation, checked every 10 iterations; numlab: the 1-norm of
# both marginals' violation), so each is run at a range of its own tolerances, and
# every run is measured the same way: the time it took and the 1-norm distance of its
# plan to POT's plan converged to ``stopThr=1e-12``.

a = np.full(n, 1 / n)
b = np.full(n, 1 / n)
reg_pot = 2e-3
reference = ot.sinkhorn(a, b, M, reg_pot, numItermax=100_000, stopThr=1e-12)

pot_tols = [1e-2, 1e-3, 1e-4, 1e-5, 1e-7, 1e-9]


def timed(solve, tol):
    """(best wall time of two runs, plan error) of ``solve(tol)``."""
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        plan = solve(tol)
        times.append(time.perf_counter() - t0)
    return min(times), np.abs(plan - reference).sum()


solvers = {
    "POT ot.sinkhorn": lambda tol: ot.sinkhorn(a, b, M, reg_pot, numItermax=100_000, stopThr=tol),
    "numlab, method='log'": lambda tol: nl.ot.sinkhorn(
        a, b, M, reg_pot, method="log", tol=tol, max_iter=100_000, warn=False).plan,
    "numlab, method='sns'": lambda tol: nl.ot.sinkhorn(
        a, b, M, reg_pot, method="sns", tol=tol, max_iter=100_000, warn=False).plan,
}
curves = {name: [timed(solve, tol) for tol in pot_tols] for name, solve in solvers.items()}

fig, ax = plt.subplots(figsize=(6, 4))
for (name, points), marker in zip(curves.items(), "o^s", strict=True):
    ax.loglog(*np.array(points).T, marker + "-", label=name)
ax.set_xlabel("wall time (s)")
ax.set_ylabel("plan error $\\|P - P_{POT}^*\\|_1$")
ax.set_title(f"n = {n}, reg = {reg_pot}: one point per stopping tolerance")
ax.legend()
fig.tight_layout()

# %%
# Converged, the two libraries agree: the plans and the transport costs
# :math:`\langle P, M \rangle` (``sinkhorn2``) of the tightest runs above.

pot_cost = float(ot.sinkhorn2(a, b, M, reg_pot, numItermax=100_000, stopThr=1e-9))
nl_cost = float(nl.ot.sinkhorn2(a, b, M, reg_pot, tol=1e-9))
for name, points in curves.items():
    print(f"{name:22s} tol 1e-9: {points[-1][0]:.3f} s, plan error {points[-1][1]:.1e}")
print(f"sinkhorn2: POT {pot_cost:.10f}, numlab {nl_cost:.10f} "
      f"(relative difference {abs(pot_cost - nl_cost) / pot_cost:.1e})")

# %%
# On this box, at the tightest tolerance: POT about 0.3-0.4 s with its plan 1e-7 from
# its own converged plan (its test takes the 2-norm of the violation, up to
# :math:`\sqrt{n}` below the 1-norm numlab tests), numlab's log-domain Sinkhorn about
# 0.25 s (5e-9), SNS about 0.1 s (1e-10); the ``sinkhorn2`` costs agree to about 5e-9
# (relative), the size of POT's remaining error.

# %%
# A transport plan between two images
# -----------------------------------
# Two handwritten digits (scikit-learn's 8x8 images upsampled to 28x28) as histograms on
# the pixel grid, with the L1 ground cost (W1). Each arrow goes from a source pixel to
# the plan-weighted mean position of where its mass goes.
from scipy.ndimage import zoom  # noqa: E402

digits = load_digits()
hists = []
for k in (0, 1):
    image = digits.images[np.nonzero(digits.target == k)[0][0]]
    image = np.clip(zoom(image, 28 / 8, order=1), 0, None)
    image = image / image.sum() + 1e-4
    hists.append((image / image.sum()).ravel())
grid = np.stack(np.meshgrid(np.arange(28), np.arange(28), indexing="ij"), -1).reshape(-1, 2)
C = nl.ot.dist(grid.astype(float), grid.astype(float), metric="cityblock")
C /= C.max()
res = nl.ot.sinkhorn(hists[0], hists[1], C, 1e-3, tol=1e-9)
print(f"W1 plan: {res.n_sinkhorn} Sinkhorn + {res.n_newton} Newton iterations, "
      f"converged={res.converged}, violation {res.violation:.1e}")

target = (res.plan @ grid) / res.plan.sum(1, keepdims=True)
heavy = hists[0] > 2 * hists[0].mean()
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
axes[0].imshow(hists[0].reshape(28, 28), cmap="Greys")
axes[0].set_title("source")
axes[1].imshow(hists[1].reshape(28, 28), cmap="Greys")
axes[1].set_title("target")
axes[2].imshow(hists[1].reshape(28, 28), cmap="Greys", alpha=0.5)
axes[2].quiver(grid[heavy, 1], grid[heavy, 0], target[heavy, 1] - grid[heavy, 1],
               target[heavy, 0] - grid[heavy, 0], angles="xy", scale_units="xy", scale=1,
               color="tab:red", width=0.004)
axes[2].set_title("where the mass goes")
for ax in axes:
    ax.set_axis_off()
fig.tight_layout()
plt.show()
