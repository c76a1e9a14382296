"""The PDE data sets of the neural-operator papers, generated in-library.

- :func:`burgers`: 1-D viscous Burgers, Gaussian-random-field initial data mapped to the
  solution at ``t_final`` (Li et al. 2021);
- :func:`darcy`: 2-D Darcy flow, thresholded random coefficient mapped to the pressure;
- :func:`navier_stokes`: 2-D incompressible Navier-Stokes in vorticity form on the torus,
  initial vorticity mapped to its trajectory;
- :func:`gaussian_random_field`: the periodic Gaussian random fields behind the Burgers
  and Navier-Stokes initial data.

Every generator returns arrays with samples first, float64 by default (``dtype=float32``
on request), on the library and device of ``like=`` (NumPy by default; CuPy solves on the
GPU). Sample ``i`` depends only on the seed and ``i``; ``chunks=`` returns lazy Dask
arrays generated block by block on the workers; ``cache=`` a directory keeps results on
disk; ``progress=True`` shows a progress bar.

References
----------
Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
A. Anandkumar, "Fourier Neural Operator for Parametric Partial Differential Equations",
ICLR 2021.
"""

# The generators (each in its own module) are imported here as they land.
__all__: list[str] = []

from ._darcy import darcy  # noqa: E402

__all__ += ["darcy"]

from ._burgers import burgers  # noqa: E402
from ._grf import gaussian_random_field  # noqa: E402
from ._navier_stokes import navier_stokes  # noqa: E402

__all__ += ["burgers", "gaussian_random_field", "navier_stokes"]
