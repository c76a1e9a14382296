"""Convolutional, normalisation, resampling and attention layers of the Latent Spectral Model.

The layers follow the protocol of :mod:`numlab.operators._layers` (read its docstring)::

    y, backprop = layer(x, *params, train=True)
    dx, grads = backprop(dy)

with activations ``(batch, channels, height, width)``, ``train=False`` keeping nothing and
returning ``backprop=None``, ``backprop`` never writing into ``dy`` and dtypes preserved.
Two exceptions to the shape of the protocol, both documented where they occur:
:func:`batch_norm2d` returns a third value, the updated running statistics, and the layers
with several inputs (:func:`concat_channels`, :func:`attention`) return a tuple of input
gradients.

The layers: :func:`conv2d` (3x3 or 1x1, stride 1, zero padding), :func:`batch_norm2d`
(with an optional fused ReLU, the ``BatchNorm2d -> ReLU`` pair of the LSM's ``DoubleConv``),
:func:`relu`, :func:`max_pool2d` (2x2, stride 2), :func:`upsample_bilinear2d`
(``align_corners=True``), :func:`pad2d` / :func:`pad_to` (zero padding or cropping, as
``F.pad``), :func:`concat_channels`, :func:`softmax_lastaxis`, :func:`attention`
(``softmax(q k^T) v`` without scaling) and :func:`sin_cos_basis`. The channels-last
``nn.Linear`` layers of the reference (``fc0``, ``fc1``, ``fc2``) are
:func:`numlab.operators._layers.linear` in numlab's channels-first layout.

How the convolution is computed (the "wide" layout). The input is zero-padded to
``(Hp, Wp) = (H + 2p, W + 2p)`` (plus one spare row) and flattened per channel. For kernel
offset ``(i, j)`` the input pixels that output pixel ``(r, c)`` reads lie at flat index
``(r + i) Wp + (c + j)``: if the output is also laid out with row stride ``Wp`` (a "wide"
output whose last ``Wp - Wo`` columns are garbage, dropped at the end), every offset reads
one *contiguous* slice ``flat[i Wp + j : i Wp + j + Ho Wp]``. So

- im2col is the stack of ``kh kw`` slices (one copy, no index arithmetic), the forward is
  one GEMM ``(Co, Ci kh kw) @ (Ci kh kw, Ho Wp)`` per sample and the weight gradient one
  GEMM ``dy_wide @ cols^T`` (the garbage columns of ``dy_wide`` set to zero); the input
  gradient is the convolution of ``dy`` with the flipped, transposed kernel, computed by
  the same code;
- the alternative without the ``kh kw``-fold buffer ("shifted") runs ``kh kw`` GEMMs on the
  slices themselves (strided views BLAS reads directly) and accumulates; in between, "rows"
  copies the ``kw`` column shifts only and runs ``kh`` GEMMs.

:func:`_conv_method` picks one per shape from measurements (see its docstring); small grids
use a third form, ``"folded"`` (:func:`_conv_folded`), which puts the batch in the GEMM's long
dimension. The convolution is GEMM-bound (about 80% of a U-Net step is in ``matmul``), so
there is no Numba convolution kernel; batch normalisation and max-pooling, a few passes over
memory each, have Numba kernels (:mod:`numlab.operators._conv_kernels`).

Speed (one thread, float32, against torch 2.13's oneDNN convolution with autograd; script
``benchmarks/bench_operators_conv.py``): forward + backward of a 3x3 convolution at the LSM
NS configuration's shapes (batch 4, width 64 on 64x64 down to 512 on 4x4) 0.85-1.2x torch;
the whole convolutional U-Net of that configuration 1.17x torch, its output and gradients
equal to the authors' torch modules (float64: 1e-14).
"""

from __future__ import annotations

import math

from .. import _backend
from .._dispatch import kernel
from . import _conv_kernels  # noqa: F401  (registers the batch-normalisation kernels)
from ._layers import linear

__all__ = [
    "conv2d",
    "batch_norm2d",
    "relu",
    "max_pool2d",
    "upsample_bilinear2d",
    "pad2d",
    "pad_to",
    "concat_channels",
    "softmax_lastaxis",
    "attention",
    "sin_cos_basis",
]


# --------------------------------------------------------------------------- convolution


def _conv_method(c_in, c_out, n_wide, k):
    """``"folded"`` or ``"shifted"`` (or ``"rows"``, ``"im2col"``) for a convolution of this shape.

    Measured with ``benchmarks/bench_operators_conv.py`` (float32, one thread, OpenBLAS,
    batch 4, 3x3, forward + backward against torch's oneDNN convolution; a shared, loaded
    machine, so +-15% between runs): the folded im2col (batch in the GEMM's long dimension)
    wins on grids up to 16x16 (0.9-1.1x torch where the per-sample forms are 1.2-2.5x); on
    32x32 and 64x64 grids folded, shifted and rows tie within that noise (1.0-1.3x), and
    shifted, which needs no kh kw-fold buffer (its page faults cost 5-10 ms at 64x64 and
    128 channels), is used. Every form is exercised by the tests.
    """
    return "shifted" if n_wide >= 1000 else "folded"


def _padded_flat(xp, x, padding, extra_rows):
    """``x`` zero-padded by ``padding`` on every side, plus ``extra_rows`` zero rows at the
    bottom, flattened per channel: shape (batch, channels, (H + 2p + extra) (W + 2p))."""
    b, c, h, w = x.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    out = xp.zeros((b, c, hp + extra_rows, wp), dtype=x.dtype, device=_backend.device(x))
    out[:, :, padding:padding + h, padding:padding + w] = x
    return xp.reshape(out, (b, c, (hp + extra_rows) * wp))


def _conv_wide(xp, x, weight, padding, method):
    """The convolution in the wide layout (see the module docstring).

    Returns ``y_wide`` of shape (batch, c_out, ho wp), the padded flat input, the im2col
    buffer (None for the shifted method) and the geometry ``(ho, wo, wp, offsets)``.
    """
    c_out, c_in, kh, kw = weight.shape
    h, w = x.shape[2:]
    wp = w + 2 * padding
    ho, wo = h + 2 * padding - kh + 1, wp - kw + 1
    n_wide = ho * wp
    # One spare row so that the last offset's slice (which runs kw - 1 past the padded
    # grid, into garbage columns) stays inside the buffer.
    flat = _padded_flat(xp, x, padding, 1 if kw > 1 else 0)
    offsets = [i * wp + j for i in range(kh) for j in range(kw)]
    cols = None
    if method == "im2col":
        # cols[:, (i kw + j) c_in + ci, :] = slice of channel ci at offset (i, j): the
        # weight matrix is then weight permuted to (c_out, kh, kw, c_in).
        cols = xp.concat([flat[:, :, o:o + n_wide] for o in offsets], axis=1)
        w2 = xp.reshape(xp.permute_dims(weight, (0, 2, 3, 1)), (c_out, kh * kw * c_in))
        y_wide = xp.matmul(w2, cols)
    elif method == "rows":
        # A kw-fold buffer: rows[:, j c_in + ci, :] = channel ci shifted by column offset j
        # over all padded rows; kernel row i is then the contiguous window starting at
        # i wp, so kh GEMMs with K = kw c_in (kw-fold less copying than im2col, and
        # kh - 1 accumulations instead of kh kw - 1 for the shifted form).
        n_rows = (ho + kh - 1) * wp
        cols = xp.concat([flat[:, :, j:j + n_rows] for j in range(kw)], axis=1)
        w_rows = xp.reshape(xp.permute_dims(weight, (2, 0, 3, 1)), (kh, c_out, kw * c_in))
        y_wide = xp.matmul(w_rows[0, ...], cols[:, :, :n_wide])
        for i in range(1, kh):
            y_wide += xp.matmul(w_rows[i, ...], cols[:, :, i * wp:i * wp + n_wide])
    else:
        # One (c_out, c_in) matrix per offset applied to the slice itself: a strided view
        # BLAS reads directly, so no kh kw-fold buffer.
        w_off = xp.reshape(xp.permute_dims(weight, (2, 3, 0, 1)), (kh * kw, c_out, c_in))
        y_wide = xp.matmul(w_off[0, ...], flat[:, :, :n_wide])
        for t in range(1, kh * kw):
            o = offsets[t]
            y_wide += xp.matmul(w_off[t, ...], flat[:, :, o:o + n_wide])
    return y_wide, flat, cols, (ho, wo, wp, offsets)


def _conv_folded(xp, x, weight, padding):
    """The convolution with the batch folded into the GEMM's long dimension.

    im2col to ``cols`` of shape (kh kw c_in, batch ho wo), one GEMM
    ``(c_out, kh kw c_in) @ cols`` and a transpose of the result to (batch, c_out, ho, wo):
    for small grids, where one GEMM per sample would have a tiny long dimension. Returns
    ``y`` and ``cols``.
    """
    c_out, c_in, kh, kw = weight.shape
    b, _, h, w = x.shape
    ho, wo = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    # Padded and channels-first in one copy: (c_in, batch, hp, wp).
    xt = xp.zeros((c_in, b, h + 2 * padding, w + 2 * padding), dtype=x.dtype,
                  device=_backend.device(x))
    xt[:, :, padding:padding + h, padding:padding + w] = xp.permute_dims(x, (1, 0, 2, 3))
    cols = xp.reshape(
        xp.stack([xt[:, :, i:i + ho, j:j + wo] for i in range(kh) for j in range(kw)]),
        (kh * kw * c_in, b * ho * wo))
    w2 = xp.reshape(xp.permute_dims(weight, (0, 2, 3, 1)), (c_out, kh * kw * c_in))
    y = xp.permute_dims(xp.reshape(xp.matmul(w2, cols), (c_out, b, ho, wo)), (1, 0, 2, 3))
    return y, cols


def conv2d(x, weight, bias=None, *, padding=1, train=False, input_grad=True):
    """2-D convolution, stride 1, zero padding (torch's ``F.conv2d`` / ``nn.Conv2d``).

    The input gradient is itself a convolution, of ``dy`` with the flipped, transposed
    kernel and padding ``k - 1 - padding``, so the backward reuses the forward's GEMM
    layout (no col2im scatter).

    Parameters
    ----------
    x : array, shape (batch, c_in, height, width)
    weight : array, shape (c_out, c_in, kh, kw)
        torch's layout (cross-correlation, as every deep-learning convolution).
    bias : array, shape (c_out,), optional
    padding : int
        Zeros added on every side, at most ``min(kh, kw) - 1`` (1 for the 3x3 convolutions
        of the LSM, 0 for 1x1).
    train : bool
        Return a ``backprop`` closure.
    input_grad : bool
        Whether ``backprop`` computes ``dx``.

    Returns
    -------
    y : array, shape (batch, c_out, height + 2 padding - kh + 1, width + 2 padding - kw + 1)
    backprop : callable ``dy -> (dx, {"weight", "bias"})`` or None
    """
    xp = _backend.namespace(x, weight)
    c_out, c_in, kh, kw = weight.shape
    if not 0 <= padding <= min(kh, kw) - 1:
        raise ValueError(f"conv2d needs 0 <= padding <= kernel size - 1, got padding={padding}"
                         f" for a {kh}x{kw} kernel")
    if kh == kw == 1:
        # A 1x1 convolution is the pointwise linear map: no padding, no wide layout.
        y, back = linear(x, xp.reshape(weight, (c_out, c_in)), bias, train=train,
                         input_grad=input_grad)
        if not train:
            return y, None

        def backprop_1x1(dy):
            dx, grads = back(dy)
            grads["weight"] = xp.reshape(grads["weight"], weight.shape)
            return dx, grads

        return y, backprop_1x1

    b = x.shape[0]
    h_out = x.shape[2] + 2 * padding - kh + 1
    method = _conv_method(c_in, c_out, h_out * (x.shape[3] + 2 * padding), kh * kw)
    if method == "folded":
        y, cols = _conv_folded(xp, x, weight, padding)
        if bias is not None:
            y = y + xp.reshape(bias, (c_out, 1, 1))
    else:
        y_wide, flat, cols, (ho, wo, wp, offsets) = _conv_wide(xp, x, weight, padding, method)
        if bias is not None:
            y_wide += xp.reshape(bias, (c_out, 1))
        y = xp.reshape(y_wide, (b, c_out, ho, wp))[:, :, :, :wo]
    if not train:
        return y, None
    if cols is not None:
        flat = None  # the im2col buffer holds everything the weight gradient needs

    def backprop(dy):
        grads = {}
        if bias is not None:
            grads["bias"] = xp.sum(dy, axis=(0, 2, 3))
        if method == "folded":
            # (c_out, batch ho wo) @ (batch ho wo, kh kw c_in): one GEMM over the batch.
            dy2 = xp.reshape(xp.permute_dims(dy, (1, 0, 2, 3)), (c_out, -1))
            dw2 = xp.matmul(dy2, xp.matrix_transpose(cols))
            del dy2
        else:
            # dy in x's wide layout, its garbage columns zero (they must contribute nothing).
            dy_wide = xp.zeros((b, c_out, ho, wp), dtype=dy.dtype, device=_backend.device(dy))
            dy_wide[:, :, :, :wo] = dy
            dy_wide = xp.reshape(dy_wide, (b, c_out, ho * wp))
        if method == "rows":
            n_wide = ho * wp
            dws = [xp.sum(xp.matmul(dy_wide, xp.matrix_transpose(
                cols[:, :, i * wp:i * wp + n_wide])), axis=0) for i in range(kh)]
            # (kh, c_out, kw c_in) -> (c_out, c_in, kh, kw)
            grads["weight"] = xp.permute_dims(
                xp.reshape(xp.stack(dws), (kh, c_out, kw, c_in)), (1, 3, 0, 2))
        elif cols is not None:
            if method != "folded":
                # (b, c_out, n) @ (b, n, kh kw c_in): the grid is the contracted dimension.
                dw2 = xp.sum(xp.matmul(dy_wide, xp.matrix_transpose(cols)), axis=0)
            grads["weight"] = xp.permute_dims(
                xp.reshape(dw2, (c_out, kh, kw, c_in)), (0, 3, 1, 2))
        else:
            n_wide = ho * wp
            dws = [xp.sum(xp.matmul(dy_wide, xp.matrix_transpose(flat[:, :, o:o + n_wide])),
                          axis=0) for o in offsets]
            grads["weight"] = xp.permute_dims(
                xp.reshape(xp.stack(dws), (kh, kw, c_out, c_in)), (2, 3, 0, 1))
        dx = None
        if input_grad:
            w_t = xp.permute_dims(xp.flip(weight, axis=(2, 3)), (1, 0, 2, 3))
            if method == "folded":
                dx, _ = _conv_folded(xp, dy, w_t, kh - 1 - padding)
            else:
                dx_wide, _, _, (_, wo_t, wp_t, _) = _conv_wide(
                    xp, dy, w_t, kh - 1 - padding, method)
                dx = xp.reshape(dx_wide, (b, c_in, -1, wp_t))[:, :, :, :wo_t]
        return dx, grads

    return y, backprop


# --------------------------------------------------------------------------- batch normalisation


def batch_norm2d(x, weight, bias, running_mean, running_var, *, momentum=0.1, eps=1e-5,
                 relu=False, train=False):
    """Batch normalisation over (batch, height, width) per channel (torch's ``BatchNorm2d``).

    Training normalises with the batch statistics (the biased variance) and updates the
    running statistics as torch does: ``new = (1 - momentum) old + momentum batch`` with the
    *unbiased* batch variance. Inference normalises with the running statistics.

    The running statistics are state, not parameters, and this function never writes into
    its inputs: it returns them as a third value, new arrays in training and the given ones
    in inference, which the model stores in place of the old ones::

        y, backprop, stats = batch_norm2d(x, w, b, mean, var, train=True)
        buffers["bn.running_mean"] = stats["running_mean"]   # likewise running_var

    Parameters
    ----------
    x : array, shape (batch, channels, height, width)
    weight, bias : arrays, shape (channels,)
        The affine map after normalisation (torch's ``gamma`` and ``beta``).
    running_mean, running_var : arrays, shape (channels,)
    momentum : float
    eps : float
        Added to the variance before the square root.
    relu : bool
        Apply ReLU to the result, fused into the same passes (the ``BatchNorm2d -> ReLU``
        of the LSM's ``DoubleConv``): equal to :func:`relu` after this layer.
    train : bool
        Normalise with batch statistics, update the running ones and return ``backprop``.

    Returns
    -------
    y : array, shape of ``x``
    backprop : callable ``dy -> (dx, {"weight", "bias"})`` or None
    stats : dict ``{"running_mean", "running_var"}`` of arrays, shape (channels,)
    """
    xp = _backend.namespace(x, weight)
    b, c = x.shape[:2]
    x3 = xp.reshape(x, (b, c, -1))
    m = b * x3.shape[2]
    # Per-channel passes over the activation: Numba loops for NumPy (_conv_kernels).
    affine = kernel("operators.channel_affine", xp)
    if not train:
        scale = weight / xp.sqrt(running_var + eps)
        y3 = affine(x3, scale, bias - running_mean * scale, relu)
        stats = {"running_mean": running_mean, "running_var": running_var}
        return xp.reshape(y3, x.shape), None, stats

    mean, var = kernel("operators.channel_moments", xp)(x3)
    inv_std = 1.0 / xp.sqrt(var + eps)
    scale = weight * inv_std
    y3 = affine(x3, scale, bias - mean * scale, relu)
    unbiased = var * (m / max(m - 1, 1))
    stats = {
        "running_mean": (1 - momentum) * running_mean + momentum * mean,
        "running_var": (1 - momentum) * running_var + momentum * unbiased,
    }
    kept_y = y3 if relu else None  # the ReLU's mask, read from its output

    def backprop(dy):
        dy3 = xp.reshape(dy, (b, c, -1))
        s0, s1 = kernel("operators.channel_grad_sums", xp)(dy3, x3, kept_y, mean)
        # Closed form in _conv_kernels' docstring: dx = k dz + a (x - mean) + c.
        a = -scale * inv_std * inv_std * s1 / m
        dx3 = kernel("operators.channel_affine_grad", xp)(
            dy3, x3, kept_y, mean, scale, a, -scale * s0 / m)
        return xp.reshape(dx3, x.shape), {"weight": inv_std * s1, "bias": s0}

    return xp.reshape(y3, x.shape), backprop, stats


# --------------------------------------------------------------------------- pointwise and pooling


def relu(x, *, train=False):
    """``max(x, 0)``; the gradient at 0 is 0 (as torch); NaN stays NaN (as torch).

    Written with ``maximum`` and a multiplication by the 0/1 mask rather than ``where``,
    which NumPy runs 15-25x slower on float32 (measured on 1M values).

    Returns
    -------
    y, backprop : ``backprop(dy) -> (dx, {})``
    """
    xp = _backend.namespace(x)
    y = xp.maximum(x, xp.zeros((), dtype=x.dtype, device=_backend.device(x)))
    if not train:
        return y, None
    mask = xp.astype(x > 0, x.dtype)

    def backprop(dy):
        return dy * mask, {}

    return y, backprop


def max_pool2d(x, kernel_size=2, *, train=False):
    """Max-pooling over 2x2 windows, stride 2 (torch's ``MaxPool2d(2)``).

    An odd height or width drops the last row or column (floor, as torch). The gradient
    goes to the window's maximum; on ties to the first in row-major order (as torch).

    Parameters
    ----------
    x : array, shape (batch, channels, height, width)
    kernel_size : int
        Only 2.

    Returns
    -------
    y : array, shape (batch, channels, height // 2, width // 2)
    backprop : callable ``dy -> (dx, {})`` or None
    """
    if kernel_size != 2:
        raise ValueError(f"max_pool2d supports kernel_size=2 only, got {kernel_size}")
    xp = _backend.namespace(x)
    if not train:
        return kernel("operators.max_pool2x2", xp)(x, False)[0], None
    # The position of each window's maximum, 0..3 in row-major order, is all the backward
    # keeps (int8, a quarter of the output's bytes in float32).
    y, where = kernel("operators.max_pool2x2", xp)(x, True)
    h, w = x.shape[2:]

    def backprop(dy):
        return kernel("operators.max_pool2x2_grad", xp)(dy, where, h, w), {}

    return y, backprop


# --------------------------------------------------------------------------- resampling


def _interp_matrix(xp, n_out, n_in, dtype, device):
    """The (n_out, n_in) linear-interpolation matrix with aligned corners: output ``i`` sits
    at input coordinate ``i (n_in - 1) / (n_out - 1)`` (torch's ``align_corners=True``)."""
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    rows = []
    for i in range(n_out):
        src = i * scale
        lo = min(int(math.floor(src)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        frac = src - lo
        row = [0.0] * n_in
        row[lo] += 1.0 - frac
        row[hi] += frac
        rows.append(row)
    return xp.asarray(rows, dtype=dtype, device=device)


def upsample_bilinear2d(x, scale=None, *, size=None, align_corners=True, train=False):
    """Bilinear upsampling with aligned corners (torch's ``nn.Upsample(scale_factor=2,
    mode="bilinear", align_corners=True)``).

    Computed as ``A_h x A_w^T`` with two small interpolation matrices, so the backward is
    the exact adjoint ``A_h^T dy A_w``.

    Parameters
    ----------
    x : array, shape (batch, channels, height, width)
    scale : int, optional
        Output size ``(scale height, scale width)``.
    size : tuple of int, optional
        Output size ``(h, w)``, instead of ``scale``.
    align_corners : bool
        Only True.

    Returns
    -------
    y : array, shape (batch, channels, h, w)
    backprop : callable ``dy -> (dx, {})`` or None
    """
    if not align_corners:
        raise ValueError("upsample_bilinear2d supports align_corners=True only")
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale and size")
    xp = _backend.namespace(x)
    h, w = x.shape[2:]
    ho, wo = (h * scale, w * scale) if size is None else tuple(size)
    dev = _backend.device(x)
    a_h = _interp_matrix(xp, ho, h, x.dtype, dev)
    a_w = _interp_matrix(xp, wo, w, x.dtype, dev)
    y = xp.matmul(a_h, xp.matmul(x, xp.matrix_transpose(a_w)))
    if not train:
        return y, None

    def backprop(dy):
        return xp.matmul(xp.matrix_transpose(a_h), xp.matmul(dy, a_w)), {}

    return y, backprop


def pad2d(x, pads, *, train=False):
    """Zero padding of the last two axes, ``F.pad`` order ``(left, right, top, bottom)``.

    Negative entries crop (as ``F.pad``). The LSM pads right and bottom with
    ``(0, pad_w, 0, pad_h)`` and pads a decoder map to its skip's size with :func:`pad_to`.

    Returns
    -------
    y : array, shape (batch, channels, height + top + bottom, width + left + right)
    backprop : callable ``dy -> (dx, {})`` or None
    """
    xp = _backend.namespace(x)
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    ho, wo = h + top + bottom, w + left + right
    # The overlap of x and y, in each one's coordinates.
    xr = slice(max(-top, 0), h - max(-bottom, 0))
    xc = slice(max(-left, 0), w - max(-right, 0))
    yr = slice(max(top, 0), ho - max(bottom, 0))
    yc = slice(max(left, 0), wo - max(right, 0))
    y = xp.zeros((*x.shape[:-2], ho, wo), dtype=x.dtype, device=_backend.device(x))
    y[..., yr, yc] = x[..., xr, xc]
    if not train:
        return y, None

    def backprop(dy):
        dx = xp.zeros(x.shape, dtype=dy.dtype, device=_backend.device(dy))
        dx[..., xr, xc] = dy[..., yr, yc]
        return dx, {}

    return y, backprop


def pad_to(x, size, *, train=False):
    """Pad (or crop) the last two axes to ``size = (h, w)``, centred as the LSM's ``Up``
    block: ``F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])``.

    Returns
    -------
    y, backprop : as :func:`pad2d`
    """
    dh = size[0] - x.shape[-2]
    dw = size[1] - x.shape[-1]
    return pad2d(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), train=train)


def concat_channels(xs, *, train=False):
    """Concatenate along the channel axis (axis 1), as ``torch.cat(xs, dim=1)``.

    Returns
    -------
    y : array
    backprop : callable ``dy -> (dxs, {})``, ``dxs`` a tuple (one gradient per input), or None
    """
    xp = _backend.namespace(*xs)
    y = xp.concat(list(xs), axis=1)
    if not train:
        return y, None
    bounds = [0]
    for x in xs:
        bounds.append(bounds[-1] + x.shape[1])

    def backprop(dy):
        return tuple(dy[:, bounds[i]:bounds[i + 1], ...] for i in range(len(xs))), {}

    return y, backprop


# --------------------------------------------------------------------------- attention


def softmax_lastaxis(x, *, train=False):
    """Softmax over the last axis (max-shifted for stability).

    Returns
    -------
    y, backprop : ``backprop(dy) -> (y (dy - sum(y dy)), {})``
    """
    xp = _backend.namespace(x)
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    y = e / xp.sum(e, axis=-1, keepdims=True)
    if not train:
        return y, None

    def backprop(dy):
        return y * (dy - xp.sum(y * dy, axis=-1, keepdims=True)), {}

    return y, backprop


def attention(q, k, v, *, train=False):
    """``softmax(q k^T) v`` over the last two axes, batched over the leading ones.

    No ``1/sqrt(d)`` scaling, as the LSM reference (``self_attn`` of ``LSM_2D.py``).

    Parameters
    ----------
    q : array, shape (..., l_q, d)
    k : array, shape (..., l_k, d)
    v : array, shape (..., l_k, d_v)

    Returns
    -------
    y : array, shape (..., l_q, d_v)
    backprop : callable ``dy -> ((dq, dk, dv), {})`` or None
    """
    xp = _backend.namespace(q, k, v)
    p, soft_back = softmax_lastaxis(xp.matmul(q, xp.matrix_transpose(k)), train=train)
    y = xp.matmul(p, v)
    if not train:
        return y, None

    def backprop(dy):
        dv = xp.matmul(xp.matrix_transpose(p), dy)
        ds, _ = soft_back(xp.matmul(dy, xp.matrix_transpose(v)))
        dq = xp.matmul(ds, k)
        dk = xp.matmul(xp.matrix_transpose(ds), q)
        return (dq, dk, dv), {}

    return y, backprop


def sin_cos_basis(z, n_basis, *, train=False):
    """The LSM's basis ``[sin(pi (k/K) z), cos(pi (k/K) z)]``, ``k = 0..K-1``, on a new last
    axis (``get_basis`` of ``LSM_2D.py``).

    Parameters
    ----------
    z : array, shape (...)
    n_basis : int
        ``K``.

    Returns
    -------
    y : array, shape (..., 2 K): the K sines, then the K cosines
    backprop : callable ``dy -> (dz, {})`` or None
    """
    xp = _backend.namespace(z)
    freq = xp.asarray([math.pi * k / n_basis for k in range(n_basis)], dtype=z.dtype,
                      device=_backend.device(z))
    arg = z[..., None] * freq
    s, c = xp.sin(arg), xp.cos(arg)
    y = xp.concat([s, c], axis=-1)
    if not train:
        return y, None

    def backprop(dy):
        ds, dc = dy[..., :n_basis], dy[..., n_basis:]
        return xp.sum((ds * c - dc * s) * freq, axis=-1), {}

    return y, backprop
