"""Neural operators with numlab's own gradients: the Fourier Neural Operator and its kin.

Models are array-API code on NumPy (Numba kernels for the hot elementwise chains) or CuPy,
with hand-written backward passes; no deep-learning framework is used. The gradient
machinery is described in one place, :mod:`numlab.operators._layers`.

References
----------
Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
A. Anandkumar, "Fourier Neural Operator for Parametric Partial Differential Equations",
ICLR 2021.
J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-Grid Tensorized
Fourier Neural Operator for High-Resolution PDEs", TMLR 2024.
"""

from . import _kernels  # noqa: F401  (registers the operators.* kernels; imports NumPy only)

# The public names are imported here as their modules land.
from ._fno import FNO, TFNO, load  # noqa: E402

__all__: list[str] = ["FNO", "TFNO", "load"]

# Training (numlab/operators/_train.py).
from ._train import TrainResult, UnitGaussianNormalizer, train  # noqa: E402

__all__ += ["train", "TrainResult", "UnitGaussianNormalizer"]

# Multi-grid domain decomposition of MG-TFNO (numlab/operators/_patching.py).
from ._patching import MultigridModel, MultigridPatching2D  # noqa: E402

__all__ += ["MultigridPatching2D", "MultigridModel"]

# Latent Spectral Model (numlab/operators/_lsm.py).
from ._lsm import LSM  # noqa: E402

__all__ += ["LSM"]

# The training loss over flat parameters, for numlab.rmt (numlab/operators/_curvature.py).
from ._curvature import OperatorLoss  # noqa: E402

__all__ += ["OperatorLoss"]
