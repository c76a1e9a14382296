"""Exact and stochastic CCA / PLS (Chapman, Aguila & Wells, ICLR 2024).

- :func:`cca`, :func:`pls`: exact regularised CCA / PLS of two or more views (MCCA)
  through one generalized eigenvalue problem, with shrinkage ``reg`` in [0, 1] per
  view; they return a :class:`CCAResult`.
- :class:`StochasticCCA`, :class:`StochasticPLS`: scikit-learn estimators fitted by
  mini-batch SGD / Adam on the paper's unconstrained Eckhart-Young loss
  ``tr(-2 U^T A U + (U^T B U)^2)``, estimated without bias from two independent
  half-batches; ``fit``, ``partial_fit`` (streams), ``transform``, ``score`` (total
  canonical correlation captured).

The estimators need scikit-learn and are imported on first access, so that
``import numlab.cca`` stays cheap.

References
----------
J. Chapman, A. L. Aguila, L. Wells, "Unconstrained Stochastic CCA: Unifying Multiview
and Self-Supervised Learning", ICLR 2024, arXiv:2310.01012.
"""

from ._exact import CCAResult, cca, pls

__all__ = ["CCAResult", "StochasticCCA", "StochasticPLS", "cca", "pls"]


def __getattr__(name):
    if name in ("StochasticCCA", "StochasticPLS"):
        from . import _stochastic

        value = getattr(_stochastic, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
