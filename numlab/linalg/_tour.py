"""``numlab tour`` entries of nl.linalg."""

from __future__ import annotations

import numpy as np

from .._tour import Demo


def _known_spectrum(rng, m, n, s):
    U, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    V, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return (U * s) @ V.T


def randomized_svd_demo(quick: bool) -> Demo:
    from . import randomized_svd

    rng = np.random.default_rng(0)
    m, n, k = (800, 300, 10) if quick else (3000, 800, 30)
    s = 1.0 / np.arange(1, n // 2 + 1)  # rank n/2: cheaper to build, same difficulty
    A = _known_spectrum(rng, m, n, s)
    U, S, Vt = randomized_svd(A, k, rng=0)
    R = A - (U * S) @ Vt
    spectral = np.linalg.norm(R, 2) / s[k]
    values = np.max(np.abs(S - s[:k]) / s[:k])
    return Demo(
        problem=f"rank-{k} SVD of a {m} x {n} matrix with sigma_j = 1/j",
        result=f"spectral error {spectral:.4f} x optimal (n_iter='auto')",
        check=f"vs the known spectrum: max rel. singular value error {values:.1e}",
        ok=bool(spectral < 1.01 and values < 1e-2),
    )


def pissa_demo(quick: bool) -> Demo:
    from . import pissa_init

    rng = np.random.default_rng(1)
    n, r = (384, 8) if quick else (1024, 16)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    W += _known_spectrum(rng, n, n, 10.0 / np.arange(1, 5))
    W = W.astype(np.float32)
    A, B, W_res = pissa_init(W, r, rng=0)
    s = np.linalg.svd(W.astype(np.float64), compute_uv=False)
    ratio = np.linalg.norm(W_res.astype(np.float64)) / np.sqrt(np.sum(s[r:] ** 2))
    exact = np.max(np.abs(A @ B + W_res - W))
    return Demo(
        problem=f"PiSSA init of a {n} x {n} float32 weight, r = {r}",
        result=f"||W_res||_F = {ratio:.5f} x optimal, float32 factors",
        check=f"vs numpy.linalg.svd tail; |A B + W_res - W| = {exact:.1e}",
        ok=bool(ratio < 1.001 and exact < 1e-5 and W_res.dtype == np.float32),
    )


DEMOS = [randomized_svd_demo, pissa_demo]
