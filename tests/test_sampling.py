"""Tests of nl.sampling: exact laws by enumeration, DPP statistics against theory, DPPy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

import numlab as nl
from numlab.sampling import _chain, _samplers


def _gauss_legendre(a, b, n=200):
    """Nodes and weights of the probability dx/2 restricted to [a, b]."""
    t, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (b - a) * t + 0.5 * (a + b), 0.25 * (b - a) * w


def _count_moments(basis, box):
    """Exact mean and variance of the number of DPP points in a box of [-1, 1]^d.

    With ``M = int_A phi phi^T dmu``: mean ``tr M``, variance ``tr M - ||M||_F^2``.
    """
    grids = [_gauss_legendre(a, b, 60) for a, b in box]
    nodes = np.array(list(itertools.product(*[g[0] for g in grids])))
    weights = np.prod(np.array(list(itertools.product(*[g[1] for g in grids]))), axis=1)
    phi = basis(nodes)
    M = phi.T @ (weights[:, None] * phi)
    return np.trace(M), np.trace(M) - np.sum(M * M)


def _in_box(points, box):
    return np.all(
        [(points[:, c] >= a) & (points[:, c] <= b) for c, (a, b) in enumerate(box)], axis=0
    )


# --------------------------------------------------------------------------- 1-D laws


def test_legendre_rejection_bound_holds():
    # (pi/2) p_k(t)^2 sqrt(1 - t^2) < 2 is what makes the arcsine proposal exact.
    t = np.cos(np.linspace(0, np.pi, 200_001))
    b = nl.lstsq.LegendreBasis(1, 150)._b
    for k in (0, 1, 2, 5, 20, 150):
        p = _samplers._orthonormal_values(_chain.KIND_LEGENDRE, b, np.full(t.shape, k), t)
        assert np.max(0.5 * np.pi * p * p * np.sqrt(1 - t * t)) < 2.0


def test_hermite_rejection_bound_holds(rng):
    table = _chain.hermite_proposals(30)
    b = nl.lstsq.HermiteBasis(1, 30)._b
    for k in (0, 1, 4, 30):
        L, s, M = table[k]
        x = np.concatenate([rng.uniform(-L - 15, L + 15, 200_000), rng.normal(0, 3 * s, 50_000)])
        f = _chain._hermite_density(k, x, b)
        assert np.all(f <= M * _chain._hermite_proposal_density(x, L, s))


@pytest.mark.parametrize("kind", ["legendre", "hermite"])
@pytest.mark.parametrize("k", [0, 3, 12])
def test_univariate_laws_match_density(kind, k, rng):
    basis = (nl.lstsq.LegendreBasis if kind == "legendre" else nl.lstsq.HermiteBasis)(1, k)
    spec = _samplers._tensor_spec(basis)
    x = _samplers._sample_1d_many(*spec, np.full(4000, k), rng)
    # CDF of p_k^2 dmu by quadrature on a fine grid
    lo, hi = (
        (-1.0, 1.0) if kind == "legendre" else (-12.0 - 2 * math.sqrt(k), 12.0 + 2 * math.sqrt(k))
    )
    grid = np.linspace(lo, hi, 40_001)
    dens = basis(grid[:, None])[:, k] ** 2 * (
        0.5 if kind == "legendre" else scipy.stats.norm.pdf(grid)
    )
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    assert abs(cdf[-1] - 1) < 1e-6
    assert scipy.stats.kstest(x, lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3


def test_optimal_iid_density_is_k_m_over_m(rng):
    basis = nl.lstsq.LegendreBasis(1, 7)
    sample = nl.sampling.optimal_iid(basis, 5000, rng=rng)
    grid = np.linspace(-1, 1, 20_001)
    dens = basis.k_m(grid[:, None]) / basis.m / 2
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    assert scipy.stats.kstest(sample.points[:, 0], lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3
    np.testing.assert_allclose(sample.weights, basis.m / basis.k_m(sample.points))


# --------------------------------------------------------------------------- projection DPP


@pytest.mark.parametrize(
    ("basis", "method"),
    [
        (nl.lstsq.LegendreBasis(1, 14), "chain_rule"),
        (nl.lstsq.LegendreBasis(1, 14), "tridiagonal"),
        (nl.lstsq.HermiteBasis(1, 14), "tridiagonal"),
        (nl.lstsq.LegendreBasis(2, 6, index_set="hyperbolic"), "auto"),
        (nl.lstsq.LegendreBasis(3, 2, index_set="tensor"), "auto"),
        (nl.lstsq.HermiteBasis(2, 5), "auto"),
    ],
    ids=["leg1-chain", "leg1-tridiag", "herm1-tridiag", "leg2-hyperbolic", "leg3-tensor", "herm2"],
)
def test_projection_dpp_gives_m_distinct_points(basis, method, rng):
    for _ in range(3):
        s = nl.sampling.projection_dpp(basis, rng=rng, method=method)
        assert s.points.shape == (basis.m, basis.dim)
        assert len(np.unique(s.points, axis=0)) == basis.m
        assert np.linalg.matrix_rank(basis(s.points)) == basis.m
        if basis.kind == "legendre":
            assert np.all(np.abs(s.points) <= 1)


@pytest.mark.parametrize("method", ["chain_rule", "tridiagonal"])
def test_dpp_intensity_and_number_variance_1d(method):
    # d = 1, m = 10, count in A = [-1, -0.2]: the notes' reference values 4.352 / 0.2795.
    rng = np.random.default_rng(5)
    basis = nl.lstsq.LegendreBasis(1, 9)
    box = [(-1.0, -0.2)]
    mean, var = _count_moments(basis, box)
    assert mean == pytest.approx(4.352, abs=1e-3) and var == pytest.approx(0.2795, abs=1e-3)
    R = 1500
    samples = np.stack(
        [nl.sampling.projection_dpp(basis, rng=rng, method=method).points[:, 0] for _ in range(R)]
    )
    counts = np.sum((samples >= -1) & (samples <= -0.2), axis=1)
    assert abs(counts.mean() - mean) < 4 * math.sqrt(var / R)
    assert 0.8 * var < counts.var() < 1.25 * var
    assert counts.var() < 0.5 * mean  # far below Poisson (and below the binomial of i.i.d.)
    # one-point intensity k_m / m: chi-square over 20 cells of the pooled points
    edges = np.linspace(-1, 1, 21)
    expected = (
        np.array([_count_moments(basis, [ab])[0] for ab in zip(edges[:-1], edges[1:], strict=True)])
        * R
    )
    observed = np.histogram(samples.ravel(), edges)[0]
    # DPP counts have less variance than Poisson, so the chi-square test is conservative
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_dpp_number_variance_2d_below_poisson():
    rng = np.random.default_rng(11)
    basis = nl.lstsq.LegendreBasis(2, 3)  # m = 10
    box = [(-1.0, 0.0), (-1.0, 0.3)]
    mean, var = _count_moments(basis, box)
    R = 800
    counts = np.array(
        [_in_box(nl.sampling.projection_dpp(basis, rng=rng).points, box).sum() for _ in range(R)]
    )
    assert abs(counts.mean() - mean) < 4 * math.sqrt(var / R)
    assert 0.75 * var < counts.var() < 1.35 * var
    iid = np.array(
        [_in_box(nl.sampling.optimal_iid(basis, 10, rng=rng).points, box).sum() for _ in range(R)]
    )
    assert counts.var() < 0.6 * iid.var()  # i.i.d. with the same marginal is not repulsive


def test_hermite_dpp_number_variance_2d():
    rng = np.random.default_rng(12)
    basis = nl.lstsq.HermiteBasis(2, 3)
    # M = int_A phi phi^T dmu on A = (-inf, 0] x R: Gauss-Legendre on [-12, 0] x Gauss-Hermite
    t0, w0 = np.polynomial.legendre.leggauss(80)
    t0, w0 = 6.0 * t0 - 6.0, 6.0 * w0 * scipy.stats.norm.pdf(6.0 * t0 - 6.0)
    t1, w1 = np.polynomial.hermite_e.hermegauss(20)
    w1 = w1 / math.sqrt(2 * math.pi)
    nodes = np.array(list(itertools.product(t0, t1)))
    weights = np.prod(np.array(list(itertools.product(w0, w1))), axis=1)
    phi = basis(nodes)
    M = phi.T @ (weights[:, None] * phi)
    mean, var = np.trace(M), np.trace(M) - np.sum(M * M)
    assert mean == pytest.approx(basis.m / 2, rel=1e-9)
    R = 800
    counts = np.array(
        [(nl.sampling.projection_dpp(basis, rng=rng).points[:, 0] <= 0).sum() for _ in range(R)]
    )
    assert abs(counts.mean() - mean) < 4 * math.sqrt(var / R)
    assert 0.75 * var < counts.var() < 1.35 * var


@pytest.mark.parametrize("method", ["chain_rule", "tridiagonal"])
def test_hermite_1d_count_moments(method):
    # Dumitriu-Edelman's tridiagonal model and the chain rule against the exact moments
    rng = np.random.default_rng(13)
    basis = nl.lstsq.HermiteBasis(1, 7)
    t, w = np.polynomial.legendre.leggauss(120)
    x, w = 7.0 * t - 7.0 + 0.5, 7.0 * w * scipy.stats.norm.pdf(7.0 * t - 7.0 + 0.5)  # (-13.5, 0.5]
    phi = basis(x[:, None])
    M = phi.T @ (w[:, None] * phi)
    mean, var = np.trace(M), np.trace(M) - np.sum(M * M)
    R = 600
    counts = np.array(
        [
            np.sum(nl.sampling.projection_dpp(basis, rng=rng, method=method).points <= 0.5)
            for _ in range(R)
        ]
    )
    assert abs(counts.mean() - mean) < 4 * math.sqrt(var / R)
    assert 0.8 * var < counts.var() < 1.25 * var


def test_kernel_matches_generic_on_legendre(rng):
    from numlab._cpu.sampling import chain_rule_dpp

    basis = nl.lstsq.LegendreBasis(2, 4)
    kind, b, table = _samplers._tensor_spec(basis)
    u = rng.random(20_000)
    p_gen, used_gen = _chain.chain_rule_dpp(basis.indices, kind, b, table, u)
    p_jit, used_jit = chain_rule_dpp(basis.indices, kind, b, table, u)
    assert used_gen == used_jit > 0
    np.testing.assert_allclose(p_jit, p_gen, rtol=1e-12)
    # a stream too short is reported, not silently wrong
    assert chain_rule_dpp(basis.indices, kind, b, table, u[:50])[1] == -1


def test_same_kernel_as_dppy_with_lebesgue_normalisation():
    dppy = pytest.importorskip("dppy.multivariate_jacobi_ope")
    d, N = 2, 12
    indices = dppy.compute_ordering(N, d)
    basis = nl.lstsq.LegendreBasis(None, None, indices=indices)
    ope = dppy.MultivariateJacobiOPE(N, np.zeros((d, 2)))
    X = np.random.default_rng(0).uniform(-1, 1, (50, d))
    # DPPy's kernel is for Lebesgue measure: K_Leb = K_prob / 2^d
    np.testing.assert_allclose(ope.K(X, X), basis(X) @ basis(X).T / 2**d, rtol=1e-10, atol=1e-12)


def test_dppy_and_numlab_agree_statistically():
    dppy = pytest.importorskip("dppy.multivariate_jacobi_ope")
    d, N = 2, 6
    basis = nl.lstsq.LegendreBasis(None, None, indices=dppy.compute_ordering(N, d))
    ope = dppy.MultivariateJacobiOPE(N, np.zeros((d, 2)))
    box = [(-1.0, 0.0), (-1.0, 1.0)]
    R = 300
    theirs = np.array([_in_box(ope.sample(random_state=i), box).sum() for i in range(R)])
    ours = np.array(
        [_in_box(nl.sampling.projection_dpp(basis, rng=i).points, box).sum() for i in range(R)]
    )
    mean, var = _count_moments(basis, box)
    for counts in (theirs, ours):
        assert abs(counts.mean() - mean) < 4 * math.sqrt(var / R)


# --------------------------------------------------------------------------- finite / enumeration


def _finite_case():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 1))
    w = rng.uniform(0.5, 1.5, 6)
    w /= w.sum()
    basis = nl.lstsq.FeatureBasis(lambda x: np.hstack([np.ones_like(x), x]), X, weights=w)
    return basis, X, w


def test_feature_basis_projection_dpp_law_by_enumeration():
    basis, X, w = _finite_case()
    Q = basis._Q  # sqrt(w) phi
    subsets = list(itertools.combinations(range(6), 2))
    exact = np.array([np.linalg.det(Q[list(S)]) ** 2 for S in subsets])
    assert exact.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    R = 4000
    index = {S: i for i, S in enumerate(subsets)}
    counts = np.zeros(len(subsets))
    for _ in range(R):
        counts[
            index[tuple(sorted(nl.sampling.projection_dpp(basis, rng=rng).indices.tolist()))]
        ] += 1
    assert scipy.stats.chisquare(counts, exact * R).pvalue > 1e-3


def test_volume_sampling_det_weighted_law_by_enumeration():
    # law of the ordered tuple: det(sum_i w_i phi(x_i) phi(x_i)^T / n) prod_i rho(x_i) / const,
    # with rho(x_i) = mu_i k_m(x_i) / m and w_i = m / k_m(x_i).
    basis, X, mu = _finite_case()
    m, n = basis.m, 3
    phi = basis.candidate_values()
    k = np.sum(phi**2, axis=1)
    rho, wts = mu * k / m, m / k
    tuples = list(itertools.product(range(6), repeat=n))
    dens = np.array(
        [
            np.linalg.det((phi[list(t)].T * wts[list(t)]) @ phi[list(t)] / n)
            * np.prod(rho[list(t)])
            for t in tuples
        ]
    )
    # Cauchy-Binet: the normalising constant is n! / ((n - m)! n^m)
    assert dens.sum() == pytest.approx(math.perm(n, m) / n**m)
    multisets = sorted({tuple(sorted(t)) for t in tuples})
    where = {s: i for i, s in enumerate(multisets)}
    exact = np.zeros(len(multisets))
    for t, p in zip(tuples, dens, strict=True):
        exact[where[tuple(sorted(t))]] += p
    rng = np.random.default_rng(1)
    R = 5000
    counts = np.zeros(len(multisets))
    for _ in range(R):
        s = nl.sampling.volume_sampling(basis, n, rng=rng)
        counts[where[tuple(sorted(s.indices.tolist()))]] += 1
        np.testing.assert_allclose(s.points, X[s.indices])
    keep = exact > 0
    assert counts[~keep].sum() == 0
    assert scipy.stats.chisquare(counts[keep], exact[keep] * R / exact[keep].sum()).pvalue > 1e-3


def test_row_samplers_laws_by_enumeration():
    A = np.random.default_rng(4).standard_normal((5, 2))
    subsets = list(itertools.combinations(range(5), 2))
    exact = np.array([np.linalg.det(A[list(S)]) ** 2 for S in subsets]) / np.linalg.det(A.T @ A)
    assert exact.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(2)
    R = 3000
    index = {S: i for i, S in enumerate(subsets)}
    for sampler in (
        nl.sampling.dpp_rows,
        lambda A, rng: nl.sampling.volume_sampling_rows(A, 2, rng=rng),
    ):
        counts = np.zeros(len(subsets))
        for _ in range(R):
            counts[index[tuple(sorted(sampler(A, rng=rng).indices.tolist()))]] += 1
        assert scipy.stats.chisquare(counts, exact * R).pvalue > 1e-3


def test_row_sample_weights_and_subsampled_least_squares(rng):
    N, m = 400, 6
    A = rng.standard_normal((N, m))
    x_true = rng.standard_normal(m)
    b = A @ x_true
    s = nl.sampling.volume_sampling_rows(A, 3 * m, rng=rng)
    Q = np.linalg.qr(A)[0]
    lev = np.sum(Q**2, axis=1)
    np.testing.assert_allclose(s.weights, m / (N * lev[s.indices]))
    sw = np.sqrt(s.weights)
    x = np.linalg.lstsq(sw[:, None] * A[s.indices], sw * b[s.indices], rcond=None)[0]
    np.testing.assert_allclose(x, x_true, rtol=1e-8)  # consistent system: exact recovery


# --------------------------------------------------------------------------- volume / repeated


def test_volume_and_repeated_shapes_and_weights(rng):
    basis = nl.lstsq.LegendreBasis(2, 3)
    v = nl.sampling.volume_sampling(basis, 25, rng=rng)
    assert v.points.shape == (25, 2) and v.weights.shape == (25,)
    np.testing.assert_allclose(v.weights, basis.m / basis.k_m(v.points))
    r = nl.sampling.repeated_dpp(basis, 3, rng=rng)
    assert r.points.shape == (30, 2)
    for block in np.split(r.points, 3):
        assert np.linalg.matrix_rank(basis(block)) == basis.m


def test_reproducible_for_a_seed():
    basis = nl.lstsq.LegendreBasis(2, 4)
    for fn in (
        nl.sampling.projection_dpp,
        lambda b, rng: nl.sampling.volume_sampling(b, 30, rng=rng),
    ):
        a, b = fn(basis, rng=7), fn(basis, rng=7)
        np.testing.assert_array_equal(a.points, b.points)


def test_like_places_result_on_the_backend(backend):
    basis = nl.lstsq.LegendreBasis(2, 3)
    like = backend.asarray(np.zeros(1))
    ref = nl.sampling.volume_sampling(basis, 15, rng=3)
    s = nl.sampling.volume_sampling(basis, 15, rng=3, like=like)
    xp = backend.xp
    assert (
        type(s.points) is type(like)
        and s.points.dtype == like.dtype
        and s.weights.dtype == like.dtype
    )
    if backend.device is not None:
        assert s.points.device == backend.device
    np.testing.assert_allclose(backend.to_numpy(s.points), ref.points, rtol=backend.rtol)
    np.testing.assert_allclose(backend.to_numpy(s.weights), ref.weights, rtol=10 * backend.rtol)
    assert xp is not None


def test_row_samplers_on_backend(backend):
    A = np.random.default_rng(0).standard_normal((30, 3))
    s = nl.sampling.dpp_rows(backend.asarray(A), rng=1)
    ref = nl.sampling.dpp_rows(A, rng=1)
    np.testing.assert_array_equal(backend.to_numpy(s.indices), ref.indices)
    assert s.weights.dtype == backend.dtype


# --------------------------------------------------------------------------- bad input


def test_bad_input():
    basis = nl.lstsq.LegendreBasis(2, 3)
    with pytest.raises(ValueError, match="`n` must be >= m = 10"):
        nl.sampling.volume_sampling(basis, 5)
    with pytest.raises(ValueError, match="`n` must be >= 1"):
        nl.sampling.optimal_iid(basis, 0)
    with pytest.raises(ValueError, match="`r` must be >= 1"):
        nl.sampling.repeated_dpp(basis, 0)
    with pytest.raises(TypeError, match="`basis` must be a numlab.lstsq basis"):
        nl.sampling.projection_dpp(np.eye(3))
    with pytest.raises(ValueError, match="`method`='tridiagonal' needs a 1-D basis"):
        nl.sampling.projection_dpp(basis, method="tridiagonal")
    with pytest.raises(ValueError, match="`method` must be one of"):
        nl.sampling.projection_dpp(basis, method="mcmc")
    with pytest.raises(TypeError, match="`rng` must be None"):
        nl.sampling.projection_dpp(basis, rng="seed")
    with pytest.raises(ValueError, match="`A` must be tall"):
        nl.sampling.dpp_rows(np.ones((2, 3)))
    with pytest.raises(ValueError, match="`A` must have full column rank"):
        nl.sampling.dpp_rows(np.ones((5, 2)))
    with pytest.raises(ValueError, match="`n` must be >= m = 2"):
        nl.sampling.volume_sampling_rows(np.random.default_rng(0).standard_normal((5, 2)), 1)
    with pytest.raises(ValueError, match="`A` must contain only finite values"):
        nl.sampling.dpp_rows(np.full((5, 2), np.nan))


@pytest.mark.parametrize("like", ["cupy", 3, [1.0], object()])
@pytest.mark.parametrize("sampler",
                         ["optimal_iid", "volume_sampling", "repeated_dpp", "projection_dpp"])
def test_like_must_be_an_array(sampler, like):
    basis = nl.lstsq.LegendreBasis(1, 3)
    args = () if sampler == "projection_dpp" else (4,) if sampler != "repeated_dpp" else (1,)
    with pytest.raises(TypeError, match="`like` must be None or an array"):
        getattr(nl.sampling, sampler)(basis, *args, rng=0, like=like)


@pytest.mark.parametrize("method", ["chain_rule", "tridiagonal"])
def test_feature_basis_dpp_takes_only_auto(method):
    candidates = np.linspace(-1, 1, 30)[:, None]
    basis = nl.lstsq.FeatureBasis(lambda x: np.c_[np.ones(len(x)), x], candidates)
    with pytest.raises(ValueError, match="`method` must be 'auto' for a FeatureBasis"):
        nl.sampling.projection_dpp(basis, method=method, rng=0)


def test_sample_reprs_are_compact():
    basis = nl.lstsq.LegendreBasis(10, 2)
    text = repr(nl.sampling.optimal_iid(basis, 300, rng=0))
    assert text.startswith("Sample(points=array(shape=(300, 10), dtype=float64)")
    rows = nl.sampling.dpp_rows(np.random.default_rng(0).standard_normal((500, 5)), rng=0)
    assert repr(rows).startswith("RowSample(indices=array(shape=(5,)")
    assert len(text) < 300
