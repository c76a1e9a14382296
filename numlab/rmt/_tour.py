"""``numlab tour`` entries of nl.rmt: Hessian eigenvalues and the largest stable SGD rate."""

from __future__ import annotations

import numpy as np

from .._tour import Demo


def _arpack_top(H, n):
    """The top eigenvalue of the operator ``H`` by ARPACK at tol 1e-10 (the reference)."""
    from scipy.sparse.linalg import LinearOperator
    from scipy.sparse.linalg import eigsh as arpack

    op = LinearOperator((n, n), matvec=lambda v: H(np.ravel(v)), dtype=np.float64)
    return float(arpack(op, k=1, which="LA", tol=1e-10, v0=np.ones(n))[0][0])


def top_eigenvalue_demo(quick: bool) -> Demo:
    from sklearn.datasets import load_digits

    from . import MLP, eigsh

    X, y = load_digits(return_X_y=True)
    n, hidden = (300, 16) if quick else (len(X), 32)
    model = MLP(X[:n] / 16.0, y[:n], hidden=hidden, loss="mse")
    H = model.hessian(model.init_params(0))
    res = eigsh(H, model.n_params, tol=1e-6, rng=0)
    P = model.n_params
    ref = _arpack_top(H, P)
    err = abs(res.values[-1] - ref) / ref
    return Demo(
        problem=f"top Hessian eigenvalue of a {P}-parameter MLP on {n} digits (HVPs only)",
        result=f"lambda_max = {res.values[-1]:.6f} in {res.n_matvec} HVPs, "
        f"residual {res.residuals[0]:.1e}",
        check=f"vs ARPACK eigsh (tol 1e-10): relative error {err:.1e}",
        ok=err < 1e-6 and res.n_matvec <= 16,
    )


def learning_rate_demo(quick: bool) -> Demo:
    import warnings

    from sklearn.datasets import load_breast_cancer

    from . import (
        BatchScalingWarning,
        LeastSquares,
        max_learning_rate,
        measure_max_learning_rate,
    )

    X, y = load_breast_cancer(return_X_y=True)
    model = LeastSquares((X - X.mean(0)) / X.std(0), y.astype(float))
    H = model.hessian(model.init_params())
    sizes = (4, 16, 128) if quick else (1, 8, 32, 128)  # B = 1 needs the full 500 steps
    n_steps = 200 if quick else 500
    rows = []
    for B in sizes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BatchScalingWarning)  # heavy-tailed at small B
            predicted = max_learning_rate(
                H, model.n_params, B, n_batches=16, n_steps=n_steps, rng=0
            ).lr
        measured = measure_max_learning_rate(
            model, B, n_steps=n_steps, seeds=(0,), lr_start=predicted
        )
        rows.append((B, predicted, measured))
    ratios = [m / p for _, p, m in rows]
    return Demo(
        problem="largest stable SGD rate vs batch size, least squares on breast cancer (569 x 30)",
        result=", ".join(f"B={B}: {p:.3f}" for B, p, _ in rows),
        check="vs SGD divergence by bisection: measured/predicted "
        + " ".join(f"{r:.2f}" for r in ratios),
        ok=all(1 / 1.5 <= r <= 1.5 for r in ratios) and rows[0][1] < rows[-1][1],
    )


def operator_hessian_demo(quick: bool) -> Demo:
    from .. import operators, pde
    from . import eigsh

    n, s, modes, width = (32, 64, 8, 16) if quick else (64, 128, 16, 32)
    u0, u1 = pde.burgers(n, s, viscosity=0.01, rng=0, dtype=np.float32)
    x, y = u0[:, None], u1[:, None]
    model = operators.FNO((modes,), hidden_channels=width, in_channels=1, out_channels=1, rng=0)
    operators.train(model, x, y, epochs=3, batch_size=16, lr=3e-3, loss="l2sq", progress=False,
                    rng=0)
    H = model.hessian(x, y, loss="l2sq")
    res = eigsh(H, tol=1e-6, max_matvec=30, rng=0)
    P = H.n_params
    ref = _arpack_top(H, P)
    err = abs(res.values[-1] - ref) / ref
    return Demo(
        problem=f"top Hessian eigenvalue of an FNO ({P:,} parameters) on {n} Burgers samples",
        result=f"lambda_max = {res.values[-1]:.6g} in {res.n_matvec} HVPs: SGD is linearly "
        f"stable below lr = {2 / res.values[-1]:.3g}",
        check=f"vs ARPACK eigsh (tol 1e-10) on the same products: relative error {err:.1e}",
        ok=bool(err < 1e-6 and res.converged),
    )


DEMOS = [top_eigenvalue_demo, learning_rate_demo, operator_hessian_demo]
