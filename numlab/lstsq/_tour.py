"""``numlab tour`` entries of nl.lstsq / nl.sampling, and the error-ratio reference problem."""

from __future__ import annotations

import math
import time

import numpy as np

from .._tour import Demo


class KinkProblem:
    """``f(x) = prod_i |x_i - 0.3|^{5/2}`` on ``[-1, 1]^d`` with its exact best approximation.

    ``f`` is C^2 but not C^3, so the best-approximation error in ``V_m`` stays well above
    round-off. Its Legendre coefficients are products of 1-D coefficients computed by
    Gauss quadrature on each side of the kink, so ``||f - P_m f||`` and the error of any
    ``f_n`` (by Pythagoras: ``||f - f_n||^2 = ||f - P_m f||^2 + |c* - c_n|^2``) are exact.
    """

    kink = 0.3
    power = 2.5

    def __init__(self, basis):
        self.basis = basis
        t, w = np.polynomial.legendre.leggauss(200)
        nodes, weights = [], []
        for a, b in ((-1.0, self.kink), (self.kink, 1.0)):
            nodes.append(0.5 * (b - a) * t + 0.5 * (a + b))
            weights.append(0.25 * (b - a) * w)  # probability measure dx / 2
        x, w = np.concatenate(nodes), np.concatenate(weights)
        g = self.g(x)
        from . import LegendreBasis

        p = LegendreBasis(1, basis.degree)._numpy_values(x[:, None])  # (n, degree + 1)
        g_hat = p.T @ (w * g)
        self.coef = np.prod([g_hat[basis.indices[:, c]] for c in range(basis.dim)], axis=0)
        norm2 = float(np.sum(w * g * g)) ** basis.dim
        self.best_error = math.sqrt(max(norm2 - float(self.coef @ self.coef), 0.0))

    def g(self, t):
        return np.abs(t - self.kink) ** self.power

    def __call__(self, x):
        return np.prod(self.g(np.asarray(x)), axis=1)

    def error_ratio(self, coef):
        """``||f - f_n|| / ||f - P_m f||`` for the coefficients ``coef`` of ``f_n``."""
        diff = np.asarray(coef, dtype=np.float64) - self.coef
        return math.sqrt(self.best_error**2 + float(diff @ diff)) / self.best_error


def error_ratios(dim, degree, sampler, n_samples, repeats, seed=0):
    """Error ratios of ``repeats`` weighted least-squares fits of :class:`KinkProblem`."""
    import warnings

    from . import IllConditionedWarning, LegendreBasis, weighted_least_squares

    basis = LegendreBasis(dim, degree)
    problem = KinkProblem(basis)
    rng = np.random.default_rng(seed)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        for _ in range(repeats):
            fit = weighted_least_squares(problem, basis, n_samples, sampler=sampler, rng=rng)
            out.append(problem.error_ratio(fit.coef))
    return np.array(out)


def least_squares_demo(quick: bool) -> Demo:
    from . import LegendreBasis

    dim, degree = 2, 8
    repeats = 10 if quick else 30
    m = LegendreBasis(dim, degree).m
    start = time.perf_counter()
    rep = error_ratios(dim, degree, "repeated_dpp", 2 * m, repeats, seed=1)
    iid = error_ratios(dim, degree, "iid", 2 * m, repeats, seed=1)
    elapsed = time.perf_counter() - start
    return Demo(
        problem=f"weighted LS of prod |x_i-0.3|^2.5, d={dim}, m={m}, n=2m, {repeats} draws",
        result=(
            f"median error / best error: 2 x DPP {np.median(rep):.2f}, "
            f"i.i.d. optimal {np.median(iid):.2f} ({elapsed:.1f} s)"
        ),
        check="vs the exact best approximation (Gauss quadrature): DPP median <= 1.6",
        ok=bool(np.median(rep) <= 1.6),
    )


DEMOS = [least_squares_demo]
