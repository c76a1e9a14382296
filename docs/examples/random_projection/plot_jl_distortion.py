r"""
Johnson-Lindenstrauss distortion of very sparse random projections
====================================================================

A random projection :math:`x \mapsto R x` to :math:`k` dimensions keeps pairwise distances
within a factor :math:`1 \pm \varepsilon` with :math:`\varepsilon \approx \sqrt{2 / k}`.
Li, Hastie & Church (2006) showed that :math:`R` may be *very* sparse: a fraction
:math:`1 / \sqrt{d}` of nonzero entries suffices for data that are not themselves
extremely sparse. This example

1. measures the distortion :math:`\|R x - R y\| / \|x - y\|` against the number of
   components, for :class:`numlab.random_projection.VerySparseRandomProjection` and
   scikit-learn's ``SparseRandomProjection`` (same law of ``R``, so same distortion);
2. shows the price of very sparse ``R`` on very sparse data, as Li et al.'s variance
   formula predicts;
3. times the two ``fit_transform`` calls.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse
from sklearn.random_projection import SparseRandomProjection

import numlab as nl

rng = np.random.default_rng(0)


def sparse_rows(n, d, nnz):
    cols = np.sort(np.stack([rng.choice(d, nnz, replace=False) for _ in range(n)]), axis=1)
    data = rng.standard_normal(n * nnz)
    return scipy.sparse.csr_matrix((data, cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))


def ratios(X, Y, pairs):
    i, j = pairs
    Y = Y.toarray() if scipy.sparse.issparse(Y) else Y
    base = np.sqrt(np.asarray((X[i] - X[j]).power(2).sum(axis=1)).ravel())
    return np.linalg.norm(Y[i] - Y[j], axis=1) / base


# %%
# Distortion against the number of components
# -------------------------------------------
# 600 points in 100,000 dimensions with 500 nonzeros each.

n, d = 600, 100_000
X = sparse_rows(n, d, 500)
i, j = rng.integers(0, n, (2, 1500))
pairs = (i[i != j], j[i != j])
components = [50, 100, 200, 400]
spread = {"numlab": [], "scikit-learn": []}
for k in components:
    ours = nl.random_projection.VerySparseRandomProjection(k, random_state=0).fit_transform(X)
    theirs = SparseRandomProjection(k, random_state=0).fit_transform(X)
    spread["numlab"].append(ratios(X, ours, pairs).std())
    spread["scikit-learn"].append(ratios(X, theirs, pairs).std())

# %%
# Very sparse data: the kurtosis term
# -----------------------------------
# Li et al.:
#
# .. math::
#
#    \operatorname{Var}\left(\frac{\|Rx\|^2}{\|x\|^2}\right) = \frac{1}{k}\left(2 + (s - 3)
#    \frac{\sum_j x_j^4}{(\sum_j x_j^2)^2}\right).
#
# With few nonzeros per row the second term dominates and a denser :math:`R` helps.

k = 400
X_sparse = sparse_rows(n, d, 20)
by_density = {}
for density in ("auto", 0.01, 0.1):
    Y = nl.random_projection.VerySparseRandomProjection(k, density=density, random_state=0).fit_transform(X_sparse)
    by_density[str(density)] = ratios(X_sparse, Y, pairs)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
for name, values in spread.items():
    ax1.plot(components, values, "o-", label=name)
ax1.plot(components, [np.sqrt(1 / (2 * k)) for k in components], "k--", label="Gaussian: sqrt(1/(2k))")
ax1.set_xscale("log")
ax1.set_yscale("log")
ax1.set_xlabel("components k")
ax1.set_ylabel("std of distance ratio")
ax1.set_title("500 nonzeros per row")
ax1.legend()
ax2.hist(list(by_density.values()), bins=40, label=[f"density {k}" for k in by_density], histtype="step")
ax2.set_xlabel("||Rx - Ry|| / ||x - y||")
ax2.set_title("20 nonzeros per row, k = 400")
ax2.legend()
fig.tight_layout()

# %%
# Time of ``fit_transform``
# -------------------------
# scikit-learn samples the matrix row by row; numlab builds it column by column from a
# hash in one vectorised pass (or never builds it: ``matrix_free=True``).

X = sparse_rows(1000, 1_000_000, 100)
nl.random_projection.VerySparseRandomProjection(500, random_state=0).fit_transform(X[:10])  # JIT warm-up
for name, est in [
    ("numlab", nl.random_projection.VerySparseRandomProjection(500, random_state=0)),
    ("numlab matrix-free", nl.random_projection.VerySparseRandomProjection(500, matrix_free=True, random_state=0)),
    ("scikit-learn", SparseRandomProjection(500, random_state=0)),
]:
    start = time.perf_counter()
    est.fit_transform(X)
    print(f"{name:20s} {time.perf_counter() - start:.3f} s")
