"""``numlab tour`` entries of nl.random_projection."""

from __future__ import annotations

import time

import numpy as np

from .._tour import Demo


def _sparse_rows(n, d, nnz, seed=0):
    import scipy.sparse

    rng = np.random.default_rng(seed)
    cols = np.sort(rng.integers(0, d, (n, nnz)), axis=1)
    X = scipy.sparse.csr_matrix((rng.standard_normal(n * nnz), cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    return X


def projection_demo(quick: bool) -> Demo:
    from sklearn.random_projection import SparseRandomProjection

    from . import VerySparseRandomProjection

    n, d, k = (500, 30_000, 200) if quick else (2000, 300_000, 500)
    X = _sparse_rows(n, d, 100)
    start = time.perf_counter()
    ours = VerySparseRandomProjection(k, random_state=0).fit_transform(X)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = SparseRandomProjection(k, random_state=0).fit_transform(X)
    t_theirs = time.perf_counter() - start
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, n, (2, 1000))
    keep = i != j
    i, j = i[keep], j[keep]
    base = np.sqrt(np.asarray((X[i] - X[j]).power(2).sum(axis=1)).ravel())

    def ratio(Y):
        Y = Y.toarray()
        return np.linalg.norm(Y[i] - Y[j], axis=1) / base

    r_ours, r_theirs = ratio(ours), ratio(theirs)
    return Demo(
        problem=f"very sparse projection of {n} x {d:,} sparse rows (100 nnz) to {k} dims",
        result=f"distance ratio {r_ours.mean():.3f} +- {r_ours.std():.3f} in {t_ours:.2f} s",
        check=f"vs sklearn SparseRandomProjection: {r_theirs.mean():.3f} +- {r_theirs.std():.3f} in {t_theirs:.2f} s",
        ok=abs(r_ours.mean() - 1) < 0.02 and r_ours.std() < 1.3 * r_theirs.std(),
    )


def matrix_free_demo(quick: bool) -> Demo:
    from . import VerySparseRandomProjection

    n, d, k = (500, 200_000, 256) if quick else (2000, 1_000_000, 512)
    X = _sparse_rows(n, d, 50, seed=2)
    stored = VerySparseRandomProjection(k, dense_output=True, random_state=3).fit(X)
    free = VerySparseRandomProjection(k, dense_output=True, matrix_free=True, random_state=3).fit(X)
    Y_free = free.transform(X)
    reference = (X @ stored.components_.T).toarray()  # scipy's product with the stored matrix
    err = float(np.max(np.abs(Y_free - reference)) / np.max(np.abs(reference)))
    megabytes = stored.components_.data.nbytes + stored.components_.indices.nbytes
    return Demo(
        problem=f"matrix-free projection of {n} x {d:,} rows to {k} dims",
        result=f"R regenerated from a hash, never stored (saves {megabytes / 1e6:.1f} MB)",
        check=f"vs X @ components_.T (scipy, stored R): max rel diff {err:.1e}",
        ok=err < 1e-12,
    )


DEMOS = [projection_demo, matrix_free_demo]
