"""Tests of nl.lstsq: orthonormality by quadrature, SciPy polynomials, weighted LS accuracy."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.special

import numlab as nl
from numlab.lstsq._tour import KinkProblem, error_ratios


def _tensor_quadrature(kind, dim, n):
    if kind == "legendre":
        t, w = np.polynomial.legendre.leggauss(n)
        w = w / 2
    else:
        t, w = np.polynomial.hermite_e.hermegauss(n)
        w = w / math.sqrt(2 * math.pi)
    nodes = np.array(list(itertools.product(t, repeat=dim)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=dim))), axis=1)
    return nodes, weights


@pytest.mark.parametrize("cls", [nl.lstsq.LegendreBasis, nl.lstsq.HermiteBasis])
@pytest.mark.parametrize("index_set", ["total", "hyperbolic", "tensor"])
def test_bases_are_orthonormal_and_k_m_integrates_to_m(cls, index_set):
    basis = cls(3, 4, index_set=index_set)
    nodes, weights = _tensor_quadrature(basis.kind, 3, 8)
    phi = basis(nodes)
    np.testing.assert_allclose(phi.T @ (weights[:, None] * phi), np.eye(basis.m), atol=1e-11)
    assert float(weights @ basis.k_m(nodes)) == pytest.approx(basis.m, rel=1e-12)


def test_values_match_scipy(rng):
    x = rng.uniform(-1, 1, (50, 2))
    basis = nl.lstsq.LegendreBasis(2, 6, index_set="hyperbolic")
    phi = basis(x)
    for j, (a, b) in enumerate(basis.indices):
        ref = (
            math.sqrt((2 * a + 1) * (2 * b + 1))
            * scipy.special.eval_legendre(a, x[:, 0])
            * scipy.special.eval_legendre(b, x[:, 1])
        )
        np.testing.assert_allclose(phi[:, j], ref, rtol=1e-12, atol=1e-12)
    h = nl.lstsq.HermiteBasis(1, 9)
    z = rng.standard_normal((40, 1)) * 2
    ref = np.stack(
        [
            scipy.special.eval_hermitenorm(k, z[:, 0]) / math.sqrt(math.factorial(k))
            for k in range(10)
        ],
        1,
    )
    np.testing.assert_allclose(h(z), ref, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(("index_set", "count"), [("total", math.comb(3 + 5, 3)), ("tensor", 6**3)])
def test_index_set_sizes(index_set, count):
    assert nl.lstsq.LegendreBasis(3, 5, index_set=index_set).m == count
    hyper = nl.lstsq.multi_indices(3, 5, "hyperbolic")
    assert all(np.prod(a + 1) <= 6 for a in hyper)
    assert len(hyper) == sum(
        np.prod(np.array(a) + 1) <= 6 for a in itertools.product(range(6), repeat=3)
    )
    assert np.array_equal(nl.lstsq.LegendreBasis(3, 5, index_set=index_set).indices[0], [0, 0, 0])


def test_bases_on_backends(backend):
    x = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    for basis in (nl.lstsq.LegendreBasis(2, 4), nl.lstsq.HermiteBasis(2, 3, index_set="tensor")):
        out = basis(backend.asarray(x))
        assert out.dtype == backend.dtype and tuple(out.shape) == (20, basis.m)
        np.testing.assert_allclose(
            backend.to_numpy(out), basis(x), rtol=backend.rtol, atol=backend.rtol
        )
        km = basis.k_m(backend.asarray(x))
        np.testing.assert_allclose(backend.to_numpy(km), basis.k_m(x), rtol=backend.rtol)


def test_feature_basis_orthonormal_on_weighted_candidates(rng):
    X = rng.uniform(-1, 1, (300, 2))
    w = rng.uniform(size=300)
    w /= w.sum()

    def features(x):  # a dependent column (x0 + x1) is dropped
        return np.column_stack(
            [np.ones(len(x)), x[:, 0], x[:, 1], x[:, 0] + x[:, 1], x[:, 0] * x[:, 1]]
        )

    basis = nl.lstsq.FeatureBasis(features, X, weights=w)
    assert basis.m == 4
    phi = basis(X)
    np.testing.assert_allclose(phi.T @ (w[:, None] * phi), np.eye(4), atol=1e-12)
    np.testing.assert_allclose(basis.candidate_values(), phi, atol=1e-12)
    np.testing.assert_allclose(basis.k_m(X) @ w, 4.0)
    # the span is that of the features: fit x0 * x1 exactly
    coef = np.linalg.lstsq(phi, X[:, 0] * X[:, 1], rcond=None)[0]
    np.testing.assert_allclose(phi @ coef, X[:, 0] * X[:, 1], atol=1e-12)


@pytest.mark.parametrize("sampler", ["volume", "iid", "dpp", "repeated_dpp"])
def test_wls_reproduces_functions_in_the_space(sampler, rng):
    basis = nl.lstsq.LegendreBasis(2, 4)
    coef = rng.standard_normal(basis.m)
    n = {"dpp": basis.m, "repeated_dpp": 2 * basis.m}.get(sampler, 3 * basis.m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nl.lstsq.IllConditionedWarning)
        fit = nl.lstsq.weighted_least_squares(
            lambda x: basis(x) @ coef, basis, n, sampler=sampler, rng=rng
        )
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-7, atol=1e-7)
    x = rng.uniform(-1, 1, (10, 2))
    np.testing.assert_allclose(fit.predict(x), basis(x) @ coef, atol=1e-7)
    assert fit.points.shape == (n, 2) and fit.weights.shape == (n,)
    np.testing.assert_allclose(fit.weights, basis.m / basis.k_m(fit.points))
    assert fit.gram_condition >= 1 and fit.gram_min_eig > 0


def test_wls_matches_direct_weighted_solve(rng):
    basis = nl.lstsq.HermiteBasis(2, 3)
    fit = nl.lstsq.weighted_least_squares(lambda x: np.sin(x[:, 0]) * x[:, 1], basis, 40, rng=rng)
    w, Phi = fit.weights, basis(fit.points)
    y = np.sin(fit.points[:, 0]) * fit.points[:, 1]
    G = Phi.T @ (w[:, None] * Phi) / 40
    np.testing.assert_allclose(fit.coef, np.linalg.solve(G, Phi.T @ (w * y) / 40), rtol=1e-9)
    assert fit.gram_condition == pytest.approx(np.linalg.cond(G), rel=1e-6)


def test_wls_on_backends(backend):
    basis = nl.lstsq.LegendreBasis(2, 3)
    like = backend.asarray(np.zeros(1))
    xp = backend.xp

    def f(x):
        return xp.exp(x[:, 0]) * x[:, 1]

    fit = nl.lstsq.weighted_least_squares(f, basis, 30, rng=5, like=like)
    ref = nl.lstsq.weighted_least_squares(lambda x: np.exp(x[:, 0]) * x[:, 1], basis, 30, rng=5)
    assert fit.coef.dtype == backend.dtype
    tol = 1e-3 if backend.float_name == "float32" else 1e-9
    np.testing.assert_allclose(backend.to_numpy(fit.coef), ref.coef, rtol=tol, atol=tol)
    out = fit.predict(backend.asarray(np.zeros((3, 2))))
    assert out.dtype == backend.dtype


def test_wls_warns_when_gram_is_ill_conditioned():
    basis = nl.lstsq.LegendreBasis(1, 30)
    with pytest.warns(nl.lstsq.IllConditionedWarning, match="ill-conditioned"):
        fit = nl.lstsq.weighted_least_squares(
            lambda x: np.sin(3 * x[:, 0]), basis, basis.m, sampler="iid", rng=0, cond_warning=10
        )
    assert fit.gram_condition > 10


def test_wls_feature_basis_on_candidates(rng):
    X = rng.uniform(-1, 1, (500, 1))
    basis = nl.lstsq.FeatureBasis(lambda x: np.hstack([x**k for k in range(4)]), X)
    fit = nl.lstsq.weighted_least_squares(lambda x: 1 + x[:, 0] ** 3, basis, 12, rng=rng)
    np.testing.assert_allclose(fit.predict(X), 1 + X[:, 0] ** 3, atol=1e-9)


# --------------------------------------------------------------------------- accuracy targets


def test_kink_problem_reference_is_exact():
    basis = nl.lstsq.LegendreBasis(2, 6)
    problem = KinkProblem(basis)
    nodes, weights = _tensor_quadrature("legendre", 2, 120)  # slow but independent
    f = problem(nodes)
    coef = basis(nodes).T @ (weights * f)
    np.testing.assert_allclose(problem.coef, coef, atol=1e-6)
    best = math.sqrt(weights @ (f - basis(nodes) @ coef) ** 2)
    assert problem.best_error == pytest.approx(best, rel=1e-3)


@pytest.mark.parametrize(
    ("dim", "degree"), [(1, 19), (2, 8), pytest.param(5, 3, marks=pytest.mark.slow)]
)
def test_error_ratio_targets(dim, degree):
    # the targets, 30 fixed draws: n = 2m, 2 x DPP median <= 1.5 and <= 0.85 x the
    # i.i.d. median; ceil(ln m) x DPP median <= 1.15; volume sampling (2m) median <= 1.75.
    m = nl.lstsq.LegendreBasis(dim, degree).m
    two_dpp = np.median(error_ratios(dim, degree, "repeated_dpp", 2 * m, 30, seed=0))
    iid = np.median(error_ratios(dim, degree, "iid", 2 * m, 30, seed=0))
    ln_dpp = np.median(
        error_ratios(dim, degree, "repeated_dpp", math.ceil(math.log(m)) * m, 30, seed=0)
    )
    volume = np.median(error_ratios(dim, degree, "volume", 2 * m, 30, seed=0))
    assert two_dpp <= 1.5
    if dim <= 2:
        assert two_dpp <= 0.85 * iid
    assert ln_dpp <= 1.15
    assert volume <= 1.75


# --------------------------------------------------------------------------- bad input


def test_bad_input():
    with pytest.raises(ValueError, match="`degree` must be >= 0"):
        nl.lstsq.LegendreBasis(2, -1)
    with pytest.raises(ValueError, match="`dim` must be >= 1"):
        nl.lstsq.HermiteBasis(0, 3)
    with pytest.raises(ValueError, match="`index_set` must be one of"):
        nl.lstsq.LegendreBasis(2, 3, index_set="sparse")
    with pytest.raises(ValueError, match="`indices` must not repeat"):
        nl.lstsq.LegendreBasis(None, None, indices=[[0, 1], [0, 1]])
    basis = nl.lstsq.LegendreBasis(2, 3)
    with pytest.raises(ValueError, match=r"`x` must lie in the domain \[-1, 1\]\^d"):
        basis(np.array([[0.0, 1.5]]))
    with pytest.raises(ValueError, match=r"`x` must have shape \(n, 2\)"):
        basis(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="`x` must contain only finite values"):
        basis(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="`n_samples` must equal m = 10 for sampler='dpp'"):
        nl.lstsq.weighted_least_squares(np.sin, basis, 12, sampler="dpp")
    with pytest.raises(ValueError, match="`n_samples` must be a multiple of m = 10"):
        nl.lstsq.weighted_least_squares(np.sin, basis, 15, sampler="repeated_dpp")
    with pytest.raises(ValueError, match="`n_samples` must be >= m = 10 for sampler='volume'"):
        nl.lstsq.weighted_least_squares(np.sin, basis, 5, sampler="volume")
    with pytest.raises(ValueError, match="`sampler` must be one of"):
        nl.lstsq.weighted_least_squares(np.sin, basis, 20, sampler="lhs")
    with pytest.raises(ValueError, match=r"`f` must return an array of shape \(20,\)"):
        nl.lstsq.weighted_least_squares(lambda x: x, basis, 20, rng=0)
    with pytest.raises(TypeError, match="`f` must be callable"):
        nl.lstsq.weighted_least_squares(3.0, basis, 20)
    with pytest.raises(TypeError, match="`feature_map` must be callable"):
        nl.lstsq.FeatureBasis(None, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="`feature_map` must return an"):
        nl.lstsq.FeatureBasis(lambda x: x[:2], np.zeros((3, 1)))


def _sum(x):
    return np.sum(x, axis=1)


@pytest.mark.parametrize("sampler", ["volume", "iid", "dpp", "repeated_dpp"])
def test_wls_checks_basis(sampler):
    with pytest.raises(TypeError, match="`basis` must be a numlab.lstsq basis"):
        nl.lstsq.weighted_least_squares(_sum, "legendre", 20, sampler=sampler)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(cond_warning=float("nan")), ValueError, "`cond_warning` must be finite"),
        (dict(cond_warning=0.5), ValueError, "`cond_warning` must be >= 1"),
        (dict(cond_warning="big"), TypeError, "`cond_warning` must be a real number"),
        (dict(like="numpy"), TypeError, "`like` must be None or an array"),
        (dict(f=lambda x: np.sum(x, axis=1) + 1j), TypeError, "`f` must return real numbers"),
    ],
)
def test_wls_bad_arguments(kwargs, error, match):
    args = dict(f=_sum, basis=nl.lstsq.LegendreBasis(2, 2), n_samples=12, rng=0) | kwargs
    with pytest.raises(error, match=match):
        nl.lstsq.weighted_least_squares(**args)


def test_wls_infinite_cond_warning_never_warns():
    fit = nl.lstsq.weighted_least_squares(
        _sum, nl.lstsq.LegendreBasis(2, 2), 12, rng=0, cond_warning=math.inf
    )
    assert fit.coef.shape == (6,)


def _features(x):
    return np.c_[np.ones(len(x)), x]


@pytest.mark.parametrize(
    ("feature_map", "kwargs", "error", "match"),
    [
        (lambda x: "abc", {}, TypeError, "`feature_map` must return an"),
        (lambda x: None, {}, TypeError, "`feature_map` must return an"),
        (lambda x: _features(x) + 1j, {}, TypeError,
         "`feature_map` must return an .* got dtype complex"),
        (_features, {"rtol": -1.0}, ValueError, "`rtol` must be >= 0"),
        (_features, {"rtol": 1.5}, ValueError, "`rtol` must be < 1"),
        (_features, {"rtol": None}, TypeError, "`rtol` must be a real number"),
    ],
)
def test_feature_basis_bad_input(feature_map, kwargs, error, match):
    candidates = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    with pytest.raises(error, match=match):
        nl.lstsq.FeatureBasis(feature_map, candidates, **kwargs)


def test_feature_basis_list_features_and_checked_evaluation():
    candidates = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    basis = nl.lstsq.FeatureBasis(lambda x: _features(x).tolist(), candidates)
    assert basis.m == 3
    with pytest.raises(ValueError, match=r"`x` must have shape \(\?, 2\)"):
        basis(np.ones((4, 3)))

    def changes_at_new_points(x):
        return _features(x) if len(x) == 50 else np.full((len(x), 3), np.nan)

    with pytest.raises(ValueError, match="`feature_map` returned NaN or infinity on `x`"):
        nl.lstsq.FeatureBasis(changes_at_new_points, candidates)(np.zeros((4, 2)))

    def narrower_at_new_points(x):
        return _features(x) if len(x) == 50 else np.ones((len(x), 1))

    with pytest.raises(ValueError, match=r"`feature_map` must return an \(N, 3\) array"):
        nl.lstsq.FeatureBasis(narrower_at_new_points, candidates)(np.zeros((4, 2)))

    def wrong_rows_at_new_points(x):
        return _features(x) if len(x) == 50 else np.ones((2, 3))

    with pytest.raises(ValueError, match=r"`feature_map` must return .* got shape \(2, 3\)"):
        nl.lstsq.FeatureBasis(wrong_rows_at_new_points, candidates)(np.zeros((4, 2)))


def test_fit_repr_is_compact():
    basis = nl.lstsq.LegendreBasis(10, 2)
    fit = nl.lstsq.weighted_least_squares(lambda x: np.cos(x.sum(-1)), basis, 200, rng=0)
    text = repr(fit)
    assert "points=array(shape=(200, 10), dtype=float64)" in text
    assert "sampler='volume'" in text and len(text) < 400
