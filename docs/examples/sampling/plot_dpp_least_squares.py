"""
Weighted least squares with DPPs, volume sampling and i.i.d. optimal sampling
=============================================================================

Nouy & Michel compare samplers for the weighted least-squares projection of a function
onto ``V_m``, the span of ``m`` orthonormal functions in ``L2(mu)``:

- **i.i.d. optimal** sampling from ``rho = k_m / m dmu`` (Cohen & Migliorati), with
  ``k_m(x) = sum_j phi_j(x)^2`` the inverse Christoffel function;
- a **projection DPP** (exactly ``m`` repulsive points, an interpolation);
- **volume sampling** (a DPP of ``m`` points plus ``n - m`` i.i.d. points of ``rho``);
- **repeated DPPs** (``n / m`` independent DPPs).

All use the weights ``m / k_m``. We reproduce the comparison for the tensor function
``f(x) = prod_i |x_i - 0.3|^{5/2}`` on ``[-1, 1]^2`` (uniform measure) with total-degree
Legendre polynomials of degree 8 (``m = 45``): the error ratio
``||f - f_n|| / ||f - P_m f||`` against the sample size ``n / m``. The best approximation
``P_m f`` is exact (Gauss quadrature on each side of the kink).
"""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np

import numlab as nl
from numlab.lstsq._tour import KinkProblem

basis = nl.lstsq.LegendreBasis(2, 8)
m = basis.m
problem = KinkProblem(basis)
print(f"m = {m}, best approximation error {problem.best_error:.3e}")

# %%
# One DPP sample
# --------------
# The points of a projection DPP repel each other and follow the optimal density on
# average; i.i.d. points from the same density cluster and leave holes.

dpp = nl.sampling.projection_dpp(basis, rng=0)
iid = nl.sampling.optimal_iid(basis, m, rng=0)
fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharey=True)
for ax, sample, title in zip(
    axes, (dpp, iid), ("projection DPP", "i.i.d. from k_m / m"), strict=True
):
    ax.scatter(*sample.points.T, s=12)
    ax.set_title(f"{title}, n = m = {m}")
    ax.set_aspect("equal")
fig.tight_layout()

# %%
# Error ratio against n / m
# -------------------------
# Median and 90 % quantile over 20 draws per point.

rng = np.random.default_rng(1)
factors = [1, 2, 3, 4]
schemes = {"i.i.d.": "iid", "volume": "volume", "repeated DPP": "repeated_dpp"}
results = {name: [] for name in schemes}
results["DPP (n = m)"] = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore", nl.lstsq.IllConditionedWarning)
    for name, sampler in schemes.items():
        for k in factors:
            ratios = [
                problem.error_ratio(
                    nl.lstsq.weighted_least_squares(
                        problem, basis, k * m, sampler=sampler, rng=rng
                    ).coef
                )
                for _ in range(20)
            ]
            results[name].append((np.median(ratios), np.quantile(ratios, 0.9)))
    dpp_ratios = [
        problem.error_ratio(
            nl.lstsq.weighted_least_squares(problem, basis, m, sampler="dpp", rng=rng).coef
        )
        for _ in range(20)
    ]

fig, ax = plt.subplots(figsize=(6, 4))
for name in schemes:
    med, q90 = np.array(results[name]).T
    ax.plot(factors, med, "o-", label=f"{name} (median)")
    ax.fill_between(factors, med, q90, alpha=0.15)
ax.axhline(np.median(dpp_ratios), color="k", ls=":", label="single DPP, n = m (median)")
ax.set_yscale("log")
ax.set_xlabel("n / m")
ax.set_ylabel("||f - f_n|| / ||f - P_m f||")
ax.set_title(f"Legendre, d = 2, m = {m}")
ax.legend()
fig.tight_layout()

for name in schemes:
    print(
        name,
        " ".join(f"{k}m: {med:.2f}" for k, (med, _) in zip(factors, results[name], strict=True)),
    )
print(f"single DPP: {np.median(dpp_ratios):.2f}; ceil(ln m) = {math.ceil(math.log(m))}")

# %%
# With ``n = 2m`` the repeated DPP and volume sampling are already stable (ratios close
# to 1), while i.i.d. sampling needs ``n ~ m log m``. A single DPP interpolates: it is
# far better than i.i.d. with ``n = m`` points but not quasi-optimal.
