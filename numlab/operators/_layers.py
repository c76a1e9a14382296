"""The gradient machinery of :mod:`numlab.operators`: layers that return their own backward pass.

numlab trains neural operators without a deep-learning framework. Every layer here is a
plain function written against the array API, in the style of thinc's functional layers::

    y, backprop = layer(x, *params, train=True)
    dx, grads = backprop(dy)

- ``layer`` computes the output ``y``. With ``train=False`` it keeps nothing and returns
  ``backprop=None`` (inference: no activation outlives the call).
- ``backprop`` is a closure made by the forward pass: it holds exactly what the backward
  pass needs (the input of a linear map, the kept Fourier modes, the GELU derivative) and
  maps the gradient of the loss with respect to ``y`` to the gradient with respect to ``x``
  (``dx``, ``None`` when the caller said it does not need it) and a dict ``grads`` of
  gradients with respect to the layer's parameters, keyed by the layer's own parameter
  names (``"weight"``, ``"bias"``, ``"fcs.0.weight"``, ...). A model composes layers by
  calling the closures in reverse order, adding the ``dx`` of branches that share an input,
  and prefixing the parameter names; nothing is recorded on a global tape.
- ``backprop`` never writes into ``dy`` (a gradient that fans out to two branches is
  read twice); it may write into arrays it created itself, so it is called once.
- Complex parameters get the gradient ``dL/dRe + 1j dL/dIm`` (PyTorch's convention), so
  an optimiser treats real and imaginary parts as independent real parameters.

Layout: activations are ``(batch, channels, *spatial)``; a pointwise layer works on the
``(batch, channels, n)`` view with ``n = prod(spatial)``. Dtypes are preserved: a float32
run stays float32 (complex64 in Fourier space).

The layers: :func:`linear` (1x1 convolution over channels, optional bias),
:func:`spectral_conv` (Fourier layer), :func:`gelu`, :func:`soft_gating`,
:func:`identity`, :func:`channel_mlp`, :func:`pad` / :func:`unpad` (domain padding),
:func:`grid_embedding` (positional embedding); the losses :func:`relative_l2_loss` and
:func:`relative_h1_loss`, which return ``(loss, backprop)`` with ``backprop()`` giving
the gradient with respect to the prediction. Each is checked against central differences
in float64 and against torch autograd in ``tests/test_operators_fno.py``.

References
----------
M. Honnibal et al., thinc: functional layers ``forward(model, X, is_train) -> (Y, backprop)``.
Z. Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations",
ICLR 2021. J. Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for
High-Resolution PDEs", TMLR 2024 (neuraloperator 2.0's layer definitions).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft

from .. import _backend
from .._dispatch import kernel
from . import _factorized, _kernels  # noqa: F401  (_kernels registers the operators.* kernels)

__all__ = [
    "linear",
    "soft_gating",
    "identity",
    "gelu",
    "channel_mlp",
    "spectral_conv",
    "kept_modes",
    "pad",
    "unpad",
    "grid_embedding",
    "relative_l2_loss",
    "relative_h1_loss",
]


def _prefixed(prefix, grads):
    return {f"{prefix}{name}": g for name, g in grads.items()}


# --------------------------------------------------------------------------- pointwise layers


def linear(x, weight, bias=None, *, train=False, input_grad=True):
    """Pointwise linear map over channels (a 1x1 convolution): ``y = W x + b``.

    Parameters
    ----------
    x : array, shape (batch, c_in, *spatial)
    weight : array, shape (c_out, c_in)
    bias : array, shape (c_out,), optional
    train : bool
        Return a ``backprop`` closure (keeps a reference to ``x``).
    input_grad : bool
        Whether ``backprop`` computes ``dx`` (the first layer of a model needs none).

    Returns
    -------
    y : array, shape (batch, c_out, *spatial)
    backprop : callable ``dy -> (dx, {"weight", "bias"})`` or None
    """
    xp = _backend.namespace(x, weight)
    batch, c_in = x.shape[:2]
    c_out = weight.shape[0]
    x3 = xp.reshape(x, (batch, c_in, -1))
    # (c_out, c_in) @ (batch, c_in, n): one GEMM per sample with n (the grid) as the long
    # dimension, which BLAS runs at full speed; no transposed copy of the activations.
    y3 = xp.matmul(weight, x3)
    if bias is not None:
        y3 += xp.reshape(bias, (c_out, 1))
    y = xp.reshape(y3, (batch, c_out, *x.shape[2:]))
    if not train:
        return y, None

    def backprop(dy):
        dy3 = xp.reshape(dy, (batch, c_out, -1))
        grads = {"weight": xp.sum(xp.matmul(dy3, xp.matrix_transpose(x3)), axis=0)}
        if bias is not None:
            grads["bias"] = xp.sum(dy3, axis=(0, 2))
        dx = None
        if input_grad:
            dx = xp.reshape(xp.matmul(xp.matrix_transpose(weight), dy3), x.shape)
        return dx, grads

    return y, backprop


def soft_gating(x, weight, *, train=False):
    """Per-channel scaling ``y[:, c] = w[c] x[:, c]`` (neuraloperator's ``SoftGating``).

    Parameters
    ----------
    x : array, shape (batch, channels, *spatial)
    weight : array, shape (channels,)

    Returns
    -------
    y, backprop : ``backprop(dy) -> (dx, {"weight"})``
    """
    xp = _backend.namespace(x, weight)
    shape = (1, weight.shape[0]) + (1,) * (x.ndim - 2)
    w = xp.reshape(weight, shape)
    y = x * w
    if not train:
        return y, None

    def backprop(dy):
        batch, channels = x.shape[:2]
        # vecdot contracts the grid without a (batch, channels, n) temporary.
        per_sample = xp.vecdot(
            xp.reshape(x, (batch, channels, -1)), xp.reshape(dy, (batch, channels, -1)), axis=-1
        )
        return dy * w, {"weight": xp.sum(per_sample, axis=0)}

    return y, backprop


def identity(x, *, train=False):
    """``y = x`` (an identity skip connection); ``backprop(dy) -> (dy, {})``."""
    return x, ((lambda dy: (dy, {})) if train else None)


def gelu(x, *, train=False):
    """Exact GELU, ``x Phi(x)`` with the Gaussian CDF ``Phi`` (torch's default ``F.gelu``).

    The forward of a training step computes the derivative in the same pass (one fused
    kernel) and keeps it; inference computes the value only.

    Returns
    -------
    y, backprop : ``backprop(dy) -> (dx, {})``
    """
    xp = _backend.namespace(x)
    value = kernel("operators.gelu", xp)
    value_and_grad = kernel("operators.gelu_with_grad", xp)
    # The kernels see a flat array (a free view of a contiguous activation).
    flat = xp.reshape(x, (-1,))
    if not train:
        return xp.reshape(value(flat), x.shape), None
    y, dydx = value_and_grad(flat)
    dydx = xp.reshape(dydx, x.shape)

    def backprop(dy):
        # The derivative buffer is used once: multiply in place (no fresh activation-sized
        # allocation, whose page faults cost as much as the product).
        nonlocal dydx
        dx, dydx = dydx, None
        dx *= dy
        return dx, {}

    return xp.reshape(y, x.shape), backprop


def channel_mlp(x, weights, biases, *, train=False, input_grad=True):
    """Pointwise MLP over channels: linear, GELU, linear, ... (neuraloperator's ``ChannelMLP``).

    Parameters
    ----------
    x : array, shape (batch, c_in, *spatial)
    weights, biases : sequences of arrays
        Layer ``i`` maps with ``weights[i]`` of shape (c_{i+1}, c_i) and ``biases[i]``;
        GELU follows every layer but the last.

    Returns
    -------
    y, backprop : ``backprop(dy) -> (dx, {"fcs.<i>.weight", "fcs.<i>.bias"})``
    """
    steps = []
    n = len(weights)
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        x, bp = linear(x, w, b, train=train, input_grad=input_grad or i > 0)
        steps.append((f"fcs.{i}.", bp))
        if i < n - 1:
            x, bp = gelu(x, train=train)
            steps.append(("", bp))
    if not train:
        return x, None

    def backprop(dy):
        grads = {}
        for prefix, bp in reversed(steps):
            dy, g = bp(dy)
            grads.update(_prefixed(prefix, g))
        return dy, grads

    return x, backprop


# --------------------------------------------------------------------------- spectral convolution


def kept_modes(n_modes):
    """The weight's mode shape for neuraloperator-2.0 ``n_modes``.

    ``(*n_modes[:-1], n_modes[-1] // 2 + 1)``.

    Along every axis but the last, ``n`` modes are the ``n`` frequencies centred on zero,
    ``-(n // 2), ..., n - n // 2 - 1``; along the last axis (real FFT, whose negative
    frequencies are redundant) the ``n // 2 + 1`` frequencies ``0, ..., n // 2``.
    """
    n_modes = tuple(int(m) for m in n_modes)
    return n_modes[:-1] + (n_modes[-1] // 2 + 1,)


@functools.lru_cache(maxsize=64)
def _gradient_scale(spatial, kept, dtype):
    """``c / N`` per kept mode (host, ``dtype``, shape (M, 1, 1)): adjoint weights of ``irfftn``.

    ``irfftn`` counts a last-axis frequency ``0 < k < n/2`` twice (it stands for ``k``
    and ``-k``) and ``k = 0`` and the Nyquist frequency ``n/2`` once, then divides by
    ``N = prod(spatial)``; the weight gradient carries the same factors.
    """
    n_last = spatial[-1]
    k = np.arange(kept[-1])
    c = np.where((k == 0) | (2 * k == n_last), 1.0, 2.0)
    return (np.broadcast_to(c, kept).reshape(-1, 1, 1) / math.prod(spatial)).astype(dtype)


def _check_modes(spatial, kept):
    for axis, (n, k) in enumerate(zip(spatial[:-1], kept[:-1], strict=True)):
        if k > n:
            return axis, k, n
    if kept[-1] > spatial[-1] // 2 + 1:
        return len(spatial) - 1, 2 * (kept[-1] - 1), spatial[-1]
    return None


# Per-axis transforms between a grid and its kept modes. An axis of n points with k kept
# frequencies is transformed either by an FFT (then the kept frequencies are sliced out, or
# zeros padded in) or by a product with the k columns of the DFT matrix that are kept (a
# "truncated DFT by GEMM": n k multiply-adds per line against the FFT's ~ 5 n log2 n, but at
# BLAS speed and with no slicing). Leading axes are transformed after the last one, on the
# k_last kept columns only, so they are cheap either way. The choice is a measured rule:
# on one core (float32, pocketfft vs OpenBLAS) the GEMM wins up to about k = 3 log2(n)
# for sizes made of small primes. An FFT's work per point grows with the sum of n's
# prime factors, the GEMM's does not depend on them: for other sizes the bound is
# raised by that sum over the nearest smooth size's, at most 4x (pocketfft turns to
# Bluestein's algorithm for large prime factors). Measured (FFT time / GEMM time):
# n = 103 (85 + 2 x 9 of padding, prime), k = 24: 4.1 (leading axis), 5.9 (last axis);
# n = 94 = 2 x 47, k = 24: 2.5, 2.3; n = 85 = 5 x 17, k = 24: 1.7, 1.0.


def _factor_sum(n):
    """Sum of the prime factors of ``n`` with multiplicity."""
    total, p = 0, 2
    while p * p <= n:
        while n % p == 0:
            total += p
            n //= p
        p += 1
    return total + (n if n > 1 else 0)


@functools.lru_cache(maxsize=256)
def _use_dft_gemm(n, k, last):
    """Whether an axis of ``n`` points keeping ``k`` frequencies is transformed by GEMM
    (``last``: the real last axis) rather than by FFT."""
    penalty = 1.0
    if n > 2:
        smooth = scipy.fft.next_fast_len(n, real=last)
        penalty = min(max(_factor_sum(n) / _factor_sum(smooth), 1.0), 4.0)
    return k <= 3 * math.log2(max(n, 2)) * penalty


@functools.lru_cache(maxsize=128)
def _dft_matrices(n, k, last, dtype):
    """Host (NumPy) DFT factors for an axis of ``n`` points keeping ``k`` frequencies.

    Leading axis (complex, centred frequencies ``f_j = j - k // 2``): forward ``(k, n)``
    ``exp(-2 pi i f_j t / n)`` and inverse ``(n, k)`` ``exp(2 pi i f_j t / n) / n``.
    Last axis (real data, frequencies ``0 .. k - 1``): forward ``(n, 2k)`` ``[cos | -sin]``
    (real and imaginary parts of the modes side by side) and inverse ``(2k, n)``
    ``[c cos ; -c sin] / n`` with ``c`` = 1 for frequency 0 and n/2, 2 otherwise (what
    ``irfft`` does, an imaginary part at 0 and n/2 included: sin vanishes there).
    """
    t = np.arange(n)
    if last:
        f = np.arange(k)
        angle = 2 * np.pi * ((np.outer(t, f) % n) / n)
        forward = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
        c = np.where((f == 0) | (2 * f == n), 1.0, 2.0)
        inverse = np.concatenate([c * np.cos(angle), -c * np.sin(angle)], axis=1).T / n
        real = np.dtype(dtype)
        return forward.astype(real), np.ascontiguousarray(inverse.astype(real))
    f = np.arange(k) - k // 2
    angle = 2 * np.pi * ((np.outer(f, t) % n) / n)
    cplx = np.result_type(np.dtype(dtype), np.complex64)
    forward = np.exp(-1j * angle).astype(cplx)
    inverse = np.ascontiguousarray((np.exp(1j * angle).T / n).astype(cplx))
    return forward, inverse


# Device copies of the small host constants (DFT factors, gradient scales), per library and
# device: a host-to-device copy at every layer call would stall a GPU stream.
_DEVICE_CONSTANTS: dict = {}


def _constant(xp, host, like, key):
    """``host`` (a NumPy array) as an array of ``xp`` on the device of ``like``."""
    if _backend.is_numpy(xp):
        return host
    dev = _backend.device(like)
    key = (xp.__name__, str(dev), key)
    if key not in _DEVICE_CONSTANTS:
        _DEVICE_CONSTANTS[key] = _backend.asarray(host, xp=xp, device=dev)
    return _DEVICE_CONSTANTS[key]


def _real_dtype_name(xp, a):
    """Name of the real dtype of ``a`` (float32 for float32 and complex64 arrays)."""
    if a.dtype in (xp.float32, xp.complex64):
        return "float32"
    return "float64"


def _matrices(xp, n, k, last, like):
    real = _real_dtype_name(xp, like)
    forward, inverse = _dft_matrices(n, k, last, real)
    key = ("dft", n, k, last, real)
    return (_constant(xp, forward, like, key + ("forward",)),
            _constant(xp, inverse, like, key + ("inverse",)))


def _along(xp, a, axis, fn):
    """Apply ``fn`` (a map on the last-but-one axis of a 3-D array) along ``axis`` of ``a``."""
    shape = a.shape
    a3 = xp.reshape(a, (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])))
    out = fn(a3)
    return xp.reshape(out, (*shape[:axis], out.shape[1], *shape[axis + 1:]))


def _to_modes(xp, fft, x, kept):
    """Kept Fourier modes of real ``x`` (batch, c, *spatial) as complex (batch, c, *kept).

    Equal to ``rfftn(x)`` at the kept frequencies, in the weight's (centred) order.
    """
    spatial = x.shape[2:]
    d = len(spatial)
    n, k = spatial[-1], kept[-1]
    if _use_dft_gemm(n, k, True):
        forward, _ = _matrices(xp, n, k, True, x)
        parts = xp.matmul(xp.reshape(x, (-1, n)), forward)  # (lines, 2k): [real | imag]
        cplx = xp.result_type(x.dtype, xp.complex64)
        i = xp.asarray(1j, dtype=cplx, device=_backend.device(x))
        modes = xp.astype(parts[:, :k], cplx) + xp.astype(parts[:, k:], cplx) * i
        modes = xp.reshape(modes, (*x.shape[:-1], k))
    else:
        modes = fft.rfft(x, axis=-1)[..., :k]
    for axis in range(d + 0, 1, -1):  # leading spatial axes 2 .. d, innermost first
        n, k = spatial[axis - 2], kept[axis - 2]
        if _use_dft_gemm(n, k, False):
            forward, _ = _matrices(xp, n, k, False, modes)
            modes = _along(xp, modes, axis, lambda a3, m=forward: xp.matmul(m, a3))
        else:
            neg = k // 2

            def keep(a3, n=n, k=k, neg=neg):
                spectrum = fft.fft(a3, axis=1)
                return xp.concat((spectrum[:, n - neg:, :], spectrum[:, :k - neg, :]), axis=1)

            modes = _along(xp, modes, axis, keep)
    return modes


def _from_modes(xp, fft, modes, spatial):
    """Inverse of :func:`_to_modes`: ``irfftn`` of the half-spectrum that is ``modes`` at the
    kept frequencies and zero elsewhere, shape (batch, c, *spatial), real."""
    d = len(spatial)
    kept = modes.shape[2:]
    for axis in range(2, d + 1):  # leading spatial axes, outermost first
        n, k = spatial[axis - 2], kept[axis - 2]
        if _use_dft_gemm(n, k, False):
            _, inverse = _matrices(xp, n, k, False, modes)
            modes = _along(xp, modes, axis, lambda a3, m=inverse: xp.matmul(m, a3))
        else:
            neg = k // 2

            def place(a3, n=n, k=k, neg=neg):
                full = xp.zeros((a3.shape[0], n, a3.shape[2]), dtype=a3.dtype,
                                device=_backend.device(a3))
                full[:, :k - neg, :] = a3[:, neg:, :]
                full[:, n - neg:, :] = a3[:, :neg, :]
                return fft.ifft(full, axis=1)

            modes = _along(xp, modes, axis, place)
    n, k = spatial[-1], kept[-1]
    if _use_dft_gemm(n, k, True):
        _, inverse = _matrices(xp, n, k, True, modes)
        lines = xp.reshape(modes, (-1, k))
        y = xp.matmul(xp.concat((xp.real(lines), xp.imag(lines)), axis=1), inverse)
        return xp.reshape(y, (*modes.shape[:-1], n))
    return fft.irfft(modes, n=n, axis=-1)


def _modes_first(xp, a):
    """(batch, c, *kept) -> (M, batch, c), the layout of the batched mode product."""
    d = a.ndim - 2
    a = xp.permute_dims(a, tuple(range(2, 2 + d)) + (0, 1))
    return xp.reshape(a, (-1, *a.shape[d:]))


def _modes_last(xp, a, kept):
    """(M, p, q) -> (p, q, *kept): inverse of :func:`_modes_first`."""
    d = len(kept)
    a = xp.reshape(a, (*kept, *a.shape[1:]))
    return xp.permute_dims(a, (d, d + 1) + tuple(range(d)))


def spectral_conv(x, weight, bias=None, *, factorization=None, implementation="reconstructed",
                  train=False, input_grad=True):
    """Fourier layer of neuraloperator 2.0: ``y = irfftn(W . rfftn(x)) + b`` on the kept modes.

    Parameters
    ----------
    x : array, shape (batch, c_in, n_1, ..., n_d)
    weight : complex array, shape (c_in, c_out, k_1, ..., k_d), or dict of complex arrays
        Mode ``j`` along axis ``i < d`` multiplies frequency ``j - k_i // 2``; along the
        last axis frequency ``j`` (see :func:`kept_modes`). Modes that are not kept are
        zeroed. With a ``factorization``, the factors of ``W`` by tensorly-torch's names
        (``"core"``, ``"weights"``, ``"factors.factor_<k>"``; see
        :mod:`numlab.operators._factorized`).
    factorization : {None, "cp", "tucker", "tt"}
        How ``weight`` represents ``W``.
    implementation : {"reconstructed", "factorized"}
        With a factorization: rebuild ``W`` and use the dense product, or contract the
        modes with the factors directly. Same values and gradients.
    bias : real array, shape (c_out,), optional
        Added after the inverse transform.
    train, input_grad : bool
        As in :func:`linear`.

    Returns
    -------
    y : array, shape (batch, c_out, n_1, ..., n_d)
    backprop : callable ``dy -> (dx, {"weight", "bias"})`` or None
        With a factorization the weight gradients are ``"weight.<factor name>"``.

    Notes
    -----
    Only the kept modes are computed: each axis is transformed by an FFT or by a product
    with the kept columns of its DFT matrix, whichever is cheaper (:func:`_to_modes`).
    The contraction over input channels is one batched matrix product over the ``M``
    kept modes, ``(M, batch, c_in) @ (M, c_in, c_out)`` (a plain einsum is ~50x slower).
    The FFT normalisation does not matter: neuraloperator's ``norm="forward"`` pair and the
    default ``"backward"`` pair used here give the same map.

    Backward, with ``X`` the kept modes of ``rfftn(x)``, ``G`` those of ``rfftn(dy)`` and
    ``c/N`` from :func:`_gradient_scale`: ``dW = X^H (c/N . G)`` per mode and
    ``dx = irfftn(scatter(G W^H))`` (the ``c`` and ``N`` of the two adjoints cancel).
    """
    if factorization is None:
        xp = _backend.namespace(x, weight)
        dense = weight
        bp_weight = None
    else:
        xp = _backend.namespace(x, *weight.values())
        dense = bp_weight = None
        if implementation == "reconstructed":
            dense, bp_weight = _factorized.reconstruct(xp, factorization, weight, train=train)
    shape = tuple(dense.shape) if dense is not None else _factorized.full_shape(
        factorization, weight)
    c_in, c_out, *kept = shape
    kept = tuple(kept)
    d = len(kept)
    spatial = tuple(x.shape[2:])
    fft = _backend.fft_namespace(xp)

    x_modes = _modes_first(xp, _to_modes(xp, fft, x, kept))  # (M, batch, c_in)
    if dense is not None:
        w = xp.reshape(xp.permute_dims(dense, tuple(range(2, 2 + d)) + (0, 1)),
                       (-1, c_in, c_out))
        y_modes = xp.matmul(x_modes, w)
    else:
        y_modes, bp_modes = _factorized.contract(xp, factorization, weight, x_modes, kept,
                                                 train=train)
    y = _from_modes(xp, fft, _modes_last(xp, y_modes, kept), spatial)  # (batch, c_out, ...)
    if bias is not None:
        y += xp.reshape(bias, (c_out,) + (1,) * d)
    if not train:
        return y, None

    def backprop(dy):
        g_modes = _modes_first(xp, _to_modes(xp, fft, dy, kept))  # (M, batch, c_out)
        real = _real_dtype_name(xp, dy)
        host = _gradient_scale(spatial, kept, real)
        scale = _constant(xp, host, dy, ("scale", spatial, kept, real))
        dx_modes = None
        if dense is None:
            dx_modes, g = bp_modes(g_modes, scale, input_grad)
            grads = {"weight." + k: v for k, v in g.items()}
        else:
            dw = xp.matmul(xp.conj(xp.matrix_transpose(x_modes)), g_modes * scale)
            dw = _modes_last(xp, dw, kept)  # (c_in, c_out, *kept)
            if bp_weight is None:
                grads = {"weight": dw}
            else:
                grads = {"weight." + k: v for k, v in bp_weight(dw).items()}
            if input_grad:
                dx_modes = xp.matmul(g_modes, xp.conj(xp.matrix_transpose(w)))
        if bias is not None:
            grads["bias"] = xp.sum(dy, axis=tuple(range(2, 2 + d)) + (0,))
        dx = None
        if input_grad:
            dx = _from_modes(xp, fft, _modes_last(xp, dx_modes, kept), spatial)
        return dx, grads

    return y, backprop


# --------------------------------------------------------------------------- domain and grid


def pad(x, widths, *, train=False):
    """Zero padding by ``widths[i]`` points on both sides of spatial axis ``i``.

    neuraloperator's ``DomainPadding`` (mode "constant") for a non-periodic problem: the
    Fourier layers then see a periodic extension with a buffer of zeros.

    Returns
    -------
    y : array, shape (batch, channels, n_1 + 2 widths[0], ...)
    backprop : ``dy -> (dy[inner], {})``
    """
    xp = _backend.namespace(x)
    widths = tuple(int(w) for w in widths)
    if not any(widths):
        return identity(x, train=train)
    sizes = list(zip(x.shape[2:], widths, strict=True))
    shape = x.shape[:2] + tuple(n + 2 * w for n, w in sizes)
    inner = (slice(None), slice(None)) + tuple(slice(w, w + n) for n, w in sizes)
    y = xp.zeros(shape, dtype=x.dtype, device=_backend.device(x))
    y[inner] = x
    if not train:
        return y, None
    return y, (lambda dy: (dy[inner], {}))


def unpad(x, widths, *, train=False):
    """Inverse of :func:`pad`: drop ``widths[i]`` points on both sides of spatial axis ``i``."""
    xp = _backend.namespace(x)
    widths = tuple(int(w) for w in widths)
    if not any(widths):
        return identity(x, train=train)
    sizes = zip(x.shape[2:], widths, strict=True)
    inner = (slice(None), slice(None)) + tuple(slice(w, n - w) for n, w in sizes)
    y = x[inner]
    if not train:
        return y, None

    def backprop(dy):
        dx = xp.zeros(x.shape, dtype=dy.dtype, device=_backend.device(dy))
        dx[inner] = dy
        return dx, {}

    return y, backprop


def grid_coordinates(spatial):
    """The positional-embedding grid: ``d`` arrays ``i_k / n_k`` on the periodic unit cube.

    Host NumPy, float64, shape ``(d, *spatial)``.

    neuraloperator's ``GridEmbeddingND`` with boundaries ``[0, 1]``:
    ``linspace(0, 1, n + 1)[:-1]`` along each axis (the endpoint excluded).
    """
    axes = [np.arange(n, dtype=np.float64) / n for n in spatial]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def grid_embedding(x, *, train=False):
    """Append the ``d`` grid-coordinate channels of :func:`grid_coordinates` to ``x``.

    Returns
    -------
    y : array, shape (batch, channels + d, *spatial)
    backprop : ``dy -> (dy[:, :channels], {})``
    """
    xp = _backend.namespace(x)
    spatial = tuple(x.shape[2:])
    grid = _backend.asarray(grid_coordinates(spatial), xp=xp, device=_backend.device(x),
                            dtype=x.dtype)
    grid = xp.broadcast_to(xp.expand_dims(grid, axis=0), (x.shape[0], len(spatial), *spatial))
    y = xp.concat((x, grid), axis=1)
    if not train:
        return y, None
    channels = x.shape[1]
    return y, (lambda dy: (dy[:, :channels, ...], {}))


# --------------------------------------------------------------------------- losses


def _per_function(xp, a):
    """``a`` (batch, channels, *spatial) as (batch, channels, n)."""
    return xp.reshape(a, (a.shape[0], a.shape[1], -1))


def _relative(xp, err_sq, ref_sq, eps):
    """Mean over (batch, channel) of ``sqrt(err_sq) / (sqrt(ref_sq) + eps)`` and its d/d err_sq."""
    err = xp.sqrt(err_sq)
    denom = xp.sqrt(ref_sq) + eps
    count = err_sq.shape[0] * err_sq.shape[1]
    loss = xp.sum(err / denom) / count
    # d sqrt(e)/de = 1 / (2 sqrt(e)); a zero error has a zero (sub)gradient, not NaN.
    safe = xp.where(err > 0, err, xp.ones_like(err))
    coef = xp.where(err > 0, 1.0 / (2.0 * safe * denom * count), xp.zeros_like(err))
    return loss, coef


#: The losses' default guard against a zero target norm (OperatorLoss's exact loss
#: Hessians use the same value).
LOSS_EPS = 1e-8


def relative_l2_loss(pred, y, *, eps=LOSS_EPS, train=False):
    """Relative L2 error, averaged over the batch and the output channels.

    ``mean_{b, c} ||pred[b, c] - y[b, c]|| / (||y[b, c]|| + eps)`` with norms over the
    grid. This is neuraloperator's ``LpLoss(d, p=2, reduction="mean")``; its default
    ``reduction="sum"`` (the original FNO code's ``size_average=False``) is this value
    times ``batch * channels``. The grid quadrature weights cancel in the ratio.

    Returns
    -------
    loss : 0-d array
    backprop : callable ``() -> dpred`` or None
    """
    xp = _backend.namespace(pred, y)
    err = _per_function(xp, pred - y)
    ref = _per_function(xp, y)
    loss, coef = _relative(xp, xp.vecdot(err, err, axis=-1), xp.vecdot(ref, ref, axis=-1), eps)
    if not train:
        return loss, None
    return loss, (lambda: xp.reshape(2.0 * xp.expand_dims(coef, axis=-1) * err, pred.shape))


def _central_differences(xp, a, axis):
    """Periodic central difference along ``axis`` on [0, 1): ``n/2 (a[i+1] - a[i-1])``."""
    n = a.shape[axis]
    return (xp.roll(a, -1, axis=axis) - xp.roll(a, 1, axis=axis)) * (n / 2.0)


def relative_h1_loss(pred, y, *, eps=LOSS_EPS, train=False):
    """Relative H1 error, averaged over the batch and the output channels.

    ``mean_{b, c} sqrt(||e||^2 + sum_i ||D_i e||^2) / (sqrt(||y||^2 + sum_i ||D_i y||^2) + eps)``
    with ``e = pred[b, c] - y[b, c]`` and ``D_i`` the periodic central difference along
    spatial axis ``i`` with spacing ``1 / n_i``: neuraloperator's ``H1Loss(d,
    reduction="mean")`` (periodic, the default), i.e. its default ``"sum"`` divided by
    ``batch * channels``.

    Returns
    -------
    loss : 0-d array
    backprop : callable ``() -> dpred`` or None
    """
    xp = _backend.namespace(pred, y)
    e = pred - y
    axes = range(2, pred.ndim)
    de = [_central_differences(xp, e, a) for a in axes]
    dref = [_central_differences(xp, y, a) for a in axes]

    def energy(u, du):
        f = _per_function(xp, u)
        total = xp.vecdot(f, f, axis=-1)
        for g in du:
            g = _per_function(xp, g)
            total = total + xp.vecdot(g, g, axis=-1)
        return total

    loss, coef = _relative(xp, energy(e, de), energy(y, dref), eps)
    if not train:
        return loss, None

    def backprop():
        # d/de (||e||^2 + sum ||D e||^2) = 2 (e + sum D^T D e), and D^T = -D (antisymmetric).
        g = e
        for a, d_e in zip(axes, de, strict=True):
            g = g - _central_differences(xp, d_e, a)
        return 2.0 * xp.reshape(coef, coef.shape + (1,) * (pred.ndim - 2)) * g

    return loss, backprop


def squared_l2_loss(pred, y, *, eps=LOSS_EPS, train=False):
    """Squared relative L2 error, averaged over the batch and the output channels.

    ``mean_{b, c} ||pred[b, c] - y[b, c]||^2 / (||y[b, c]||^2 + eps)``: the relative mean
    squared error. Unlike the relative L2 norm, whose gradient is bounded and whose
    curvature grows like ``1 / ||error||``, it is quadratic in the prediction, so the
    linear-stability learning rates of :mod:`numlab.rmt` apply to it.

    Returns
    -------
    loss : 0-d array
    backprop : callable ``() -> dpred`` or None
    """
    xp = _backend.namespace(pred, y)
    err = _per_function(xp, pred - y)
    ref = _per_function(xp, y)
    denom = xp.vecdot(ref, ref, axis=-1) + eps
    count = err.shape[0] * err.shape[1]
    loss = xp.sum(xp.vecdot(err, err, axis=-1) / denom) / count
    if not train:
        return loss, None
    coef = xp.expand_dims(2.0 / (denom * count), axis=-1)
    return loss, (lambda: xp.reshape(coef * err, pred.shape))


# The relative losses by name (the ``loss=`` of every model and of ``train``).
LOSSES = {"l2": relative_l2_loss, "h1": relative_h1_loss, "l2sq": squared_l2_loss}
