r"""
Weighted least squares against NumPy's least-squares fit
========================================================

:func:`numlab.lstsq.weighted_least_squares` approximates a function :math:`f` in
:math:`V_m`, the span of :math:`m` functions :math:`\varphi_j` orthonormal in
:math:`L^2(\mu)`, from :math:`n` evaluations at random points :math:`x_i`:

.. math::

   f_n = \operatorname*{arg\,min}_{v \in V_m} \sum_{i=1}^{n} w(x_i)\,
   \bigl(f(x_i) - v(x_i)\bigr)^2, \qquad w = \frac{m}{k_m}, \qquad
   k_m(x) = \sum_{j=1}^{m} \varphi_j(x)^2 .

The points come from a sampler adapted to the basis (volume sampling by default, a DPP
followed by i.i.d. points of density :math:`k_m / m`), which keeps the fit stable with
:math:`n` a small multiple of :math:`m`. The usual recipe, NumPy's
:func:`numpy.polynomial.legendre.legfit` (unweighted least squares) on points drawn
uniformly from :math:`\mu`, needs :math:`n \sim m^2` points in the Legendre case. We
compare the two on Runge's function :math:`f(x) = 1 / (1 + 25 x^2)` on :math:`[-1, 1]`
(uniform measure), Legendre polynomials of degree :math:`< m = 30`.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

import numlab as nl


def f(x):
    return 1.0 / (1.0 + 25.0 * x[:, 0] ** 2)


m = 30
basis = nl.lstsq.LegendreBasis(1, m - 1)

# L2 errors by Gauss-Legendre quadrature (probability measure dx / 2), and the best one.
t, w = np.polynomial.legendre.leggauss(400)
w = w / 2
best = basis(t[:, None]).T @ (w * f(t[:, None]))
best_error = np.sqrt(w @ f(t[:, None]) ** 2 - best @ best)


def l2_error(values):
    return np.sqrt(w @ (f(t[:, None]) - values) ** 2)


fit = nl.lstsq.weighted_least_squares(f, basis, 2 * m, rng=0)
print(fit)
print(f"error {l2_error(fit(t[:, None])):.2e}, best possible {best_error:.2e}")

# %%
# Error against the sample size
# -----------------------------
# Ratio :math:`\|f - f_n\| / \|f - P_m f\|` to the best approximation error, median and
# 90 % quantile over 20 draws for each :math:`n`. The unweighted fit uses
# :func:`numpy.polynomial.legendre.legfit` with :math:`n` uniform points.

rng = np.random.default_rng(1)
factors = [1, 1.5, 2, 3, 5, 10]
ratios = {"numlab, volume sampling": [], "numlab, i.i.d. optimal": [], "NumPy legfit, uniform": []}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", nl.lstsq.IllConditionedWarning)
    warnings.simplefilter("ignore", np.exceptions.RankWarning)
    for factor in factors:
        n = int(factor * m)
        draws = {name: [] for name in ratios}
        for _ in range(20):
            for name, sampler in (
                ("numlab, volume sampling", "volume"),
                ("numlab, i.i.d. optimal", "iid"),
            ):
                fn = nl.lstsq.weighted_least_squares(f, basis, n, sampler=sampler, rng=rng)
                draws[name].append(l2_error(fn(t[:, None])) / best_error)
            x = rng.uniform(-1, 1, n)
            c = np.polynomial.legendre.legfit(x, f(x[:, None]), m - 1)
            draws["NumPy legfit, uniform"].append(
                l2_error(np.polynomial.legendre.legval(t, c)) / best_error
            )
        for name in ratios:
            ratios[name].append((np.median(draws[name]), np.quantile(draws[name], 0.9)))

fig, ax = plt.subplots(figsize=(6, 4))
for name, marker in zip(ratios, "osd", strict=True):
    med, q90 = np.array(ratios[name]).T
    ax.plot(factors, med, marker=marker, label=f"{name} (median)")
    ax.fill_between(factors, med, q90, alpha=0.15)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xticks(factors, labels=[f"{k:g}" for k in factors])
ax.set_xticks([], minor=True)
ax.set_xlabel("n / m")
ax.set_ylabel(r"$\|f - f_n\| \,/\, \|f - P_m f\|$")
ax.set_title(f"Runge's function, Legendre, m = {m}")
ax.legend()
fig.tight_layout()

for name, rows in ratios.items():
    print(
        f"{name:24s}", " ".join(f"{k:g}m: {r:.3g}" for k, (r, _) in zip(factors, rows, strict=True))
    )

# %%
# The fit and its sample
# ----------------------
# With :math:`n = 2m` points, volume sampling puts more points near the ends of the
# interval, where :math:`k_m` is large (the density :math:`k_m / m` is drawn in gray, below
# the two samples), and
# weights them down by :math:`w = m / k_m`; uniform points leave the ends under-sampled,
# and the unweighted fit oscillates there.

x = np.random.default_rng(3).uniform(-1, 1, 2 * m)
c = np.polynomial.legendre.legfit(x, f(x[:, None]), m - 1)
grid = np.linspace(-1, 1, 801)
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.plot(grid, f(grid[:, None]), "k-", lw=2.5, alpha=0.35, label="f")
ax.plot(grid, fit(grid[:, None]), "C0-", label="numlab, volume sampling, n = 2m")
ax.plot(grid, np.polynomial.legendre.legval(grid, c), "C2--", label="NumPy legfit, uniform, n = 2m")
ax.plot(fit.points[:, 0], np.full(2 * m, -0.25), "C0|", ms=10)
ax.plot(x, np.full(2 * m, -0.4), "C2|", ms=10)
ax.plot(grid, basis.k_m(grid[:, None]) / m / 10 - 0.6, color="gray", lw=1)
ax.set_ylim(-0.7, 1.6)
ax.set_xlabel("x")
ax.legend(loc="upper right", fontsize="small")
fig.tight_layout()
plt.show()
