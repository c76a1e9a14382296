r"""
Weighted least squares with DPPs, volume sampling and i.i.d. optimal sampling
=============================================================================

Nouy & Michel compare samplers for the weighted least-squares projection of a function
onto :math:`V_m`, the span of :math:`m` functions :math:`\varphi_j` orthonormal in
:math:`L^2(\mu)`:

- **i.i.d. optimal** sampling from :math:`\rho = \frac{k_m}{m}\, d\mu` (Cohen & Migliorati),
  with :math:`k_m(x) = \sum_j \varphi_j(x)^2` the inverse Christoffel function;
- a **projection DPP** (exactly :math:`m` repulsive points, an interpolation);
- **volume sampling** (a DPP of :math:`m` points plus :math:`n - m` i.i.d. points of
  :math:`\rho`);
- **repeated DPPs** (:math:`n / m` independent DPPs).

All use the weights :math:`w = m / k_m`. We reproduce the comparison for the tensor function
:math:`f(x) = \prod_i |x_i - 0.3|^{5/2}` on :math:`[-1, 1]^2` (uniform measure) with
total-degree Legendre polynomials of degree 8 (:math:`m = 45`): the error ratio
:math:`\|f - f_n\| / \|f - P_m f\|` against the sample size :math:`n / m`.
"""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np

import numlab as nl

basis = nl.lstsq.LegendreBasis(2, 8)
m = basis.m

# %%
# The exact best approximation
# ----------------------------
# :math:`f` is :math:`C^2` but not :math:`C^3`, so its best-approximation error stays well
# above round-off. Its Legendre coefficients :math:`c^*` are products of 1-D coefficients,
# computed by Gauss quadrature on each side of the kink; by Pythagoras, the error of any
# :math:`f_n = \sum_j c_j \varphi_j` is then exact:
#
# .. math:: \|f - f_n\|^2 = \|f - P_m f\|^2 + \|c^* - c\|^2.

kink, power = 0.3, 2.5


def f(x):
    return np.prod(np.abs(x - kink) ** power, axis=1)


t, w = np.polynomial.legendre.leggauss(200)
nodes = np.concatenate([0.5 * (b - a) * t + 0.5 * (a + b) for a, b in ((-1, kink), (kink, 1))])
weights = np.concatenate([0.25 * (b - a) * w for a, b in ((-1, kink), (kink, 1))])  # dx / 2
g = np.abs(nodes - kink) ** power
g_hat = nl.lstsq.LegendreBasis(1, basis.degree)(nodes[:, None]).T @ (weights * g)
c_star = np.prod([g_hat[basis.indices[:, i]] for i in range(basis.dim)], axis=0)
best_error = math.sqrt(float(weights @ g**2) ** basis.dim - c_star @ c_star)


def error_ratio(coef):
    return math.sqrt(best_error**2 + np.sum((coef - c_star) ** 2)) / best_error


print(f"m = {m}, best approximation error {best_error:.3e}")

# %%
# One DPP sample
# --------------
# The points of a projection DPP repel each other and follow the optimal density on
# average; i.i.d. points from the same density cluster and leave holes.

dpp = nl.sampling.projection_dpp(basis, rng=0)
iid = nl.sampling.optimal_iid(basis, m, rng=0)
fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharey=True)
for ax, sample, title in zip(
    axes, (dpp, iid), ("projection DPP", "i.i.d. from $k_m / m$"), strict=True
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
                error_ratio(
                    nl.lstsq.weighted_least_squares(f, basis, k * m, sampler=sampler, rng=rng).coef
                )
                for _ in range(20)
            ]
            results[name].append((np.median(ratios), np.quantile(ratios, 0.9)))
    dpp_ratios = [
        error_ratio(nl.lstsq.weighted_least_squares(f, basis, m, sampler="dpp", rng=rng).coef)
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
ax.set_ylabel(r"$\|f - f_n\| / \|f - P_m f\|$")
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
# With :math:`n = 2m` the repeated DPP and volume sampling are already stable (ratios close
# to 1), while i.i.d. sampling needs :math:`n \sim m \log m`. A single DPP interpolates: it
# is far better than i.i.d. with :math:`n = m` points but not quasi-optimal.
