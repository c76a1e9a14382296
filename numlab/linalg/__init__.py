"""Randomized low-rank linear algebra: truncated SVD, range finding, PiSSA initialisation.

- :func:`randomized_svd`: truncated SVD, fixed rank or fixed precision (``tol=``);
- :func:`randomized_range_finder`: an orthonormal basis of the dominant range;
- :func:`pissa_init`: PiSSA factors and residual of (a stack of) weight matrices.

Every function accepts dense arrays of any array-API library (NumPy, CuPy, ...), sparse
matrices (``scipy.sparse``, ``cupyx.scipy.sparse``) and, where it makes sense, SciPy
``LinearOperator`` objects, and returns arrays of the input's library, device and dtype.
"""

from ._pissa import pissa_init
from ._rsvd import randomized_range_finder, randomized_svd

__all__ = ["randomized_svd", "randomized_range_finder", "pissa_init"]
