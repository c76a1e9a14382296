"""The very sparse random matrix of Li, Hastie & Church and the Johnson-Lindenstrauss bound."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _backend
from .._dispatch import kernel
from .._validation import check_int, check_real_values, check_rng, check_scalar
from ._hash import gap_table


def johnson_lindenstrauss_min_dim(n_samples, *, eps=0.1):
    """The smallest safe number of components for a random projection.

    ``4 log(n_samples) / (eps**2 / 2 - eps**3 / 3)``, truncated to an integer, exactly as
    :func:`sklearn.random_projection.johnson_lindenstrauss_min_dim` computes it
    (Dasgupta & Gupta's proof of the Johnson-Lindenstrauss lemma): with that many
    components a random projection keeps every pairwise distance of ``n_samples`` points
    within a factor ``1 +- eps`` with high probability.

    Parameters
    ----------
    n_samples : int or array_like of int
        Number of points, > 0.
    eps : float or array_like of float, default=0.1
        Admissible distortion, in (0, 1).

    Returns
    -------
    numpy.int64 or ndarray of int64
        The minimal number of components, for each ``n_samples`` and ``eps`` (broadcast
        together).

    Examples
    --------
    >>> import numlab as nl
    >>> int(nl.random_projection.johnson_lindenstrauss_min_dim(10_000, eps=0.1))
    7894
    """
    eps_arr = check_real_values(eps, "eps", "a float in (0, 1) or an array of them", finite=True)
    n_arr = check_real_values(n_samples, "n_samples", "an integer > 0 or an array of them", finite=True)
    if np.any(eps_arr <= 0.0) or np.any(eps_arr >= 1.0):
        raise ValueError(f"`eps` must be in (0, 1); got {eps!r}")
    if np.any(n_arr < 1):
        # below 1 the logarithm is negative: a negative "dimension" (scikit-learn refuses too)
        raise ValueError(f"`n_samples` must be >= 1; got {n_samples!r}")
    denominator = (eps_arr**2 / 2) - (eps_arr**3 / 3)
    with np.errstate(divide="ignore", over="ignore"):
        dim = 4 * np.log(n_arr) / denominator
    if np.any(dim >= 2.0**63):
        # a tiny eps: the cast to int64 gave -2**63 (scikit-learn's result too)
        raise ValueError(
            f"`eps` must be large enough for the dimension to be an int64; got eps={eps!r}, "
            f"which needs {float(np.max(dim)):.3g} dimensions"
        )
    return dim.astype(np.int64)


def check_density(density, n_features) -> float:
    """``density`` as a float in (0, 1]; ``"auto"`` is ``1 / sqrt(n_features)``."""
    if isinstance(density, str):
        if density != "auto":
            raise ValueError(f"`density` must be 'auto' or a float in (0, 1]; got {density!r}")
        return 1.0 / math.sqrt(n_features)
    if not isinstance(density, numbers.Real) or isinstance(density, bool):
        raise TypeError(f"`density` must be 'auto' or a float in (0, 1]; got {density!r}")
    return check_scalar(density, "density", low=0.0, high=1.0)


def draw_seed(rng) -> int:
    """A 64-bit seed for the counter-based matrix, drawn from ``rng``."""
    return int(rng.integers(0, 2**64, dtype=np.uint64))


def hashed_matrix(seed, n_components, n_features, density, *, xp, device=None, dtype, format="csr"):
    """The (n_components, n_features) counter-based matrix of ``seed`` on ``xp``.

    ``format="csc"`` returns it as generated, column by column, without the conversion.
    """
    sparse = _backend.sparse_module(xp)
    table = _backend.asarray(gap_table(density, n_components), xp=xp, device=device)
    indptr, indices, signs = kernel("random_projection.hash_columns", xp)(seed, table, n_features)
    scale = math.sqrt(1.0 / density) / math.sqrt(n_components)
    np_dtype = _backend.numpy_dtype(dtype, xp)
    data = signs.astype(np_dtype) * np_dtype.type(scale)
    if not _backend.is_numpy(xp):
        indptr = indptr.astype(indices.dtype)  # cupyx matrices hold 32-bit index arrays
    # Generated column by column: CSC of R, converted to the CSR users expect.
    columns = sparse.csc_matrix((data, indices, indptr), shape=(n_components, n_features))
    return columns if format == "csc" else columns.tocsr()


def very_sparse_random_matrix(n_components, n_features, *, density="auto", rng=None, xp=None, dtype=None):
    """A very sparse random projection matrix (Li, Hastie & Church, 2006).

    Entries are independent: ``+sqrt(s / n_components)`` and ``-sqrt(s / n_components)``
    with probability ``1 / (2 s)`` each and 0 otherwise, where ``s = 1 / density``, so
    that ``E ||R x||**2 = ||x||**2``. With ``density="auto"``, ``s = sqrt(n_features)``:
    Li et al. show this keeps the Johnson-Lindenstrauss accuracy of a Gaussian matrix
    for data that are not themselves extremely sparse, at ``sqrt(n_features)`` times
    fewer nonzeros (the same scaling as scikit-learn's ``SparseRandomProjection``).

    The matrix is built column by column from a counter-based hash of (seed, column), one
    seed being drawn from ``rng``: the build is vectorised (Numba on the CPU, a CUDA
    kernel on CuPy), needs no sampling without replacement, gives exactly the same
    matrix on every backend for the same ``rng``, and is the matrix that
    :class:`VerySparseRandomProjection` uses for the same seed.

    Parameters
    ----------
    n_components : int
        Number of rows (the dimension of the projected space), >= 1.
    n_features : int
        Number of columns (the dimension of the original space), >= 1.
    density : float in (0, 1] or "auto", default="auto"
        Probability of a nonzero entry; "auto" is ``1 / sqrt(n_features)``.
    rng : None, int or numpy.random.Generator
        Source of the seed.
    xp : namespace, optional
        NumPy (default; returns a ``scipy.sparse.csr_matrix``) or CuPy (returns a
        ``cupyx.scipy.sparse.csr_matrix`` on the current device).
    dtype : float32 or float64, optional
        Dtype of the entries; float64 by default.

    Returns
    -------
    CSR matrix of shape (n_components, n_features)
        The matrix ``R``, with sorted indices and no duplicate entries.

    References
    ----------
    P. Li, T. J. Hastie and K. W. Church, "Very sparse random projections", KDD 2006.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> R = nl.random_projection.very_sparse_random_matrix(100, 10_000, rng=0)
    >>> R.shape, sorted({round(abs(v) ** 2 * 100) for v in R.data})
    ((100, 10000), [100])
    """
    n_components = check_int(n_components, "n_components", low=1)
    n_features = check_int(n_features, "n_features", low=1)
    density = check_density(density, n_features)
    rng = check_rng(rng)
    if xp is not None and not callable(getattr(xp, "empty", None)):
        raise TypeError(
            f"`xp` must be None or an array namespace (numpy, cupy, ...); got {type(xp).__name__}"
        )
    xp = _backend.namespace(xp=xp)
    dtype = xp.float64 if dtype is None else dtype
    try:
        ok = xp.isdtype(dtype, "real floating")
    except (TypeError, ValueError):  # not a dtype at all (a str, a number)
        ok = False
    if not ok:
        raise TypeError(f"`dtype` must be float32 or float64; got {dtype!r}")
    return hashed_matrix(draw_seed(rng), n_components, n_features, density, xp=xp, dtype=dtype)
