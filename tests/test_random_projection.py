"""Tests of nl.random_projection against scikit-learn, exact algebra and the matrix's law."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from numlab import _backend
from numlab._dispatch import kernel
from numlab.random_projection import (
    VerySparseRandomProjection,
    johnson_lindenstrauss_min_dim,
    very_sparse_random_matrix,
)
from numlab.random_projection._hash import gap_table

from conftest import cupy_usable

sklearn_rp = pytest.importorskip("sklearn.random_projection")


def _sparse_rows(rng, n, d, nnz, dtype=np.float64):
    cols = np.sort(np.stack([rng.choice(d, nnz, replace=False) for _ in range(n)]), axis=1)
    data = rng.standard_normal(n * nnz).astype(dtype)
    return scipy.sparse.csr_matrix((data, cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))


# --------------------------------------------------------------------------- the matrix


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 60),
    d=st.integers(1, 400),
    density=st.one_of(st.just("auto"), st.floats(0.01, 1.0)),
    seed=st.integers(0, 2**32),
)
def test_matrix_invariants(k, d, density, seed):
    R = very_sparse_random_matrix(k, d, density=density, rng=seed)
    s = math.sqrt(d) if density == "auto" else 1.0 / density
    assert scipy.sparse.isspmatrix_csr(R) and R.shape == (k, d)
    assert R.has_canonical_format  # sorted, no duplicates
    np.testing.assert_allclose(np.abs(R.data), math.sqrt(s / k), rtol=1e-15)
    R2 = very_sparse_random_matrix(k, d, density=density, rng=seed)
    assert (R != R2).nnz == 0  # deterministic per seed


def test_matrix_law():
    # Entries are i.i.d.: +-sqrt(s/k) w.p. 1/(2s) each. Check the nonzero rate, the sign
    # balance, the per-column counts (Binomial(k, 1/s)) and the spread over rows.
    k, d, density = 200, 20_000, 0.02
    R = very_sparse_random_matrix(k, d, density=density, rng=3)
    n = k * d
    z = (R.nnz - n * density) / math.sqrt(n * density * (1 - density))
    assert abs(z) < 4.5
    positive = int(np.sum(R.data > 0))
    assert abs(positive - R.nnz / 2) < 4.5 * math.sqrt(R.nnz / 4)
    counts = np.diff(R.tocsc().indptr)
    observed = np.bincount(counts, minlength=13)[:12]
    expected = scipy.stats.binom.pmf(np.arange(12), k, density) * d
    keep = expected > 20
    chi2 = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    assert scipy.stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4
    per_row = np.diff(R.indptr)
    chi2 = np.sum((per_row - d * density) ** 2 / (d * density))
    assert scipy.stats.chi2.sf(chi2, k - 1) > 1e-4
    # E[R^T R] = I scaled: the squared column norms average to 1 per unit of k/k.
    gram = (R.T @ R).diagonal()
    assert abs(gram.mean() - 1.0) < 0.05


def test_matrix_pairs_are_independent():
    # Adjacent entries of a column (consecutive draws) are uncorrelated: the lag-1
    # co-occurrence rate matches density**2.
    k, d, density = 100, 50_000, 0.1
    dense = very_sparse_random_matrix(k, d, density=density, rng=11).toarray() != 0
    both = np.mean(dense[:-1] & dense[1:])
    sd = math.sqrt(density**2 * (1 - density**2) / ((k - 1) * d))
    assert abs(both - density**2) < 5 * sd


def test_matrix_density_one_is_dense_signs():
    R = very_sparse_random_matrix(7, 9, density=1.0, rng=0)
    assert R.nnz == 63
    np.testing.assert_allclose(np.abs(R.toarray()), 1 / math.sqrt(7))


def test_matrix_columns_extend():
    # Column j depends on (seed, j) only: more features leave the first columns as they are.
    small = very_sparse_random_matrix(30, 100, density=0.1, rng=5)
    large = very_sparse_random_matrix(30, 250, density=0.1, rng=5)
    assert (large[:, :100] != small).nnz == 0


def test_matrix_float32():
    R = very_sparse_random_matrix(10, 100, rng=0, dtype=np.float32)
    assert R.dtype == np.float32


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, 10), {}, ValueError, "n_components"),
        ((-3, 10), {}, ValueError, "n_components"),
        ((5, 0), {}, ValueError, "n_features"),
        ((5, 10), {"density": 0.0}, ValueError, "density"),
        ((5, 10), {"density": 1.5}, ValueError, "density"),
        ((5, 10), {"density": "sqrt"}, ValueError, "density"),
        ((5, 10), {"rng": np.random.RandomState(0)}, TypeError, "rng"),
        ((2.5, 10), {}, TypeError, "n_components"),
        ((5, 10), {"xp": "numpy"}, TypeError, "`xp` must be None or an array namespace"),
    ],
)
def test_matrix_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        very_sparse_random_matrix(*args, **kwargs)


def test_jl_bound_matches_sklearn():
    n = np.array([2, 10, 1000, 10_000, 10**6])
    for eps in (0.05, 0.1, 0.3, 0.5, 0.9):
        np.testing.assert_array_equal(
            johnson_lindenstrauss_min_dim(n, eps=eps), sklearn_rp.johnson_lindenstrauss_min_dim(n, eps=eps)
        )
    with pytest.raises(ValueError, match="eps"):
        johnson_lindenstrauss_min_dim(10, eps=1.0)
    with pytest.raises(ValueError, match="n_samples"):
        johnson_lindenstrauss_min_dim(0)


@pytest.mark.parametrize(
    ("n_samples", "eps", "error", "match"),
    [
        (float("nan"), 0.1, ValueError, "`n_samples` must be finite"),
        (np.array([10.0, np.inf]), 0.1, ValueError, "`n_samples` must be finite"),
        (True, 0.1, TypeError, "`n_samples` must be an integer > 0"),
        ("100", 0.1, TypeError, "`n_samples` must be an integer > 0"),
        (None, 0.1, TypeError, "`n_samples` must be an integer > 0"),
        (100, float("nan"), ValueError, "`eps` must be finite"),
        (100, None, TypeError, "`eps` must be a float in"),
        (100, "0.1", TypeError, "`eps` must be a float in"),
    ],
)
def test_jl_bound_bad_input(n_samples, eps, error, match):
    with pytest.raises(error, match=match):
        johnson_lindenstrauss_min_dim(n_samples, eps=eps)


def test_matrix_plain_module_namespace():
    # xp=cupy passes CuPy's plain module, which lacks parts of the array API (isdtype,
    # asarray's device=); a stand-in module with only NumPy's empty must work the same.
    import types

    plain = types.SimpleNamespace(empty=np.empty)
    R = very_sparse_random_matrix(40, 500, rng=2, xp=plain)
    assert scipy.sparse.isspmatrix_csr(R)
    assert (R != very_sparse_random_matrix(40, 500, rng=2)).nnz == 0


# --------------------------------------------------------------------------- the transformer


@pytest.mark.parametrize("matrix_free", [False, True])
def test_check_estimator(matrix_free):
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            VerySparseRandomProjection(n_components=2, matrix_free=matrix_free, random_state=0),
            on_fail=None,
        )
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert not failed


@pytest.mark.parametrize(("n_samples", "n_features", "eps"), [(1000, 20_000, 0.1), (50, 5000, 0.3), (10**4, 10**5, 0.2)])
def test_n_components_auto_matches_sklearn(n_samples, n_features, eps):
    X = scipy.sparse.random_array((n_samples, n_features), density=1e-3, format="csr", rng=0)
    ours = VerySparseRandomProjection(eps=eps, matrix_free=True, random_state=0).fit(X)
    theirs = sklearn_rp.SparseRandomProjection(eps=eps, random_state=0).fit(X)
    assert ours.n_components_ == theirs.n_components_
    assert ours.density_ == theirs.density_


def test_n_components_auto_too_large_and_warning():
    X = np.ones((100, 50))
    with pytest.raises(ValueError, match="larger than the original space"):
        VerySparseRandomProjection(random_state=0).fit(X)
    from sklearn.exceptions import DataDimensionalityWarning

    with pytest.warns(DataDimensionalityWarning):
        VerySparseRandomProjection(80, random_state=0).fit(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_is_product_with_components(dtype):
    rng = np.random.default_rng(0)
    X = _sparse_rows(rng, 40, 3000, 30, dtype)
    est = VerySparseRandomProjection(200, random_state=1)
    Y = est.fit_transform(X)
    assert scipy.sparse.issparse(Y) and Y.dtype == dtype
    reference = (X @ est.components_.T).toarray()  # scipy's product, independent of our kernels
    np.testing.assert_allclose(Y.toarray(), reference, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    dense = VerySparseRandomProjection(200, dense_output=True, random_state=1).fit_transform(X)
    assert isinstance(dense, np.ndarray) and dense.dtype == dtype
    np.testing.assert_array_equal(dense, Y.toarray())
    from_dense = est.transform(X.toarray())
    np.testing.assert_allclose(from_dense, reference, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_sparse_output_drops_cancellations():
    # Integer data and a dense +-1 matrix make exact cancellations common: the sparse
    # result must store exactly the nonzeros of the dense one, in canonical order, as
    # scipy's product does.
    rng = np.random.default_rng(9)
    X = scipy.sparse.csr_matrix(rng.integers(-1, 2, (60, 40)).astype(np.float64))
    est = VerySparseRandomProjection(30, density=1.0, random_state=0).fit(X)
    Y = est.transform(X)
    dense = VerySparseRandomProjection(30, density=1.0, dense_output=True, random_state=0).fit_transform(X)
    assert Y.has_canonical_format
    assert Y.nnz == np.count_nonzero(dense) < dense.size
    np.testing.assert_array_equal(Y.toarray(), dense)
    expected = (X @ est.components_.T).tocsr()
    expected.eliminate_zeros()
    expected.sort_indices()
    np.testing.assert_array_equal(Y.indices, expected.indices)
    np.testing.assert_array_equal(Y.indptr, expected.indptr)


def test_sparse_output_overflow_fallback(monkeypatch):
    # When a block's region would overflow, the kernel falls back to the dense product;
    # force that path and compare with the generic definition.
    from numlab._cpu import random_projection as cpu
    from numlab.random_projection import _hash

    rng = np.random.default_rng(10)
    X = _sparse_rows(rng, 150, 900, 25)
    args = (777, gap_table(0.05, 80), X.indptr, X.indices, X.data, 900, 0.3)
    fast = cpu.hash_project_csr_sparse(*args)
    monkeypatch.setattr(cpu, "_project_csr_blocks", lambda *a: np.zeros(3, dtype=bool))
    slow = cpu.hash_project_csr_sparse(*args)
    expected = _hash.hash_project_csr_sparse(*args)
    for got in (fast, slow):
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        np.testing.assert_allclose(got[2], expected[2], rtol=1e-12)
    np.testing.assert_array_equal(fast[2], slow[2])  # same additions, same bits


def test_matrix_free_equals_stored():
    rng = np.random.default_rng(1)
    X = _sparse_rows(rng, 30, 5000, 40)
    stored = VerySparseRandomProjection(300, dense_output=True, random_state=7).fit(X)
    free = VerySparseRandomProjection(300, dense_output=True, matrix_free=True, random_state=7).fit(X)
    assert not hasattr(free, "components_")
    np.testing.assert_array_equal(free.transform(X), stored.transform(X))
    assert (stored.components_ != very_sparse_random_matrix(300, 5000, rng=7)).nnz == 0


def test_replaced_components_are_used():
    # The authors of FastRP rescale components_ before transform: a replaced matrix wins.
    rng = np.random.default_rng(2)
    X = _sparse_rows(rng, 10, 400, 20)
    est = VerySparseRandomProjection(50, dense_output=True, random_state=0).fit(X)
    scaling = scipy.sparse.diags(rng.uniform(0.5, 2.0, 400))
    est.components_ = scipy.sparse.csr_matrix(est.components_ @ scaling)
    np.testing.assert_allclose(est.transform(X), (X @ est.components_.T).toarray(), rtol=1e-12)


def test_distortion_like_sklearn():
    # Li et al.: same law as scikit-learn's matrix, so the same distortion statistics.
    rng = np.random.default_rng(3)
    X = _sparse_rows(rng, 400, 20_000, 200)
    i, j = rng.integers(0, 400, (2, 600))
    keep = i != j
    i, j = i[keep], j[keep]

    def ratios(Y):
        Y = Y.toarray() if scipy.sparse.issparse(Y) else Y
        diff = X[i] - X[j]
        return np.linalg.norm(Y[i] - Y[j], axis=1) / scipy.sparse.linalg.norm(diff, axis=1)

    ours = ratios(VerySparseRandomProjection(500, random_state=0).fit_transform(X))
    theirs = ratios(sklearn_rp.SparseRandomProjection(500, random_state=0).fit_transform(X))
    assert abs(ours.mean() - 1) < 0.01 + 3 * theirs.std() / math.sqrt(len(ours))
    assert ours.std() < 1.3 * theirs.std()


def test_inverse_transform():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 60))
    for matrix_free in (False, True):
        est = VerySparseRandomProjection(20, density=0.3, matrix_free=matrix_free, random_state=0).fit(X)
        Y = est.transform(X)
        back = est.inverse_transform(Y)
        assert back.shape == X.shape
        np.testing.assert_allclose(est.transform(back), Y, atol=1e-10)


def test_random_state_generator_and_refusal():
    X = np.ones((5, 30))
    a = VerySparseRandomProjection(4, random_state=np.random.default_rng(9)).fit(X)
    b = VerySparseRandomProjection(4, random_state=np.random.default_rng(9)).fit(X)
    assert a.seed_ == b.seed_
    with pytest.raises(TypeError, match="random_state"):
        VerySparseRandomProjection(4, random_state=np.random.RandomState(0)).fit(X)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"n_components": 0}, ValueError, "n_components"),
        ({"n_components": "many"}, ValueError, "n_components"),
        ({"density": 2.0}, ValueError, "density"),
        ({"eps": 0.0}, ValueError, "eps"),
        ({"eps": 1.5}, ValueError, "eps"),
        ({"matrix_free": "yes"}, TypeError, "matrix_free"),
    ],
)
def test_estimator_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        VerySparseRandomProjection(**{"n_components": 3, **params}).fit(np.ones((5, 10)))


def test_estimator_bad_input():
    est = VerySparseRandomProjection(3, random_state=0).fit(np.ones((5, 10)))
    with pytest.raises(ValueError, match="10 features"):
        est.transform(np.ones((5, 11)))
    X = np.ones((5, 10))
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.inverse_transform(np.full((2, 3), np.nan))


# --------------------------------------------------------------------------- backends


def test_backends_matrix_free_dense(backend):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 90))
    X[X < 0.5] = 0.0
    expected = VerySparseRandomProjection(25, density=0.2, matrix_free=True, random_state=3).fit_transform(X)
    Xb = backend.asarray(X)
    for matrix_free in (True, False):
        est = VerySparseRandomProjection(25, density=0.2, matrix_free=matrix_free, random_state=3)
        Y = est.fit_transform(Xb)
        assert _backend.namespace(Y) == _backend.namespace(Xb)
        assert Y.dtype == Xb.dtype
        assert Y.shape == (12, 25)
        np.testing.assert_allclose(backend.to_numpy(Y), expected, rtol=backend.rtol * 10, atol=backend.rtol)


def test_hash_kernels_match_generic_on_projection():
    # The Numba projection kernel and the generic definition agree on a larger case
    # than the registry's example, including density 1 and a single component.
    from numlab.random_projection import _hash

    rng = np.random.default_rng(6)
    X = _sparse_rows(rng, 20, 700, 35)
    for k, density in ((1, 0.5), (40, 1.0), (64, 0.03)):
        table = gap_table(density, k)
        args = (12345, table, X.indptr, X.indices, X.data, 700, 0.5)
        np.testing.assert_allclose(
            kernel("random_projection.hash_project_csr", _backend.namespace(X))(*args),
            _hash.hash_project_csr(*args),
            rtol=1e-12,
        )


@pytest.mark.gpu
@pytest.mark.skipif(not cupy_usable(), reason="cupy.is_available() is false")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_identical_to_cpu(dtype):
    import cupy
    import cupyx.scipy.sparse

    rng = np.random.default_rng(8)
    X = _sparse_rows(rng, 50, 20_000, 60, dtype)
    cpu = VerySparseRandomProjection(256, dense_output=True, matrix_free=True, random_state=4).fit_transform(X)
    gpu = VerySparseRandomProjection(256, dense_output=True, matrix_free=True, random_state=4).fit_transform(
        cupyx.scipy.sparse.csr_matrix(X)
    )
    assert isinstance(gpu, cupy.ndarray) and gpu.dtype == dtype
    np.testing.assert_array_equal(cupy.asnumpy(gpu), cpu)  # bit for bit
    Xd = X[:10].toarray()
    np.testing.assert_array_equal(
        cupy.asnumpy(VerySparseRandomProjection(256, matrix_free=True, random_state=4).fit_transform(cupy.asarray(Xd))),
        VerySparseRandomProjection(256, matrix_free=True, random_state=4).fit_transform(Xd),
    )
    R_gpu = very_sparse_random_matrix(256, 20_000, rng=4, xp=cupy)
    R_cpu = very_sparse_random_matrix(256, 20_000, rng=4)
    assert (R_gpu.get() != R_cpu).nnz == 0
