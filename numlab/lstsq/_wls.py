"""Weighted least-squares projection onto ``V_m`` from random samples."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

from .. import _backend
from .._results import CompactRepr
from .._validation import check_int, check_like, check_option, check_rng, check_scalar

__all__ = ["LeastSquaresFit", "IllConditionedWarning", "weighted_least_squares"]

SAMPLERS = ("volume", "iid", "dpp", "repeated_dpp")


class IllConditionedWarning(RuntimeWarning):
    """The empirical Gram matrix of a weighted least-squares fit is ill-conditioned."""


@dataclasses.dataclass(frozen=True, repr=False)
class LeastSquaresFit(CompactRepr):
    """A weighted least-squares approximation ``f_n = sum_j coef_j phi_j``.

    Attributes
    ----------
    coef : array, shape (m,)
        Coefficients in the basis.
    points : array, shape (n, d)
        The sample.
    weights : array, shape (n,)
        The weights ``m / k_m(points)``.
    gram_condition : float
        Condition number of the empirical Gram matrix ``G = (1/n) sum_i w_i phi(x_i) phi(x_i)^T``.
    gram_min_eig : float
        Its smallest eigenvalue (``G`` is close to the identity when the sample is good).
    basis : basis object
        The basis of ``V_m`` the fit was computed in.
    sampler : str
        The sampler that drew ``points`` (``"volume"``, ``"iid"``, ``"dpp"`` or
        ``"repeated_dpp"``).
    """

    coef: Any
    points: Any
    weights: Any
    gram_condition: float
    gram_min_eig: float
    basis: Any
    sampler: str

    def predict(self, x):
        """Evaluate the approximation ``f_n`` at the points ``x``.

        Parameters
        ----------
        x : array of shape (n, d)
            The points, in the domain of ``basis``.

        Returns
        -------
        array of shape (n,)
            ``f_n(x_i)``, in the namespace and device of ``x``.
        """
        phi = self.basis(x)
        xp = _backend.namespace(phi)
        return xp.matmul(phi, xp.astype(self.coef, phi.dtype))

    __call__ = predict


def weighted_least_squares(
    f, basis, n_samples, *, sampler="volume", rng=None, like=None, cond_warning=None
):
    """Weighted least-squares approximation of ``f`` in ``V_m`` from a random sample.

    ``f_n = argmin_{v in V_m} sum_i w(x_i) (f(x_i) - v(x_i))^2`` with ``w = m / k_m``, the
    sample drawn by one of :mod:`numlab.sampling`'s samplers. With volume sampling or
    repeated DPPs the estimator is quasi-optimal in expectation with ``n = O(m log m)``
    (Nouy & Michel); with ``n = 2m`` both are already stable in practice.

    Parameters
    ----------
    f : callable
        Maps points ``(n, d)`` (on the backend of ``like``, NumPy by default) to values ``(n,)``.
    basis : LegendreBasis, HermiteBasis or FeatureBasis
        Orthonormal basis of ``V_m`` in ``L2(mu)``.
    n_samples : int
        Sample size: ``== m`` for ``"dpp"``, a multiple of ``m`` for ``"repeated_dpp"``,
        ``>= m`` for ``"volume"``.
    sampler : {"volume", "iid", "dpp", "repeated_dpp"}
        :func:`~numlab.sampling.volume_sampling`, :func:`~numlab.sampling.optimal_iid`,
        :func:`~numlab.sampling.projection_dpp`, :func:`~numlab.sampling.repeated_dpp`.
    rng : None, int or numpy.random.Generator
        Source of randomness of the sample.
    like : array, optional
        Run the fit on this array's backend, device and float dtype.
    cond_warning : float, optional
        Warn (:class:`IllConditionedWarning`) when the Gram matrix's condition number exceeds
        this, ``>= 1`` (default ``1e8`` in float64, ``1e4`` in float32; ``math.inf``
        never warns).

    Returns
    -------
    LeastSquaresFit
        The coefficients, the sample and the conditioning of its Gram matrix.

    References
    ----------
    A. Nouy and B. Michel, "Weighted least-squares approximation with determinantal point
    processes and generalized volume sampling", arXiv:2312.14057 (2023).

    Examples
    --------
    >>> import numpy as np, numlab as nl
    >>> basis = nl.lstsq.LegendreBasis(2, 6)
    >>> fit = nl.lstsq.weighted_least_squares(lambda x: np.exp(x[:, 0] * x[:, 1]), basis,
    ...                                       2 * basis.m, sampler="volume", rng=0)
    >>> bool(abs(fit.predict(np.zeros((1, 2)))[0] - 1.0) < 1e-3)  # exp(0) = 1
    True
    """
    from .. import sampling
    from ..sampling._samplers import _check_basis

    if not callable(f):
        raise TypeError(f"`f` must be callable; got {type(f).__name__}")
    check_option(sampler, "sampler", SAMPLERS)
    basis = _check_basis(basis)
    n = check_int(n_samples, "n_samples", low=1)
    m = basis.m
    if cond_warning is not None and cond_warning != math.inf:
        cond_warning = check_scalar(cond_warning, "cond_warning", low=1.0, low_inclusive=True)
    rng = check_rng(rng)
    check_like(like)
    if sampler == "dpp":
        if n != m:
            raise ValueError(f"`n_samples` must equal m = {m} for sampler='dpp'; got {n}")
        sample = sampling.projection_dpp(basis, rng=rng, like=like)
    elif sampler == "repeated_dpp":
        if n % m:
            raise ValueError(
                f"`n_samples` must be a multiple of m = {m} for sampler='repeated_dpp'; got {n}"
            )
        sample = sampling.repeated_dpp(basis, n // m, rng=rng, like=like)
    elif sampler == "volume":
        if n < m:
            raise ValueError(f"`n_samples` must be >= m = {m} for sampler='volume'; got {n}")
        sample = sampling.volume_sampling(basis, n, rng=rng, like=like)
    else:
        sample = sampling.optimal_iid(basis, n, rng=rng, like=like)
    points, weights = sample.points, sample.weights
    xp = _backend.namespace(points)
    y = f(points)
    if not hasattr(y, "shape") or tuple(y.shape) != (n,):
        raise ValueError(
            f"`f` must return an array of shape ({n},); got {getattr(y, 'shape', type(y))}"
        )
    y = _backend.asarray(y, xp=xp, device=_backend.device(points))
    if not xp.isdtype(y.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"`f` must return real numbers; got dtype {y.dtype}")
    y = xp.astype(y, points.dtype)
    if not bool(xp.all(xp.isfinite(y))):
        raise ValueError("`f` returned NaN or infinity at the sample points")
    # G = A^T A with A = sqrt(w / n) Phi. QR of A gives the solution; the spectrum of
    # G = R^T R (m x m) its condition number. (QR rather than SVD: LAPACK's SVD is
    # pathologically slow with threaded BLAS on a busy machine.)
    scale = xp.sqrt(weights / n)
    A = scale[:, None] * basis(points)
    Q, R = xp.linalg.qr(A)
    eig = xp.linalg.eigvalsh(xp.matmul(xp.permute_dims(R, (1, 0)), R))
    lam_min, lam_max = float(eig[0]), float(eig[-1])
    eps = float(xp.finfo(A.dtype).eps)
    rhs = xp.matmul(xp.permute_dims(Q, (1, 0)), scale * y)
    if lam_min > eps * lam_max:
        coef = xp.linalg.solve(R, rhs[:, None])[:, 0]
    else:  # numerically singular: minimum-norm solution
        coef = xp.matmul(xp.linalg.pinv(A), scale * y)
    cond = math.inf if lam_min <= 0 else lam_max / lam_min
    s_min = math.sqrt(max(lam_min, 0.0))
    limit = cond_warning if cond_warning is not None else (1e8 if eps < 1e-10 else 1e4)
    if cond > limit:
        warnings.warn(
            "the empirical Gram matrix is ill-conditioned "
            f"(condition number {cond:.3g} > {limit:.3g}, "
            f"smallest eigenvalue {s_min**2:.3g}); the {sampler!r} sample of {n} points is too "
            "small or too unlucky for V_m: use more points, sampler='volume' or 'repeated_dpp'",
            IllConditionedWarning,
            stacklevel=2,
        )
    return LeastSquaresFit(coef, points, weights, cond, s_min**2, basis, sampler)
