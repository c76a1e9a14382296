"""Sampling for weighted least squares: optimal i.i.d., projection DPPs, volume sampling.

Nouy & Michel's samplers for ``V_m = span{phi_1..phi_m}``, orthonormal in ``L2(mu)``
(bases in :mod:`numlab.lstsq`), each returning a :class:`Sample` of points and the
weights ``m / k_m`` of the weighted least-squares estimator:

- :func:`optimal_iid`: i.i.d. from ``rho = k_m / m dmu`` (Cohen & Migliorati);
- :func:`projection_dpp`: exactly ``m`` repulsive points (chain rule with exact rejection,
  Numba kernel; tridiagonal models in 1-D);
- :func:`volume_sampling`: generalized volume-rescaled sampling of ``n >= m`` points;
- :func:`repeated_dpp`: ``r`` independent DPPs;
- :func:`dpp_rows`, :func:`volume_sampling_rows`: the same for rows of a tall matrix.

Sampling runs on the CPU; ``like=`` places the result on the caller's backend.

References
----------
A. Nouy and B. Michel, "Weighted least-squares approximation with determinantal point
processes and generalized volume sampling", arXiv:2312.14057 (2023).
"""

from . import _chain  # noqa: F401  (registers the kernel)
from ._samplers import (
    RowSample,
    Sample,
    dpp_rows,
    optimal_iid,
    projection_dpp,
    repeated_dpp,
    volume_sampling,
    volume_sampling_rows,
)

__all__ = [
    "Sample",
    "RowSample",
    "optimal_iid",
    "projection_dpp",
    "volume_sampling",
    "repeated_dpp",
    "dpp_rows",
    "volume_sampling_rows",
]
