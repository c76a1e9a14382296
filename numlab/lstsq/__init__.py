"""Optimal weighted least squares in orthonormal bases (Nouy & Michel; Cohen & Migliorati).

- :class:`LegendreBasis`, :class:`HermiteBasis`: tensor polynomial bases orthonormal for the
  uniform probability on ``[-1, 1]^d`` and the standard Gaussian, with total-degree,
  hyperbolic-cross or tensor index sets; :class:`FeatureBasis`: a user feature map
  orthonormalised on a finite candidate set. Each has ``m``, ``indices``, ``__call__`` and
  the inverse Christoffel function ``k_m``.
- :func:`weighted_least_squares`: the weighted least-squares projection of a function
  from a sample of :mod:`numlab.sampling` (volume sampling, repeated DPPs, projection DPP,
  optimal i.i.d.), returning a :class:`LeastSquaresFit`.

References
----------
A. Nouy and B. Michel, "Weighted least-squares approximation with determinantal point
processes and generalized volume sampling", arXiv:2312.14057 (2023).
"""

from ._basis import FeatureBasis, HermiteBasis, LegendreBasis, multi_indices
from ._wls import IllConditionedWarning, LeastSquaresFit, weighted_least_squares

__all__ = [
    "LegendreBasis",
    "HermiteBasis",
    "FeatureBasis",
    "multi_indices",
    "weighted_least_squares",
    "LeastSquaresFit",
    "IllConditionedWarning",
]
