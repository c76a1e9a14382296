"""Entropic optimal transport: Sinkhorn scaling, log-stable scaling, Sinkhorn-Newton-Sparse.

The problem (POT's convention, ``reg`` = 1/eta of the paper)::

    min_P  <P, M> + reg * sum_ij P_ij (log P_ij - 1)   s.t.  P 1 = a,  P^T 1 = b

has the plan ``P_ij = exp((f_i + g_j - M_ij) / reg)`` at the optimum of the concave dual
``D(f, g) = <a, f> + <b, g> - reg * sum_ij exp((f_i + g_j - M_ij) / reg)``.

The solvers keep the plan as ``diag(u) K diag(v)`` with ``K = exp((f + g - M) / reg)``:
a Sinkhorn iteration updates the scalings ``u, v`` (two matrix-vector products, fused
into one pass over ``K``), and whenever a scaling leaves ``[e^-tau, e^tau]`` it is
absorbed into the potentials ``f, g`` and ``K`` is rebuilt (Schmitzer's stabilisation).
Entries of ``K`` below ``exp(clamp)`` are stored as zeros, so no subnormal number enters
the hot loop and nothing overflows at any ``reg``. A Newton step is a rescaling too:
``u <- u exp(d_f / reg)``, so it costs one pass over ``K`` and no exponential per entry.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import numpy as np

from .. import _backend
from .._dispatch import kernel
from .._progress import Progress, check_progress
from .._results import CompactRepr
from .._validation import check_array, check_bool, check_int, check_option, check_scalar
from . import _kernels  # noqa: F401  (registers the kernels)

__all__ = ["OTResult", "ConvergenceWarning", "sinkhorn", "sinkhorn2", "METHODS"]

METHODS = ("sns", "sinkhorn", "log")

# Fraction of the current marginal violation that the dropped plan entries may weigh
# (the "safe" sparsification rule; see the module docstring of numlab.ot).
_DROP_FRACTION = 0.1
# Newton steps are abandoned for a few Sinkhorn iterations when the line search fails
# or when this many Newton steps in a row did not halve the violation.
_FALLBACK_SINKHORN_STEPS = 100
_SLOW_NEWTON_STEPS = 5
# Sinkhorn has stalled when the violation did not improve by 1 % in this many iterations.
_STALL_ITERATIONS = 500
# Below reg = spread(M) / _ANNEAL_RATIO, solve at 10 reg first (to _ANNEAL_TOL) and warm-start.
_ANNEAL_RATIO = 500
_ANNEAL_TOL = 1e-3
# Up to this n + m, Newton systems are solved directly (pseudo-inverse) instead of by CG.
_DENSE_NEWTON = 100
# CG stops at a relative residual min(_CG_RTOL_MAX, (violation / mass)**_CG_POWER)
# (inexact Newton with a forcing term that vanishes with the violation converges
# superlinearly), or after the work of _CG_WORK passes over the dense plan.
_CG_RTOL_MAX = 1e-2
_CG_WORK = 50
_CG_POWER = 0.5
# The Newton system is solved directly (dense Schur complement, Cholesky) when that costs
# less than the CG iterations of the previous step (W1 problems: CG needs hundreds), for
# m up to _DIRECT_MAX. _BLAS_SPEEDUP: how much cheaper a dense flop is than a sparse CG
# update (about 7x measured on one core: Cholesky at 16 GFlop/s, CG at 2.3e9 updates/s).
# _DIRECT_SHIFT: a relative damping that keeps the factorisation positive definite.
_DIRECT_MAX = 4096
_BLAS_SPEEDUP = 8
_DIRECT_SHIFT = 1e-13
_DEBUG = bool(os.environ.get("NUMLAB_OT_DEBUG"))
# progress=True draws a bar for plans of at least this many entries (n * m, after zero
# weights are removed): 2048 x 2048 and up, where an iteration takes milliseconds and a
# solve of thousands of iterations seconds or more. Smaller solves draw nothing.
_PROGRESS_MIN_SIZE = 1 << 22


class ConvergenceWarning(UserWarning):
    """An OT solver stopped before reaching its tolerance (see ``OTResult.converged``)."""


@dataclasses.dataclass(frozen=True, repr=False)
class OTResult(CompactRepr):
    """Result of an entropic optimal transport solve.

    Attributes
    ----------
    plan : array, shape (n, m)
        The transport plan, same namespace, device and dtype as ``M``.
    cost : float
        The transport cost ``<plan, M>`` (without the entropy term, like POT's
        ``sinkhorn2``).
    f, g : arrays, shapes (n,) and (m,)
        Dual potentials in cost units: ``plan = exp((f[:, None] + g[None, :] - M) / reg)``
        (plan entries below about ``1e-128`` times the largest may be stored as zeros).
        ``f / reg`` and ``g / reg`` are POT's ``log_u`` and ``log_v``. Points of zero
        weight get ``-inf`` (their plan row or column is exactly zero).
    n_iter : int
        Total iterations, ``n_sinkhorn + n_newton``.
    n_sinkhorn, n_newton : int
        Sinkhorn (scaling) iterations and Newton iterations.
    converged : bool
        Whether the final marginal violation is ``<= tol``.
    violation : float
        Final marginal violation ``||P 1 - a||_1 + ||P^T 1 - b||_1``.
    history : numpy.ndarray
        Marginal violation at each convergence check (every iteration on NumPy, every
        few iterations on other backends, every Newton iteration).
    method : str
        The method that ran (``"sns"`` reports whether Newton steps were taken through
        ``n_newton``).

    Notes
    -----
    ``np.asarray(result)`` is the plan (for a NumPy plan), so code written for POT's
    ``ot.sinkhorn``, which returns the plan itself, can convert the result; its repr
    shows shapes, dtypes and scalars only.
    """

    plan: object
    cost: float
    f: object
    g: object
    n_iter: int
    n_sinkhorn: int
    n_newton: int
    converged: bool
    violation: float
    history: np.ndarray
    method: str

    def __array__(self, dtype=None, copy=None):
        plan = self.plan
        if not isinstance(plan, np.ndarray):
            raise TypeError(
                f"OTResult.__array__: the plan is a {type(plan).__module__}.{type(plan).__name__}; "
                "use result.plan (no implicit device-to-host copy)"
            )
        if copy:
            return np.array(plan, dtype=dtype, copy=True)
        return plan if dtype is None else plan.astype(dtype, copy=False)


# ----------------------------------------------------------------------------- validation


def _host_list(x, name):
    """A list argument as a checked floating NumPy array (complex, str: named errors)."""
    try:
        x = np.asarray(x)
    except ValueError:
        raise ValueError(
            f"`{name}` must be an array or a rectangular list of numbers; got a ragged list"
        ) from None
    return check_array(x, name, allow_empty=True)


def _weights(w, name, n, xp, dtype, dev):
    if w is None or (hasattr(w, "shape") and tuple(w.shape) == (0,)) or (
        isinstance(w, (list, tuple)) and len(w) == 0
    ):
        return xp.full((n,), 1.0 / n, dtype=dtype, device=dev)
    if isinstance(w, (list, tuple)):
        w = _backend.asarray(_host_list(w, name), xp=xp, device=dev)
    w = check_array(w, name, xp=xp, ndim=1, shape=(n,))
    w = xp.astype(w, dtype, copy=False)
    if bool(xp.any(w < 0)):
        raise ValueError(f"`{name}` must be non-negative; got a minimum of {float(xp.min(w))!r}")
    if not float(xp.sum(w)) > 0:
        raise ValueError(f"`{name}` must have a positive total mass; got {float(xp.sum(w))!r}")
    return w


def _check_inputs(a, b, M, reg):
    # M first: it decides the backend, so on a tie the weights are the odd ones
    named = {k: x for k, x in dict(M=M, a=a, b=b).items() if _backend.is_array(x)}
    xp = _backend.namespace(**named)
    if isinstance(M, (list, tuple)):
        M = _backend.asarray(_host_list(M, "M"), xp=xp)
    M = check_array(M, "M", xp=xp, ndim=2)
    dtype = _backend.float_dtype(xp, **named)
    M = xp.astype(M, dtype, copy=False)
    dev = _backend.device(M)
    n, m = M.shape
    a = _weights(a, "a", n, xp, dtype, dev)
    b = _weights(b, "b", m, xp, dtype, dev)
    sa, sb = float(xp.sum(a)), float(xp.sum(b))
    if abs(sa - sb) > max(1e-6, 100 * float(xp.finfo(dtype).eps)) * max(sa, sb):
        raise ValueError(
            f"`a` and `b` must have the same total mass; got sum(a) = {sa!r} and sum(b) = {sb!r}"
        )
    reg = check_scalar(reg, "reg", low=0)
    return xp, a, b, M, reg


# ----------------------------------------------------------------------------- the solver


class _Solver:
    """State and steps of one solve: potentials ``f, g``, kernel ``K``, scalings ``u, v``."""

    def __init__(
        self, xp, a, b, M, reg, *, tol, max_iter, n_sinkhorn, density, switch_tol, coarse=False,
        bar=None,
    ):
        self.xp, self.a, self.b, self.M, self.reg = xp, a, b, M, reg
        self.bar = bar  # a Progress (it only reads the counts and the violation)
        # a coarse level of epsilon scaling only warm-starts the next: it gives up on a
        # plateau sooner, leaving the iterations to the levels that the caller sees
        self.coarse = coarse
        self.tol, self.max_iter = tol, max_iter
        self.n_switch, self.density, self.switch_tol = n_sinkhorn, density, switch_tol
        self.n, self.m = M.shape
        self.dtype = M.dtype
        self.dev = _backend.device(M)
        log_max = math.log(float(xp.finfo(self.dtype).max))
        self.tau = log_max / 7  # absorb scalings beyond e^tau (101 in float64, 12.7 in float32)
        self.clamp = -0.7 * log_max  # K entries below e^clamp are stored as 0
        self.check_every = 1 if _backend.is_numpy(xp) else 10
        self.mass = float(xp.sum(a))
        self.history = []
        self.n_sinkhorn = 0
        self.n_newton = 0
        self.K = None
        self.columns_exact = False
        # weights of the plan entries in the sparsification rule: P_ij / sqrt(n a_i m b_j)
        self.ra = xp.astype(1.0 / xp.sqrt(self.n * a / self.mass), xp.float64)
        self.rb = xp.astype(1.0 / xp.sqrt(self.m * b / self.mass), xp.float64)

    # -- helpers
    @property
    def n_iter(self):
        return self.n_sinkhorn + self.n_newton

    def _k(self, name):
        return kernel(name, self.xp)

    def _report(self, err):
        """Show the iterations and the violation on the progress bar (if any)."""
        if self.bar is not None and self.bar.shown:
            self.bar.advance_to(self.n_iter)
            level = f"reg {self.reg:.3g} (epsilon scaling), " if self.coarse else ""
            self.bar.note(f"{level}violation {err:.2e}, tol {self.tol:.1e}")

    def _ones(self, k):
        return self.xp.ones((k,), dtype=self.dtype, device=self.dev)

    def _zeros(self, k):
        return self.xp.zeros((k,), dtype=self.dtype, device=self.dev)

    def _max_abs_log(self, x):
        return float(self.xp.max(self.xp.abs(self.xp.log(x))))

    def potentials(self, u=None, v=None):
        xp, reg = self.xp, self.reg
        u = self.u if u is None else u
        v = self.v if v is None else v
        return self.f + reg * xp.log(u), self.g + reg * xp.log(v)

    def rebuild(self, f, g, clamp=None):
        """Absorb everything into the potentials: ``K = exp((f + g - M) / reg)``, u = v = 1."""
        self.f, self.g = f, g
        if self.K is None:
            self.K = self.xp.empty(self.M.shape, dtype=self.dtype, device=self.dev)
        clamp = self.clamp if clamp is None else clamp
        self.K = self._k("ot.kernel_matrix")(self.M, f, g, self.reg, clamp, self.K)
        self.u, self.v = self._ones(self.n), self._ones(self.m)

    def warm_start(self, f, g):
        """Start from potentials (the columns are not balanced yet)."""
        self.rebuild(f, g)
        self.columns_exact = False

    def log_step(self, G):
        """An exact Sinkhorn iteration in the log domain from column potential ``G``.

        The row step is a log-sum-exp per row; the column step is fused with building
        ``K`` (one exponential per entry), its exact column scaling kept in ``v``.
        """
        xp, reg = self.xp, self.reg
        self.f = reg * (xp.log(self.a) - self._k("ot.lse_rows")(self.M, G, reg))
        if self.K is None:
            self.K = xp.empty(self.M.shape, dtype=self.dtype, device=self.dev)
        self.K, colsum, mx = self._k("ot.column_kernel")(self.M, self.f, reg, self.clamp, self.K)
        self.g = -reg * mx
        self.u, self.v = self._ones(self.n), self.b / colsum
        self.n_sinkhorn += 1
        self.columns_exact = True

    # -- initialisation
    def start(self, method):
        if method == "sinkhorn":
            # classic scaling on K = exp(-M / reg), as POT's sinkhorn_knopp
            self.rebuild(self._zeros(self.n), self._zeros(self.m), clamp=-math.inf)
            self.columns_exact = False
        elif float(self.xp.max(self.M) - self.xp.min(self.M)) < 0.5 * self.tau * 7 * self.reg:
            # exp(-(M - min M) / reg) cannot underflow: start from plain scaling
            shift = float(self.xp.min(self.M))
            self.warm_start(self._zeros(self.n), self._zeros(self.m) + shift)
        else:
            self.f = self._zeros(self.n)
            self.log_step(self._zeros(self.m))

    # -- Sinkhorn stage
    def run_sinkhorn(self, max_steps, *, stable, switch):
        """Scaling iterations; returns why they stopped.

        "converged", "budget" (max_iter), "steps" (max_steps done), "switch" (Newton
        should take over), "underflow" (classic scaling broke down), "stalled".
        """
        step = self._k("ot.scaling_step")
        ok_u, ok_v, ok_iter = self.u, self.v, self.n_sinkhorn
        steps = 0
        best, best_iter = math.inf, self.n_iter
        while steps < max_steps:
            if self.n_iter >= self.max_iter:
                return "budget"
            # err below is the row violation of the incoming scalings; it is their
            # whole violation only if their columns are exact (after a scaling step)
            incoming_exact = self.columns_exact
            u, v, err = step(self.K, self.u, self.v, self.a, self.b)
            self.columns_exact = True
            steps += 1
            if steps % self.check_every and steps < max_steps:
                self.u, self.v = u, v
                self.n_sinkhorn += 1
                continue
            # err is the row violation of the incoming scalings (columns are exact)
            err = float(err)
            finite = math.isfinite(err)
            self._report(err)
            if finite:
                if incoming_exact:
                    self.history.append((self.n_iter, err))
                if err <= self.tol and incoming_exact:
                    return "converged"
                if err < 0.99 * best:
                    best, best_iter = err, self.n_iter
                elif switch and self.n_iter - best_iter > max(_STALL_ITERATIONS, self.n_iter // 2):
                    return "switch"  # a Sinkhorn plateau (small reg): Newton may get out
                elif self.n_iter - best_iter > (
                    _STALL_ITERATIONS
                    if self.coarse
                    else max(10 * _STALL_ITERATIONS, self.n_iter // 2)
                ):
                    return "stalled"  # rounding floor (or a very long plateau)
                if switch and self._switch_now(err):
                    return "switch"
            big = max(self._max_abs_log(u), self._max_abs_log(v)) if finite else math.nan
            if finite and big <= self.tau:
                self.u, self.v = u, v
                self.n_sinkhorn += 1
                ok_u, ok_v, ok_iter = u, v, self.n_sinkhorn
            elif not stable:
                if finite and math.isfinite(big):
                    self.u, self.v = u, v
                    self.n_sinkhorn += 1
                    ok_u, ok_v, ok_iter = u, v, self.n_sinkhorn
                else:
                    self.u, self.v, self.n_sinkhorn = ok_u, ok_v, ok_iter
                    return "underflow"
            elif finite and math.isfinite(big):
                # large but finite scalings: absorb them into the potentials
                self.rebuild(*self.potentials(u, v))
                self.n_sinkhorn += 1
                ok_u, ok_v, ok_iter = self.u, self.v, self.n_sinkhorn
            else:
                # overflow or underflow since the last check: redo it exactly in the log domain
                self.n_sinkhorn = ok_iter
                _, G = self.potentials(ok_u, ok_v)
                self.log_step(G)
                ok_u, ok_v, ok_iter = self.u, self.v, self.n_sinkhorn
        return "steps"

    def _switch_now(self, err):
        """Whether the Newton stage should start now (method "sns")."""
        if self.n_switch is not None:
            return self.n_sinkhorn >= self.n_switch
        if err > self.switch_tol or self.n_sinkhorn < self._next_decision:
            return False
        # Project the Sinkhorn iterations still needed from the observed linear rate and
        # compare them with the cost of a few Newton steps (in Sinkhorn iterations),
        # which grows with the density of the sparsified Hessian.
        rate = self._sinkhorn_rate()
        if rate is None:
            return False  # not enough history for a rate yet
        remaining = math.inf if rate >= 1 else math.log(self.tol / err) / math.log(rate)
        if remaining > 16:  # below, even the sparsest Newton stage costs more
            # the density of the sparsified Hessian, estimated on a sample of rows
            step = max(1, self.n // 256)
            rows = slice(None, None, step)
            _, _, mass_h, count_h = self._k("ot.marginals")(
                self.K[rows, :], self.u[rows], self.v, self.ra[rows], self.rb
            )
            _, nnz = self._threshold(mass_h, count_h, err)
            density = nnz / (self.K[rows, :].shape[0] * self.m)
            newton_cost = 4 * (4 + 40 * 1.5 * density)
            if remaining > newton_cost:
                return True
        # the remaining Sinkhorn work only shrinks: look again much later
        self._next_decision = self.n_sinkhorn + max(20, int(remaining) // 2)
        return False

    _next_decision = 0

    def _sinkhorn_rate(self):
        if not self.history:
            return None
        it1, e1 = self.history[-1]
        for it0, e0 in reversed(self.history[:-1]):
            if it1 - it0 >= 10 and e0 > 0:
                return (e1 / e0) ** (1.0 / (it1 - it0))
        return None

    # -- Newton stage
    def _threshold(self, mass_h, count_h, violation):
        """Lowest kept exponent bin and the number of kept entries."""
        mass_h = _backend.to_numpy(mass_h)
        count_h = _backend.to_numpy(count_h)
        if self.density is None:
            budget = _DROP_FRACTION * violation / self.mass * float(mass_h.sum())
            e = int(np.searchsorted(np.cumsum(mass_h), budget, side="right"))
        else:
            from_top = np.cumsum(count_h[::-1])[::-1]
            target = self.density * self.n * self.m
            e = int(np.nonzero(from_top >= min(target, from_top[0]))[0][-1])
        e = min(max(e, 1), len(count_h) - 1)
        return e, int(count_h[e:].sum())

    def _evaluate(self, u, v, histogram=True):
        """Marginals, violation and dual value at scalings ``u, v`` (and the weight
        histogram, one more pass, only for points where a Newton step will start)."""
        xp = self.xp
        if histogram:
            r, c, mass_h, count_h = self._k("ot.marginals")(self.K, u, v, self.ra, self.rb)
        else:
            r, c, mass_h, count_h = u * (self.K @ v), v * (u @ self.K), None, None
        viol = float(xp.sum(xp.abs(r - self.a)) + xp.sum(xp.abs(c - self.b)))
        F, G = self.potentials(u, v)
        dual = float(xp.sum(self.a * F) + xp.sum(self.b * G) - self.reg * xp.sum(r))
        return r, c, mass_h, count_h, viol, dual

    def _dense_direction(self, e, r, c):
        """The sparsified Newton system solved directly (small problems, where CG on
        this ill-conditioned system would lose orthogonality before converging)."""
        xp, reg = self.xp, self.reg
        P, _, bins = _kernels._weight_bins(self.K, self.u, self.v, self.ra, self.rb)
        S = xp.where(bins >= e, P, xp.zeros_like(P))
        r64, c64 = xp.astype(r, xp.float64), xp.astype(c, xp.float64)
        eye_n = xp.eye(self.n, dtype=xp.float64, device=self.dev)
        eye_m = xp.eye(self.m, dtype=xp.float64, device=self.dev)
        top = xp.concat([eye_n * r64[None, :], S], axis=1)
        bottom = xp.concat([S.T, eye_m * c64[None, :]], axis=1)
        # Jacobi-scaled, then a pseudo-inverse: where the kept entries split into blocks
        # that dropped almost nothing, the system is (nearly) singular along "raise f,
        # lower g" on each block, a direction that changes nothing that matters
        scale = 1.0 / xp.sqrt(xp.concat([r64, c64]))
        A = scale[:, None] * xp.concat([top, bottom], axis=0) * scale[None, :]
        rhs = reg * xp.concat(
            [xp.astype(self.a - r, xp.float64), xp.astype(self.b - c, xp.float64)]
        )
        w, V = xp.linalg.eigh(A)
        inv_w = xp.where(w > 1e-10 * xp.max(w), 1.0 / xp.where(w > 0, w, 1.0), 0.0)
        d = scale * (V @ (inv_w * (V.T @ (scale * rhs))))
        return xp.astype(d[: self.n], self.dtype), xp.astype(d[self.n :], self.dtype)

    _last_cg = None

    def _direct_pays(self, nnz):
        """Whether a direct solve of the Newton system costs less than CG did last time.

        CG work: two passes over the kept entries per iteration. Direct work: assembling
        the ``m x m`` Schur complement (about ``nnz^2 / n`` updates) and its Cholesky
        factorisation (``m^3 / 3`` flops, counted ``_BLAS_SPEEDUP`` times cheaper: dense
        BLAS against scattered sparse access).
        """
        if self._last_cg is None or self.m > min(_DIRECT_MAX, self.n):
            return False  # (m <= n: the m x m complement is at most one more plan buffer)
        direct = self.m**3 / (3 * _BLAS_SPEEDUP) + nnz**2 / self.n
        return direct < 2 * nnz * self._last_cg

    def run_newton(self):
        """Sparse Newton steps; returns "converged", "budget", "fallback" or "stalled"."""
        xp, reg = self.xp, self.reg
        direction = self._k("ot.newton_direction")
        r, c, mass_h, count_h, viol, dual = self._evaluate(self.u, self.v)
        slow = 0
        while viol > self.tol:
            if self.n_iter >= self.max_iter:
                return "budget"
            e, nnz = self._threshold(mass_h, count_h, viol)
            cg_rtol = min(_CG_RTOL_MAX, (viol / self.mass) ** _CG_POWER)
            b1, b2 = reg * (self.a - r), reg * (self.b - c)
            d1 = None
            if self.n + self.m <= _DENSE_NEWTON:
                (d1, d2), n_cg = self._dense_direction(e, r, c), 0
            elif self._direct_pays(nnz):
                try:
                    d1, d2 = self._k("ot.newton_direct")(
                        self.K, self.u, self.v, self.ra, self.rb, e, nnz, r, c, b1, b2,
                        _DIRECT_SHIFT,
                    )
                    n_cg = 0
                except np.linalg.LinAlgError:
                    d1 = None  # not positive definite in floating point: CG copes
            if d1 is None:
                d1, d2, n_cg = direction(
                    self.K, self.u, self.v, self.ra, self.rb, e, nnz, r, c, b1, b2, cg_rtol,
                    max(50, int(_CG_WORK * self.n * self.m / max(nnz, 1))),
                )
                self._last_cg = n_cg
            slope = float(xp.sum((self.a - r) * d1) + xp.sum((self.b - c) * d2))
            accepted = False
            alpha = 1.0
            for _ in range(30):
                lu, lv = (alpha / reg) * d1, (alpha / reg) * d2
                if max(float(xp.max(xp.abs(lu))), float(xp.max(xp.abs(lv)))) > self.tau:
                    alpha *= 0.5  # a step this long is outside Newton's region anyway
                    continue
                if max(self._max_abs_log(self.u), self._max_abs_log(self.v)) > self.tau:
                    self.rebuild(*self.potentials())
                u2, v2 = self.u * xp.exp(lu), self.v * xp.exp(lv)
                r2, c2, mh2, ch2, viol2, dual2 = self._evaluate(u2, v2, histogram=False)
                # Armijo on the dual while its change is above rounding; near the
                # solution the dual is flat to machine precision and the violation
                # decides instead
                size = abs(dual) + reg * self.mass + float(xp.sum(xp.abs(self.a * self.f)))
                noise = 1e-13 * size
                if alpha * slope > 100 * noise:
                    ok = dual2 >= dual + 1e-4 * alpha * slope
                else:
                    ok = viol2 < viol
                if math.isfinite(viol2) and ok:
                    accepted = True
                    break
                alpha *= 0.5
            if not accepted:
                return "fallback"
            slow = slow + 1 if viol2 > 0.5 * viol else 0
            self.u, self.v = u2, v2
            self.columns_exact = False  # a Newton step balances neither side exactly
            r, c, mass_h, count_h, viol, dual = r2, c2, mh2, ch2, viol2, dual2
            if viol > self.tol:
                r, c, mass_h, count_h, viol, dual = self._evaluate(u2, v2)
            self.n_newton += 1
            self.history.append((self.n_iter, viol))
            self._report(viol)
            if _DEBUG:
                print(f"  newton {self.n_newton}: alpha={alpha:g} viol={viol:.3e} "
                      f"nnz={nnz} cg={n_cg}")
            if slow >= _SLOW_NEWTON_STEPS:
                return "fallback"
        return "converged"

    # -- result
    def finish(self, method):
        xp = self.xp
        F, G = self.potentials()
        r = self.u * (self.K @ self.v)
        c = self.v * (self.u @ self.K)
        viol = float(xp.sum(xp.abs(r - self.a)) + xp.sum(xp.abs(c - self.b)))
        plan = self._k("ot.scale_plan")(self.K, self.u, self.v)
        cost = float(xp.tensordot(plan, self.M, axes=2))  # a dot product, no n x m temporary
        if not self.history or self.history[-1][0] != self.n_iter:
            self.history.append((self.n_iter, viol))
        history = np.asarray([h for _, h in self.history], dtype=np.float64)
        return plan, cost, F, G, viol, history


def _solve(
    xp, a, b, M, reg, method, tol, max_iter, n_sinkhorn, density, switch_tol, coarse=False,
    bar=None,
):
    s = _Solver(
        xp, a, b, M, reg, tol=tol, max_iter=max_iter, n_sinkhorn=n_sinkhorn,
        density=density, switch_tol=switch_tol, coarse=coarse, bar=bar,
    )
    spread = float(xp.max(M) - xp.min(M))
    if method != "sinkhorn" and spread > _ANNEAL_RATIO * reg and max_iter >= 2:
        # Small reg: warm-start from the solution at 10 reg (epsilon scaling), which
        # also starts from 100 reg and so on; Sinkhorn alone has long plateaus here and
        # Newton's region of fast convergence shrinks with reg. The coarser levels get
        # half of the budget at most: potentials of 10 reg used unrefined at reg give
        # the plan P**10 (all zeros at a relative reg of 1e-9, where Sinkhorn plateaus
        # at every level).
        coarse = _solve(
            xp, a, b, M, 10 * reg, method, max(tol, _ANNEAL_TOL * s.mass), max_iter // 2,
            None, density, switch_tol, coarse=True, bar=bar,
        )
        s.n_sinkhorn, s.n_newton = coarse["n_sinkhorn"], coarse["n_newton"]
        s.history = list(coarse["history_pairs"])
        s.K = coarse.pop("plan")  # reuse the coarse buffer: one n x m array at a time
        # f + g - M <= reg log(max P) < 0 at the coarse solution, so its kernel at reg
        # is representable (rows and columns keep their largest entries); any overflow
        # on the way falls back to exact log-domain steps
        s.warm_start(coarse["f"], coarse["g"])
    else:
        s.start(method)
    stable = method != "sinkhorn"
    reason = s.run_sinkhorn(math.inf, stable=stable, switch=method == "sns")
    if _DEBUG:
        last = s.history[-1][1] if s.history else math.nan
        print(f"reg={reg:g}: sinkhorn -> {reason} after {s.n_sinkhorn}, violation {last:.3e}")
    # Newton and Sinkhorn alternate when Newton stalls; give up only when several
    # rounds in a row did not halve the violation.
    fruitless, best = 0, math.inf
    while reason == "switch":
        reason = s.run_newton()
        if reason == "fallback":
            current = s.history[-1][1] if s.history else math.inf
            fruitless = 0 if current < 0.5 * best else fruitless + 1
            best = min(best, current)
            if fruitless > 10:
                reason = "stalled"
                break
            reason = s.run_sinkhorn(_FALLBACK_SINKHORN_STEPS, stable=True, switch=False)
            if _DEBUG:
                print(f"  fallback sinkhorn -> {reason} after {s.n_sinkhorn}, "
                      f"violation {s.history[-1][1]:.3e}")
            if reason == "steps":
                reason = "switch"
    plan, cost, F, G, viol, history = s.finish(method)
    return dict(
        plan=plan, cost=cost, f=F, g=G, violation=viol, history=history, reason=reason,
        n_sinkhorn=s.n_sinkhorn, n_newton=s.n_newton, history_pairs=s.history,
    )


# ----------------------------------------------------------------------------- zero weights


def _support(w, xp):
    """Indices of the positive entries of ``w``, or None when all are positive."""
    if bool(xp.all(w > 0)):
        return None
    return xp.nonzero(w > 0)[0]


def _embed(x, idx, length, axis, fill, xp):
    """Put ``x`` (restricted to ``idx`` along ``axis``) back into full ``length``."""
    if idx is None:
        return x
    dev = _backend.device(x)
    pad_shape = list(x.shape)
    pad_shape[axis] = 1
    padded = xp.concat([x, xp.full(tuple(pad_shape), fill, dtype=x.dtype, device=dev)], axis=axis)
    k = x.shape[axis]
    where = xp.full((length,), k, dtype=xp.int64, device=dev)
    # where[idx] = arange(k), written without item assignment (not in every array API)
    pos = xp.arange(length, dtype=xp.int64, device=dev)
    hits = xp.searchsorted(xp.astype(idx, xp.int64), pos)
    hits_c = xp.clip(hits, 0, k - 1)
    found = xp.take(xp.astype(idx, xp.int64), hits_c) == pos
    where = xp.where(found, hits_c, where)
    return xp.take(padded, where, axis=axis)


# ----------------------------------------------------------------------------- public


# POT's method names, as numlab's methods
_POT_METHODS = {
    "sinkhorn_knopp": "sinkhorn",
    "sinkhorn_log": "log",
    "sinkhorn_stabilized": "log",
    "sinkhorn_epsilon_scaling": "log",
}


def _method(method):
    if isinstance(method, str) and method.lower() in _POT_METHODS:
        return _POT_METHODS[method.lower()]
    if isinstance(method, str) and method.lower() in ("greenkhorn", "screenkhorn"):
        raise ValueError(
            f"`method` {method!r} (a POT method) is not implemented in numlab; use one of "
            f"{METHODS} or POT's names {tuple(_POT_METHODS)}"
        )
    return check_option(method, "method", METHODS)


def _alias(ours, ours_name, pots, pots_name):
    """The value of an argument that POT spells ``pots_name``; both at once is an error."""
    if ours is not None and pots is not None:
        raise TypeError(
            f"`{ours_name}` and `{pots_name}` (POT's name for `{ours_name}`) were both given; "
            "pass one of them"
        )
    return pots if ours is None else ours


def default_tol(dtype, mass):
    """The default ``tol``: ``1e-9`` times the total mass in float64, ``1e-5`` in float32."""
    return (1e-9 if np.finfo(dtype).eps < 1e-12 else 1e-5) * mass


def _log_dict(res, reg, xp):
    """POT's ``log`` dictionary (``err``, ``niter``, ``u``, ``v``, ``log_u``, ``log_v``)."""
    log_u, log_v = res.f / reg, res.g / reg
    if _backend.is_numpy(xp):
        with np.errstate(over="ignore", under="ignore"):
            u, v = np.exp(log_u), np.exp(log_v)
    else:
        u, v = xp.exp(log_u), xp.exp(log_v)
    return {
        "err": [float(e) for e in res.history],
        "niter": res.n_iter,
        "u": u,
        "v": v,
        "log_u": log_u,
        "log_v": log_v,
        "cost": res.cost,
        "converged": res.converged,
        "violation": res.violation,
        "result": res,
    }


def sinkhorn(
    a,
    b,
    M,
    reg,
    method="sns",
    *,
    tol=None,
    max_iter=None,
    n_sinkhorn=None,
    density=None,
    switch_tol=1e-2,
    warn=True,
    log=None,
    verbose=False,
    progress=False,
    numItermax=None,
    stopThr=None,
):
    """Entropic optimal transport plan between histograms ``a`` and ``b``.

    Solves ``min_P <P, M> + reg * sum_ij P_ij (log P_ij - 1)`` subject to
    ``P 1 = a`` and ``P^T 1 = b`` (POT's ``ot.sinkhorn`` problem and conventions).

    **Coming from POT.** POT's call ``ot.sinkhorn(a, b, M, reg, method, numItermax=,
    stopThr=, verbose=, log=)`` works unchanged; it differs from POT in exactly these
    points:

    - the return value: without ``log`` an :class:`OTResult` (``result.plan`` is POT's
      return value, and ``np.asarray(result)`` is the plan); ``log=False`` returns the
      plan alone and ``log=True`` the pair ``(plan, log_dict)``, as POT;
    - ``method``: the default is ``"sns"`` (POT: ``"sinkhorn"``); POT's
      ``"sinkhorn_knopp"`` means ``"sinkhorn"``, and ``"sinkhorn_log"``,
      ``"sinkhorn_stabilized"``, ``"sinkhorn_epsilon_scaling"`` mean ``"log"`` (which
      stabilises and, at small ``reg``, scales epsilon by itself); ``"greenkhorn"`` and
      ``"screenkhorn"`` are refused;
    - ``numItermax`` is ``max_iter`` (default 10 000, POT's 1000) and ``stopThr`` is
      ``tol``, measured on numlab's violation ``||P 1 - a||_1 + ||P^T 1 - b||_1``
      (POT's ``sinkhorn_knopp`` measures ``||P^T 1 - b||_2``, every 10 iterations): the
      same threshold is stricter here. Giving both names of one argument is a
      ``TypeError``;
    - ``verbose=True`` prints one summary line (POT prints a table every 200
      iterations); ``warmstart`` and POT's extra ``**kwargs`` are not accepted.

    Parameters
    ----------
    a : array of shape (n,), or None or empty
        Source weights (non-negative). None or an empty array means uniform.
    b : array of shape (m,), or None or empty
        Target weights, same total mass as ``a``.
    M : array of shape (n, m)
        Ground cost matrix. Its namespace and device decide where the solve runs.
    reg : float
        Entropic regularisation, ``> 0`` (the paper's ``1 / eta``). Any value works:
        the solvers are log-stable (except ``method="sinkhorn"``).
    method : {"sns", "sinkhorn", "log"}
        ``"sns"``: Sinkhorn-Newton-Sparse (Tang et al., 2024): log-stable Sinkhorn
        until the violation is below ``switch_tol``, then Newton steps on the dual with
        a sparsified Hessian, solved by conjugate gradients (directly, by a Cholesky
        factorisation of its Schur complement, when ``m <= n``, ``m <= 4096`` and CG
        would cost more: ill-conditioned W1 problems), with a line search. It
        stays in Sinkhorn when the projected Sinkhorn iterations cost less than the
        Newton steps (dense plans at large ``reg``).
        ``"log"``: Sinkhorn in the log domain, computed as stabilised scaling (scalings
        absorbed into the potentials whenever they leave ``[e^-tau, e^tau]``): as
        stable as log-sum-exp iterations at the price of two matrix-vector products.
        ``"sinkhorn"``: classic scaling on ``exp(-M / reg)`` (POT's ``sinkhorn_knopp``);
        breaks down at small ``reg``, which is then reported, never returned as NaN.
    tol : float, optional
        Target marginal violation ``||P 1 - a||_1 + ||P^T 1 - b||_1``. None (default):
        ``1e-9 * sum(a)`` in float64 and ``1e-5 * sum(a)`` in float32 (whose floor is
        about 1e-7 to 1e-6 of the mass), so that float32 input converges without a
        warning at the default. ``stopThr`` is POT's name for it.
    max_iter : int, optional
        Maximum number of iterations (Sinkhorn and Newton together); None (default):
        10 000. ``numItermax`` is POT's name for it.
    n_sinkhorn : int, optional
        ``"sns"`` only: switch to Newton after exactly this many Sinkhorn iterations
        (the paper's ``N1``) instead of the adaptive rule.
    density : float in (0, 1], optional
        ``"sns"`` only: keep this fraction of the plan entries in the Hessian (the
        paper's fixed sparsity ``lambda``; ``2 / n`` in the paper). By default the
        smallest entries are dropped as long as their total (Jacobi-scaled) mass stays
        below a tenth of the current violation, which keeps Newton's fast local
        convergence (the fixed rule converged only linearly in our measurements).
    switch_tol : float
        ``"sns"`` only: violation below which the Newton stage may start.
    warn : bool
        Issue a :class:`ConvergenceWarning` when ``tol`` is not reached.
    log : bool, optional
        POT's ``log``. None (default): return an :class:`OTResult`. False: return the
        plan alone (POT's ``log=False``). True: return ``(plan, log_dict)`` with POT's
        keys ``"err"`` (the violation history), ``"niter"``, ``"u"``, ``"v"``
        (``plan = u[:, None] * exp(-M / reg) * v[None, :]``; they over- or underflow to
        ``inf`` / 0 at small ``reg``, where POT's ``sinkhorn_knopp`` fails), ``"log_u"``,
        ``"log_v"`` (``f / reg``, ``g / reg``: always finite on the support), and
        numlab's ``"cost"``, ``"converged"``, ``"violation"`` and ``"result"`` (the
        :class:`OTResult`).
    verbose : bool
        Print a one-line summary of the solve (iterations, violation, convergence).
    progress : bool, default False
        Show a progress bar on stderr (tqdm) over the iterations, with the current
        marginal violation against ``tol`` (and the ``reg`` of the coarser levels of
        epsilon scaling), for large solves only: plans of at least ``2**22`` entries
        (``n * m``, e.g. 2048 x 2048), where an iteration takes milliseconds; smaller
        solves draw nothing. Independent of ``verbose`` (which prints the summary line
        on stdout); the result is the same with or without the bar.
    numItermax, stopThr : optional
        POT's names of ``max_iter`` and ``tol`` (aliases; give one name of each).

    Returns
    -------
    OTResult, or the plan, or (plan, dict)
        By default an :class:`OTResult`: ``plan``, ``cost``, potentials ``f`` and
        ``g``, iteration counts, ``converged``, ``violation`` and ``history``. With
        ``log=False`` the plan (array of shape (n, m), the namespace, device and dtype
        of ``M``), with ``log=True`` the plan and the dictionary described at ``log``.

    Raises
    ------
    ValueError
        On a wrong shape, NaN or infinity in ``M``, negative weights, weights with
        different totals, or ``reg <= 0``.

    Notes
    -----
    Below ``reg = (max M - min M) / 500`` the log-stable methods first solve at
    ``10 reg`` (recursively) and warm-start from those potentials (epsilon scaling):
    Sinkhorn has long plateaus at small ``reg`` and Newton's fast region shrinks.
    The coarser levels share at most half of ``max_iter`` (each level half of what is
    left), so the final level always iterates: at a relative ``reg`` of 1e-9 (POT's
    stabilisation test) the plan keeps its mass with a violation of about 2e-3 and
    ``converged=False``.
    Float32 input is solved in float32 (accumulations in float64 in the Numba kernels);
    the violation reachable in float32 is about 1e-7 to 1e-6 (2e-7 measured on 1000
    points), below that the solve stops with ``converged=False``. Points of zero weight
    are removed before the solve and get zero plan rows or columns. On tiny problems at
    very small ``reg`` (a few points, ``reg < 1e-3``), Sinkhorn plateaus where Newton
    does not always help either; ``converged`` then says so.

    References
    ----------
    X. Tang, M. Shavlovsky, H. Rahmanian, E. Tardini, K. K. Thekumparampil, T. Xiao,
    L. Ying, "Accelerating Sinkhorn algorithm with sparse Newton iterations", ICLR 2024.
    B. Schmitzer, "Stabilized sparse scaling algorithms for entropy regularized transport
    problems", SIAM J. Sci. Comput. 41 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> x = np.random.default_rng(0).random((50, 2))
    >>> M = nl.ot.dist(x, x[::-1] + 0.1)
    >>> res = nl.ot.sinkhorn(None, None, M / M.max(), 1e-3)
    >>> bool(res.converged), res.plan.shape
    (True, (50, 50))

    POT's call and return values:

    >>> P, log = nl.ot.sinkhorn(None, None, M / M.max(), 1e-3, numItermax=5000, log=True)
    >>> P.shape, sorted(log)[:4]
    ((50, 50), ['converged', 'cost', 'err', 'log_u'])
    """
    method = _method(method)
    warn = check_bool(warn, "warn")
    verbose = check_bool(verbose, "verbose")
    progress = check_progress(progress)
    if log is not None:
        log = check_bool(log, "log")
    tol = _alias(tol, "tol", stopThr, "stopThr")
    max_iter = _alias(max_iter, "max_iter", numItermax, "numItermax")
    res = _sinkhorn(
        a, b, M, reg, method=method, tol=tol, max_iter=max_iter, n_sinkhorn=n_sinkhorn,
        density=density, switch_tol=switch_tol, warn=warn, verbose=verbose, progress=progress,
    )
    if log is None:
        return res
    if log:
        return res.plan, _log_dict(res, float(reg), _backend.namespace(res.plan))
    return res.plan


def _sinkhorn(a, b, M, reg, *, method, tol, max_iter, n_sinkhorn, density, switch_tol, warn,
              verbose=False, progress=False, desc="nl.ot.sinkhorn"):
    """The solve behind :func:`sinkhorn` and :func:`sinkhorn2` (arguments resolved)."""
    xp, a, b, M, reg = _check_inputs(a, b, M, reg)
    if tol is None:
        tol = default_tol(_backend.numpy_dtype(M.dtype, xp), float(xp.sum(a)))
    tol = check_scalar(tol, "tol", low=0)
    max_iter = check_int(10_000 if max_iter is None else max_iter, "max_iter", low=1)
    if n_sinkhorn is not None:
        n_sinkhorn = check_int(n_sinkhorn, "n_sinkhorn", low=1)
    if density is not None:
        density = check_scalar(density, "density", low=0, high=1)
    switch_tol = check_scalar(switch_tol, "switch_tol", low=0)
    n, m = M.shape
    ia, ib = _support(a, xp), _support(b, xp)
    a_s = a if ia is None else xp.take(a, ia)
    b_s = b if ib is None else xp.take(b, ib)
    M_s = M if ia is None else xp.take(M, ia, axis=0)
    M_s = M_s if ib is None else xp.take(M_s, ib, axis=1)
    large = M_s.shape[0] * M_s.shape[1] >= _PROGRESS_MIN_SIZE
    with Progress(progress and large, desc, unit="it") as bar:
        out = _solve(
            xp, a_s, b_s, M_s, reg, method, tol, max_iter, n_sinkhorn, density, switch_tol,
            bar=bar,
        )
        bar.advance_to(out["n_sinkhorn"] + out["n_newton"])
        bar.note(f"violation {out['violation']:.2e}, tol {tol:.1e}")
    plan = _embed(_embed(out["plan"], ia, n, 0, 0.0, xp), ib, m, 1, 0.0, xp)
    f = _embed(out["f"], ia, n, 0, -math.inf, xp)
    g = _embed(out["g"], ib, m, 0, -math.inf, xp)
    converged = out["violation"] <= tol
    if not converged and warn:
        why = {
            "budget": f"max_iter={max_iter} iterations were not enough",
            "underflow": "exp(-M / reg) underflowed; use method='log' or 'sns'",
            "stalled": "the violation stopped decreasing: a Sinkhorn plateau at this "
            "small reg, or the precision floor of "
            f"{np.dtype(_backend.numpy_dtype(M.dtype, xp)).name}",
        }.get(out["reason"], "the solver could not reduce the violation further")
        warnings.warn(
            f"sinkhorn(method={method!r}) did not converge: marginal violation "
            f"{out['violation']:.3g} > tol={tol:g} ({why})",
            ConvergenceWarning,
            stacklevel=2,
        )
    if verbose:
        print(
            f"sinkhorn(method={method!r}): {out['n_sinkhorn'] + out['n_newton']} iterations "
            f"({out['n_sinkhorn']} Sinkhorn, {out['n_newton']} Newton), marginal violation "
            f"{out['violation']:.3e}, tol={tol:.3g}, converged={bool(converged)}"
        )
    return OTResult(
        plan=plan,
        cost=out["cost"],
        f=f,
        g=g,
        n_iter=out["n_sinkhorn"] + out["n_newton"],
        n_sinkhorn=out["n_sinkhorn"],
        n_newton=out["n_newton"],
        converged=bool(converged),
        violation=out["violation"],
        history=out["history"],
        method=method,
    )


def sinkhorn2(
    a,
    b,
    M,
    reg,
    method="sns",
    *,
    tol=None,
    max_iter=None,
    n_sinkhorn=None,
    density=None,
    switch_tol=1e-2,
    warn=True,
    log=False,
    verbose=False,
    progress=False,
    numItermax=None,
    stopThr=None,
):
    """Entropic OT cost ``<P, M>``, batched over several target histograms.

    POT's ``ot.sinkhorn2`` call works unchanged, with the differences listed at
    :func:`sinkhorn` (default method, ``numItermax`` / ``stopThr`` as aliases of
    ``max_iter`` / ``tol``, numlab's violation measure, ``verbose``); the value is POT's:
    the transport cost ``<P, M>`` without the entropy term.

    Parameters
    ----------
    a : array of shape (n,), or None or empty
        Source weights.
    b : array of shape (m,) or (m, k)
        Target weights; with ``k`` columns, ``k`` problems are solved (one per column).
    M : array of shape (n, m)
        Ground cost.
    reg : float
        Entropic regularisation, ``> 0``.
    method, tol, max_iter, n_sinkhorn, density, switch_tol, warn : as in :func:`sinkhorn`
        ``warn`` defaults to True here, POT's to False.
    log : bool
        Also return POT's ``log`` dictionary (see :func:`sinkhorn`); a list of them,
        one per column, when ``b`` has several columns.
    verbose : bool
        Print a one-line summary of each solve.
    progress : bool, default False
        A progress bar for each large solve, as in :func:`sinkhorn`.
    numItermax, stopThr : optional
        POT's names of ``max_iter`` and ``tol``.

    Returns
    -------
    cost : 0-d array, or array of shape (k,)
        As POT: a 0-d value of the namespace and device of ``M``, in the dtype of the
        solve (the floating dtype of ``M`` and the weights together: float32 only when
        all are float32); for NumPy input a NumPy scalar, ``numpy.float64`` or
        ``numpy.float32``, which ``float()`` converts. An array of shape ``(k,)`` when
        ``b`` has columns.
    log : dict or list of dicts
        With ``log=True``.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> M = nl.ot.dist(np.arange(4.0)[:, None], np.arange(4.0)[:, None])
    >>> B = np.stack([np.full(4, 0.25), np.array([0.7, 0.1, 0.1, 0.1])], axis=1)
    >>> nl.ot.sinkhorn2(None, B, M / M.max(), 1e-2).shape
    (2,)
    >>> type(nl.ot.sinkhorn2(None, None, M / M.max(), 1e-2)).__name__
    'float64'
    """
    method = _method(method)
    warn = check_bool(warn, "warn")
    verbose = check_bool(verbose, "verbose")
    progress = check_progress(progress)
    log = check_bool(log, "log")
    opts = dict(
        method=method,
        tol=_alias(tol, "tol", stopThr, "stopThr"),
        max_iter=_alias(max_iter, "max_iter", numItermax, "numItermax"),
        n_sinkhorn=n_sinkhorn, density=density, switch_tol=switch_tol, warn=warn,
        verbose=verbose, progress=progress,
    )
    if isinstance(b, (list, tuple)) and np.ndim(b) == 2:
        b = _host_list(b, "b")
    if b is not None and hasattr(b, "ndim") and b.ndim == 2:
        M = check_array(M, "M", ndim=2)
        xp = _backend.namespace(M=M, b=b)
        b = check_array(b, "b", xp=xp, ndim=2, shape=(M.shape[1], None))
        results = [
            _sinkhorn(a, b[:, k], M, reg, **opts,
                      desc=f"nl.ot.sinkhorn2 [{k + 1}/{b.shape[1]}]")
            for k in range(b.shape[1])
        ]
        dtype = results[0].plan.dtype
        costs = _backend.asarray(
            np.asarray([r.cost for r in results]), xp=xp, device=_backend.device(M), dtype=dtype
        )
        if log:
            return costs, [_log_dict(r, float(reg), xp) for r in results]
        return costs
    res = _sinkhorn(a, b, M, reg, **opts, desc="nl.ot.sinkhorn2")
    xp = _backend.namespace(res.plan)
    if _backend.is_numpy(xp):
        cost = res.plan.dtype.type(res.cost)
    else:
        cost = _backend.asarray(
            np.asarray(res.cost), xp=xp, device=_backend.device(res.plan), dtype=res.plan.dtype
        )
    if log:
        return cost, _log_dict(res, float(reg), xp)
    return cost
