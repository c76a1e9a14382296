"""Tests of nl.linalg: randomized_svd, randomized_range_finder, pissa_init.

References: numpy.linalg.svd (exact), scipy.sparse.linalg.svds (sparse), scikit-learn's
randomized_svd (the anchor), on matrices with known spectra.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

import numlab as nl
from numlab import _backend
from numlab.linalg import _rsvd

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def known_spectrum(rng, m, n, s):
    """U diag(s) V^T with random orthonormal U (m, r), V (n, r), r = len(s)."""
    r = len(s)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (U * np.asarray(s)) @ V.T


def decaying(rng, m=120, n=80, rate=0.7):
    return known_spectrum(rng, m, n, rate ** np.arange(min(m, n)))


def assert_orthonormal_columns(U, atol):
    k = U.shape[1]
    np.testing.assert_allclose(U.T.astype(np.float64) @ U.astype(np.float64), np.eye(k), atol=atol)


def tol_for(dtype):
    return 2e-5 if np.dtype(dtype) == np.float32 else 1e-10


# --------------------------------------------------------------------------- randomized_svd


@pytest.mark.parametrize("shape", [(120, 80), (80, 120), (300, 12)], ids=["tall", "wide", "thin"])
@pytest.mark.parametrize("method", ["subspace", "krylov"])
def test_randomized_svd_matches_numpy_svd(backend, rng, shape, method):
    # Enough fixed iterations to converge to rounding: checks the machinery, not "auto".
    A = decaying(rng, *shape)
    k = 6
    n_iter = 8 if method == "subspace" else 4
    U, S, Vt = nl.linalg.randomized_svd(backend.asarray(A), k, n_iter=n_iter, method=method, rng=1)
    xp = backend.xp
    assert _backend.namespace(U, S, Vt) is _backend.namespace(backend.asarray(A))
    assert U.dtype == backend.dtype and S.dtype == backend.dtype and Vt.dtype == backend.dtype
    U, S, Vt = (backend.to_numpy(x) for x in (U, S, Vt))
    assert U.shape == (shape[0], k) and S.shape == (k,) and Vt.shape == (k, shape[1])
    Ue, Se, Vte = np.linalg.svd(A, full_matrices=False)
    rtol = tol_for(U.dtype) * 10
    np.testing.assert_allclose(S, Se[:k], rtol=rtol)
    # Singular vectors agree up to the (deterministic) sign.
    signs = np.sign(np.sum(U * Ue[:, :k], axis=0))
    np.testing.assert_allclose(U, Ue[:, :k] * signs, atol=rtol * 100)
    np.testing.assert_allclose(Vt, Vte[:k] * signs[:, None], atol=rtol * 100)
    assert_orthonormal_columns(U, 1e-6 if U.dtype == np.float32 else 1e-8)
    assert_orthonormal_columns(Vt.T, 1e-6 if U.dtype == np.float32 else 1e-8)
    del xp


def test_squared_norm_matches_numpy(backend, rng):
    from numlab.linalg._operator import squared_norm

    A = 3.0 * rng.standard_normal((300, 70))
    expected = float(np.linalg.norm(A) ** 2)
    got = squared_norm(backend.asarray(A), backend.xp)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-6 if backend.float_name == "float32" else 1e-12)


def test_sign_convention_and_determinism(backend, rng):
    A = backend.asarray(decaying(rng))
    U1, S1, Vt1 = (backend.to_numpy(x) for x in nl.linalg.randomized_svd(A, 5, rng=3))
    U2, S2, Vt2 = (backend.to_numpy(x) for x in nl.linalg.randomized_svd(A, 5, rng=3))
    np.testing.assert_array_equal(U1, U2)
    np.testing.assert_array_equal(S1, S2)
    np.testing.assert_array_equal(Vt1, Vt2)
    pivots = U1[np.argmax(np.abs(U1), axis=0), np.arange(5)]
    assert np.all(pivots > 0)


def test_same_result_as_scikit_learn_signs(rng):
    sklearn_extmath = pytest.importorskip("sklearn.utils.extmath")
    A = decaying(rng)
    U, S, Vt = nl.linalg.randomized_svd(A, 5, n_iter=10, rng=0)
    Us, Ss, Vts = sklearn_extmath.randomized_svd(A, 5, n_iter=10, random_state=0)
    # Same sign rule as scikit-learn's u-based svd_flip: the factors agree entry-wise.
    np.testing.assert_allclose(S, Ss, rtol=1e-10)
    np.testing.assert_allclose(U, Us, atol=1e-7)
    np.testing.assert_allclose(Vt, Vts, atol=1e-7)


def test_rank_deficient_is_reconstructed_exactly(backend, rng):
    A = known_spectrum(rng, 90, 70, [5.0, 2.0, 1.0])
    U, S, Vt = (backend.to_numpy(x) for x in nl.linalg.randomized_svd(backend.asarray(A), 6, rng=0))
    atol = 1e-4 if S.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(S[:3], [5.0, 2.0, 1.0], rtol=atol)
    np.testing.assert_allclose(S[3:], 0.0, atol=atol)
    np.testing.assert_allclose((U * S) @ Vt, A, atol=atol)
    assert_orthonormal_columns(U, 1e-6 if S.dtype == np.float32 else 1e-8)


def test_flat_spectrum_is_near_optimal(rng):
    # A Gaussian matrix: no gap at all; the rank-k error must still be near the best one.
    A = rng.standard_normal((200, 150))
    k = 10
    s = np.linalg.svd(A, compute_uv=False)
    U, S, Vt = nl.linalg.randomized_svd(A, k, rng=0)
    frob = np.linalg.norm(A - (U * S) @ Vt) / np.sqrt(np.sum(s[k:] ** 2))
    spec = np.linalg.norm(A - (U * S) @ Vt, 2) / s[k]
    assert frob < 1.01 and spec < 1.1


@pytest.mark.parametrize("method", ["subspace", "krylov"])
def test_auto_iterations_reach_sklearn_accuracy(rng, method):
    sklearn_extmath = pytest.importorskip("sklearn.utils.extmath")
    m, n, k = 600, 300, 20
    s = 1.0 / np.arange(1, n + 1)
    A = known_spectrum(rng, m, n, s)
    U, S, Vt = nl.linalg.randomized_svd(A, k, method=method, rng=0)
    Us, Ss, Vts = sklearn_extmath.randomized_svd(A, k, random_state=0)

    def errors(U, S, Vt):
        R = A - (U * S) @ Vt
        return np.linalg.norm(R, 2) / s[k], np.linalg.norm(R) / np.sqrt(np.sum(s[k:] ** 2))

    spec, frob = errors(U, S, Vt)
    spec_sk, frob_sk = errors(Us, Ss, Vts)
    assert spec <= 1.01 * spec_sk
    assert frob <= frob_sk + 1e-3


def test_fixed_iterations_improve_accuracy(rng):
    A = known_spectrum(rng, 400, 200, 1.0 / np.arange(1, 201))
    k = 10
    best = np.linalg.svd(A, compute_uv=False)[k]
    errs = []
    for q in (0, 1, 3):
        U, S, Vt = nl.linalg.randomized_svd(A, k, n_iter=q, n_oversamples=2, rng=0)
        errs.append(np.linalg.norm(A - (U * S) @ Vt, 2) / best)
    assert errs[0] > errs[1] > errs[2] >= 1 - 1e-12


def test_float32_input_stays_float32_and_orthonormal(rng):
    A = decaying(rng, 300, 200).astype(np.float32)
    U, S, Vt = nl.linalg.randomized_svd(A, 8, rng=0)
    assert U.dtype == S.dtype == Vt.dtype == np.float32
    # float64 final orthonormalisation: orthonormal to float32 rounding.
    assert_orthonormal_columns(U, 2e-6)
    assert_orthonormal_columns(Vt.T, 2e-6)
    exact = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(S, exact[:8], rtol=1e-5)


def test_mixed_precision_path_is_float64_accurate(rng, monkeypatch):
    # Large enough for float32 passes; the final float64 pass makes the result as accurate
    # as all-float64 passes with the same iterations.
    m, n, k = 1100, 1000, 10
    s = 1.0 / np.arange(1, n + 1) ** 0.5
    A = known_spectrum(rng, m, n, s)
    op = _rsvd.as_operator(A)
    assert _rsvd._pass_operator(op, k, True).dtype == np.float32
    U, S, Vt = nl.linalg.randomized_svd(A, k, n_iter=3, rng=0)
    assert U.dtype == np.float64
    assert_orthonormal_columns(U, 1e-8)
    assert_orthonormal_columns(Vt.T, 1e-8)
    monkeypatch.setattr(_rsvd, "MIXED_MIN_SIZE", m * n + 1)
    assert _rsvd._pass_operator(op, k, True).dtype == np.float64
    U64, S64, Vt64 = nl.linalg.randomized_svd(A, k, n_iter=3, rng=0)
    np.testing.assert_allclose(S, S64, rtol=1e-8)
    tail = np.sqrt(np.sum(s[k:] ** 2))
    frob = np.linalg.norm(A - (U * S) @ Vt) / tail
    frob64 = np.linalg.norm(A - (U64 * S64) @ Vt64) / tail
    assert abs(frob - frob64) < 1e-8


def test_mixed_precision_falls_back_when_spectrum_is_below_float32(rng):
    m, n = 1100, 1000
    s = np.concatenate([[1.0, 1e-2], 1e-7 * 0.5 ** np.arange(6)])
    A = known_spectrum(rng, m, n, s)
    U, S, Vt = nl.linalg.randomized_svd(A, 6, rng=0)
    # Values down to 1e-8 * sigma_1 come out right: the passes went back to float64.
    np.testing.assert_allclose(S, s[:6], rtol=1e-7)
    frob = np.linalg.norm(A - (U * S) @ Vt) / np.sqrt(np.sum(s[6:] ** 2))
    assert frob < 1 + 1e-6


def test_sparse_input_matches_svds(rng):
    # Columns scaled so that the spectrum decays (a flat one would test svds, not us).
    A = sp.random(400, 300, density=0.05, format="csr", rng=rng) @ sp.diags(0.97 ** np.arange(300))
    A = A.tocsr()
    k = 5
    Se = np.sort(sla.svds(A, k=k, return_singular_vectors=False, rng=0))[::-1]
    for fmt in ("csr", "csc", "coo"):
        U, S, Vt = nl.linalg.randomized_svd(A.asformat(fmt), k, n_iter=12, rng=0)
        assert isinstance(U, np.ndarray)
        np.testing.assert_allclose(S, Se, rtol=1e-6)
        assert_orthonormal_columns(U, 1e-8)
    # float32 sparse in, float32 out
    U, S, Vt = nl.linalg.randomized_svd(A.astype(np.float32), k, rng=0)
    assert S.dtype == np.float32


def test_sparse_array_and_linear_operator_match_dense(rng):
    A = decaying(rng, 150, 100)
    k = 5
    dense = nl.linalg.randomized_svd(A, k, rng=0)
    for kind in (sp.csr_array(A), sp.csr_matrix(A), sla.aslinearoperator(A)):
        got = nl.linalg.randomized_svd(kind, k, rng=0)
        for a, b in zip(got, dense, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-9)


def test_linear_operator_without_matmat(rng):
    A = decaying(rng, 100, 70)
    op = sla.LinearOperator(A.shape, matvec=lambda x: A @ x, rmatvec=lambda y: A.T @ y, dtype=float)
    U, S, Vt = nl.linalg.randomized_svd(op, 4, n_iter=8, rng=0)
    np.testing.assert_allclose(S, np.linalg.svd(A, compute_uv=False)[:4], rtol=1e-10)


def test_integer_input_computes_in_float64(rng):
    A = rng.integers(0, 5, size=(50, 40))
    U, S, Vt = nl.linalg.randomized_svd(A, 3, n_iter=8, rng=0)
    assert S.dtype == np.float64
    np.testing.assert_allclose(S, np.linalg.svd(A.astype(float), compute_uv=False)[:3], rtol=1e-6)


# --------------------------------------------------------------------------- tol mode


def smallest_sufficient_rank(s, tol):
    tails = np.sqrt(np.cumsum((s**2)[::-1])[::-1])  # tails[r] = ||A - A_r||_F
    total = tails[0]
    return int(np.nonzero(np.append(tails, 0.0) <= tol * total)[0][0])


@pytest.mark.parametrize("tol", [1e-1, 1e-2, 1e-4])
def test_tol_mode_rank_and_error(backend, rng, tol):
    if backend.float_name == "float32" and tol < 1e-3:
        pytest.skip("float32 cannot resolve this tolerance")
    s = 0.9 ** np.arange(150)
    A = known_spectrum(rng, 200, 150, s)
    result = nl.linalg.randomized_svd(backend.asarray(A), 150, tol=tol, rng=0)
    U, S, Vt = (backend.to_numpy(x) for x in result)
    r = S.shape[0]
    best = smallest_sufficient_rank(s, tol)
    err = np.linalg.norm(A - (U * S) @ Vt) / np.linalg.norm(A)
    assert err <= tol * (1 + 1e-3)
    assert best <= r <= max(best + 1, 1.1 * best)
    assert U.shape == (200, r) and Vt.shape == (r, 150)


def test_tol_mode_sparse(rng):
    A = sp.random(300, 200, density=0.2, format="csr", rng=rng)
    s = np.linalg.svd(A.toarray(), compute_uv=False)
    tol = 0.5
    U, S, Vt = nl.linalg.randomized_svd(A, 200, tol=tol, rng=0)
    err = np.linalg.norm(A.toarray() - (U * S) @ Vt) / np.linalg.norm(s)
    best = smallest_sufficient_rank(s, tol)
    assert err <= tol * (1 + 1e-6)
    assert best <= S.shape[0] <= 1.1 * best


def test_tol_mode_warns_when_k_is_too_small(rng):
    A = decaying(rng, rate=0.95)
    with pytest.warns(RuntimeWarning, match="does not reach tol"):
        U, S, Vt = nl.linalg.randomized_svd(A, 5, tol=1e-6, rng=0)
    assert S.shape == (5,)


# --------------------------------------------------------------------------- range finder


@pytest.mark.parametrize("method", ["subspace", "krylov"])
def test_range_finder_captures_low_rank_range(backend, rng, method):
    A = known_spectrum(rng, 100, 60, [3.0, 2.0, 1.0, 0.5])
    Q = nl.linalg.randomized_range_finder(backend.asarray(A), 4, method=method, rng=0)
    assert Q.dtype == backend.dtype
    Q = backend.to_numpy(Q)
    assert Q.shape == (100, 4)
    assert_orthonormal_columns(Q, 1e-6 if Q.dtype == np.float32 else 1e-8)
    atol = 1e-4 if Q.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(Q @ (Q.T @ A), A, atol=atol)


def test_range_finder_fixed_iterations(rng):
    A = decaying(rng, 200, 100, rate=0.9)
    k = 10
    exact = np.linalg.svd(A, compute_uv=False)
    Q = nl.linalg.randomized_range_finder(A, k, n_iter=4, rng=0)
    err = np.linalg.norm(A - Q @ (Q.T @ A), 2)
    assert err <= 1.5 * exact[k]


# --------------------------------------------------------------------------- pissa_init


def test_pissa_init_single_matrix(backend, rng):
    W = rng.standard_normal((64, 48)) / 8 + known_spectrum(rng, 64, 48, [4.0, 3.0, 2.0])
    r = 3
    A, B, W_res = nl.linalg.pissa_init(backend.asarray(W), r, rng=0)
    assert A.dtype == B.dtype == W_res.dtype == backend.dtype
    A, B, W_res = (backend.to_numpy(x) for x in (A, B, W_res))
    assert A.shape == (64, r) and B.shape == (r, 48) and W_res.shape == (64, 48)
    atol = 1e-5 if A.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(A @ B + W_res, W, atol=atol)
    s = np.linalg.svd(W, compute_uv=False)
    assert np.linalg.norm(W_res) <= 1.0005 * np.sqrt(np.sum(s[r:] ** 2))
    # A = U sqrt(S), B = sqrt(S) Vt: equal column / row norms.
    np.testing.assert_allclose(np.linalg.norm(A, axis=0), np.linalg.norm(B, axis=1), rtol=1e-4)


def test_pissa_init_batched_float32(rng):
    W = rng.standard_normal((2, 3, 40, 30)).astype(np.float32)
    A, B, W_res = nl.linalg.pissa_init(W, 4, rng=0)
    assert A.shape == (2, 3, 40, 4) and B.shape == (2, 3, 4, 30) and W_res.shape == W.shape
    assert A.dtype == np.float32 and W_res.dtype == np.float32
    np.testing.assert_allclose(A @ B + W_res, W, atol=1e-5)
    for idx in np.ndindex(2, 3):
        s = np.linalg.svd(W[idx].astype(np.float64), compute_uv=False)
        assert np.linalg.norm(W_res[idx]) <= 1.01 * np.sqrt(np.sum(s[4:] ** 2))


# --------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(2, 30),
    n=st.integers(2, 30),
    rank=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(["subspace", "krylov"]),
)
def test_property_exact_low_rank_is_recovered(m, n, rank, seed, method):
    rng = np.random.default_rng(seed)
    rank = min(rank, m, n)
    A = rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))
    k = min(rank + 1, m, n)
    U, S, Vt = nl.linalg.randomized_svd(A, k, method=method, rng=seed)
    scale = max(1.0, np.abs(A).max())
    np.testing.assert_allclose((U * S) @ Vt, A, atol=1e-8 * scale)
    assert np.all(np.diff(S) <= 1e-12 * scale)
    assert np.all(S >= 0)


# --------------------------------------------------------------------------- bad input


def test_bad_input_messages(rng):
    A = rng.standard_normal((10, 8))
    f = nl.linalg.randomized_svd
    with pytest.raises(ValueError, match="`k` must be <= 8"):
        f(A, 9)
    with pytest.raises(ValueError, match="`k` must be >= 1"):
        f(A, 0)
    with pytest.raises(TypeError, match="`k` must be an integer"):
        f(A, 2.5)
    bad = A.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="`A` must contain only finite"):
        f(bad, 2)
    with pytest.raises(ValueError, match="`A` must be a 2-D array"):
        f(A[0], 2)
    with pytest.raises(ValueError, match="`A` must be a 2-D array"):
        f(A[None], 2)
    with pytest.raises(TypeError, match="`A` must be real"):
        f(A + 1j, 2)
    with pytest.raises(ValueError, match="`A` must not be empty"):
        f(np.zeros((0, 3)), 1)
    with pytest.raises(ValueError, match="`method` must be one of"):
        f(A, 2, method="lanczos")
    with pytest.raises(ValueError, match="`n_iter` must be one of"):
        f(A, 2, n_iter="many")
    with pytest.raises(ValueError, match="`n_iter` must be >= 0"):
        f(A, 2, n_iter=-1)
    with pytest.raises(ValueError, match="`n_oversamples` must be >= 0"):
        f(A, 2, n_oversamples=-1)
    with pytest.raises(ValueError, match="`tol` must be > 0"):
        f(A, 2, tol=0.0)
    with pytest.raises(ValueError, match="`tol` must be < 1"):
        f(A, 2, tol=1.0)
    with pytest.raises(TypeError, match="`tol` needs"):
        f(sla.aslinearoperator(A), 2, tol=0.1)
    with pytest.raises(TypeError, match="`rng` must be None"):
        f(A, 2, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="`A` must contain only finite"):
        f(sp.csr_matrix(bad), 2)
    with pytest.raises(TypeError, match="`A` must be real"):
        f(sla.aslinearoperator(A + 1j), 2)
    with pytest.raises(ValueError, match="`size` must be <= 8"):
        nl.linalg.randomized_range_finder(A, 9)
    with pytest.raises(ValueError, match="`r` must be <= 8"):
        nl.linalg.pissa_init(A, 9)
    with pytest.raises(ValueError, match="`W` must be a 2-D matrix or a stack"):
        nl.linalg.pissa_init(A[0], 1)
    with pytest.raises(TypeError, match="`W` must be a dense array"):
        nl.linalg.pissa_init(sp.csr_matrix(A), 1)


def test_linear_operator_products_are_checked(rng):
    A = rng.standard_normal((10, 8))
    nan_op = sla.LinearOperator(
        A.shape, matvec=lambda x: np.full(10, np.nan), rmatvec=lambda y: A.T @ y, dtype=float
    )
    with pytest.raises(ValueError, match=r"`A.matmat` .* must return only finite values"):
        nl.linalg.randomized_svd(nan_op, 2, rng=0)
    short_op = sla.LinearOperator(
        A.shape, matvec=lambda x: np.ones(7), rmatvec=lambda y: A.T @ y, dtype=float
    )
    with pytest.raises(ValueError, match=r"`A.matmat` .* must return an array of shape \(10, "):
        nl.linalg.randomized_svd(short_op, 2, rng=0)
    wrong_block = sla.LinearOperator(
        A.shape, matvec=lambda x: A @ x, rmatvec=lambda y: A.T @ y,
        matmat=lambda X: np.ones((10, 1)), dtype=float,
    )
    with pytest.raises(ValueError, match=r"`A.matmat` .* got \(10, 1\)"):
        nl.linalg.randomized_range_finder(wrong_block, 2, rng=0)


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_cupyx_sparse_input(rng):
    import cupy
    import cupyx.scipy.sparse as csp

    # A decaying spectrum, as in test_sparse_input_matches_svds: on a flat one any
    # randomized SVD (scikit-learn's too) is ~1% off in the singular values.
    A = (sp.random(400, 300, density=0.05, format="csr", rng=rng) @ sp.diags(0.97 ** np.arange(300))).tocsr()
    U, S, Vt = nl.linalg.randomized_svd(csp.csr_matrix(A), 5, n_iter=12, rng=0)
    assert isinstance(U, cupy.ndarray) and isinstance(S, cupy.ndarray)
    Se = np.sort(sla.svds(A, k=5, return_singular_vectors=False, rng=0))[::-1]
    np.testing.assert_allclose(cupy.asnumpy(S), Se, rtol=1e-6)
    assert_orthonormal_columns(cupy.asnumpy(U), 1e-8)
    # the same seed on the CPU: the same subspace
    Uc, Sc, Vtc = nl.linalg.randomized_svd(A, 5, n_iter=12, rng=0)
    np.testing.assert_allclose(np.abs(cupy.asnumpy(U).T @ Uc), np.eye(5), atol=1e-6)
