"""Factorized (CP, Tucker, tensor-train) spectral weights of the tensorized FNO (TFNO).

A Fourier layer's weight is a complex tensor ``W`` of shape ``(c_in, c_out, k_1, ..., k_d)``
(:func:`numlab.operators._layers.kept_modes`). A TFNO learns it in factorized form,
with tensorly-torch's parametrisations and parameter names:

- ``"cp"``: ``W = sum_r weights[r] A_0[:, r] o A_1[:, r] o ... o A_{d+1}[:, r]``;
  parameters ``weights`` (R,) and ``factors.factor_<k>`` (I_k, R).
- ``"tucker"``: ``W = core x_0 U_0 x_1 U_1 ... x_{d+1} U_{d+1}`` (mode products);
  parameters ``core`` (r_0, ..., r_{d+1}) and ``factors.factor_<k>`` (I_k, r_k).
- ``"tt"``: ``W[i_0, ..., i_{d+1}] = G_0[:, i_0, :] G_1[:, i_1, :] ... G_{d+1}[:, i_{d+1}, :]``
  (a product of matrices, boundary ranks 1); parameters ``factors.factor_<k>``
  (R_k, I_k, R_{k+1}).

Every layer has two implementations with the same values and gradients:

- ``"reconstructed"``: rebuild ``W`` (:func:`reconstruct`), then the dense per-mode product;
  the factors' gradients contract ``dW`` with the other factors.
- ``"factorized"``: contract the input's modes with the factors directly
  (:func:`contract`), never forming ``W``: per kept mode ``m``,
  ``y_m = ((x_m P) H_m) Q`` with ``P`` the input-channel factor, ``H_m`` the factors'
  product over the spatial modes and ``Q`` the output-channel factor (see :func:`contract`).

:func:`choose_implementation` picks the cheaper one for a shape from a count of the
multiply-adds of each (the products are GEMMs, so the count is what the time follows).
All products are batched matrix products or reshapes + matmul: a plain einsum is ~50x
slower on these shapes.

References
----------
J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-Grid Tensorized
Fourier Neural Operator for High-Resolution PDEs", TMLR 2024.
T. G. Kolda, B. W. Bader, "Tensor Decompositions and Applications", SIAM Review 51(3),
2009 (CP and Tucker).
I. V. Oseledets, "Tensor-Train Decomposition", SIAM J. Sci. Comput. 33(5), 2011.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "FACTORIZATIONS",
    "IMPLEMENTATIONS",
    "check_factorization",
    "check_implementation",
    "validate_rank",
    "factor_shapes",
    "init_factors",
    "full_shape",
    "reconstruct",
    "contract",
    "choose_implementation",
]

FACTORIZATIONS = ("cp", "tucker", "tt")
IMPLEMENTATIONS = ("factorized", "reconstructed")


# --------------------------------------------------------------------------- arguments


def check_factorization(value):
    """``None`` or the lower-case name of a factorization (``"dense"`` means None)."""
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in FACTORIZATIONS + ("dense",):
        raise ValueError(f"`factorization` must be None, 'cp', 'tucker' or 'tt' "
                         f"(case-insensitive); got {value!r}")
    value = value.lower()
    return None if value == "dense" else value


def check_implementation(value):
    """``None`` (choose per shape) or ``"factorized"`` / ``"reconstructed"``."""
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in IMPLEMENTATIONS:
        raise ValueError(f"`implementation` must be None, 'factorized' or 'reconstructed'; "
                         f"got {value!r}")
    return value.lower()


def validate_rank(factorization, shape, rank):
    """The rank of ``factorization`` for a tensor of ``shape``, as TensorLy computes it.

    Parameters
    ----------
    factorization : {"cp", "tucker", "tt"}
    shape : tuple of int
    rank : float, int or tuple of int
        A float in (0, 1] is the fraction of ``prod(shape)`` to keep (TensorLy's
        ``validate_cp_rank`` / ``validate_tucker_rank`` / ``validate_tt_rank`` with
        rounding "round"): CP ``R = round(prod(shape) rank / sum(shape))``; Tucker
        ``r_k = max(1, round(c I_k))`` with ``c^N prod(I) + c sum(I_k^2) = rank prod(I)``;
        TT ``R_k = max(1, round(c (I_{k-1} + I_k) / 2))`` from the quadratic that makes the
        cores hold ``rank prod(I)`` numbers. An int is an explicit rank (the same for every
        mode of Tucker and every inner bond of TT); a tuple gives each (TT: with the
        boundary ranks 1, length ``len(shape) + 1``).

    Returns
    -------
    int (CP) or tuple of int (Tucker, TT)

    Examples
    --------
    >>> from numlab.operators import _factorized
    >>> _factorized.validate_rank("tucker", (32, 32, 24, 13), 0.1)
    (18, 18, 13, 7)
    >>> _factorized.validate_rank("tt", (32, 32, 24, 13), 0.1)
    (1, 28, 24, 16, 1)
    """
    shape = tuple(int(s) for s in shape)
    order = len(shape)
    if isinstance(rank, bool) or not isinstance(rank, (numbers.Real, tuple, list)):
        raise TypeError(f"`rank` must be a float in (0, 1], an int or a tuple of ints; "
                        f"got {rank!r}")
    if isinstance(rank, numbers.Real) and not isinstance(rank, numbers.Integral):
        rank = float(rank)
        if not 0.0 < rank <= 1.0:
            raise ValueError(f"`rank` must be in (0, 1] as a fraction of the dense parameter "
                             f"count (or an int / tuple for an explicit rank); got {rank!r}")
        total = math.prod(shape)
        if factorization == "cp":
            return max(1, int(np.round(total * rank / sum(shape))))
        if factorization == "tucker":
            from scipy.optimize import brentq

            squares = sum(s * s for s in shape)
            c = brentq(lambda x: total * x**order + squares * x - rank * total, 0.0, 1.0)
            return tuple(max(int(np.round(s * c)), 1) for s in shape)
        # TT: ranks proportional to the mean size of the two modes they join.
        avg = [(shape[i] + shape[i + 1]) / 2 for i in range(order - 1)]
        if len(avg) > 1:
            a = sum(avg[i - 1] * shape[i] * avg[i] for i in range(1, order - 1))
        else:
            a = avg[0] ** 2 * shape[0]
        b = shape[0] * avg[0] + shape[-1] * avg[-1]
        c = (-b + math.sqrt(b * b + 4 * a * total * rank)) / (2 * a)
        return (1,) + tuple(max(int(np.round(m * c)), 1) for m in avg) + (1,)
    if isinstance(rank, numbers.Integral):
        rank = int(rank)
        if rank < 1:
            raise ValueError(f"`rank` must be >= 1 as an explicit rank; got {rank}")
        if factorization == "cp":
            return rank
        if factorization == "tucker":
            return (rank,) * order
        return (1,) + (rank,) * (order - 1) + (1,)
    # tuple / list
    if factorization == "cp":
        raise TypeError(f"`rank` must be a float or an int for a CP factorization; got {rank!r}")
    rank = tuple(rank)
    want = order if factorization == "tucker" else order + 1
    if len(rank) != want or not all(isinstance(r, numbers.Integral) and not isinstance(r, bool)
                                    and r >= 1 for r in rank):
        raise ValueError(f"`rank` must be a tuple of {want} positive ints for a "
                         f"{factorization} factorization of shape {shape}; got {rank!r}")
    if factorization == "tt" and (rank[0] != 1 or rank[-1] != 1):
        raise ValueError(f"`rank` must start and end with 1 (the boundary ranks of a TT); "
                         f"got {rank!r}")
    return tuple(int(r) for r in rank)


def factor_shapes(factorization, shape, rank):
    """Parameter names (tensorly-torch's) and shapes of the factorization of ``shape``."""
    rank = validate_rank(factorization, shape, rank)
    if factorization == "cp":
        out = {"weights": (rank,)}
        out.update({f"factors.factor_{k}": (s, rank) for k, s in enumerate(shape)})
        return out
    if factorization == "tucker":
        out = {"core": tuple(rank)}
        pairs = enumerate(zip(shape, rank, strict=True))
        out.update({f"factors.factor_{k}": (s, r) for k, (s, r) in pairs})
        return out
    return {f"factors.factor_{k}": (rank[k], s, rank[k + 1]) for k, s in enumerate(shape)}


def _order(factors):
    return sum(1 for name in factors if name.startswith("factors."))


def _factor_list(factors):
    return [factors[f"factors.factor_{k}"] for k in range(_order(factors))]


def full_shape(factorization, factors):
    """The shape of the dense tensor that ``factors`` represent."""
    mats = _factor_list(factors)
    if factorization == "tt":
        return tuple(int(g.shape[1]) for g in mats)
    return tuple(int(a.shape[0]) for a in mats)


def init_factors(factorization, shape, rank, std, rng, dtype):
    """Host (NumPy) factors initialised as tensorly-torch's ``normal_(0, std)``.

    So that the dense tensor has entries of standard deviation about ``std``: CP weights 1
    and factors ``N(0, (std / sqrt(R))^(1/order))``; Tucker core and factors
    ``N(0, (std / prod_k sqrt(r_k))^(1/(order+1)))``; TT cores
    ``N(0, (std / prod_k R_k)^(1/order))``. Entries are complex normal with
    ``E|z|^2 = sigma^2`` (torch's ``normal_`` on a complex tensor).
    """
    shapes = factor_shapes(factorization, shape, rank)
    rank = validate_rank(factorization, shape, rank)
    order = len(shape)
    if factorization == "cp":
        sigma = (std / math.sqrt(rank)) ** (1.0 / order)
    elif factorization == "tucker":
        sigma = (std / math.prod(math.sqrt(r) for r in rank)) ** (1.0 / (order + 1))
    else:
        sigma = (std / math.prod(rank)) ** (1.0 / order)
    out = {}
    for name, s in shapes.items():
        if name == "weights":
            out[name] = np.ones(s, dtype=dtype)
        else:
            z = rng.standard_normal(s) + 1j * rng.standard_normal(s)
            out[name] = (z * (sigma / math.sqrt(2.0))).astype(dtype)
    return out


# --------------------------------------------------------------------------- building blocks
#
# Complex gradients follow PyTorch's convention (dL/dRe + 1j dL/dIm). Every map here is
# holomorphic in its inputs, so for ``C = A B`` the gradients are ``dA = dC B^H`` and
# ``dB = A^H dC``: the adjoints below are these two rules applied step by step.


def _mT(xp, a):
    return xp.matrix_transpose(a)


def _mode_dot(xp, a, u, axis):
    """``a x_axis u``: contract axis ``axis`` of ``a`` (size r) with ``u`` (I, r).

    Returns ``(out, a2)`` with ``a2`` the (rows, r) matrix of ``a`` the backward needs.
    The axis is moved last so that the product is one GEMM.
    """
    moved = xp.moveaxis(a, axis, -1)
    a2 = xp.reshape(moved, (-1, moved.shape[-1]))
    out = xp.reshape(xp.matmul(a2, _mT(xp, u)), (*moved.shape[:-1], u.shape[0]))
    return xp.moveaxis(out, -1, axis), a2


def _mode_dot_backward(xp, d_out, a_shape, a2, u, axis):
    """Adjoint of :func:`_mode_dot`: (d_a, d_u)."""
    moved = xp.moveaxis(d_out, axis, -1)
    d2 = xp.reshape(moved, (-1, moved.shape[-1]))
    d_u = xp.matmul(_mT(xp, d2), xp.conj(a2))  # (I, r)
    d_a2 = xp.matmul(d2, xp.conj(u))  # (rows, r)
    d_a = xp.reshape(d_a2, (*moved.shape[:-1], a2.shape[-1]))
    return xp.moveaxis(d_a, -1, axis), d_u


def _tucker_product(xp, core, mats, axes):
    """``core`` multiplied by ``mats[j]`` along ``axes[j]``; returns (tensor, tape)."""
    tape = []
    t = core
    for u, axis in zip(mats, axes, strict=True):
        shape = t.shape
        t, a2 = _mode_dot(xp, t, u, axis)
        tape.append((shape, a2, u, axis))
    return t, tape


def _tucker_product_backward(xp, d, tape):
    """Gradients (d_core, [d_mat per product]) of :func:`_tucker_product`."""
    d_mats = []
    for shape, a2, u, axis in reversed(tape):
        d, d_u = _mode_dot_backward(xp, d, shape, a2, u, axis)
        d_mats.append(d_u)
    return d, d_mats[::-1]


def _khatri_rao(xp, mats):
    """Row-wise (C-order) Khatri-Rao product of (I_k, R) matrices: (prod I_k, R); and tape."""
    kr = mats[0]
    tape = []
    for a in mats[1:]:
        tape.append((kr, a))
        kr = xp.reshape(xp.expand_dims(kr, axis=1) * xp.expand_dims(a, axis=0), (-1, a.shape[1]))
    return kr, tape


def _khatri_rao_backward(xp, d, tape):
    """Gradients of the matrices of :func:`_khatri_rao` given ``d`` (prod I_k, R)."""
    d_mats = []
    for prev, a in reversed(tape):
        d3 = xp.reshape(d, (prev.shape[0], a.shape[0], a.shape[1]))
        # vecdot conjugates its first argument: sum_n conj(prev[n, r]) d3[n, i, r].
        d_mats.append(xp.vecdot(xp.expand_dims(prev, axis=1), d3, axis=-3))
        d = xp.vecdot(xp.expand_dims(a, axis=0), d3, axis=-2)
    d_mats.append(d)
    return d_mats[::-1]


def _tt_chain(xp, cores):
    """Contract TT cores (R_k, I_k, R_{k+1}) along their bonds: (R_0, I_0, ..., I_n, R_{n+1})."""
    first = cores[0]
    t = xp.reshape(first, (-1, first.shape[2]))
    tape = []
    for g in cores[1:]:
        g2 = xp.reshape(g, (g.shape[0], -1))
        tape.append((t, g2))
        t = xp.reshape(xp.matmul(t, g2), (-1, g.shape[2]))
    shape = (first.shape[0], *(int(g.shape[1]) for g in cores), cores[-1].shape[2])
    return xp.reshape(t, shape), tape


def _tt_chain_backward(xp, d, cores, tape):
    d = xp.reshape(d, (-1, cores[-1].shape[2]))
    d_cores = []
    for (t, g2), g in zip(reversed(tape), reversed(cores[1:]), strict=True):
        d2 = xp.reshape(d, (t.shape[0], g2.shape[1]))
        d_cores.append(xp.reshape(xp.matmul(_mT(xp, xp.conj(t)), d2), g.shape))
        d = xp.matmul(d2, _mT(xp, xp.conj(g2)))
    d_cores.append(xp.reshape(d, cores[0].shape))
    return d_cores[::-1]


def _names(n):
    return [f"factors.factor_{k}" for k in range(n)]


# --------------------------------------------------------------------------- reconstruction


def reconstruct(xp, factorization, factors, *, train=False):
    """The dense tensor of a factorization and, with ``train``, its backward pass.

    Parameters
    ----------
    xp : namespace
    factorization : {"cp", "tucker", "tt"}
    factors : dict of str to complex array
        tensorly-torch's names: ``"weights"`` (CP), ``"core"`` (Tucker) and
        ``"factors.factor_<k>"`` (see the module docstring for the shapes).
    train : bool

    Returns
    -------
    tensor : array, shape ``full_shape(factorization, factors)``
        Equal to TensorLy's ``cp_to_tensor`` / ``tucker_to_tensor`` / ``tt_to_tensor``.
    backprop : callable ``d_tensor -> {name: gradient}`` or None

    Examples
    --------
    >>> import numpy as np
    >>> from numlab.operators import _factorized
    >>> factors = _factorized.init_factors("cp", (4, 4, 6, 4), 3, 0.1,
    ...                                    np.random.default_rng(0), np.complex128)
    >>> _factorized.reconstruct(np, "cp", factors)[0].shape
    (4, 4, 6, 4)
    """
    mats = _factor_list(factors)
    n = len(mats)
    if factorization == "tucker":
        t, tape = _tucker_product(xp, factors["core"], mats, list(range(n)))

        def backprop(d):
            d_core, d_mats = _tucker_product_backward(xp, d, tape)
            return {"core": d_core, **dict(zip(_names(n), d_mats, strict=True))}

    elif factorization == "cp":
        weights = factors["weights"]
        first = mats[0] * weights  # weights folded into the first factor
        kr, tape = _khatri_rao(xp, mats[1:])
        shape = tuple(int(a.shape[0]) for a in mats)
        t = xp.reshape(xp.matmul(first, _mT(xp, kr)), shape)

        def backprop(d):
            d2 = xp.reshape(d, (shape[0], -1))
            d_first = xp.matmul(d2, xp.conj(kr))  # (I_0, R)
            d_kr = xp.matmul(_mT(xp, d2), xp.conj(first))  # (rest, R)
            grads = {"weights": xp.vecdot(mats[0], d_first, axis=-2),
                     "factors.factor_0": d_first * xp.conj(weights)}
            for k, g in enumerate(_khatri_rao_backward(xp, d_kr, tape), start=1):
                grads[f"factors.factor_{k}"] = g
            return grads

    else:
        chain, tape = _tt_chain(xp, mats)
        t = xp.reshape(chain, chain.shape[1:-1])

        def backprop(d):
            return dict(zip(_names(n), _tt_chain_backward(xp, d, mats, tape), strict=True))

    return t, (backprop if train else None)


# --------------------------------------------------------------------------- factorized product


def _modes_first(xp, t, lead):
    """(a, b, *kept) -> (M, a, b) for ``lead`` = 2 leading axes."""
    d = t.ndim - lead
    t = xp.permute_dims(t, tuple(range(lead, lead + d)) + tuple(range(lead)))
    return xp.reshape(t, (-1, *t.shape[d:]))


def _modes_last(xp, t, kept):
    d = len(kept)
    t = xp.reshape(t, (*kept, *t.shape[1:]))
    return xp.permute_dims(t, (d, d + 1) + tuple(range(d)))


def _spatial_tucker(xp, core, mats):
    """``core x_2 U_2 ... x_{d+1} U_{d+1}`` as an (M, r_0, r_1) array, modes first.

    The core ``(r_0, r_1, a_1, ..., a_d)`` is permuted once to ``(a_1, ..., a_d, R)``,
    ``R = r_0 r_1``; then each spatial factor ``U_j`` (k_j, a_j) multiplies axis ``j``
    of the C-ordered ``(k_1, ..., k_{j-1}, a_j, ..., a_d, R)`` array seen as ``(L, a_j,
    rest)``: one broadcast matmul ``U_j @ t`` per factor, with no transposed copies (the
    mode products of :func:`_tucker_product` move every axis last and back, which
    dominated the factorized layer's backward). Returns ``(hm, tape)``.
    """
    r0, r1 = core.shape[0], core.shape[1]
    d = core.ndim - 2
    t = xp.permute_dims(core, tuple(range(2, 2 + d)) + (0, 1))
    lead = 1
    tape = []
    for j, u in enumerate(mats):
        a = core.shape[2 + j]
        t3 = xp.reshape(t, (lead, a, -1))  # (L, a_j, rest)
        tape.append((t3, u))
        t = xp.matmul(u, t3)  # (L, k_j, rest)
        lead *= u.shape[0]
    return xp.reshape(t, (lead, r0, r1)), (tape, core.shape)


def _spatial_tucker_backward(xp, d_h, tape):
    """Gradients ``(d_core, [d_U_j])`` of :func:`_spatial_tucker` given ``d_h`` (M, r_0, r_1)."""
    tape, core_shape = tape
    d = len(core_shape) - 2
    g = d_h
    d_mats = []
    for t3, u in reversed(tape):
        g3 = xp.reshape(g, (t3.shape[0], u.shape[0], t3.shape[2]))  # (L, k_j, rest)
        # out = u @ t3: d_u = sum_L g3 t3^H, d_t3 = u^H g3.
        d_u = xp.matmul(g3, _mT(xp, xp.conj(t3)))
        d_mats.append(xp.sum(d_u, axis=0) if d_u.shape[0] > 1 else d_u[0, ...])
        g = xp.matmul(_mT(xp, xp.conj(u)), g3)
    g = xp.reshape(g, (*core_shape[2:], core_shape[0], core_shape[1]))
    d_core = xp.permute_dims(g, (d, d + 1) + tuple(range(d)))
    return d_core, d_mats[::-1]


def _spatial_operator(xp, factorization, factors, kept):
    """The mode-dependent middle operator ``H`` of :func:`contract` and its adjoint.

    Returns ``(P, H, Q, diagonal, backprop)``: ``P`` (c_in, p), ``H`` (M, p, q) or, when
    ``diagonal`` (CP), (M, q) with p = q; ``Q`` (q, c_out) or None; ``backprop(dP, dH, dQ)
    -> {name: gradient}``.
    """
    mats = _factor_list(factors)
    n = len(mats)
    names = _names(n)
    if factorization == "tucker":
        # H = core x_2 U_2 ... x_{d+1} U_{d+1}, built directly in the modes-first layout
        # (M, r_0, r_1) by _spatial_tucker (no moveaxis copies); P = U_0, Q = U_1^T.
        hm, tape = _spatial_tucker(xp, factors["core"], mats[2:])

        def backprop(d_p, d_h, d_q):
            d_core, d_mats = _spatial_tucker_backward(xp, d_h, tape)
            return {"core": d_core, names[0]: d_p, names[1]: _mT(xp, d_q),
                    **dict(zip(names[2:], d_mats, strict=True))}

        return mats[0], hm, _mT(xp, mats[1]), False, backprop
    if factorization == "cp":
        # H_m = diag(weights * prod_k A_k[m_k]): (M, R); P = A_0, Q = A_1^T.
        weights = factors["weights"]
        kr, tape = _khatri_rao(xp, mats[2:])
        s = kr * weights

        def backprop(d_p, d_s, d_q):
            d_kr = d_s * xp.conj(weights)
            grads = {"weights": xp.vecdot(kr, d_s, axis=-2), names[0]: d_p,
                     names[1]: _mT(xp, d_q)}
            grads.update(zip(names[2:], _khatri_rao_backward(xp, d_kr, tape), strict=True))
            return grads

        return mats[0], s, _mT(xp, mats[1]), True, backprop
    # TT: P = G_0 as (c_in, R_1); H = G_1 ... G_{d+1} as (M, R_1, c_out); no Q.
    chain, tape = _tt_chain(xp, mats[1:])  # (R_1, c_out, *kept, 1)
    chain = xp.reshape(chain, chain.shape[:-1])
    hm = _modes_first(xp, chain, 2)
    first = mats[0]

    def backprop(d_p, d_h, d_q):
        d_chain = xp.expand_dims(_modes_last(xp, d_h, kept), axis=-1)
        d_rest = _tt_chain_backward(xp, d_chain, mats[1:], tape)
        return dict(zip(names, [xp.reshape(d_p, first.shape)] + d_rest, strict=True))

    return xp.reshape(first, (first.shape[1], first.shape[2])), hm, None, False, backprop


def contract(xp, factorization, factors, x_modes, kept, *, train=False):
    """Per-mode product of the kept modes with the factorized weight, never forming it.

    Parameters
    ----------
    xp : namespace
    factorization : {"cp", "tucker", "tt"}
    factors : dict of str to complex array
        See :func:`reconstruct`.
    x_modes : complex array, shape (M, batch, c_in)
        The input's kept modes, mode-major (``M = prod(kept)``, C order).
    kept : tuple of int
        The weight's mode shape.
    train : bool

    Returns
    -------
    y_modes : complex array, shape (M, batch, c_out)
        ``y_m = x_m W[:, :, m]``, computed as ``((x_m P) H_m) Q``: Tucker ``P = U_0``,
        ``H = core x_{k>=2} U_k``, ``Q = U_1^T``; CP ``P = A_0``, ``H_m =
        diag(weights * prod_{k>=2} A_k[m_k])``, ``Q = A_1^T``; TT ``P = G_0``,
        ``H = G_1 ... G_{d+1}`` (the chain over the output and spatial modes), no ``Q``.
    backprop : callable ``(g_modes, scale, input_grad) -> (dx_modes, {name: gradient})``
        ``g_modes`` (M, batch, c_out) is the gradient of the output modes; ``scale``
        (M, 1, 1) weights the modes in the parameter gradients only (the adjoint of the
        inverse real FFT, see :func:`numlab.operators._layers.spectral_conv`).
    """
    p_mat, h, q_mat, diagonal, h_backprop = _spatial_operator(xp, factorization, factors, kept)
    m, batch, c_in = x_modes.shape

    def shared(a, mat):
        # (M, batch, k) @ (k, n) as one GEMM on the (M batch, k) matrix: a broadcast
        # matmul would run M small GEMMs.
        out = xp.matmul(xp.reshape(a, (-1, a.shape[2])), mat)
        return xp.reshape(out, (m, batch, mat.shape[1]))

    xa = shared(x_modes, p_mat)  # (M, batch, p)
    z = xa * xp.expand_dims(h, axis=1) if diagonal else xp.matmul(xa, h)
    y = z if q_mat is None else shared(z, q_mat)
    if not train:
        return y, None

    def backprop(g, scale, input_grad=True):
        d_q = None
        if q_mat is None:
            t = g
        else:
            z2 = xp.reshape(z * scale, (-1, z.shape[2]))
            d_q = xp.matmul(_mT(xp, xp.conj(z2)), xp.reshape(g, (-1, g.shape[2])))
            t = shared(g, _mT(xp, xp.conj(q_mat)))
        if diagonal:
            d_h = xp.vecdot(xa, t * scale, axis=-2)  # sum over the batch of conj(xa) t
            s = t * xp.expand_dims(xp.conj(h), axis=1)
        else:
            d_h = xp.matmul(_mT(xp, xp.conj(xa)), t * scale)
            s = xp.matmul(t, _mT(xp, xp.conj(h)))
        x2 = xp.reshape(x_modes, (-1, c_in))
        d_p = xp.matmul(_mT(xp, xp.conj(x2)), xp.reshape(s * scale, (-1, s.shape[2])))
        dx = shared(s, _mT(xp, xp.conj(p_mat))) if input_grad else None
        return dx, h_backprop(d_p, d_h, d_q)

    return y, backprop


# --------------------------------------------------------------------------- choice


def _costs(factorization, shape, rank, batch):
    """Complex multiply-adds of one forward + backward (x3 the forward's GEMMs) per layer."""
    rank = validate_rank(factorization, shape, rank)
    c_in, c_out, *kept = shape
    m = math.prod(kept)
    dense_product = m * batch * c_in * c_out
    if factorization == "tucker":
        r = list(rank)
        # Mode products from the last axis to the first (the order of _tucker_product).
        sizes, build, partial = list(r), 0, 0
        for k in range(len(shape) - 1, -1, -1):
            build += math.prod(sizes) * shape[k]
            sizes[k] = shape[k]
            if k == 2:
                partial = build
        recon = build
        fact = partial + m * batch * (c_in * r[0] + r[0] * r[1] + r[1] * c_out)
    elif factorization == "cp":
        rest = math.prod(shape[1:])
        recon = rank * (rest + c_in * rest)
        fact = rank * m + m * batch * rank * (c_in + 1 + c_out)
    else:
        r = list(rank)
        build, rows = 0, r[0] * shape[0]
        partial, rows_p = 0, r[1] * shape[1]
        for k in range(1, len(shape)):
            build += rows * r[k] * shape[k] * r[k + 1]
            rows *= shape[k]
        for k in range(2, len(shape)):
            partial += rows_p * r[k] * shape[k] * r[k + 1]
            rows_p *= shape[k]
        recon = build
        fact = partial + m * batch * (c_in * r[1] + r[1] * c_out)
    return 3 * (recon + dense_product), 3 * fact


def choose_implementation(factorization, shape, rank, batch):
    """``"factorized"`` or ``"reconstructed"``: the one with fewer multiply-adds.

    Both implementations are chains of GEMMs of moderate size, so their times follow
    their multiply-add counts (checked on the benchmark's shapes in
    ``benchmarks/bench_operators_tfno.py``). The reconstruction costs the same whatever
    the batch; the factorized product grows with it: the choice depends on the batch.
    """
    recon, fact = _costs(factorization, tuple(shape), rank, batch)
    return "factorized" if fact < recon else "reconstructed"
