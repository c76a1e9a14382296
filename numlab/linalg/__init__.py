"""Randomized low-rank linear algebra: truncated SVD, range finding, PiSSA initialisation.

.. autosummary::

   randomized_svd
   randomized_range_finder
   pissa_init

Every function accepts dense arrays of any array-API library (NumPy, CuPy, ...), sparse
matrices (``scipy.sparse``, ``cupyx.scipy.sparse``) and, where it makes sense, SciPy
``LinearOperator`` objects, and returns arrays of the input's library, device and dtype.
"""

from ._pissa import pissa_init
from ._rsvd import randomized_range_finder, randomized_svd

__all__ = ["randomized_svd", "randomized_range_finder", "pissa_init"]
