"""``numlab tour`` entries of nl.cca: digits split into left/right image halves."""

from __future__ import annotations

import numpy as np

from .._tour import Demo


def _digits_halves(split: bool):
    """Left and right 8x4 halves of scikit-learn's digits, standardised (train stats)."""
    from sklearn.datasets import load_digits

    images = load_digits().images
    left = images[:, :, :4].reshape(len(images), -1)
    right = images[:, :, 4:].reshape(len(images), -1)
    order = np.random.default_rng(0).permutation(len(images))
    n_train = 1200 if split else len(images)
    out = []
    for view in (left[order], right[order]):
        train, test = view[:n_train], view[n_train:]
        keep = train.std(0) > 0
        mean, std = train[:, keep].mean(0), train[:, keep].std(0)
        out.append(((train[:, keep] - mean) / std, (test[:, keep] - mean) / std))
    (Xtr, Xte), (Ytr, Yte) = out
    return Xtr, Ytr, Xte, Yte


def _total_correlation(Zx, Zy):
    qx = np.linalg.qr(Zx - Zx.mean(0))[0]
    qy = np.linalg.qr(Zy - Zy.mean(0))[0]
    return float(np.linalg.svd(qx.T @ qy, compute_uv=False).sum())


def exact_cca_demo(quick: bool) -> Demo:
    import scipy.linalg

    from . import cca

    X, Y, _, _ = _digits_halves(split=False)
    k = 5
    res = cca(X, Y, k)
    stacked = np.hstack([X - X.mean(0), Y - Y.mean(0)])
    cov = stacked.T @ stacked / (len(X) - 1)
    p = X.shape[1]
    A, B = cov.copy(), cov.copy()
    A[:p, :p] = A[p:, p:] = 0
    B[:p, p:] = B[p:, :p] = 0
    reference = scipy.linalg.eigh(A, B, eigvals_only=True)[::-1][:k]
    err = float(np.max(np.abs(res.correlations - reference)))
    return Demo(
        problem=f"CCA of digits left/right halves ({len(X)} x {p} + {Y.shape[1]}), k = {k}",
        result="canonical correlations " + " ".join(f"{r:.3f}" for r in res.correlations),
        check=f"vs scipy.linalg.eigh(A, B): max diff {err:.1e}",
        ok=err < 1e-6,
    )


def stochastic_cca_demo(quick: bool) -> Demo:
    from . import StochasticCCA, cca

    Xtr, Ytr, Xte, Yte = _digits_halves(split=True)
    k = 5
    exact = cca(Xtr, Ytr, k)
    model = StochasticCCA(k, epochs=30, batch_size=128, random_state=0).fit(Xtr, Ytr)
    train = model.score(Xtr, Ytr) / _total_correlation(*exact.transform(Xtr, Ytr))
    test = model.score(Xte, Yte) / _total_correlation(*exact.transform(Xte, Yte))
    return Demo(
        problem=f"stochastic CCA (Adam, EY loss), digits halves, {len(Xtr)} train rows, k = {k}",
        result=f"total correlation {train:.3f}x exact (train), {test:.3f}x (held-out), 30 epochs",
        check="vs exact CCA (nl.cca.cca); target >= 0.96x train, >= 0.99x held-out",
        ok=bool(train >= 0.96 and test >= 0.99),
    )


DEMOS = [exact_cca_demo, stochastic_cca_demo]
