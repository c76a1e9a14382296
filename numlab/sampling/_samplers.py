"""Optimal i.i.d. sampling, projection DPPs, volume sampling and repeated DPPs.

All samplers run on the CPU (NumPy, with the Numba chain-rule kernel) and place their
result on the caller's backend when ``like=`` is given.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .. import _backend
from .._dispatch import kernel
from .._progress import Progress, check_progress
from .._results import CompactRepr
from .._validation import check_array, check_int, check_like, check_option, check_rng
from . import _chain

#: Caps of the rejection loops: rounds of the vectorised 1-D rejection (each round draws
#: only for the entries still open, so the cap costs nothing when draws are accepted at
#: the usual rates of 1/2 to 1/M) and doublings of the chain rule's buffer of uniforms.
_MAX_REJECTION_ROUNDS = 10_000
_MAX_BUFFER_DOUBLINGS = 12

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


@dataclasses.dataclass(frozen=True, repr=False)
class Sample(CompactRepr):
    """Points and the weights of the weighted least-squares estimator.

    Attributes
    ----------
    points : array, shape (n, d)
        The sample.
    weights : array, shape (n,)
        ``w(x_i) = m / k_m(x_i)`` (``dmu / drho`` for the optimal density ``rho``).
    indices : int array, shape (n,), or None
        For a :class:`~numlab.lstsq.FeatureBasis`, the rows of the candidate set drawn.
    """

    points: Any
    weights: Any
    indices: Any = None

    def __iter__(self):  # points, weights = sample
        return iter((self.points, self.weights))


@dataclasses.dataclass(frozen=True, repr=False)
class RowSample(CompactRepr):
    """Rows selected from a tall matrix, with the weights of subsampled least squares.

    Attributes
    ----------
    indices : int array, shape (n,)
        Row indices.
    weights : array, shape (n,)
        ``m / (N * leverage_i)``: ``sum_i w_i (a_i^T x - b_i)^2`` estimates ``||A x - b||^2 m / N``.
    """

    indices: Any
    weights: Any

    def __iter__(self):
        return iter((self.indices, self.weights))


# --------------------------------------------------------------------------- helpers


def _check_basis(basis):
    from ..lstsq._basis import FeatureBasis, _TensorBasis

    if not isinstance(basis, (_TensorBasis, FeatureBasis)):
        raise TypeError(
            "`basis` must be a numlab.lstsq basis (LegendreBasis, HermiteBasis or FeatureBasis); "
            f"got {type(basis).__name__}"
        )
    return basis


def _place(x, like):
    """``x`` (NumPy) on the backend, device and float dtype of ``like`` (None: NumPy)."""
    if like is None:
        return x
    xp = _backend.namespace(like)
    dtype = None
    if np.issubdtype(x.dtype, np.floating):
        dtype = (
            like.dtype
            if xp.isdtype(like.dtype, "real floating")
            else _backend.float_dtype(xp, like)
        )
    return _backend.asarray(x, xp=xp, device=_backend.device(like), dtype=dtype)


def _weights(basis, points):
    run = kernel("sampling.christoffel", _backend.namespace())
    return basis.m / run(
        basis.indices, np.ascontiguousarray(basis._b), np.ascontiguousarray(points)
    )


def _tensor_spec(basis):
    kind = _chain.KIND_LEGENDRE if basis.kind == "legendre" else _chain.KIND_HERMITE
    table = (
        _chain.hermite_proposals(basis.degree) if kind == _chain.KIND_HERMITE else np.zeros((1, 3))
    )
    return kind, np.ascontiguousarray(basis._b), np.ascontiguousarray(table)


def _orthonormal_values(kind, b, k, x):
    """``p_k(x)`` (times ``exp(-x^2/4)`` for Hermite) for arrays ``k`` and ``x``."""
    prev = np.zeros_like(x)
    cur = np.ones_like(x) if kind == _chain.KIND_LEGENDRE else np.exp(-0.25 * x * x)
    out = cur.copy()
    for j in range(int(k.max(initial=0))):
        prev, cur = cur, (x * cur - b[j] * prev) / b[j + 1]
        out = np.where(k == j + 1, cur, out)
    return out


def _sample_1d_many(kind, b, table, k, rng):
    """Independent draws of ``p_{k_i}^2 dmu_1`` for each entry of ``k`` (vectorised rejection)."""
    x = np.empty(k.shape)
    todo = np.arange(k.size)
    for _ in range(_MAX_REJECTION_ROUNDS):
        if not todo.size:
            break
        kk = k[todo]
        if kind == _chain.KIND_LEGENDRE:
            t = np.cos(np.pi * rng.random(todo.size))
            p = _orthonormal_values(kind, b, kk, t)
            ok = 2.0 * rng.random(todo.size) < 0.5 * np.pi * p * p * np.sqrt(
                np.maximum(1 - t * t, 0)
            )
        else:
            L, s, M = table[kk, 0], table[kk, 1], table[kk, 2]
            arc = rng.random(todo.size) < 0.5
            t = np.where(
                arc, L * np.cos(np.pi * rng.random(todo.size)), s * rng.standard_normal(todo.size)
            )
            p = _orthonormal_values(kind, b, kk, t)
            f = p * p / math.sqrt(2 * math.pi)
            q = _chain._hermite_proposal_density(t, L, s)
            ok = rng.random(todo.size) * M * q < f
        x[todo[ok]] = t[ok]
        todo = todo[~ok]
    if todo.size:
        raise RuntimeError(
            f"sampling: rejection sampling accepted no draw for {todo.size} of {k.size} "
            f"entries in {_MAX_REJECTION_ROUNDS:,} rounds (the basis' recurrence "
            "coefficients or proposal table are likely not finite)"
        )
    return x


def _finite_q(basis):
    """Orthonormal columns ``sqrt(w) phi`` on the candidates, ``(N, m)``."""
    return basis._Q


def _finite_dpp(Q, rng):
    """Row indices of a projection DPP with kernel ``Q Q^T`` (sequential Gram-Schmidt)."""
    N, m = Q.shape
    norms = np.einsum("ij,ij->i", Q, Q)
    E = np.zeros((m, m))
    chosen = np.empty(m, dtype=np.int64)
    for t in range(m):
        p = np.maximum(norms, 0.0)
        i = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
        i = min(i, N - 1)
        chosen[t] = i
        r = Q[i] - E[:t].T @ (E[:t] @ Q[i])
        r -= E[:t].T @ (E[:t] @ r)
        E[t] = r / np.linalg.norm(r)
        norms -= (Q @ E[t]) ** 2
        norms[chosen[: t + 1]] = 0.0
    return chosen


def _finite_iid(Q, n, rng):
    p = np.einsum("ij,ij->i", Q, Q)
    return rng.choice(Q.shape[0], size=n, p=p / p.sum())


def _iid_points(basis, n, rng):
    """``n`` i.i.d. points of ``rho = k_m / m dmu`` (NumPy) and their candidate indices."""
    if basis.kind == "finite":
        idx = _finite_iid(_finite_q(basis), n, rng)
        return basis.candidates[idx], idx
    kind, b, table = _tensor_spec(basis)
    j = rng.integers(0, basis.m, size=n)
    points = np.empty((n, basis.dim))
    for c in range(basis.dim):
        points[:, c] = _sample_1d_many(kind, b, table, basis.indices[j, c], rng)
    return points, None


def _is_full_1d(basis):
    return basis.dim == 1 and np.array_equal(np.sort(basis.indices[:, 0]), np.arange(basis.m))


def _tridiagonal(basis, rng):
    """Killip-Nenciu (Jacobi, Legendre) or Dumitriu-Edelman (Hermite) tridiagonal model."""
    import scipy.linalg

    m = basis.m
    if basis.kind == "hermite":
        diag = rng.standard_normal(m)
        off = np.sqrt(rng.gamma(np.arange(m - 1, 0, -1, dtype=np.float64)))
        x = scipy.linalg.eigvalsh_tridiagonal(diag, off) if m > 1 else diag
    else:
        # Eigenvalues on [0, 1] with density prod |y_i - y_j|^2 (weight y^(a-1) (1-y)^(b-1),
        # a = b = 1): the c_k of Killip & Nenciu's Theorem 2 are Beta variables.
        a = b = 1.0
        half = np.arange(m - 1, -1, -1, dtype=np.float64)  # beta/2 * (m - i), beta = 2
        c_odd = rng.beta(half + a, half + b)
        c_even = np.zeros(m)
        if m > 1:
            c_even[1:] = rng.beta(half[:-1], half[1:] + a + b)
        xi_odd = (1.0 - c_even) * c_odd
        xi_even = np.zeros(m)
        xi_even[1:] = (1.0 - c_odd[:-1]) * c_even[1:]
        diag = xi_even + xi_odd
        off = np.sqrt(xi_odd[:-1] * xi_even[1:])
        y = scipy.linalg.eigvalsh_tridiagonal(diag, off) if m > 1 else diag
        x = np.clip(2.0 * y - 1.0, -1.0, 1.0)
    return rng.permutation(x)[:, None]


def _chain_rule(basis, rng):
    kind, b, table = _tensor_spec(basis)
    m, d = basis.m, basis.dim
    per_proposal = 2 + d * (
        8 if kind == _chain.KIND_LEGENDRE else 8 * max(2.0, float(table[:, 2].max()))
    )
    size = int(1.5 * m * (math.log(m) + 2.0) * per_proposal) + 1000
    run = kernel("sampling.chain_rule_dpp", _backend.namespace())
    for _ in range(_MAX_BUFFER_DOUBLINGS):
        points, used = run(basis.indices, kind, b, table, rng.random(size))
        if used >= 0:
            return points
        size *= 2
    raise RuntimeError(
        f"sampling: the chain rule used up {size // 2:,} uniforms without completing "
        f"{m} points ({_MAX_BUFFER_DOUBLINGS} doublings of the buffer; about "
        f"{int(1.5 * m * (math.log(m) + 2.0) * per_proposal) + 1000:,} are expected)"
    )


def _dpp_points(basis, rng, method):
    if basis.kind == "finite":
        idx = _finite_dpp(_finite_q(basis), rng)
        return basis.candidates[idx], idx
    if method == "tridiagonal" and not _is_full_1d(basis):
        raise ValueError(
            "`method`='tridiagonal' needs a 1-D basis of all degrees 0..m-1; "
            f"got dim={basis.dim}, m={basis.m}"
        )
    if method == "tridiagonal" or (method == "auto" and _is_full_1d(basis)):
        return _tridiagonal(basis, rng), None
    return _chain_rule(basis, rng), None


def _result(basis, points, idx, like):
    if idx is None:
        weights = _weights(basis, points)
    else:  # k_m at candidate i is |Q_i|^2 / mu_i
        Q = _finite_q(basis)[idx]
        weights = basis.m * basis.measure_weights[idx] / np.einsum("ij,ij->i", Q, Q)
    return Sample(
        _place(points, like), _place(weights, like), None if idx is None else _place(idx, like)
    )


# --------------------------------------------------------------------------- public


def optimal_iid(basis, n, *, rng=None, like=None):
    """``n`` i.i.d. points from the optimal density ``rho = k_m / m dmu`` (Cohen & Migliorati).

    Drawn as the uniform mixture of the laws ``phi_j^2 dmu``, coordinate by coordinate for
    tensor bases (exact rejection from arcsine-type proposals).

    Parameters
    ----------
    basis : LegendreBasis, HermiteBasis or FeatureBasis
        Orthonormal basis of ``V_m`` in ``L2(mu)``.
    n : int
        Number of points (``>= 1``).
    rng : None, int or numpy.random.Generator
        Source of randomness.
    like : array, optional
        Place the result on this array's backend and device, in its float dtype.

    Returns
    -------
    Sample
        ``points`` ``(n, d)`` and ``weights = m / k_m(points)``.

    References
    ----------
    A. Cohen and G. Migliorati, "Optimal weighted least-squares methods", SMAI J. Comput.
    Math. 3 (2017).

    Examples
    --------
    >>> import numlab as nl
    >>> s = nl.sampling.optimal_iid(nl.lstsq.LegendreBasis(2, 4), 30, rng=0)
    >>> s.points.shape, s.weights.shape
    ((30, 2), (30,))
    """
    basis = _check_basis(basis)
    n = check_int(n, "n", low=1)
    rng = check_rng(rng)
    check_like(like)
    points, idx = _iid_points(basis, n, rng)
    return _result(basis, points, idx, like)


def projection_dpp(basis, *, rng=None, like=None, method="auto"):
    """Exactly ``m`` points of the projection DPP with kernel ``K(x, y) = sum_j phi_j(x) phi_j(y)``.

    The joint density with respect to ``mu^m`` is ``det[K(x_i, x_j)] / m!``; each point's
    marginal is the optimal density ``k_m / m``, and the points repel. Sampled by the
    chain rule with exact rejection from ``k_m / m`` and coordinate-wise proposals (Numba
    kernel), or, for a 1-D basis of all degrees ``0..m-1``, as the eigenvalues of a random
    tridiagonal matrix (Killip-Nenciu for Legendre, Dumitriu-Edelman for Hermite), which
    is the same law in ``O(m^2)``. For a :class:`~numlab.lstsq.FeatureBasis` it is the
    finite projection DPP on the candidates.

    Parameters
    ----------
    basis : LegendreBasis, HermiteBasis or FeatureBasis
        Orthonormal basis of ``V_m`` in ``L2(mu)``.
    rng : None, int or numpy.random.Generator
        Source of randomness.
    like : array, optional
        Place the result on this array's backend and device, in its float dtype.
    method : {"auto", "chain_rule", "tridiagonal"}
        ``"auto"``: tridiagonal where it applies, else the chain rule.

    Returns
    -------
    Sample
        ``points`` ``(m, d)``, ``weights = m / k_m(points)``.

    References
    ----------
    A. Nouy and B. Michel, "Weighted least-squares approximation with determinantal point
    processes and generalized volume sampling" (2023); G. Gautier, R. Bardenet and M. Valko,
    "On two ways to use determinantal point processes for Monte Carlo integration",
    NeurIPS 2019; J. B. Hough, M. Krishnapur, Y. Peres and B. Virag, "Determinantal
    processes and independence", Probab. Surveys 3 (2006), Algorithm 18.

    Examples
    --------
    >>> import numlab as nl
    >>> s = nl.sampling.projection_dpp(nl.lstsq.LegendreBasis(2, 5), rng=0)
    >>> s.points.shape
    (21, 2)
    """
    basis = _check_basis(basis)
    check_option(method, "method", ("auto", "chain_rule", "tridiagonal"))
    if basis.kind == "finite" and method != "auto":
        raise ValueError(
            "`method` must be 'auto' for a FeatureBasis (the finite DPP on its candidates); "
            f"got {method!r}"
        )
    rng = check_rng(rng)
    check_like(like)
    points, idx = _dpp_points(basis, rng, method)
    return _result(basis, points, idx, like)


def volume_sampling(basis, n, *, rng=None, like=None):
    """Generalized volume-rescaled sampling of ``n >= m`` points.

    The density with respect to ``rho^n`` is proportional to ``det(G)``, ``G`` the
    weighted empirical Gram matrix. By Cauchy-Binet it is a projection DPP of ``m``
    points plus ``n - m`` i.i.d. points of ``rho``, in uniformly random order, which is
    how it is drawn.

    Parameters
    ----------
    basis : LegendreBasis, HermiteBasis or FeatureBasis
        Orthonormal basis of ``V_m`` in ``L2(mu)``.
    n : int
        Number of points, ``n >= m``.
    rng : None, int or numpy.random.Generator
        Source of randomness.
    like : array, optional
        Place the result on this array's backend and device, in its float dtype.

    Returns
    -------
    Sample
        ``points`` ``(n, d)`` and ``weights = m / k_m(points)``.

    References
    ----------
    A. Nouy and B. Michel (2023), see :func:`projection_dpp`; M. Derezinski, M. K. Warmuth
    and D. Hsu, "Unbiased estimators for random design regression", JMLR 23 (2022).

    Examples
    --------
    >>> import numlab as nl
    >>> basis = nl.lstsq.LegendreBasis(1, 9)
    >>> nl.sampling.volume_sampling(basis, 20, rng=0).points.shape
    (20, 1)
    """
    basis = _check_basis(basis)
    n = check_int(n, "n")
    if n < basis.m:
        raise ValueError(f"`n` must be >= m = {basis.m} for volume sampling; got {n}")
    rng = check_rng(rng)
    check_like(like)
    dpp, dpp_idx = _dpp_points(basis, rng, "auto")
    iid, iid_idx = _iid_points(basis, n - basis.m, rng)
    order = rng.permutation(n)
    points = np.concatenate([dpp, iid])[order]
    idx = None if dpp_idx is None else np.concatenate([dpp_idx, iid_idx])[order]
    return _result(basis, points, idx, like)


def repeated_dpp(basis, r, *, rng=None, like=None, progress=False):
    """The union of ``r`` independent projection DPPs (``r m`` points).

    Parameters
    ----------
    basis : LegendreBasis, HermiteBasis or FeatureBasis
        Orthonormal basis of ``V_m`` in ``L2(mu)``.
    r : int
        Number of repetitions (``>= 1``); ``ceil(ln m)`` is a good choice.
    rng : None, int or numpy.random.Generator
        Source of randomness.
    like : array, optional
        Place the result on this array's backend and device, in its float dtype.
    progress : bool, default False
        Show a progress bar on stderr (tqdm) over the ``r`` draws. The draws are the
        same with and without it.

    Returns
    -------
    Sample
        ``points`` ``(r m, d)`` (the ``r`` draws one after the other) and
        ``weights = m / k_m(points)``.

    Examples
    --------
    >>> import numlab as nl
    >>> nl.sampling.repeated_dpp(nl.lstsq.LegendreBasis(2, 3), 2, rng=0).points.shape
    (20, 2)
    """
    basis = _check_basis(basis)
    r = check_int(r, "r", low=1)
    rng = check_rng(rng)
    check_like(like)
    progress = check_progress(progress)
    draws = []
    with Progress(progress, "nl.sampling.repeated_dpp", total=r, unit="draw") as bar:
        for _ in range(r):
            draws.append(_dpp_points(basis, rng, "auto"))
            bar.update()
    points = np.concatenate([p for p, _ in draws])
    idx = None if draws[0][1] is None else np.concatenate([i for _, i in draws])
    return _result(basis, points, idx, like)


def _row_basis(A):
    import scipy.linalg

    A = check_array(A, "A", ndim=2)
    N, m = A.shape
    if N < m:
        raise ValueError(f"`A` must be tall (rows >= columns); got shape {(N, m)}")
    Q, R = scipy.linalg.qr(np.asarray(_backend.to_numpy(A), dtype=np.float64), mode="economic")
    d = np.abs(np.diag(R))
    if d.min() <= 1e-12 * d.max():
        raise ValueError("`A` must have full column rank; its columns are linearly dependent")
    return A, Q


def _row_result(A, Q, idx):
    N, m = Q.shape
    lev = np.einsum("ij,ij->i", Q[idx], Q[idx])
    xp = _backend.namespace(A)
    dev = _backend.device(A)
    w = _backend.asarray(m / (N * lev), xp=xp, device=dev, dtype=A.dtype)
    return RowSample(_backend.asarray(idx, xp=xp, device=dev), w)


def dpp_rows(A, *, rng=None):
    """``m`` rows of a tall ``(N, m)`` matrix from the projection DPP on its column space.

    Row set ``S`` has probability ``det(A_S)^2 / det(A^T A)``; the square subsystem
    ``A_S x = b_S`` is the DPP counterpart of interpolation.

    Parameters
    ----------
    A : array, shape (N, m)
        Full column rank, ``N >= m``.
    rng : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    RowSample
        ``indices`` ``(m,)`` (on ``A``'s backend) and ``weights`` ``m / (N leverage)``.

    Examples
    --------
    >>> import numpy as np, numlab as nl
    >>> A = np.random.default_rng(0).standard_normal((100, 5))
    >>> nl.sampling.dpp_rows(A, rng=0).indices.shape
    (5,)
    """
    A, Q = _row_basis(A)
    return _row_result(A, Q, _finite_dpp(Q, check_rng(rng)))


def volume_sampling_rows(A, n, *, rng=None):
    """``n >= m`` rows of ``A`` by volume sampling: ``P(S) ~ det(A_S^T W_S A_S) prod rho``.

    A projection DPP of ``m`` rows plus ``n - m`` rows drawn i.i.d. proportionally to their
    leverage scores, randomly permuted (rows may repeat among the i.i.d. part). With
    ``n = m`` and uniform leverage it reduces to classical volume sampling
    ``P(S) ~ det(A_S)^2``.

    Parameters
    ----------
    A : array, shape (N, m)
        Full column rank, ``N >= m``.
    n : int
        Number of rows, ``n >= m``.
    rng : None, int or numpy.random.Generator
        Source of randomness.

    Returns
    -------
    RowSample
        ``indices`` ``(n,)`` (on ``A``'s backend) and ``weights`` ``m / (N leverage)``.

    Examples
    --------
    >>> import numpy as np, numlab as nl
    >>> A = np.random.default_rng(0).standard_normal((100, 5))
    >>> nl.sampling.volume_sampling_rows(A, 12, rng=0).weights.shape
    (12,)
    """
    A, Q = _row_basis(A)
    n = check_int(n, "n")
    if n < Q.shape[1]:
        raise ValueError(f"`n` must be >= m = {Q.shape[1]} for volume sampling; got {n}")
    rng = check_rng(rng)
    idx = np.concatenate([_finite_dpp(Q, rng), _finite_iid(Q, n - Q.shape[1], rng)])
    return _row_result(A, Q, idx[rng.permutation(n)])
