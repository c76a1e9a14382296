"""Tests of numlab.rmt against exact eigensolvers, per-sample statistics and SGD divergence."""

import functools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numlab as nl
from numlab import _backend

rmt = nl.rmt


# --------------------------------------------------------------------------- data


@functools.cache
def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@functools.cache
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def spiked_matrix(rng, n=80, outliers=(-3.0, 6.0, 9.0)):
    """A symmetric matrix with a semicircle-like bulk in [-1, 1] and isolated outliers."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    values = np.concatenate([np.linspace(-1.0, 1.0, n - len(outliers)), outliers])
    return (Q * values) @ Q.T, np.sort(values)


def small_mlp(backend=None, loss="mse", n=120, hidden=6):
    X, y = digits()
    X, y = X[:n], y[:n]
    if backend is not None:
        X = backend.asarray(X)
    return rmt.MLP(X, y, hidden=hidden, loss=loss)


def wasserstein1(nodes, weights, values):
    from scipy.stats import wasserstein_distance

    return wasserstein_distance(nodes, values, u_weights=weights)


# --------------------------------------------------------------------------- Lanczos and Ritz pairs


def test_lanczos_full_space_gives_exact_spectrum(backend, rng):
    A, values = spiked_matrix(rng)
    A_b = backend.asarray(A)
    alpha, beta, Q = rmt.lanczos(
        lambda v: A_b @ v, 80, 80, rng=1, return_vectors=True, like=A_b[0, :]
    )
    theta, weights = rmt.ritz(alpha, beta)
    tol = 1e-3 if backend.float_name == "float32" else 1e-10
    np.testing.assert_allclose(theta, values, atol=tol * 10)
    assert abs(weights.sum() - 1.0) < 1e-10
    Qn = backend.to_numpy(Q)
    assert Q.dtype == backend.dtype
    np.testing.assert_allclose(Qn @ Qn.T, np.eye(Qn.shape[0]), atol=tol)
    assert alpha.dtype == np.float64


def test_full_reorthogonalisation_removes_ghost_eigenvalues(rng):
    values = np.concatenate([rng.uniform(-1, 1, 996), [-2.0, 6.0, 8.0, 12.0]])
    matvec = lambda v: values * v  # noqa: E731
    copies = {}
    for reorth in ("full", "none"):
        theta, _ = rmt.ritz(*rmt.lanczos(matvec, values.size, 120, reorth=reorth, rng=0))
        copies[reorth] = int(np.sum(np.abs(theta - 12.0) < 1e-6))
    assert copies["full"] == 1
    assert copies["none"] > 1  # ghosts: the reason full re-orthogonalisation is the default


def test_ritz_weights_reproduce_moments(rng):
    # Gauss quadrature with k nodes is exact for polynomials of degree < 2k.
    A, _ = spiked_matrix(rng, n=60)
    v0 = rng.standard_normal(60)
    v0 /= np.linalg.norm(v0)
    theta, weights = rmt.ritz(*rmt.lanczos(lambda v: A @ v, 60, 6, v0=v0))
    for m in range(1, 12):
        exact = v0 @ np.linalg.matrix_power(A, m) @ v0
        assert np.isclose(weights @ theta**m, exact, rtol=1e-8, atol=1e-8)


def test_lanczos_stops_at_an_invariant_subspace():
    # A rank-3 operator: the Krylov space of any start vector has dimension <= 4.
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((50, 3)))[0]
    A = U @ np.diag([1.0, 2.0, 3.0]) @ U.T
    alpha, beta = rmt.lanczos(lambda v: A @ v, 50, 20, rng=0)
    assert alpha.size <= 4 and beta[-1] == 0.0
    theta, _ = rmt.ritz(alpha, beta)
    np.testing.assert_allclose(theta[-3:], [1.0, 2.0, 3.0], atol=1e-12)


# --------------------------------------------------------------------------- eigsh


@functools.cache
def mlp_reference(loss):
    model = small_mlp(loss=loss)
    w = model.init_params(0)
    H = model.hessian(w).dense()
    return model, w, H, np.linalg.eigvalsh(H)


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_eigsh_top_eigenvalue_and_certificate(loss):
    model, w, H, values = mlp_reference(loss)
    res = rmt.eigsh(model.hessian(w), model.n_params, tol=1e-6, rng=0)
    assert res.converged
    assert abs(res.values[-1] - values[-1]) <= 1e-6 * values[-1]
    y = res.vectors[:, 0]
    true_residual = np.linalg.norm(H @ y - res.values[-1] * y)
    assert np.isclose(res.residuals[0], true_residual, rtol=1e-3, atol=1e-10)
    assert abs(res.values[-1] - values[-1]) <= res.residuals[0]  # Weyl: the certificate holds
    assert res.n_matvec <= 30


def test_eigsh_on_every_backend(backend):
    model = small_mlp(backend)
    w = model.init_params(0)
    _, _, _, values = mlp_reference("mse")
    single = backend.float_name == "float32"
    tol = 1e-4 if single else 1e-10
    res = rmt.eigsh(
        model.hessian(w),
        model.n_params,
        n_eig=2,
        which="BE",
        tol=tol,
        max_matvec=model.n_params,
        rng=0,
    )
    rtol = 1e-3 if single else 1e-8
    np.testing.assert_allclose(res.values, [values[0], values[-1]], rtol=rtol, atol=rtol)
    assert res.vectors.dtype == backend.dtype
    assert res.vectors.shape == (model.n_params, 2)
    assert _backend.device(res.vectors) == _backend.device(w)


@pytest.mark.parametrize("which", ["LA", "SA", "BE", "LM"])
def test_eigsh_which(which, rng):
    A, values = spiked_matrix(rng)
    res = rmt.eigsh(lambda v: A @ v, 80, n_eig=2, which=which, tol=1e-10, max_matvec=80, rng=0)
    expected = {
        "LA": values[-2:],
        "SA": values[:2],
        "BE": [values[0], values[-1]],
        "LM": np.sort(values[np.argsort(np.abs(values))[-2:]]),
    }[which]
    np.testing.assert_allclose(res.values, expected, atol=1e-8)


def test_eigsh_warns_when_not_converged(rng):
    values = np.linspace(0.0, 1.0, 500)
    with pytest.warns(RuntimeWarning, match="did not reach tol"):
        res = rmt.eigsh(lambda v: values * v, 500, tol=1e-12, max_matvec=5, rng=0)
    assert not res.converged and res.n_matvec == 5


# --------------------------------------------------------------------------- SLQ and traces


def test_spectral_density_against_eigvalsh():
    model, w, _, values = mlp_reference("mse")
    nodes, weights = rmt.spectral_density(
        model.hessian(w), model.n_params, n_probes=10, k=80, rng=0
    )
    span = values[-1] - values[0]
    assert nodes.shape == weights.shape == (800,)
    assert abs(weights.sum() - 1.0) < 1e-12
    assert abs(nodes.max() - values[-1]) <= 1e-6 * span
    assert abs(nodes.min() - values[0]) <= 1e-6 * span
    assert wasserstein1(nodes, weights, values) / span <= 2e-3


def test_spectral_density_on_every_backend(backend, rng):
    A, values = spiked_matrix(rng)
    A_b = backend.asarray(A)
    nodes, weights = rmt.spectral_density(
        lambda v: A_b @ v, 80, n_probes=4, k=30, rng=0, like=A_b[0, :]
    )
    tol = 1e-4 if backend.float_name == "float32" else 1e-10
    assert abs(nodes.max() - values[-1]) < tol and abs(nodes.min() - values[0]) < tol
    # the first moment is Hutchinson's trace estimate: unbiased, error O(1/sqrt(n_probes * n))
    assert abs(weights @ nodes - values.mean()) < 0.5


def test_smooth_density_integrates_to_total_weight():
    nodes = np.array([-1.0, 0.0, 2.0])
    weights = np.array([0.2, 0.5, 0.3])
    grid, density = rmt.smooth_density(nodes, weights, grid=4000)
    assert np.isclose(np.trapezoid(density, grid), 1.0, atol=1e-4)
    assert grid[np.argmax(density)] == pytest.approx(0.0, abs=0.05)


def test_trace_estimators(backend, rng):
    # A decaying spectrum, the case Hutch++ is built for.
    n = 120
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * (1.0 / np.arange(1, n + 1))) @ Q.T
    A_b = backend.asarray(A)
    exact = np.trace(A)
    errors = {}
    for method in ("hutch++", "hutchinson"):
        trials = [
            rmt.trace(lambda v: A_b @ v, n, n_probes=30, method=method, rng=s, like=A_b[0, :])
            for s in range(5)
        ]
        errors[method] = np.sqrt(np.mean((np.array(trials) - exact) ** 2)) / exact
    assert errors["hutch++"] < 0.05
    assert errors["hutch++"] < errors["hutchinson"]


# --------------------------------------------------------------------------- built-in models


@pytest.mark.parametrize("kind", ["lsq", "logistic", "mlp-mse", "mlp-ce"])
def test_model_hvp_matches_finite_differences(kind):
    X, y = digits()
    X, y = X[:150], y[:150]
    model = {
        "lsq": lambda: rmt.LeastSquares(X, y.astype(float)),
        "logistic": lambda: rmt.LogisticRegression(X, y, alpha=0.01),
        "mlp-mse": lambda: rmt.MLP(X, y, hidden=6, loss="mse"),
        "mlp-ce": lambda: rmt.MLP(X, y, hidden=6, loss="ce"),
    }[kind]()
    r = np.random.default_rng(0)
    w = 0.1 * r.standard_normal(model.n_params)
    v = r.standard_normal(model.n_params)
    idx = np.arange(0, 150, 3)
    h = 1e-5
    fd = (model.gradient(w + h * v, idx) - model.gradient(w - h * v, idx)) / (2 * h)
    np.testing.assert_allclose(model.hvp(w, v, idx), fd, rtol=1e-6, atol=1e-8)
    fd_loss = (model.loss(w + h * v) - model.loss(w - h * v)) / (2 * h)
    assert np.isclose(model.gradient(w) @ v, fd_loss, rtol=1e-6)
    G = model.hessian(w, gauss_newton=True).dense()
    assert np.linalg.eigvalsh((G + G.T) / 2).min() > -1e-10  # Gauss-Newton is PSD
    H = model.hessian(w).dense()
    np.testing.assert_allclose(H, H.T, atol=1e-12)


def test_models_on_every_backend(backend):
    X, y = digits()
    X, y = X[:100], y[:100]
    v = np.random.default_rng(1).standard_normal
    for make in (
        lambda X: rmt.LeastSquares(
            X,
            backend.asarray(y.astype(float)) if not isinstance(X, np.ndarray) else y.astype(float),
        ),
        lambda X: rmt.LogisticRegression(X, y, alpha=0.1),
        lambda X: rmt.MLP(X, y, hidden=5, loss="ce"),
    ):
        ref, model = make(X), make(backend.asarray(X))
        w, vec = 0.05 * v(ref.n_params), v(ref.n_params)
        idx = np.arange(10, 60)
        w_b, vec_b = backend.asarray(w), backend.asarray(vec)
        idx_b = _backend.asarray(idx, xp=backend.xp, device=backend.device)
        for name in ("gradient", "hvp", "gauss_newton"):
            args = (w, idx) if name == "gradient" else (w, vec, idx)
            args_b = (w_b, idx_b) if name == "gradient" else (w_b, vec_b, idx_b)
            got = getattr(model, name)(*args_b)
            assert got.dtype == backend.dtype
            rtol = 2e-4 if backend.float_name == "float32" else 1e-10
            np.testing.assert_allclose(
                backend.to_numpy(got), getattr(ref, name)(*args), rtol=rtol, atol=rtol
            )
        assert np.isclose(model.loss(w_b), ref.loss(w), rtol=1e-5)


def test_local_quadratic_is_the_taylor_model():
    X, y = breast_cancer()
    model = rmt.LogisticRegression(X, y, alpha=0.1)
    c = 0.05 * np.random.default_rng(0).standard_normal(model.n_params)
    quad = rmt.LocalQuadratic(model, c)
    d = 1e-3 * np.random.default_rng(1).standard_normal(model.n_params)
    assert abs(quad.loss(c + d) - model.loss(c + d)) < 1e-7
    np.testing.assert_allclose(quad.gradient(c + d), model.gradient(c + d), atol=1e-5)
    np.testing.assert_allclose(quad.hessian()(d), model.hvp(c, d))


# ------------------------------------------------------------------ batch curvature, its law


def lsq_model(name):
    X, y = breast_cancer() if name == "breast" else digits()
    return rmt.LeastSquares(X, y.astype(float))


def test_batch_curvature_against_exact_batch_hessians():
    model = lsq_model("breast")
    H = model.hessian(model.init_params())
    sizes = [1, 64, model.n_samples]
    curve = rmt.batch_curvature(H, model.n_params, model.n_samples, sizes, n_batches=16, rng=0)
    Xt = np.asarray(model.X)
    norms = np.sum(Xt**2, axis=1)  # a batch of one has lambda_max = ||x_i||^2 exactly
    assert all(np.min(np.abs(norms - s)) < 1e-8 * s for s in curve.samples[0])
    assert abs(curve.mean[0] - norms.mean()) < 4 * curve.std[0] / 4  # E lambda_max(H_1) = tr(H)
    full = np.linalg.eigvalsh(Xt.T @ Xt / model.n_samples)[-1]
    assert np.isclose(curve.lambda_full, full, rtol=1e-7)
    assert np.isclose(curve.mean[-1], full, rtol=1e-7) and curve.std[-1] == 0
    assert curve.mean[1] > curve.mean[2]  # batch extremes exceed the full ones
    assert np.all(curve.ci_low <= curve.mean) and np.all(curve.mean <= curve.ci_high)
    assert curve.converged


def test_fit_batch_scaling_on_digits_lsq():
    model = lsq_model("digits")
    H = model.hessian(model.init_params())
    sizes = [1, 2, 4, 8, 16, 64, 256]
    curve = rmt.batch_curvature(H, model.n_params, model.n_samples, sizes, n_batches=24, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", rmt.BatchScalingWarning)
        fit = rmt.fit_batch_scaling(curve.batch_sizes, curve.mean, n_samples=model.n_samples)
    assert fit.r2 >= 0.95
    assert abs(fit.lambda_full - curve.lambda_full) < 0.02 * curve.lambda_full
    assert fit.exponent_ci[0] <= -0.8 and fit.exponent_ci[1] >= -1.2  # consistent with 1/B
    assert 0.1 < fit.critical_batch_size < 2.0
    np.testing.assert_allclose(fit.predict(curve.batch_sizes), curve.mean, rtol=0.05)


@settings(max_examples=25, deadline=None)
@given(
    a=st.floats(0.1, 100.0),
    b=st.floats(0.0, 1000.0),
    n=st.integers(300, 10_000),
)
def test_fit_batch_scaling_recovers_the_law(a, b, n):
    sizes = np.array([1, 3, 10, 30, 100, 300])
    lam = a + b * rmt.finite_sample_factor(sizes, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rmt.BatchScalingWarning)  # b = 0 has no excess to fit
        fit = rmt.fit_batch_scaling(sizes, lam, n_samples=n)
    assert np.isclose(fit.lambda_full, a, rtol=1e-8, atol=1e-8 * b)
    assert np.isclose(fit.slope, b, rtol=1e-8, atol=1e-8 * a)
    assert np.isclose(fit.critical_batch_size, b / a, rtol=1e-6, atol=1e-8)
    assert fit.r2 > 1 - 1e-10
    sigma = np.random.default_rng(n).uniform(0.1, 1.0, sizes.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rmt.BatchScalingWarning)
        weighted = rmt.fit_batch_scaling(sizes, lam, n_samples=n, sigma=sigma)
    assert np.isclose(weighted.lambda_full, a, rtol=1e-8, atol=1e-8 * b)
    assert np.isclose(weighted.slope, b, rtol=1e-8, atol=1e-8 * a)


def test_fit_batch_scaling_warns_on_a_poor_fit():
    sizes = np.array([1, 2, 4, 8, 16, 64])
    lam = 5.0 + 10.0 / np.sqrt(sizes) + np.array([0, 3, 0, 2, 0, 1.0])  # B^-1/2, noisy
    with pytest.warns(rmt.BatchScalingWarning, match="fits poorly"):
        rmt.fit_batch_scaling(sizes, lam)


def test_finite_sample_factor():
    assert rmt.finite_sample_factor(1, 10) == 1.0
    assert rmt.finite_sample_factor(10, 10) == 0.0
    assert rmt.finite_sample_factor(4) == 0.25
    # the exact variance of a batch mean drawn without replacement
    r = np.random.default_rng(0)
    x = r.standard_normal(30)
    means = [x[r.choice(30, 7, replace=False)].mean() for _ in range(40000)]
    assert np.isclose(np.var(means), rmt.finite_sample_factor(7, 30) * np.var(x), rtol=0.03)


# --------------------------------------------------------------------------- learning rates


def test_max_learning_rate_full_batch_sgd_momentum_adam():
    model = lsq_model("breast")
    H = model.hessian(model.init_params())
    Hd = np.asarray(H.dense())
    lam = np.linalg.eigvalsh(Hd)[-1]
    res = rmt.max_learning_rate(H, model.n_params, rng=0)
    assert np.isclose(float(res), 2 / lam, rtol=1e-6) and res.batch_size is None
    res = rmt.max_learning_rate(H, model.n_params, momentum=0.9, rng=0)
    assert np.isclose(res.lr, 2 * 1.9 / lam, rtol=1e-6)
    d = np.random.default_rng(0).uniform(0.5, 2.0, model.n_params)
    res = rmt.max_learning_rate(H, model.n_params, optimizer="adam", preconditioner=d, rng=0)
    lam_pre = np.linalg.eigvalsh(Hd / np.sqrt(np.outer(d, d)))[-1]
    assert np.isclose(res.lr, 38.0 / lam_pre, rtol=1e-6)


def test_max_learning_rate_rmt_method_against_exact_tau():
    model = lsq_model("digits")
    H = model.hessian(model.init_params())
    X = np.asarray(model.X)
    N = model.n_samples
    Hd = X.T @ X / N
    values, vectors = np.linalg.eigh(Hd)
    lam1, u = values[-1], vectors[:, -1]
    per_sample = X * (X @ u)[:, None]  # h_i u = x_i (x_i . u)
    tau = np.mean(np.sum((per_sample - Hd @ u) ** 2, axis=1))
    B = 8
    res = rmt.max_learning_rate(H, model.n_params, B, method="rmt", n_batches=400, rng=0)
    expected = lam1 + rmt.finite_sample_factor(B, N) * tau / lam1
    assert np.isclose(res.lambda_max, expected, rtol=0.05)
    assert np.isclose(res.critical_batch_size, tau / lam1**2, rtol=0.1)
    assert res.n_hvp <= 30 + 1 + 400


@functools.cache
def logistic_quadratic():
    """The quadratic model of L2-regularised logistic regression (breast cancer) at its minimum."""
    X, y = breast_cancer()
    return rmt.LocalQuadratic.at_minimum(rmt.LogisticRegression(X, y, alpha=1e-2))


def predicted_and_measured(model, sizes, n_steps=500, **kwargs):
    quadratic = isinstance(model, rmt.LocalQuadratic)
    H = model.hessian() if quadratic else model.hessian(model.init_params())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rmt.BatchScalingWarning)  # heavy tails at small B
        results = [
            rmt.max_learning_rate(
                H, model.n_params, B, n_samples=model.n_samples, n_steps=n_steps, rng=0, **kwargs
            )
            for B in sizes
        ]
    measured = [
        rmt.measure_max_learning_rate(model, B, n_steps=n_steps, seeds=(0, 1, 2), lr_start=r.lr)
        for B, r in zip(sizes, results, strict=True)
    ]
    return results, np.asarray(measured)


@pytest.mark.parametrize(
    ("name", "sizes"),
    [("breast", (1, 4, 64)), ("logistic", (1, 16, 256)), ("digits", (1, 32))],
)
def test_predicted_rate_matches_measured_divergence(name, sizes):
    # B = 1 on breast cancer is the heavy-tailed case where 2 / E lambda_max(H_B) is 2-4x
    # too high; the reference is SGD itself on the model (gradients, not HVPs).
    model = logistic_quadratic() if name == "logistic" else lsq_model(name)
    results, measured = predicted_and_measured(model, sizes)
    predicted = np.array([r.lr for r in results])
    assert np.all(np.diff(predicted) > 0)  # the stable rate falls with the batch size
    ratio = measured / predicted
    assert np.all((1 / 1.5 <= ratio) & (ratio <= 1.5)), (sizes, ratio)


def test_mean_curvature_rule_fails_where_the_growth_rule_holds():
    # The reason for the default: on heavy-tailed batch curvature (B = 1, logistic
    # regression on breast cancer) 2 / E l is far above the divergence rate and the
    # mean-square rate 2 E l / E l^2 far below it, l = lambda_max(h_i) over all samples.
    model = logistic_quadratic()
    results, measured = predicted_and_measured(model, (1,))
    H = model.hessian()
    lam = np.array(
        [np.linalg.eigvalsh(np.asarray(H.dense(np.array([i]))))[-1] for i in range(model.n_samples)]
    )
    assert measured[0] * lam.mean() / 2 < 1 / 1.5
    assert measured[0] / (2 * lam.mean() / np.mean(lam**2)) > 1.5
    assert 1 / 1.5 <= measured[0] / results[0].lr <= 1.5
    assert results[0].heavy_tailed


def test_max_learning_rate_warns_on_heavy_tailed_curvature():
    model = lsq_model("breast")
    H = model.hessian(model.init_params())
    with pytest.warns(rmt.BatchScalingWarning, match="heavy-tailed"):
        res = rmt.max_learning_rate(H, model.n_params, 1, n_samples=model.n_samples, rng=0)
    assert res.heavy_tailed
    # the per-sample curvature ||x_i||^2 is heavy-tailed indeed (independent check)
    sq = np.sum(np.asarray(model.X) ** 2, axis=1)
    assert np.mean(sq**2) / np.mean(sq) ** 2 > 1.5
    digits_model = lsq_model("digits")
    H = digits_model.hessian(digits_model.init_params())
    with warnings.catch_warnings():
        warnings.simplefilter("error", rmt.BatchScalingWarning)
        for B, n in ((1, digits_model.n_samples), (64, model.n_samples)):
            m, op = (digits_model, H) if B == 1 else (model, model.hessian(model.init_params()))
            res = rmt.max_learning_rate(op, m.n_params, B, n_samples=n, rng=0)
            assert not res.heavy_tailed


@pytest.mark.parametrize(("optimizer", "momentum"), [("sgd", 0.0), ("sgd", 0.9), ("adam", 0.0)])
def test_growth_rule_is_the_deterministic_bound_without_batch_noise(optimizer, momentum):
    # Identical samples: every H_B equals H, so the random recursion is deterministic
    # and its threshold is the closed form 2 (1 + m) / lambda (Adam: 2 (1 + b1) / ((1 - b1)
    # lambda) of the preconditioned Hessian), up to the finite-horizon criterion.
    x = np.random.default_rng(0).standard_normal(4)
    X = np.tile(x, (50, 1))
    model = rmt.LeastSquares(X, np.ones(50), fit_intercept=False)
    H = model.hessian(model.init_params())
    d = np.random.default_rng(1).uniform(0.5, 2.0, 4)
    res = rmt.max_learning_rate(
        H,
        4,
        5,
        n_samples=50,
        optimizer=optimizer,
        momentum=momentum,
        preconditioner=d if optimizer == "adam" else None,
        rng=0,
    )
    if optimizer == "adam":
        want = 2 * 1.9 / (0.1 * np.sum(x**2 / d))  # top eigenvalue of D^-1/2 x x^T D^-1/2
    else:
        want = 2 * (1 + momentum) / np.sum(x**2)
    assert np.isclose(res.lr, want, rtol=0.03), (res.lr, want)
    assert not res.heavy_tailed


def test_pooled_batch_factors_match_full_space_chains():
    # The default ("batch") runs linearised SGD over Lanczos factors of a pool of batch
    # Hessians; "chain" runs it in the full space over fresh batches, n_steps HVPs per
    # trial rate. Same threshold where the batch curvature is not heavy-tailed, for a
    # fraction of the HVPs (counted honestly by a wrapper).
    model = lsq_model("digits")
    H = model.hessian(model.init_params())
    counts = {}
    for method in ("batch", "chain"):
        calls = []

        def hvp(v, idx=None, calls=calls):
            calls.append(1)
            return H(v, idx)

        res = rmt.max_learning_rate(
            hvp, model.n_params, 4, n_samples=model.n_samples, method=method, rng=0
        )
        assert res.n_hvp == len(calls) and res.method == method
        counts[method] = res
    assert np.isclose(counts["batch"].lr, counts["chain"].lr, rtol=0.05)
    assert counts["batch"].n_hvp * 5 < counts["chain"].n_hvp
    assert counts["batch"].n_hvp <= 1200 + 2 * 30


def test_batch_pool_stays_within_max_memory():
    # The pool keeps only the top Ritz pairs of each batch that fit max_memory; where not
    # even one per batch fits, the O(n_params) full-space chains run, with a warning.
    from numlab.rmt import _batch

    model = lsq_model("digits")
    H = model.hessian(model.init_params())
    args = (H, model.n_params, 16)
    kwargs = dict(n_samples=model.n_samples, n_steps=100, rng=0)
    n_max = model.n_samples // 16
    one_vector = n_max * model.n_params * 8
    with pytest.warns(RuntimeWarning, match=r"running method='chain' instead"):
        res = rmt.max_learning_rate(*args, max_memory=one_vector - 1, **kwargs)
    chain = rmt.max_learning_rate(*args, method="chain", **kwargs)
    assert res.method == "chain" and res.lr == chain.lr and res.n_hvp == chain.n_hvp

    kept = []
    factor = _batch._factor

    def recording(*a, **kw):
        f = factor(*a, **kw)
        kept.append(f.Y.shape[0])
        return f

    full = rmt.max_learning_rate(*args, **kwargs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_batch, "_factor", recording)
        top4 = rmt.max_learning_rate(*args, max_memory=4 * one_vector, **kwargs)
    assert top4.method == "batch" and max(kept) <= 4 and len(kept) <= n_max
    assert top4.lr == pytest.approx(full.lr, rel=0.1)


def test_local_quadratic_at_minimum():
    X, y = breast_cancer()
    logistic = rmt.LogisticRegression(X[:100], y[:100], alpha=0.1)
    quad = rmt.LocalQuadratic.at_minimum(logistic)
    # L-BFGS-B stops on the relative change of the loss as well: |g| ~ 1e-5
    assert np.linalg.norm(logistic.gradient(quad.center)) < 1e-4
    assert np.linalg.norm(quad.gradient(quad.center)) < 1e-4
    assert logistic.loss(quad.center) < logistic.loss(logistic.init_params())


def test_max_learning_rate_on_every_backend(backend):
    X, y = breast_cancer()
    ref = rmt.LeastSquares(X, y.astype(float))
    model = rmt.LeastSquares(backend.asarray(X), backend.asarray(y.astype(float)))
    got = rmt.max_learning_rate(
        model.hessian(model.init_params()), model.n_params, 32, n_batches=4, rng=3
    )
    want = rmt.max_learning_rate(
        ref.hessian(ref.init_params()), ref.n_params, 32, n_batches=4, rng=3
    )
    rtol = 1e-3 if backend.float_name == "float32" else 1e-8
    assert np.isclose(got.lr, want.lr, rtol=rtol)


def test_scale_learning_rate():
    assert rmt.scale_learning_rate(0.1, 32, 128) == pytest.approx(0.4)
    assert rmt.scale_learning_rate(0.1, 32, 128, "adam") == pytest.approx(0.2)
    # saturates above the critical batch size, linear well below it
    sat = rmt.scale_learning_rate(0.1, 1000, 4000, critical_batch_size=10)
    assert sat == pytest.approx(0.1 * (4000 / 4010) / (1000 / 1010))
    assert rmt.scale_learning_rate(0.1, 1, 2, critical_batch_size=1e6) == pytest.approx(
        0.2, rel=1e-5
    )


def test_gradient_noise_scale_against_per_sample_gradients():
    X, y = breast_cancer()
    model = rmt.LeastSquares(X, y.astype(float))
    w = 0.01 * np.ones(model.n_params)
    Xt = np.asarray(model.X)
    per_sample = Xt * (Xt @ w - y)[:, None]
    G = per_sample.mean(0)
    trace_cov = np.mean(np.sum((per_sample - G) ** 2, axis=1))
    Hd = Xt.T @ Xt / model.n_samples
    trace_hcov = np.mean(np.einsum("ij,jk,ik->i", per_sample - G, Hd, per_sample - G))
    gns = rmt.gradient_noise_scale(
        lambda idx=None: model.gradient(w, idx),
        model.n_samples,
        batch_size=16,
        n_batches=400,
        hvp=model.hessian(w),
        rng=0,
    )
    assert np.isclose(gns.grad_norm_sq, G @ G, rtol=1e-12)
    assert np.isclose(gns.simple, trace_cov / (G @ G), rtol=0.1)
    assert np.isclose(gns.noise, trace_hcov / (G @ Hd @ G), rtol=0.1)


def test_slq_learner_sets_a_stable_fast_heavy_ball():
    model = lsq_model("breast")
    w0 = model.init_params()
    H = model.hessian(w0)
    learner = rmt.SLQLearner(model.n_params, every=100, k=20, n_probes=2, rng=0)
    step = learner.update(0, H)
    lam = np.linalg.eigvalsh(np.asarray(H.dense()))[-1]
    assert abs(step.lambda_max - lam) < 1e-8 * lam
    assert step.lr * lam < 2 * (1 + step.momentum)  # heavy ball's stability condition
    assert 0 < step.momentum < 1
    w, v = w0, 0 * w0
    for t in range(300):
        s = learner.update(t, H)
        v = s.momentum * v + model.gradient(w)
        w = w - s.lr * v
    w_gd = w0
    for _ in range(300):
        w_gd = w_gd - (1 / lam) * model.gradient(w_gd)
    assert model.loss(w) < model.loss(w_gd) < model.loss(w0)
    assert [t for t, _ in learner.history] == [0, 100, 200]
    # Momentum clipped to 0: gradient descent at 2 / (lambda_max + lambda_low), the step
    # with the smallest worst-case contraction over that spectrum (not 1 / lambda_max).
    plain = rmt.SLQLearner(model.n_params, k=20, n_probes=2, max_momentum=0.0, rng=0).update(0, H)
    assert plain.momentum == 0 and 1 / lam < plain.lr < 2 / lam
    assert plain.lr == pytest.approx(2 / (plain.lambda_max + plain.lambda_low), rel=1e-12)
    w = w0
    for _ in range(300):
        w = w - plain.lr * model.gradient(w)
    assert model.loss(w) < 0.5 * model.loss(w0)


def test_slq_learner_given_the_loss_lowers_the_rate_only_after_a_rise():
    # A diagonal Hessian scaled by the test: each estimate's lambda_max follows the scale.
    n = 30
    d = np.linspace(1.0, 10.0, n)
    scale = {"c": 1.0}

    def hvp(v, idx=None):
        return scale["c"] * d * v

    def run(losses, scales):
        learner = rmt.SLQLearner(n, every=1, k=n, n_probes=1, max_momentum=0.0, rng=0)
        rates = []
        for t, (loss, c) in enumerate(zip(losses, scales, strict=True)):
            scale["c"] = c
            rates.append(learner.update(t, hvp, loss=loss).lr)
        estimates = [s.lr for _, s in learner.history]
        assert [s.lambda_max for _, s in learner.history] == pytest.approx(
            [10.0 * c for c in scales], rel=1e-10)
        return rates, estimates

    # Sharper at every estimate, but the loss falls: the first rate is kept.
    rates, est = run([5.0, 4.0, 3.0], [1.0, 1.2, 1.5])
    assert rates == [est[0]] * 3 and est[2] < est[1] < est[0]
    # The loss rose at the third estimate: its lower rate is taken.
    rates, est = run([5.0, 4.0, 4.5], [1.0, 1.2, 1.5])
    assert rates == [est[0], est[0], est[2]] and est[2] < est[0]
    # Flatter after a rise: a higher rate is not taken.
    rates, est = run([5.0, 6.0], [1.0, 0.5])
    assert rates == [est[0], est[0]] and est[1] > est[0]
    # Without the loss every estimate is taken, as before.
    rates, est = run([None, None, None], [1.0, 1.2, 1.5])
    assert rates == est
    with pytest.raises(ValueError, match="`loss` must be finite"):
        run([float("nan")], [1.0])


# --------------------------------------------------------------------------- bad input


def test_bad_input():
    A = np.diag(np.arange(1.0, 11.0))
    mv = lambda v: A @ v  # noqa: E731
    with pytest.raises(ValueError, match="`k` must be <= n"):
        rmt.lanczos(mv, 10, 11)
    with pytest.raises(ValueError, match="`k` must be <= n"):
        rmt.spectral_density(mv, 10, k=20)
    N = np.triu(np.ones((10, 10)))
    with pytest.raises(ValueError, match="`matvec` must be a symmetric operator"):
        rmt.lanczos(lambda v: N @ v, 10, 8, rng=0)
    with pytest.raises(ValueError, match=r"`matvec` must return an array of shape \(10,\)"):
        rmt.eigsh(lambda v: np.ones(9), 10)
    with pytest.raises(ValueError, match=r"`hvp` must return an array of shape \(10,\)"):
        rmt.max_learning_rate(lambda v, idx=None: v[:5], 10)
    with pytest.raises(ValueError, match=r"`hvp` must return an array of shape"):
        rmt.gradient_noise_scale(
            lambda idx=None: np.ones(10), 20, hvp=lambda v: v[:5], batch_size=2
        )
    with pytest.raises(ValueError, match="`n_eig` must be <= 10"):
        rmt.eigsh(mv, 10, n_eig=11)
    with pytest.raises(ValueError, match="`tol` must be"):
        rmt.eigsh(mv, 10, tol=0.0)
    with pytest.raises(ValueError, match="`which` must be one of"):
        rmt.eigsh(mv, 10, which="XX")
    with pytest.raises(ValueError, match="`v0` must be a non-zero vector"):
        rmt.lanczos(mv, 10, 3, v0=np.zeros(10))
    with pytest.raises(TypeError, match="`A` \\(or `matvec`\\) must be a matvec callable"):
        rmt.eigsh("A", 10)
    with pytest.raises(TypeError, match="`A` and `matvec` were both given"):
        rmt.eigsh(A, matvec=mv)
    np.testing.assert_allclose(rmt.eigsh(matvec=mv, n=10, rng=0).values, [10.0], rtol=1e-6)
    with pytest.raises(TypeError, match="`n` is missing"):
        rmt.eigsh(mv)
    with pytest.raises(ValueError, match="`A` must be square"):
        rmt.eigsh(A[:, :5])
    with pytest.raises(ValueError, match="`n` must be the size of `A`"):
        rmt.eigsh(A, 9)
    with pytest.raises(TypeError, match="`n_eig` and `k`"):
        rmt.eigsh(A, n_eig=1, k=1)
    with pytest.raises(TypeError, match="`max_matvec` and `maxiter`"):
        rmt.eigsh(A, max_matvec=5, maxiter=5)
    with pytest.raises(TypeError, match="`rng` must be None"):
        rmt.lanczos(mv, 10, 3, rng=np.random.RandomState(0))
    hvp = lambda v, idx=None: A @ v  # noqa: E731
    with pytest.raises(ValueError, match="`preconditioner` must be given"):
        rmt.max_learning_rate(hvp, 10, optimizer="adam")
    with pytest.raises(ValueError, match="`preconditioner` must be positive"):
        rmt.max_learning_rate(hvp, 10, optimizer="adam", preconditioner=-np.ones(10))
    with pytest.raises(ValueError, match="`n_samples` must be given"):
        rmt.max_learning_rate(hvp, 10, 4)
    with pytest.raises(ValueError, match="`batch_size` must be <= 20"):
        rmt.max_learning_rate(hvp, 10, 40, n_samples=20)
    with pytest.raises(ValueError, match="`momentum` must be <"):
        rmt.max_learning_rate(hvp, 10, momentum=1.0)
    with pytest.raises(ValueError, match="`batch_sizes` must be <= 20"):
        rmt.batch_curvature(hvp, 10, 20, [4, 40])
    with pytest.raises(ValueError, match="at least 3 batch sizes"):
        rmt.fit_batch_scaling([1, 2], [3.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        rmt.fit_batch_scaling([1, 2, 4], [3.0, 2.0])
    with pytest.raises(ValueError, match="`batch_sizes` must be <= n_samples"):
        rmt.fit_batch_scaling([1, 2, 400], [3.0, 2.0, 1.0], n_samples=100)
    with pytest.raises(ValueError, match="`weights` must be non-negative"):
        rmt.smooth_density([0.0, 1.0], [0.5, -0.5])
    with pytest.raises(ValueError, match="`y` must be a 1-D array of length"):
        rmt.LogisticRegression(np.ones((5, 2)), np.arange(4))
    with pytest.raises(ValueError, match="`X` must contain only finite values"):
        rmt.LeastSquares(np.full((5, 2), np.nan), np.ones(5))
    with pytest.raises(ValueError, match="`loss` must be one of"):
        rmt.MLP(np.ones((5, 2)), np.arange(5) % 2, loss="hinge")
    with pytest.raises(ValueError, match=r"`w` must have shape \(3,\)"):
        rmt.LeastSquares(np.ones((5, 2)), np.ones(5)).hessian(np.ones(4))
    with pytest.raises(ValueError, match="`n_probes` must be >= 3"):
        rmt.trace(mv, 10, n_probes=2)


def _spd(n=12):
    Q = np.random.default_rng(0).standard_normal((n, n))
    return Q @ Q.T / n


@pytest.mark.parametrize(
    "call",
    [
        lambda mv, **kw: nl.rmt.lanczos(mv, 12, 4, rng=0, **kw),
        lambda mv, **kw: nl.rmt.eigsh(mv, 12, rng=0, **kw),
        lambda mv, **kw: nl.rmt.spectral_density(mv, 12, n_probes=2, k=4, rng=0, **kw),
        lambda mv, **kw: nl.rmt.trace(mv, 12, n_probes=6, rng=0, **kw),
    ],
    ids=["lanczos", "eigsh", "spectral_density", "trace"],
)
def test_matvec_products_and_like_are_checked(call):
    A = _spd()
    with pytest.raises(ValueError, match="`matvec` returned NaN or infinity"):
        call(lambda v: np.full(12, np.nan))
    with pytest.raises(TypeError, match="`matvec` must return real values"):
        call(lambda v: A @ v + 1j)
    with pytest.raises(TypeError, match="`like` must be None or an array"):
        call(lambda v: A @ v, like="numpy")


def test_v0_is_checked_before_use():
    A = _spd()
    with pytest.raises(TypeError, match="`v0` must be real"):
        nl.rmt.lanczos(lambda v: A @ v, 12, 4, v0=np.ones(12) + 1j)
    with pytest.raises(TypeError, match="`v0` must be an array"):
        nl.rmt.eigsh(lambda v: A @ v, 12, v0="ones")
    alpha, _ = nl.rmt.lanczos(lambda v: A @ v, 12, 4, v0=[1.0] * 12)
    assert len(alpha) == 4


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: nl.rmt.ritz(["a", "b"], [0.1]), TypeError, "`alpha` must be an array_like of real"),
        (lambda: nl.rmt.ritz([1.0, 2.0], [0.1 + 1j]), TypeError, "`beta` must be an array_like of real"),
        (lambda: nl.rmt.smooth_density([0.0, 1.0], [0.5 + 0j, 0.5]), TypeError, "`weights` must be"),
        (lambda: nl.rmt.smooth_density([0.0, 1.0], [0.5, 0.5], grid=[0.0, np.nan]), ValueError, "`grid` must be"),
        (lambda: nl.rmt.smooth_density([0.0, 1.0], [0.5, 0.5], grid=[]), ValueError, "`grid` must be"),
        (lambda: nl.rmt.fit_batch_scaling("abc", [1.0, 2.0, 3.0]), TypeError, "`batch_sizes` must be"),
        (lambda: nl.rmt.fit_batch_scaling([8, 16, 32], [1, 2, 3 + 1j]), TypeError, "`lambdas` must be"),
        (lambda: nl.rmt.finite_sample_factor(0, 100), ValueError, "`batch_size` must be finite and >= 1"),
        (lambda: nl.rmt.finite_sample_factor(np.nan), ValueError, "`batch_size` must be finite"),
        (lambda: nl.rmt.finite_sample_factor(None), TypeError, "`batch_size` must be an array_like"),
        (lambda: nl.rmt.finite_sample_factor(200, 100), ValueError, "`batch_size` must be <= n_samples"),
        (lambda: nl.rmt.finite_sample_factor(8, 1), ValueError, "`n_samples` must be >= 2"),
        (lambda: nl.rmt.finite_sample_factor(8, np.nan), TypeError, "`n_samples` must be an integer"),
    ],
)
def test_host_arguments_are_checked(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_batch_scaling_predict_checks_batch_size():
    fit = nl.rmt.fit_batch_scaling([8, 16, 32, 64], 1 + 5 / np.array([8, 16, 32, 64]))
    with pytest.raises(ValueError, match="`batch_size` must be finite and >= 1"):
        fit.predict(0)
    np.testing.assert_allclose(fit.predict([8, 64]), 1 + 5 / np.array([8, 64]), rtol=1e-9)


def test_model_bad_input():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    labels = (X[:, 0] > 0).astype(float)
    with pytest.raises(ValueError, match="`y` must contain only finite class labels"):
        nl.rmt.LogisticRegression(X, np.where(np.arange(20) == 3, np.nan, labels))
    with pytest.raises(TypeError, match="`y` must hold real class labels"):
        nl.rmt.MLP(X, labels + 1j, hidden=2, loss="ce")
    with pytest.raises(TypeError, match="`fit_intercept` must be True or False"):
        nl.rmt.LeastSquares(X, X[:, 0], fit_intercept="yes")
    model = nl.rmt.LeastSquares(X, X[:, 0])
    with pytest.raises(TypeError, match="`center` must be an array of shape"):
        nl.rmt.LocalQuadratic(model, "origin")
    with pytest.raises(TypeError, match="`hvp` must be callable"):
        nl.rmt.SLQLearner(model.n_params, k=3).estimate(3)


def test_gradient_noise_scale_and_measured_rate_bad_input():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    model = nl.rmt.LeastSquares(X, X @ np.ones(3))
    with pytest.raises(ValueError, match="`gradient` returned NaN or infinity"):
        nl.rmt.gradient_noise_scale(lambda idx=None: np.full(model.n_params, np.nan), 64, rng=0)
    with pytest.raises(ValueError, match="`seeds` must be a non-empty sequence"):
        nl.rmt.measure_max_learning_rate(model, 8, seeds=())


# ----------------------------------------------------------------------------- SciPy's eigsh


def _indefinite(n=60, seed=3):
    r = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(r.standard_normal((n, n)))
    values = np.concatenate([-np.linspace(5.0, 9.0, 3), np.linspace(0.0, 4.0, n - 3)])
    return (Q * values) @ Q.T


@pytest.mark.parametrize("kind", ["array", "csr", "LinearOperator", "matvec"])
def test_eigsh_takes_scipys_inputs_and_unpacks_as_scipy(kind):
    import scipy.sparse
    import scipy.sparse.linalg as sla

    A = _indefinite()
    operand = {
        "array": A,
        "csr": scipy.sparse.csr_matrix(A),
        "LinearOperator": sla.aslinearoperator(A),
        "matvec": lambda v: A @ v,
    }[kind]
    n = 60 if kind == "matvec" else None
    w_ref, v_ref = sla.eigsh(A, k=3, which="LM")
    w, v = rmt.eigsh(operand, n, k=3, which="LM", tol=1e-10, max_matvec=60, rng=0)
    np.testing.assert_allclose(w, w_ref, atol=1e-8)  # both ascending
    assert v.shape == (60, 3)
    np.testing.assert_allclose(np.abs(np.sum(v * v_ref, axis=0)), 1.0, atol=1e-6)
    res = rmt.eigsh(operand, n, k=3, which="LM", tol=1e-10, max_matvec=60, rng=0)
    assert res[0] is res.values and len(res) == 2 and res.converged


def test_eigsh_default_which_differs_from_scipy_as_documented():
    import scipy.sparse.linalg as sla

    A = _indefinite()
    w_lm = sla.eigsh(A, k=1)[0]  # SciPy's default "LM": the -9 end
    w_la = rmt.eigsh(A, tol=1e-10, max_matvec=60, rng=0).values  # numlab's "LA": the top
    np.testing.assert_allclose(w_lm, [-9.0], atol=1e-8)
    np.testing.assert_allclose(w_la, [4.0], atol=1e-8)
    assert "LM" in rmt.eigsh.__doc__ and "Different default from SciPy" in rmt.eigsh.__doc__


def test_eig_result_repr_is_compact():
    res = rmt.eigsh(_indefinite(), k=2, rng=0)
    text = repr(res)
    assert "vectors=array(shape=(60, 2), dtype=float64)" in text and len(text) < 400


def test_eigsh_takes_an_array_of_any_backend(backend):
    """SciPy's call on a dense array of the backend: vectors in its library and dtype."""
    A = _indefinite(40)
    Ab = backend.asarray(A)
    f32 = backend.float_name == "float32"
    w, v = rmt.eigsh(Ab, k=2, which="LM", tol=1e-5 if f32 else 1e-10, max_matvec=40, rng=0)
    assert type(v) is type(Ab) and v.dtype == Ab.dtype
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A)[:2], rtol=1e-4 if f32 else 1e-8)
