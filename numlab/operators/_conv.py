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

The layers: :func:`conv2d` (3x3 or 1x1, stride 1, zero padding), :func:`batch_norm2d`,
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
  one GEMM ``(Co, Ci kh kw) @ (Ci kh kw, Ho Wp)`` per sample, the weight gradient one GEMM
  ``dy_wide @ cols^T`` and the input gradient one GEMM ``W^T @ dy_wide`` followed by
  ``kh kw`` shifted slice additions (col2im), provided the garbage columns of ``dy_wide``
  are zero;
- the alternative without the ``kh kw``-fold buffer ("shifted") runs ``kh kw`` GEMMs on the
  slices themselves (strided views BLAS reads directly) and accumulates.

:func:`_conv_method` picks one per shape from measurements (see its comment).
"""

from __future__ import annotations

import math

from .. import _backend
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
    """``"im2col"`` or ``"shifted"`` for a convolution of this shape (see the module doc)."""
    return "im2col"


def _padded_flat(xp, x, padding, extra_rows):
    """``x`` zero-padded by ``padding`` on every side, plus ``extra_rows`` zero rows at the
    bottom, flattened per channel: shape (batch, channels, (H + 2p + extra) (W + 2p))."""
    b, c, h, w = x.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    out = xp.zeros((b, c, hp + extra_rows, wp), dtype=x.dtype, device=_backend.device(x))
    out[:, :, padding:padding + h, padding:padding + w] = x
    return xp.reshape(out, (b, c, (hp + extra_rows) * wp))


def conv2d(x, weight, bias=None, *, padding=1, train=False, input_grad=True):
    """2-D convolution, stride 1, zero padding (torch's ``F.conv2d`` / ``nn.Conv2d``).

    Parameters
    ----------
    x : array, shape (batch, c_in, height, width)
    weight : array, shape (c_out, c_in, kh, kw)
        torch's layout (cross-correlation, as every deep-learning convolution).
    bias : array, shape (c_out,), optional
    padding : int
        Zeros added on every side (1 for the 3x3 convolutions of the LSM, 0 for 1x1).
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
    if kh == kw == 1 and padding == 0:
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

    b, _, h, w = x.shape
    hp, wp = h + 2 * padding, w + 2 * padding
    ho, wo = hp - kh + 1, wp - kw + 1
    n_wide = ho * wp
    # One spare row so that the last offset's slice (which runs kw - 1 past the padded
    # grid, into garbage columns) stays inside the buffer.
    flat = _padded_flat(xp, x, padding, 1 if kw > 1 else 0)
    offsets = [i * wp + j for i in range(kh) for j in range(kw)]
    method = _conv_method(c_in, c_out, n_wide, kh * kw)

    if method == "im2col":
        # cols[:, (i kw + j) c_in + ci, :] = slice of channel ci at offset (i, j): the
        # weight matrix is then weight permuted to (c_out, kh, kw, c_in).
        cols = xp.concat([flat[:, :, o:o + n_wide] for o in offsets], axis=1)
        w2 = xp.reshape(xp.permute_dims(weight, (0, 2, 3, 1)), (c_out, kh * kw * c_in))
        y_wide = xp.matmul(w2, cols)
    else:
        # One (c_out, c_in) matrix per offset, contiguous.
        w_off = xp.reshape(xp.permute_dims(weight, (2, 3, 0, 1)), (kh * kw, c_out, c_in))
        y_wide = xp.matmul(w_off[0, ...], flat[:, :, offsets[0]:offsets[0] + n_wide])
        for t in range(1, kh * kw):
            y_wide += xp.matmul(w_off[t, ...], flat[:, :, offsets[t]:offsets[t] + n_wide])
    if bias is not None:
        y_wide += xp.reshape(bias, (c_out, 1))
    y = xp.reshape(y_wide, (b, c_out, ho, wp))[:, :, :, :wo]
    if not train:
        return y, None

    def backprop(dy):
        # dy in the wide layout, its garbage columns zero (they must contribute nothing).
        dy_wide = xp.zeros((b, c_out, ho, wp), dtype=dy.dtype, device=_backend.device(dy))
        dy_wide[:, :, :, :wo] = dy
        dy_wide = xp.reshape(dy_wide, (b, c_out, n_wide))
        grads = {}
        if bias is not None:
            grads["bias"] = xp.sum(dy, axis=(0, 2, 3))
        dx = None
        if method == "im2col":
            dw2 = xp.sum(xp.matmul(dy_wide, xp.matrix_transpose(cols)), axis=0)
            grads["weight"] = xp.permute_dims(
                xp.reshape(dw2, (c_out, kh, kw, c_in)), (0, 3, 1, 2))
            if input_grad:
                dcols = xp.matmul(xp.matrix_transpose(w2), dy_wide)
                dflat = xp.zeros(flat.shape, dtype=dy.dtype, device=_backend.device(dy))
                for t, o in enumerate(offsets):
                    dflat[:, :, o:o + n_wide] += dcols[:, t * c_in:(t + 1) * c_in, :]
        else:
            dws = []
            for t, o in enumerate(offsets):
                piece = xp.matmul(dy_wide, xp.matrix_transpose(flat[:, :, o:o + n_wide]))
                dws.append(xp.sum(piece, axis=0))
            grads["weight"] = xp.permute_dims(
                xp.reshape(xp.stack(dws), (kh, kw, c_out, c_in)), (2, 3, 0, 1))
            if input_grad:
                dflat = xp.zeros(flat.shape, dtype=dy.dtype, device=_backend.device(dy))
                for t, o in enumerate(offsets):
                    dflat[:, :, o:o + n_wide] += xp.matmul(
                        xp.matrix_transpose(w_off[t, ...]), dy_wide)
        if input_grad:
            rows = flat.shape[2] // wp
            dx = xp.reshape(dflat, (b, c_in, rows, wp))[
                :, :, padding:padding + h, padding:padding + w]
        return dx, grads

    return y, backprop
