"""nl.ot against POT (the anchor), exact LP solutions and its own invariants."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numlab as nl
from numlab.ot import ConvergenceWarning

ot = pytest.importorskip("ot")

METHODS = ("sns", "log", "sinkhorn")


def point_clouds(n, m=None, seed=0):
    """Uniform source cloud, Gaussian target cloud, squared-Euclidean cost / max."""
    r = np.random.default_rng(seed)
    m = n if m is None else m
    X = r.random((n, 2))
    Y = r.normal(0.5, 0.2, (m, 2))
    M = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    return M / M.max()


def random_weights(n, rng):
    w = rng.random(n) + 0.1
    return w / w.sum()


def pot_reference(a, b, M, reg):
    """A high-accuracy entropic plan from POT's log-domain solver."""
    return _pot_reference(a.tobytes(), b.tobytes(), M.tobytes(), M.shape, reg)


@functools.cache
def _pot_reference(a, b, M, shape, reg):
    a, b = np.frombuffer(a), np.frombuffer(b)
    M = np.frombuffer(M).reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # POT's scaling solver is exact arithmetic-wise and fast; at these sizes and
        # costs <= 1, exp(-M / reg) keeps a representable entry in every row and column
        P, log = ot.sinkhorn(a, b, M, reg, method="sinkhorn", stopThr=1e-13,
                             numItermax=100_000, log=True)
    assert np.all(np.isfinite(P))
    return P, {"log_u": np.log(log["u"]), "log_v": np.log(log["v"])}


def violation(P, a, b):
    return np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()


def is_float32(backend):
    return backend.float_name == "float32"


# ----------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("reg", [1e-2, 1e-3])
def test_plan_and_cost_match_pot(backend, method, reg, rng):
    n, m = 40, 30
    M = point_clouds(n, m)
    a, b = random_weights(n, rng), random_weights(m, rng)
    P_ref, _ = pot_reference(a, b, M, reg)
    cost_ref = float((P_ref * M).sum())
    f32 = is_float32(backend)
    tol = 1e-5 if f32 else 1e-9
    if method == "sinkhorn" and reg < 1e-2:
        reg_ok = M.max() / reg < 700  # classic scaling underflows below this
        if not reg_ok:
            pytest.skip("classic scaling cannot represent exp(-M/reg) here")
    res = nl.ot.sinkhorn(backend.asarray(a), backend.asarray(b), backend.asarray(M), reg,
                         method=method, tol=tol)
    assert res.converged
    P = backend.to_numpy(res.plan)
    assert P.dtype == (np.float32 if f32 else np.float64)
    assert res.plan.shape == (n, m)
    plan_tol, cost_tol = (1e-3, 1e-4) if f32 else (1e-6, 1e-7)
    assert np.abs(P - P_ref).sum() <= plan_tol
    assert abs(res.cost - cost_ref) <= cost_tol * cost_ref
    # the reported violation is the plan's
    assert violation(P.astype(np.float64), a, b) <= 2 * tol
    assert res.violation <= tol
    assert res.n_iter == res.n_sinkhorn + res.n_newton
    assert res.history.shape[0] >= 1
    assert res.history[-1] == pytest.approx(res.violation, rel=0.05 if f32 else 1e-3, abs=1e-15)


@pytest.mark.parametrize("method", ["sns", "log"])
def test_potentials_consistent_with_plan_and_pot(method, rng):
    n = 50
    M = point_clouds(n)
    a, b = random_weights(n, rng), random_weights(n, rng)
    reg = 3e-3
    res = nl.ot.sinkhorn(a, b, M, reg, method=method)
    # the plan is exp((f + g - M) / reg)
    np.testing.assert_allclose(res.plan, np.exp((res.f[:, None] + res.g[None, :] - M) / reg),
                               rtol=1e-8, atol=1e-120)
    # POT's log_u, log_v equal f / reg, g / reg up to the constant shift (f + t, g - t)
    _, log = pot_reference(a, b, M, reg)
    shift = res.f / reg - log["log_u"]
    np.testing.assert_allclose(shift - shift.mean(), 0, atol=1e-5)
    np.testing.assert_allclose(res.g / reg - log["log_v"] + shift.mean(), 0, atol=1e-5)


def test_cost_tends_to_exact_ot():
    n = 30
    M = point_clouds(n)
    a = b = np.full(n, 1.0 / n)
    exact = ot.emd2(a, b, M)
    gaps = []
    for reg in (1e-2, 1e-3, 1e-4):
        res = nl.ot.sinkhorn(a, b, M, reg)
        assert res.converged
        gaps.append(res.cost - exact)
    assert gaps[0] > gaps[1] > abs(gaps[2]) * 0.99
    assert abs(gaps[2]) < 1e-3 * exact


@pytest.mark.parametrize("reg", [1e-4, 1e-5, 1e-6])
def test_small_reg_never_nan_and_honest(reg):
    M = point_clouds(60)
    a = b = np.full(60, 1 / 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = nl.ot.sinkhorn(a, b, M, reg, tol=1e-9, max_iter=5000)
    assert np.all(np.isfinite(res.plan)) and np.all(res.plan >= 0)
    assert np.isfinite(res.cost) and np.all(np.isfinite(res.f)) and np.all(np.isfinite(res.g))
    measured = violation(res.plan, a, b)
    assert res.converged == (measured <= 1e-9 * (1 + 1e-6))
    if reg >= 1e-5:
        assert res.converged


@pytest.mark.parametrize("method", ["log", "sns"])
def test_tiny_relative_reg_keeps_the_mass(method):
    # POT's test_sinkhorn_stabilization data: reg = 1e-5 with costs up to 9801 (relative
    # 1e-9). Sinkhorn plateaus at every level of the epsilon scaling; the coarse levels
    # used to spend the whole budget and the plan came back all zeros.
    n = 100
    a = ot.datasets.make_1D_gauss(n, m=30, s=10)
    b = ot.datasets.make_1D_gauss(n, m=40, s=10)
    M = ot.utils.dist0(n)
    with pytest.warns(ConvergenceWarning, match="plateau"):
        res = nl.ot.sinkhorn(a, b, M, 1e-5, method=method)
    assert not res.converged
    assert np.all(np.isfinite(res.plan)) and np.all(res.plan >= 0)
    assert abs(res.plan.sum() - 1) < 1e-12
    assert res.violation < 5e-3
    assert abs(res.violation - violation(res.plan, a, b)) < 1e-12
    # at this reg the entropic cost is the exact OT cost up to the marginal slack
    exact = ot.emd2(a, b, M)
    assert abs(res.cost - exact) < 0.01 * exact
    # a tiny budget still leaves the final level iterations of its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for max_iter in (1, 2, 7):
            short = nl.ot.sinkhorn(a, b, M, 1e-5, method=method, max_iter=max_iter)
            assert short.n_iter <= max_iter and abs(short.plan.sum() - 1) < 1e-12


def test_classic_sinkhorn_underflow_is_reported_not_nan():
    M = point_clouds(40)
    with pytest.warns(ConvergenceWarning, match="underflow|did not converge"):
        res = nl.ot.sinkhorn(None, None, M, 1e-4, method="sinkhorn")
    assert not res.converged
    assert np.all(np.isfinite(res.plan))
    assert np.isfinite(res.cost)


def test_not_converged_warns_and_says_so():
    M = point_clouds(50)
    with pytest.warns(ConvergenceWarning, match="max_iter=5"):
        res = nl.ot.sinkhorn(None, None, M, 1e-3, method="log", max_iter=5)
    assert not res.converged and res.violation > 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = nl.ot.sinkhorn(None, None, M, 1e-3, method="log", max_iter=5, warn=False)
    assert not res.converged


def test_sns_takes_newton_steps_and_beats_sinkhorn_iterations():
    M = point_clouds(200)
    sns = nl.ot.sinkhorn(None, None, M, 1e-3, method="sns")
    log = nl.ot.sinkhorn(None, None, M, 1e-3, method="log")
    assert sns.converged and log.converged
    assert sns.n_newton >= 1
    assert sns.n_iter < log.n_iter / 4
    assert sns.violation < 1e-9


def test_sns_stays_in_sinkhorn_when_newton_does_not_pay():
    # reg = 0.1: the plan is dense and Sinkhorn converges in a few dozen iterations
    M = point_clouds(150)
    res = nl.ot.sinkhorn(None, None, M, 0.1, method="sns")
    assert res.converged and res.n_newton == 0


@pytest.mark.parametrize("kwargs", [dict(density=0.05), dict(n_sinkhorn=20), dict(switch_tol=0.1)])
def test_sns_options(kwargs):
    M = point_clouds(80)
    a = b = np.full(80, 1 / 80)
    res = nl.ot.sinkhorn(a, b, M, 1e-3, method="sns", max_iter=5000, **kwargs)
    assert res.converged
    P_ref, _ = pot_reference(a, b, M, 1e-3)
    assert np.abs(res.plan - P_ref).sum() < 1e-6
    if "n_sinkhorn" in kwargs:
        assert res.n_newton >= 1


@pytest.mark.slow
def test_digits_w1_reaches_1e9():
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = []
    for k in (0, 1):
        im = np.clip(zoom(d.images[np.nonzero(d.target == k)[0][0]], 28 / 8, order=1), 0, None)
        im = im / im.sum() + 1e-4
        imgs.append((im / im.sum()).ravel())
    grid = np.stack(np.meshgrid(np.arange(28), np.arange(28), indexing="ij"), -1).reshape(-1, 2)
    M = nl.ot.dist(grid.astype(float), grid.astype(float), metric="cityblock")
    M /= M.max()
    res = nl.ot.sinkhorn(imgs[0], imgs[1], M, 1e-3, tol=1e-9)
    assert res.converged and violation(res.plan, imgs[0], imgs[1]) <= 1e-9


def grid_w1(side, rng):
    """Random positive histograms on a side x side grid, L1 ground cost / max (a W1 problem)."""
    g = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1)
    g = g.reshape(-1, 2).astype(float)
    M = np.abs(g[:, None, :] - g[None, :, :]).sum(-1)
    return random_weights(side * side, rng), random_weights(side * side, rng), M / M.max()


@pytest.mark.parametrize("solve", ["direct", "cg"])
def test_w1_newton_direct_and_cg_solves_match_pot(solve, rng, monkeypatch):
    # W1 Hessians are ill-conditioned: CG needs hundreds of iterations and the solver
    # switches to the direct (Schur complement, Cholesky) solve; both must give POT's plan
    from numlab.ot import _sinkhorn

    used = []
    real_k = _sinkhorn._Solver._k

    def spy(self, name):
        fn = real_k(self, name)

        def called(*args):
            used.append(name)
            return fn(*args)

        return called

    monkeypatch.setattr(_sinkhorn._Solver, "_k", spy)
    monkeypatch.setattr(_sinkhorn._Solver, "_direct_pays", lambda self, nnz: solve == "direct")
    a, b, M = grid_w1(12, rng)
    reg = 5e-3  # exp(-M / reg) stays representable, so POT's scaling is a reference
    res = nl.ot.sinkhorn(a, b, M, reg, tol=1e-10, n_sinkhorn=50)
    assert res.converged and res.n_newton >= 1
    assert ("ot.newton_direct" in used) == (solve == "direct")
    assert ("ot.newton_direction" in used) == (solve == "cg")
    assert violation(res.plan, a, b) <= 1e-10 * (1 + 1e-6)
    P_ref, _ = pot_reference(a, b, M, reg)
    assert np.abs(res.plan - P_ref).sum() < 1e-7


@pytest.mark.parametrize("name", ["ot.newton_direction", "ot.newton_direct"])
def test_newton_kernels_solve_the_full_system(name, rng):
    # the Schur-complement CG and the direct solve against a dense solve of the full
    # 2n x 2n system [[diag r, S], [S^T, diag c]] (independent of the elimination)
    from numlab._dispatch import kernel
    from numlab.ot import _kernels

    n, m = 30, 24
    M = rng.random((n, m))
    K = np.exp(-M / 0.1)
    u, v = rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, m)
    ra, rb = np.ones(n), np.ones(m)
    P = u[:, None] * K * v[None, :]
    _, _, mass, count = _kernels.marginals(K, u, v, ra, rb)
    from_top = np.cumsum(count[::-1])[::-1]
    e = int(np.nonzero(from_top >= 0.5 * n * m)[0][-1])  # keep about half the entries
    S = np.where(P * ra[:, None] * rb[None, :] >= 2.0 ** (e - 1023), P, 0.0)
    nnz = int(np.count_nonzero(S))
    r, c = P.sum(1), P.sum(0)
    b1, b2 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, m)
    b2 += (b1.sum() - b2.sum()) / m  # consistent with the near-null vector (1, -1)
    A = np.block([[np.diag(r), S], [S.T, np.diag(c)]])
    want = np.linalg.solve(A, np.concatenate([b1, b2]))
    for impl in ("generic", "numba"):
        fn = kernel(name, np) if impl == "numba" else getattr(_kernels, name.split(".")[1])
        if name == "ot.newton_direction":
            x1, x2, it = fn(K, u, v, ra, rb, e, nnz, r, c, b1, b2, 1e-13, 10_000)
            assert 0 < it < 10_000
        else:
            x1, x2 = fn(K, u, v, ra, rb, e, nnz, r, c, b1, b2, 0.0)
        np.testing.assert_allclose(np.concatenate([x1, x2]), want, rtol=1e-7, atol=1e-9,
                                   err_msg=impl)


# ----------------------------------------------------------------------------- inputs


def test_uniform_weights_from_none_and_empty(backend):
    M = point_clouds(12, 9)
    Mx = backend.asarray(M)
    empty = backend.asarray(np.zeros(0))
    r1 = nl.ot.sinkhorn(None, None, Mx, 0.05, tol=1e-6)
    r2 = nl.ot.sinkhorn(empty, empty, Mx, 0.05, tol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(r1.plan), backend.to_numpy(r2.plan))
    np.testing.assert_allclose(backend.to_numpy(r1.plan).sum(1), 1 / 12, rtol=1e-4)


def test_zero_weights_give_zero_rows_and_columns(rng):
    n, m = 20, 15
    M = point_clouds(n, m)
    a, b = random_weights(n, rng), random_weights(m, rng)
    a[[0, 7]] = 0
    b[3] = 0
    a /= a.sum()
    b /= b.sum()
    res = nl.ot.sinkhorn(a, b, M, 1e-2)
    assert res.converged
    assert np.all(res.plan[[0, 7]] == 0) and np.all(res.plan[:, 3] == 0)
    assert np.isneginf(res.f[0]) and np.isneginf(res.g[3])
    keep_a, keep_b = a > 0, b > 0
    P_ref, _ = pot_reference(a[keep_a], b[keep_b], M[np.ix_(keep_a, keep_b)], 1e-2)
    assert np.abs(res.plan[np.ix_(keep_a, keep_b)] - P_ref).sum() < 1e-6


def test_unnormalised_equal_masses(rng):
    M = point_clouds(10)
    a, b = 3 * random_weights(10, rng), 3 * random_weights(10, rng)
    res = nl.ot.sinkhorn(a, b, M, 0.05)
    assert res.converged
    np.testing.assert_allclose(res.plan.sum(), 3.0, rtol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(a=np.array([-0.1, 0.6, 0.5])), ValueError, "`a` must be non-negative"),
        (dict(b=np.array([0.5, 0.6, 0.1])), ValueError, "same total mass"),
        (dict(a=np.ones(4) / 4), ValueError, r"`a` must have shape \(3,\)"),
        (dict(M=np.full((3, 3), np.nan)), ValueError, "`M` must contain only finite"),
        (dict(M=np.ones(3)), ValueError, "`M` must be a 2-D array"),
        (dict(M=np.ones((3, 4))), ValueError, r"`b` must have shape \(4,\)"),
        (dict(reg=0.0), ValueError, "`reg` must be > 0"),
        (dict(reg=-1.0), ValueError, "`reg` must be > 0"),
        (dict(reg="big"), TypeError, "`reg` must be a real number"),
        (dict(method="newton"), ValueError, "`method` must be one of"),
        (dict(tol=0.0), ValueError, "`tol` must be > 0"),
        (dict(max_iter=0), ValueError, "`max_iter` must be >= 1"),
        (dict(density=1.5), ValueError, "`density` must be <= 1"),
        (dict(a=np.array([0.2, 0.3, np.inf])), ValueError, "`a` must contain only finite"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = dict(a=np.full(3, 1 / 3), b=np.full(3, 1 / 3), M=np.ones((3, 3)), reg=0.1)
    args.update(kwargs)
    reg = args.pop("reg")
    with pytest.raises(error, match=match):
        nl.ot.sinkhorn(args.pop("a"), args.pop("b"), args.pop("M"), reg, **args)


@pytest.mark.parametrize(
    ("b", "M", "error", "match"),
    [
        (np.full((3, 0), 1 / 3), np.ones((3, 3)), ValueError, "`b` must not be empty"),
        (np.full((4, 2), 1 / 4), np.ones((3, 3)), ValueError, r"`b` must have shape \(3, \?\)"),
        (np.full((3, 2), np.nan), np.ones((3, 3)), ValueError, "`b` must contain only finite"),
        (np.full((3, 2), 1 / 3), "cost", TypeError, "`M` must be an array"),
    ],
)
def test_sinkhorn2_bad_batched_b(b, M, error, match):
    with pytest.raises(error, match=match):
        nl.ot.sinkhorn2(None, b, M, 0.1)


def test_sinkhorn2_batched_b_as_list():
    M = np.ones((3, 3))
    B = [[1 / 3, 0.5], [1 / 3, 0.25], [1 / 3, 0.25]]
    np.testing.assert_allclose(nl.ot.sinkhorn2(None, B, M, 0.1), [1.0, 1.0])


# ----------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 7),
    m=st.integers(1, 7),
    log_reg=st.floats(-3.5, 0.5),
    seed=st.integers(0, 2**31 - 1),
    method=st.sampled_from(["sns", "log"]),
)
def test_marginals_and_optimality_property(n, m, log_reg, seed, method):
    rng = np.random.default_rng(seed)
    a, b = random_weights(n, rng), random_weights(m, rng)
    M = rng.random((n, m))
    reg = 10.0**log_reg
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nl.ot.sinkhorn(a, b, M, reg, method=method, tol=1e-10, max_iter=20_000)
    P = res.plan
    assert np.all(P >= 0) and np.all(np.isfinite(P))
    if not res.converged and reg < 1e-2:
        # Sinkhorn can plateau for very long at small reg on tiny problems, and Newton
        # does not always get out (a known limitation): the result must say so
        assert violation(P, a, b) > 1e-10 and caught
        return
    assert res.converged
    assert np.all(P >= 0) and np.all(np.isfinite(P))
    assert violation(P, a, b) <= 1e-10 * (1 + 1e-6)
    # optimality: the plan has the Gibbs form of its potentials
    # (entries below ~1e-128 may be stored as zeros: they never reach the hot loops)
    np.testing.assert_allclose(P, np.exp((res.f[:, None] + res.g[None, :] - M) / reg),
                               rtol=1e-6, atol=1e-120)
    # and it beats the product coupling on the entropic objective
    def objective(Q):
        Q = np.where(Q > 0, Q, 1e-300)
        return float((Q * M).sum() + reg * (Q * (np.log(Q) - 1)).sum())

    assert objective(P) <= objective(np.outer(a, b)) + 1e-9


# ----------------------------------------------------------------------------- sinkhorn2, dist


def test_sinkhorn2_batched_matches_pot(backend, rng):
    n, m, k = 15, 12, 3
    M = point_clouds(n, m)
    a = random_weights(n, rng)
    B = np.stack([random_weights(m, rng) for _ in range(k)], axis=1)
    tol = 1e-5 if is_float32(backend) else 1e-9
    got = nl.ot.sinkhorn2(backend.asarray(a), backend.asarray(B), backend.asarray(M), 0.02, tol=tol)
    assert got.shape == (k,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ot.sinkhorn2(a, B, M, 0.02, method="sinkhorn_log", stopThr=1e-13, numItermax=100_000)
    rtol = 1e-4 if is_float32(backend) else 1e-7
    np.testing.assert_allclose(backend.to_numpy(got), want, rtol=rtol)
    single = nl.ot.sinkhorn2(backend.asarray(a), backend.asarray(B[:, 0]), backend.asarray(M), 0.02,
                             tol=tol)
    # as POT: a 0-d value of M's namespace and dtype, not a host float
    assert tuple(single.shape) == () and single.dtype == backend.asarray(M).dtype
    first = float(backend.to_numpy(got)[0])
    assert float(backend.to_numpy(single)) == pytest.approx(first, rel=1e-6)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cityblock"])
def test_dist_matches_scipy(backend, metric, rng):
    from scipy.spatial.distance import cdist

    x, y = rng.random((7, 3)), rng.random((5, 3))
    got = backend.to_numpy(nl.ot.dist(backend.asarray(x), backend.asarray(y), metric=metric))
    rtol = 1e-5 if is_float32(backend) else 1e-12
    np.testing.assert_allclose(got, cdist(x, y, metric=metric), rtol=rtol, atol=rtol)
    if metric == "sqeuclidean":
        np.testing.assert_allclose(got, ot.dist(x, y), rtol=rtol, atol=rtol)
    self_dist = backend.to_numpy(nl.ot.dist(backend.asarray(x), metric=metric))
    np.testing.assert_allclose(np.diag(self_dist), 0, atol=1e-3 if is_float32(backend) else 1e-6)


def test_dist_bad_input():
    with pytest.raises(ValueError, match="`metric` must be one of"):
        nl.ot.dist(np.ones((2, 2)), metric="cosine")
    with pytest.raises(ValueError, match="`x2` must have as many columns"):
        nl.ot.dist(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="`x1` must be a 2-D array"):
        nl.ot.dist(np.ones(3))


def test_float32_stays_float32_and_reports_its_floor():
    M = point_clouds(50).astype(np.float32)
    res = nl.ot.sinkhorn(None, None, M, 1e-3, tol=1e-5)
    assert res.converged and res.plan.dtype == np.float32 and res.f.dtype == np.float32
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nl.ot.sinkhorn(None, None, M, 1e-3, tol=1e-12, max_iter=3000)
    assert res.converged == (res.violation <= 1e-12)
    if not res.converged:
        assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert np.all(np.isfinite(res.plan))


# ----------------------------------------------------------------------------- POT's conventions


def test_float32_default_tol_converges_without_warning():
    M = point_clouds(60).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old default tol=1e-9 always warned in float32
        res = nl.ot.sinkhorn(None, None, M, 1e-2)
    assert res.converged and res.violation <= 1e-5 and res.plan.dtype == np.float32
    # float64 keeps 1e-9 (times the mass)
    res64 = nl.ot.sinkhorn(None, None, M.astype(np.float64), 1e-2)
    assert res64.violation <= 1e-9
    assert nl.ot._sinkhorn.default_tol(np.float32, 3.0) == pytest.approx(3e-5)


def test_pot_argument_names_and_log_return_match_pot(rng):
    n = 20
    M = point_clouds(n)
    a, b = random_weights(n, rng), random_weights(n, rng)
    kw = dict(numItermax=20_000, stopThr=1e-12, log=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P_pot, log_pot = ot.sinkhorn(a, b, M, 0.05, "sinkhorn_log", **kw)
    P, log = nl.ot.sinkhorn(a, b, M, 0.05, "sinkhorn_log", **kw)
    np.testing.assert_allclose(P, P_pot, atol=1e-10)
    assert set(log_pot) <= set(log)
    assert isinstance(log["niter"], int) and log["err"][-1] <= 1e-12
    np.testing.assert_allclose(log["u"][:, None] * np.exp(-M / 0.05) * log["v"][None, :], P,
                               atol=1e-12)
    # the plan alone with log=False, as POT
    P2 = nl.ot.sinkhorn(a, b, M, 0.05, log=False, stopThr=1e-12)
    assert isinstance(P2, np.ndarray)
    np.testing.assert_allclose(P2, P_pot, atol=1e-10)
    # by default numlab's result, which converts to the plan
    res = nl.ot.sinkhorn(a, b, M, 0.05, tol=1e-12)
    np.testing.assert_allclose(np.asarray(res), P_pot, atol=1e-10)
    assert np.asarray(res, dtype=np.float32).dtype == np.float32


def test_sinkhorn2_matches_pot_value_type_and_log(rng):
    M = point_clouds(15)
    a = random_weights(15, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want, log_pot = ot.sinkhorn2(a, a, M, 0.05, method="sinkhorn_log", stopThr=1e-12,
                                     numItermax=20_000, log=True)
    got, log = nl.ot.sinkhorn2(a, a, M, 0.05, stopThr=1e-12, log=True)
    assert type(got) is type(want) is np.float64
    assert got == pytest.approx(want, rel=1e-9)
    assert set(log_pot) <= set(log)
    # the dtype of the solve, as POT: float64 weights promote a float32 M
    a32, M32 = a.astype(np.float32), M.astype(np.float32)
    assert type(nl.ot.sinkhorn2(a, a, M32, 0.05)) is type(ot.sinkhorn2(a, a, M32, 0.05))
    got32 = nl.ot.sinkhorn2(a32, a32, M32, 0.05)
    assert type(got32) is type(ot.sinkhorn2(a32, a32, M32, 0.05)) is np.float32
    assert float(got32) == pytest.approx(want, rel=1e-4)
    costs, logs = nl.ot.sinkhorn2(a, np.stack([a, a], 1), M, 0.05, log=True)
    assert costs.shape == (2,) and len(logs) == 2


def test_signatures_accept_pots_names():
    import inspect

    for ours, theirs in ((nl.ot.sinkhorn, ot.sinkhorn), (nl.ot.sinkhorn2, ot.sinkhorn2)):
        params = inspect.signature(ours).parameters
        assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
        pot = set(inspect.signature(theirs).parameters) - {"kwargs", "warmstart"}
        assert pot <= set(params), pot - set(params)
        assert list(params)[:5] == ["a", "b", "M", "reg", "method"]


@pytest.mark.parametrize(("ours", "pots"), [("tol", "stopThr"), ("max_iter", "numItermax")])
def test_alias_and_its_name_both_given_is_refused(ours, pots):
    M = point_clouds(5)
    with pytest.raises(TypeError, match=f"`{ours}` and `{pots}`"):
        nl.ot.sinkhorn(None, None, M, 0.1, **{ours: 100, pots: 100})
    with pytest.raises(TypeError, match=f"`{ours}` and `{pots}`"):
        nl.ot.sinkhorn2(None, None, M, 0.1, **{ours: 100, pots: 100})


def test_pot_method_names():
    M = point_clouds(10)
    assert nl.ot.sinkhorn(None, None, M, 0.1, "sinkhorn_stabilized").method == "log"
    assert nl.ot.sinkhorn(None, None, M, 0.1, method="sinkhorn_knopp").method == "sinkhorn"
    with pytest.raises(ValueError, match="greenkhorn.*not implemented"):
        nl.ot.sinkhorn(None, None, M, 0.1, method="greenkhorn")
    with pytest.raises(TypeError, match="`log` must be"):
        nl.ot.sinkhorn(None, None, M, 0.1, log="yes")


def test_verbose_prints_a_summary(capsys):
    nl.ot.sinkhorn(None, None, point_clouds(10), 0.1, verbose=True)
    out = capsys.readouterr().out
    assert "converged=True" in out and "iterations" in out


def test_result_repr_is_compact():
    res = nl.ot.sinkhorn(None, None, point_clouds(300), 0.1)
    text = repr(res)
    assert "plan=array(shape=(300, 300), dtype=float64)" in text
    assert "converged=True" in text and len(text) < 400


def test_demos_pass():
    from numlab.ot._tour import DEMOS

    for demo in DEMOS:
        assert demo(quick=True).ok


def test_numba_exp_within_ulps_of_libm():
    # the kernels' vectorisable exp: within 1.5 ulp over the range they use (a long
    # double reference), 0 below -708, inf above 709, NaN kept
    numba = pytest.importorskip("numba")
    from numlab._cpu.ot import _exp

    @numba.njit
    def apply(x, out):
        for i in range(x.shape[0]):
            out[i] = _exp(x[i])
        return out

    x = np.concatenate([np.linspace(-708.0, 709.0, 400_001),
                        np.random.default_rng(0).uniform(-40.0, 1.0, 100_000), [0.0, -0.0]])
    got = apply(x, np.empty_like(x))
    ref = np.exp(x.astype(np.longdouble))
    ulps = np.abs(got - ref) / np.spacing(ref.astype(np.float64))
    assert float(ulps.max()) <= 1.5
    special = np.array([-np.inf, -1e4, -708.5, 709.5, np.inf, np.nan])
    out = apply(special, np.empty_like(special))
    np.testing.assert_array_equal(out[:5], [0.0, 0.0, 0.0, np.inf, np.inf])
    assert np.isnan(out[5])
