"""Lanczos, stochastic Lanczos quadrature and random-matrix learning rates against batch size.

Spectra of Hessians known only through Hessian-vector products, and what they imply for
the learning rate as a function of batch size (Granziol, Zohren & Roberts, JMLR 2022).

.. autosummary::

   lanczos
   ritz
   eigsh
   spectral_density
   smooth_density
   trace
   batch_curvature
   fit_batch_scaling
   max_learning_rate
   scale_learning_rate
   gradient_noise_scale
   measure_max_learning_rate
   SLQLearner
   LeastSquares
   LogisticRegression
   MLP
   LocalQuadratic

The Hessian-vector products come from the caller: ``hvp(v, idx=None)`` returns the
product with ``v`` of the Hessian of the mean loss over the samples ``idx`` (an integer
array on the caller's backend; all samples when None). Vectors live on the caller's
backend (NumPy, CuPy, any array-API library) in its dtype; the small tridiagonal
problems and the scalar results (eigenvalues, spectral nodes and weights, learning
rates) are computed on the host in float64. The built-in models (least squares,
logistic regression, a one-hidden-layer MLP) give exact HVPs and Gauss-Newton products
on any backend.

No hand-written kernel: the Lanczos step is one HVP plus two products with the Krylov
basis (BLAS-2 on NumPy, cuBLAS on CuPy), and the HVPs are the caller's.
"""

from ._batch import (
    BatchCurvature,
    BatchScalingFit,
    BatchScalingWarning,
    LRResult,
    NoiseScale,
    batch_curvature,
    finite_sample_factor,
    fit_batch_scaling,
    gradient_noise_scale,
    max_learning_rate,
    measure_max_learning_rate,
    scale_learning_rate,
)
from ._lanczos import EigResult, eigsh, lanczos, ritz, smooth_density, spectral_density, trace
from ._learner import SLQLearner, SLQStep
from ._models import MLP, HessianOperator, LeastSquares, LocalQuadratic, LogisticRegression

__all__ = [
    "lanczos",
    "ritz",
    "eigsh",
    "EigResult",
    "spectral_density",
    "smooth_density",
    "trace",
    "batch_curvature",
    "BatchCurvature",
    "fit_batch_scaling",
    "BatchScalingFit",
    "BatchScalingWarning",
    "finite_sample_factor",
    "max_learning_rate",
    "LRResult",
    "scale_learning_rate",
    "gradient_noise_scale",
    "NoiseScale",
    "measure_max_learning_rate",
    "SLQLearner",
    "SLQStep",
    "LeastSquares",
    "LogisticRegression",
    "MLP",
    "LocalQuadratic",
    "HessianOperator",
]
