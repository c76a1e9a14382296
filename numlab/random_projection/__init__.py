"""Very sparse random projections (Li, Hastie & Church, KDD 2006).

- :func:`very_sparse_random_matrix`: the ``(n_components, n_features)`` CSR matrix with
  entries ``+-sqrt(s / n_components)`` with probability ``1 / (2 s)`` each, built in one
  vectorised pass from a counter-based hash (identical on CPU and GPU for a seed);
- :class:`VerySparseRandomProjection`: the scikit-learn transformer, optionally
  matrix-free (the matrix is regenerated inside the projection kernel, never stored);
- :func:`johnson_lindenstrauss_min_dim`: the Johnson-Lindenstrauss bound, as
  scikit-learn computes it.

:class:`VerySparseRandomProjection` needs scikit-learn; it is imported on first access
so that ``import numlab.random_projection`` stays cheap.
"""

from . import _hash  # noqa: F401  (registers the kernels)
from ._matrix import johnson_lindenstrauss_min_dim, very_sparse_random_matrix

__all__ = ["VerySparseRandomProjection", "johnson_lindenstrauss_min_dim", "very_sparse_random_matrix"]


def __getattr__(name):
    if name == "VerySparseRandomProjection":
        from ._estimator import VerySparseRandomProjection

        globals()[name] = VerySparseRandomProjection
        return VerySparseRandomProjection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
