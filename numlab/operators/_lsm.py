"""The Latent Spectral Model (Wu et al., ICML 2023; the authors' ``LSM_2D``), numlab's gradients."""

from __future__ import annotations

import json
import math

import numpy as np

from .. import _backend, _validation
from . import _conv, _layers
from ._fno import _check_dtype, _Operator

__all__ = ["LSM"]

_LOSSES = _layers.LOSSES
_FORMAT = "numlab.operators.LSM/1"
_KEY = "__numlab_lsm__"
_BN_MOMENTUM = 0.1
_BN_EPS = 1e-5


class _Chain:
    """Layers applied one after the other; :meth:`backprop` runs their closures in reverse.

    Gradients are returned under ``prefix + name`` (the ``state_dict`` names).
    """

    def __init__(self, train):
        self.train = train
        self.steps = []

    def __call__(self, prefix, layer, *args, **kwargs):
        y, bp = layer(*args, train=self.train, **kwargs)
        if self.train:
            self.steps.append((prefix, bp))
        return y

    def backprop(self, dy, grads):
        for prefix, bp in reversed(self.steps):
            dy, g = bp(dy)
            for name, value in g.items():
                grads[prefix + name] = value
            if dy is None:
                break
        return dy


def _widths(w, n_levels):
    """Channels of the encoder levels: w, 2w, ..., and the bottom level as the one above it
    (the authors' bilinear U-Net: ``down4 = Down(8w, 16w // 2)``)."""
    widths = [w * 2 ** i for i in range(n_levels - 1)]
    return widths + [widths[-1] if widths else w]


class LSM(_Operator):
    """Latent Spectral Model on 2-D grids (Wu et al. 2023; the authors' ``LSM_2D``).

    Maps functions sampled on a regular grid, ``x`` of shape ``(batch, in_channels, H, W)``,
    to ``(batch, out_channels, H, W)``::

        [x, grid] -> fc0 -> zero padding (bottom, right) -> U-Net encoder (n_levels levels:
        DoubleConv, then MaxPool + DoubleConv) -> a Neural Spectral Block on every level
        -> U-Net decoder (bilinear upsampling, concatenation with the level's block output,
        DoubleConv) -> outc (1x1) -> crop -> fc1 -> GELU -> fc2

    DoubleConv is ``[Conv3x3 (no bias) -> BatchNorm2d -> ReLU] x 2``. A Neural Spectral
    Block cuts its input into ``patch_size`` patches; in each patch ``n_tokens`` learned
    latent tokens attend to the pixels (keys and values from a 1x1 convolution, per head,
    ``softmax(latent k^T) v + latent``, no ``1/sqrt(d)`` scaling); the tokens go through
    the basis operators ``z + sum_k w_k sin(pi k z / K) + w'_k cos(pi k z / K)`` (``K =
    n_basis``, weights per channel); the pixels then attend to the tokens (queries from a
    1x1 convolution, residual), and the patches are put back together.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output functions (the two grid coordinates are appended
        to the input).
    hidden_channels : int, default 32
        The width ``w`` (the authors' ``d_model``): levels have ``w, 2w, 4w, ...`` channels.
    n_basis : int, default 12
        Sin and cos basis functions per token channel.
    n_tokens : int, default 4
        Latent tokens per patch.
    patch_size : (int, int), default (3, 3)
        Patch height and width; every level's grid must be divisible by it.
    padding : (int, int), default (0, 0)
        Zeros added at the bottom (axis 2) and right (axis 3) after ``fc0`` and cropped
        before ``fc1``. Note the order: numlab's axis order, the reverse of the authors'
        ``--padding`` (``F.pad``'s last-axis-first order).
    n_heads : int, default 8
        Attention heads (the authors fix 8); must divide ``hidden_channels``.
    n_levels : int, default 5
        Levels of the U-Net (the authors': 5). Level ``l`` sees the padded grid halved ``l``
        times (rounded down).
    dtype : {float32, float64}, default float32
    rng : None, int or numpy.random.Generator
        Initialisation, as PyTorch's: convolutions and linear layers ``U(+-1/sqrt(fan_in))``,
        batch norm weight 1 and bias 0, the blocks' latent tokens and basis weights
        ``U[0, 1) / width``.
    like : array, optional
        The parameters live in this array's library and device (NumPy when omitted).

    Attributes
    ----------
    params : dict of str to array
        The trainable parameters by the reference's ``state_dict`` names and with its
        shapes (``"inc.double_conv.0.weight"`` ``(w, w, 3, 3)``, ``"process1.latent"``
        ``(n_heads, n_tokens, w / n_heads)``, ``"fc0.weight"`` ``(w, in_channels + 2)``,
        ...). Every call reads ``params[name]`` afresh.
    buffers : dict of str to array
        The batch norms' ``running_mean``, ``running_var`` (model dtype) and
        ``num_batches_tracked`` (int64 scalar), updated by every training-mode forward
        pass (:meth:`loss_and_grad`) as PyTorch's ``BatchNorm2d`` (momentum 0.1, unbiased
        running variance); ``model(x)`` uses them (eval mode).
    config : dict
        The architecture (JSON-serialisable; :meth:`save` stores it).

    Notes
    -----
    The gradients are numlab's own: every layer (:mod:`numlab.operators._layers`,
    :mod:`numlab.operators._conv`) returns a closure computing its backward pass. The
    reference's parameter count is kept exactly: the authors' Darcy configuration
    (``hidden_channels=64, patch_size=(6, 6), padding=(11, 11)``) has 19,187,457
    parameters.

    References
    ----------
    H. Wu, T. Hu, H. Luo, J. Wang, M. Long, "Solving High-Dimensional PDEs with Latent
    Spectral Models", ICML 2023 (code: github.com/thuml/Latent-Spectral-Models).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> model = nl.operators.LSM(1, 1, hidden_channels=8, patch_size=(2, 2), n_heads=4, rng=0)
    >>> x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    >>> model(x).shape
    (2, 1, 32, 32)
    >>> loss, grads = model.loss_and_grad(x, np.sin(x))
    >>> grads["process1.latent"].shape
    (4, 4, 2)
    """

    def __init__(self, in_channels, out_channels, hidden_channels=32, *, n_basis=12,
                 n_tokens=4, patch_size=(3, 3), padding=(0, 0), n_heads=8, n_levels=5,
                 dtype=None, rng=None, like=None):
        self.config = {
            "in_channels": _validation.check_int(in_channels, "in_channels", low=1),
            "out_channels": _validation.check_int(out_channels, "out_channels", low=1),
            "hidden_channels": _validation.check_int(hidden_channels, "hidden_channels", low=1),
            "n_basis": _validation.check_int(n_basis, "n_basis", low=1),
            "n_tokens": _validation.check_int(n_tokens, "n_tokens", low=1),
            "patch_size": _pair(patch_size, "patch_size", low=1),
            "padding": _pair(padding, "padding", low=0),
            "n_heads": _validation.check_int(n_heads, "n_heads", low=1),
            "n_levels": _validation.check_int(n_levels, "n_levels", low=1),
            "dtype": _check_dtype(dtype),
        }
        w, heads = self.config["hidden_channels"], self.config["n_heads"]
        if w % heads:
            raise ValueError(f"`n_heads` must divide `hidden_channels`={w}; got {heads}")
        like = _validation.check_like(like)
        host, buffers = _init_params(self.config, _validation.check_rng(rng))
        xp = _backend.namespace(like)
        device = None if like is None else _backend.device(like)
        self.params = {k: _backend.asarray(v, xp=xp, device=device) for k, v in host.items()}
        self.buffers = {k: _backend.asarray(v, xp=xp, device=device) for k, v in buffers.items()}

    # ------------------------------------------------------------------ properties

    # ------------------------------------------------------------------ forward / backward

    def __call__(self, x):
        """Evaluate the operator (eval mode: batch norm with the running statistics).

        Parameters
        ----------
        x : array, shape (batch, in_channels, H, W)
            Cast to the model's dtype.

        Returns
        -------
        array, shape (batch, out_channels, H, W)
            The prediction.
        """
        x = self._check_input(x, "x")
        y, _ = self._forward(x, train=False)
        return y

    def loss_and_grad(self, x, y, loss="l2"):
        """Relative loss of the training-mode prediction on ``x`` against ``y``, and its gradient.

        The forward pass is in training mode (batch statistics), so it also updates
        :attr:`buffers`, as a PyTorch training step does.

        Parameters
        ----------
        x : array, shape (batch, in_channels, H, W)
            Input functions.
        y : array, shape (batch, out_channels, H, W)
            Target functions.
        loss : {"l2", "h1", "l2sq"}
            As :meth:`numlab.operators.FNO.loss_and_grad`.

        Returns
        -------
        loss : float
            The relative error, averaged over samples and output channels.
        grads : dict of str to array
            Same keys, shapes and dtypes as :attr:`params`.
        """
        _validation.check_option(loss, "loss", tuple(_LOSSES))
        x = self._check_input(x, "x")
        y = self._check_input(y, "y", like=x)
        pred, backprop = self._forward(x, train=True)
        value, loss_backprop = _LOSSES[loss](pred, y, train=True)
        return float(value), backprop(loss_backprop())

    def _check_input(self, a, name, like=None):
        a = _validation.check_array(a, name, ndim=4)
        xp = _backend.namespace(**{name: a, "params": next(iter(self.params.values()))})
        channels = self.config["out_channels" if like is not None else "in_channels"]
        what = "out_channels" if like is not None else "in_channels"
        if like is not None and (a.shape[0] != like.shape[0] or a.shape[2:] != like.shape[2:]):
            raise ValueError(f"`{name}` must have the batch size and grid of `x`, shape "
                             f"{(like.shape[0], channels, *like.shape[2:])}; got {tuple(a.shape)}")
        if a.shape[1] != channels:
            raise ValueError(f"`{name}` must have {what}={channels} channels along axis 1 (layout "
                             f"(batch, channels, H, W)); got shape {tuple(a.shape)}")
        if like is None:
            self._check_grid(tuple(a.shape[2:]), name)
        if a.dtype != self.dtype:
            a = xp.astype(a, self.dtype)
        return a

    def _check_grid(self, spatial, name):
        cfg = self.config
        padded = [n + p for n, p in zip(spatial, cfg["padding"], strict=True)]
        sizes = list(padded)
        for level in range(cfg["n_levels"]):
            if any(s < 1 or s % p for s, p in zip(sizes, cfg["patch_size"], strict=True)):
                raise ValueError(
                    f"`{name}` must have a grid that, after padding by {tuple(cfg['padding'])}, "
                    f"is divisible by patch_size={tuple(cfg['patch_size'])} at every one of the "
                    f"{cfg['n_levels']} levels (halved, rounded down, at each); got grid "
                    f"{spatial} -> padded {tuple(padded)}, level {level} is {tuple(sizes)}")
            sizes = [s // 2 for s in sizes]

    def _forward(self, x, *, train):
        """Forward pass; with ``train`` (batch statistics, running statistics updated) also
        the closure ``dy -> grads`` over all params."""
        p = self.params
        n_levels = self.config["n_levels"]
        height, width = x.shape[2:]
        stem, feats, downs = self._encode(x, n_levels, train=train)
        blocks, skips = [], []
        for i in range(n_levels):
            chain = _Chain(train)
            skips.append(chain(f"process{i + 1}.", self._spectral_block, feats[i],
                               f"process{i + 1}."))
            blocks.append(chain)
        x = skips[-1]
        ups = []
        for j in range(1, n_levels):
            chain = _Chain(train)
            x = chain(f"up{j}.", self._up, x, skips[n_levels - 1 - j], f"up{j}.")
            ups.append(chain)
        head = _Chain(train)
        x = head("outc.conv.", _conv.conv2d, x, p["outc.conv.weight"], p["outc.conv.bias"],
                 padding=0)
        x = head("", _crop, x, (height, width))
        x = head("fc1.", _layers.linear, x, p["fc1.weight"], p["fc1.bias"])
        x = head("", _layers.gelu, x)
        x = head("fc2.", _layers.linear, x, p["fc2.weight"], p["fc2.bias"])
        if not train:
            return x, None

        def backprop(dy):
            grads = {}
            dx = head.backprop(dy, grads)
            dskips = [None] * n_levels
            for j in range(n_levels - 1, 0, -1):
                dx, dskips[n_levels - 1 - j] = ups[j - 1].backprop(dx, grads)
            dskips[n_levels - 1] = dx
            dfeat = None
            for i in range(n_levels - 1, -1, -1):
                d = blocks[i].backprop(dskips[i], grads)
                if dfeat is not None:
                    d += dfeat
                if i > 0:
                    dfeat = downs[i].backprop(d, grads)
            stem.backprop(d, grads)
            return grads

        return x, backprop

    # ------------------------------------------------------------------ blocks

    def _encode(self, x, n_levels, *, train):
        """The stem and the first ``n_levels`` encoder levels: ``(stem, feats, downs)``, the
        chains of the stem and of each level (``downs[0]`` is None) and the level features."""
        p = self.params
        pad_h, pad_w = self.config["padding"]
        stem = _Chain(train)
        x = stem("", _grid_concat, x)
        x = stem("fc0.", _layers.linear, x, p["fc0.weight"], p["fc0.bias"], input_grad=False)
        x = stem("", _conv.pad2d, x, (0, pad_w, 0, pad_h))
        feats = [stem("inc.", self._double_conv, x, "inc.")]
        downs = [None]
        for i in range(1, n_levels):
            chain = _Chain(train)
            h = chain("", _conv.max_pool2d, feats[-1])
            pre = f"down{i}.maxpool_conv.1."
            feats.append(chain(pre, self._double_conv, h, pre))
            downs.append(chain)
        return stem, feats, downs

    def _double_conv(self, x, prefix, *, train):
        """``[Conv3x3 -> BatchNorm2d -> ReLU] x 2``; gradient names relative to ``prefix``."""
        p = self.params
        chain = _Chain(train)
        for conv, bn in (("double_conv.0.", "double_conv.1."),
                         ("double_conv.3.", "double_conv.4.")):
            x = chain(conv, _conv.conv2d, x, p[prefix + conv + "weight"], padding=1)
            x = chain(bn, self._batch_norm, x, prefix + bn)
            x = chain("", _conv.relu, x)
        if not train:
            return x, None

        def backprop(dy):
            grads = {}
            return chain.backprop(dy, grads), grads

        return x, backprop

    def _batch_norm(self, x, prefix, *, train):
        p, buf = self.params, self.buffers
        y, bp, stats = _conv.batch_norm2d(
            x, p[prefix + "weight"], p[prefix + "bias"], buf[prefix + "running_mean"],
            buf[prefix + "running_var"], momentum=_BN_MOMENTUM, eps=_BN_EPS, train=train)
        if train:
            buf[prefix + "running_mean"] = stats["running_mean"]
            buf[prefix + "running_var"] = stats["running_var"]
            buf[prefix + "num_batches_tracked"] = buf[prefix + "num_batches_tracked"] + 1
        return y, bp

    def _up(self, x, skip, prefix, *, train):
        """Bilinear x2 upsampling of ``x``, zero padding to ``skip``'s grid, concatenation
        ``[skip, x]``, DoubleConv. Backprop: ``dy -> ((dx, dskip), grads)``."""
        chain = _Chain(train)
        up = chain("", _conv.upsample_bilinear2d, x, 2)
        up = chain("", _conv.pad_to, up, tuple(skip.shape[2:]))
        cat, bp_cat = _conv.concat_channels((skip, up), train=train)
        y, bp_conv = self._double_conv(cat, prefix + "conv.", train=train)
        if not train:
            return y, None

        def backprop(dy):
            dcat, grads = bp_conv(dy)
            (dskip, dup), _ = bp_cat(dcat)
            dx = chain.backprop(dup, grads)
            return (dx, dskip), {"conv." + k: v for k, v in grads.items()}

        return y, backprop

    def _spectral_block(self, x, prefix, *, train):
        """Neural Spectral Block on ``x`` (batch, C, H, W); gradient names relative to
        ``prefix``."""
        xp = self._xp
        p = self.params
        cfg = self.config
        heads, n_tokens = cfg["n_heads"], cfg["n_tokens"]
        p1, p2 = cfg["patch_size"]
        b, c, h, w = x.shape
        d = c // heads
        nh, nw = h // p1, w // p2
        n = b * nh * nw
        length = p1 * p2
        patches, kv, bp_kv = self._patch_keys_values(x, prefix, train=train)
        # (1) encoder: the latent tokens attend to the patch.
        latent = p[prefix + "latent"]
        q_lat = xp.broadcast_to(latent[None, ...], (n, heads, n_tokens, d))
        z, bp_enc = _conv.attention(q_lat, kv[0, ...], kv[1, ...], train=train)
        z = z + latent
        z = xp.reshape(xp.permute_dims(z, (0, 1, 3, 2)), (n, c, n_tokens))
        # (2) transition: z + sum_m basis_m(z) weights[:, m].
        basis, bp_basis = _conv.sin_cos_basis(z, cfg["n_basis"], train=train)
        weights = p[prefix + "weights"]
        z2 = xp.matmul(basis, weights[:, :, None])[..., 0] + z
        # (3) decoder: pixels attend to the tokens.
        q, bp_q = _conv.conv2d(patches, p[prefix + "decoder_attn.weight"],
                               p[prefix + "decoder_attn.bias"], padding=0, train=train)
        q = xp.permute_dims(xp.reshape(q, (n, heads, d, length)), (0, 1, 3, 2))
        tokens = xp.permute_dims(xp.reshape(z2, (n, heads, d, n_tokens)), (0, 1, 3, 2))
        out, bp_dec = _conv.attention(q, tokens, tokens, train=train)
        out = xp.reshape(xp.permute_dims(out, (0, 1, 3, 2)), (n, c, p1, p2)) + patches
        y = xp.reshape(
            xp.permute_dims(xp.reshape(out, (b, nh, nw, c, p1, p2)), (0, 3, 1, 4, 2, 5)),
            (b, c, h, w))
        if not train:
            return y, None

        def backprop(dy):
            grads = {}
            dout = xp.reshape(
                xp.permute_dims(xp.reshape(dy, (b, c, nh, p1, nw, p2)), (0, 2, 4, 1, 3, 5)),
                (n, c, p1, p2))
            dpatches = xp.asarray(dout, copy=True)  # the residual
            datt = xp.permute_dims(xp.reshape(dout, (n, heads, d, length)), (0, 1, 3, 2))
            (dq, dk, dv), _ = bp_dec(datt)
            dtok = dk + dv
            dz2 = xp.reshape(xp.permute_dims(dtok, (0, 1, 3, 2)), (n, c, n_tokens))
            dq = xp.reshape(xp.permute_dims(dq, (0, 1, 3, 2)), (n, c, p1, p2))
            ddx, g = bp_q(dq)
            dpatches += ddx
            grads.update({"decoder_attn." + k: v for k, v in g.items()})
            # transition
            # weights[i, m] gets sum over patches and tokens of basis[:, i, :, m] dz2[:, i, :].
            basis_c = xp.reshape(xp.permute_dims(basis, (1, 0, 2, 3)), (c, n * n_tokens, -1))
            dz2_c = xp.reshape(xp.permute_dims(dz2, (1, 0, 2)), (c, 1, n * n_tokens))
            grads["weights"] = xp.matmul(dz2_c, basis_c)[:, 0, :]
            dbasis = dz2[..., None] * weights[:, None, :]
            dz, _ = bp_basis(dbasis)
            dz = dz + dz2
            # encoder
            dz = xp.permute_dims(xp.reshape(dz, (n, heads, d, n_tokens)), (0, 1, 3, 2))
            (dq_lat, dk, dv), _ = bp_enc(dz)
            grads["latent"] = xp.sum(dq_lat, axis=0) + xp.sum(dz, axis=0)
            dkv = xp.stack((dk, dv))  # (2, n, heads, length, d)
            dkv = xp.reshape(xp.permute_dims(dkv, (1, 2, 4, 0, 3)), (n, 2 * c, p1, p2))
            ddx, g = bp_kv(dkv)
            dpatches += ddx
            grads.update({"encoder_attn." + k: v for k, v in g.items()})
            dx = xp.reshape(
                xp.permute_dims(xp.reshape(dpatches, (b, nh, nw, c, p1, p2)),
                                (0, 3, 1, 4, 2, 5)),
                (b, c, h, w))
            return dx, grads

        return y, backprop

    def _patch_keys_values(self, x, prefix, *, train):
        """Patches of ``x`` (batch, C, H, W) and their keys and values for the latent tokens.

        Returns ``patches`` (batch H/p1 W/p2, C, p1, p2), ``kv`` (2, batch H/p1 W/p2, heads,
        p1 p2, C / heads) and the backward closure of the ``encoder_attn`` convolution.
        """
        xp = self._xp
        p1, p2 = self.config["patch_size"]
        heads = self.config["n_heads"]
        b, c, h, w = x.shape
        nh, nw = h // p1, w // p2
        n = b * nh * nw
        # (b, c, h/p1, p1, w/p2, p2) -> (b h/p1 w/p2, c, p1, p2).
        patches = xp.reshape(
            xp.permute_dims(xp.reshape(x, (b, c, nh, p1, nw, p2)), (0, 2, 4, 1, 3, 5)),
            (n, c, p1, p2))
        kv, bp_kv = _conv.conv2d(patches, self.params[prefix + "encoder_attn.weight"],
                                 self.params[prefix + "encoder_attn.bias"], padding=0,
                                 train=train)
        # The key and value of channel i are output channels 2i and 2i + 1 (the authors'
        # interleaving).
        kv = xp.permute_dims(xp.reshape(kv, (n, heads, c // heads, 2, p1 * p2)),
                             (3, 0, 1, 4, 2))
        return patches, kv, bp_kv

    # ------------------------------------------------------------------ inspection

    def latent_attention(self, x, level=0):
        """How the latent tokens of one Neural Spectral Block attend to the pixels (eval mode).

        In every patch each token is a softmax-weighted average of the patch's pixels (per
        head); this returns those weights, put back on the level's grid.

        Parameters
        ----------
        x : array, shape (batch, in_channels, H, W)
            Input functions, as for ``model(x)``.
        level : int, default 0
            The U-Net level of the block: 0 is the padded input grid (block ``process1``),
            level ``l`` the grid halved ``l`` times (``process{l + 1}``).

        Returns
        -------
        array, shape (batch, n_heads, n_tokens, H_l, W_l)
            ``[b, h, t, i, j]`` is the weight of pixel ``(i, j)`` in token ``t`` of head
            ``h``; the weights of each token sum to 1 over every patch. The grid is the
            level's, padding included (``H_0 = H + padding[0]``).
        """
        cfg = self.config
        level = _validation.check_int(level, "level", low=0, high=cfg["n_levels"] - 1)
        x = self._check_input(x, "x")
        xp = self._xp
        _, feats, _ = self._encode(x, level + 1, train=False)
        h = feats[level]
        _, kv, _ = self._patch_keys_values(h, f"process{level + 1}.", train=False)
        heads, n_tokens = cfg["n_heads"], cfg["n_tokens"]
        p1, p2 = cfg["patch_size"]
        b, _, height, width = h.shape
        nh, nw = height // p1, width // p2
        latent = self.params[f"process{level + 1}.latent"]
        weights, _ = _conv.softmax_lastaxis(xp.matmul(latent, xp.matrix_transpose(kv[0, ...])))
        # (b nh nw, heads, tokens, p1 p2) -> (b, heads, tokens, nh p1, nw p2)
        weights = xp.reshape(weights, (b, nh, nw, heads, n_tokens, p1, p2))
        weights = xp.permute_dims(weights, (0, 3, 4, 1, 5, 2, 6))
        return xp.reshape(weights, (b, heads, n_tokens, height, width))

    # ------------------------------------------------------------------ devices, files

    def to(self, like):
        """Move the parameters and buffers to the library and device of ``like``, in place.

        Parameters
        ----------
        like : array
            An array of the target library and device.

        Returns
        -------
        LSM
            ``self``.
        """
        super().to(like)
        xp, device = _backend.namespace(like), _backend.device(like)
        for name, value in self.buffers.items():
            self.buffers[name] = _backend.asarray(_backend.to_numpy(value), xp=xp, device=device)
        return self

    def load_buffers(self, arrays):
        """Replace the batch-norm statistics.

        Parameters
        ----------
        arrays : dict of str to array
            Like :attr:`buffers` (any library); cast to the current dtypes.
        """
        missing = sorted(set(self.buffers) - set(arrays))
        if missing:
            raise ValueError("`buffers` must have the names of this architecture; "
                             f"missing {missing}")
        xp = self._xp
        device = _backend.device(next(iter(self.params.values())))
        for name, current in self.buffers.items():
            value = np.asarray(_backend.to_numpy(arrays[name]))
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"`buffers[{name!r}]` must have shape {tuple(current.shape)}; "
                                 f"got {tuple(value.shape)}")
            want = _backend.numpy_dtype(current.dtype, xp)
            self.buffers[name] = _backend.asarray(value.astype(want), xp=xp, device=device)

    def save(self, path):
        """Save the architecture, parameters and batch-norm statistics (``.npz``, no pickle).

        FNO's scheme: one array per parameter and buffer, by name, and the architecture as
        a JSON string under ``"__numlab_lsm__"``; :meth:`load` rebuilds the model.

        Parameters
        ----------
        path : str or path-like
            The file, written at exactly this path.
        """
        arrays = {name: _backend.to_numpy(v) for name, v in {**self.params, **self.buffers}.items()}
        arrays[_KEY] = np.array(json.dumps({"format": _FORMAT, **self.config}))
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path, *, like=None):
        """Load an :class:`LSM` saved by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.
        like : array, optional
            Put the parameters in this array's library and device (NumPy by default).

        Returns
        -------
        LSM
            The saved model, batch-norm statistics included.
        """
        like = _validation.check_like(like)
        with np.load(path, allow_pickle=False) as data:
            if _KEY not in data.files:
                raise ValueError(f"`path` must be a file written by LSM.save; {path!r} has no "
                                 f"{_KEY!r} entry")
            config = json.loads(str(data[_KEY]))
            fmt = config.pop("format", None)
            if fmt != _FORMAT:
                raise ValueError(f"`path` holds an unknown format {fmt!r} (expected {_FORMAT!r})")
            arrays = {name: data[name] for name in data.files if name != _KEY}
        model = cls(**config, rng=0, like=like)
        model.load_params({k: v for k, v in arrays.items() if k in model.params})
        model.load_buffers({k: v for k, v in arrays.items() if k in model.buffers})
        return model


def _pair(value, name, low):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"`{name}` must be an integer or a pair of integers (height, width); "
                         f"got {value!r}")
    return [_validation.check_int(v, name, low=low) for v in value]


def _grid_concat(x, *, train=False):
    """Append the coordinates ``linspace(0, 1, H)`` (along axis 2) and ``linspace(0, 1, W)``
    (along axis 3), endpoints included, as two channels (the authors' ``get_grid``)."""
    xp = _backend.namespace(x)
    b, c, h, w = x.shape
    gx, gy = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    grid = _backend.asarray(np.stack((gx, gy))[None], xp=xp, device=_backend.device(x),
                            dtype=x.dtype)
    y = xp.concat((x, xp.broadcast_to(grid, (b, 2, h, w))), axis=1)
    return y, ((lambda dy: (dy[:, :c, ...], {})) if train else None)


def _crop(x, spatial, *, train=False):
    """Keep the top-left ``spatial`` grid (undoes the bottom/right padding)."""
    xp = _backend.namespace(x)
    h, w = spatial
    if tuple(x.shape[2:]) == (h, w):
        return _layers.identity(x, train=train)
    y = x[:, :, :h, :w]
    if not train:
        return y, None

    def backprop(dy):
        dx = xp.zeros(x.shape, dtype=dy.dtype, device=_backend.device(dy))
        dx[:, :, :h, :w] = dy
        return dx, {}

    return y, backprop


def _init_params(cfg, rng):
    """Host (NumPy) parameters initialised as PyTorch initialises the reference; buffers."""
    real = np.dtype(cfg["dtype"])
    w, n_levels = cfg["hidden_channels"], cfg["n_levels"]
    params, buffers = {}, {}

    def uniform(name, bound, shape):
        params[name] = rng.uniform(-bound, bound, shape).astype(real)

    def conv(name, c_out, c_in, k, bias):
        bound = 1.0 / math.sqrt(c_in * k * k)  # kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))
        uniform(name + "weight", bound, (c_out, c_in, k, k))
        if bias:
            uniform(name + "bias", bound, (c_out,))

    def linear(name, c_out, c_in):
        uniform(name + "weight", 1.0 / math.sqrt(c_in), (c_out, c_in))
        uniform(name + "bias", 1.0 / math.sqrt(c_in), (c_out,))

    def double_conv(prefix, c_in, c_out, c_mid=None):
        c_mid = c_mid or c_out
        for conv_i, bn_i, ci, co in ((0, 1, c_in, c_mid), (3, 4, c_mid, c_out)):
            conv(f"{prefix}double_conv.{conv_i}.", co, ci, 3, bias=False)
            bn = f"{prefix}double_conv.{bn_i}."
            params[bn + "weight"] = np.ones(co, dtype=real)
            params[bn + "bias"] = np.zeros(co, dtype=real)
            buffers[bn + "running_mean"] = np.zeros(co, dtype=real)
            buffers[bn + "running_var"] = np.ones(co, dtype=real)
            buffers[bn + "num_batches_tracked"] = np.zeros((), dtype=np.int64)

    widths = _widths(w, n_levels)
    double_conv("inc.", w, w)
    for i in range(1, n_levels):
        double_conv(f"down{i}.maxpool_conv.1.", widths[i - 1], widths[i])
    for j in range(1, n_levels):
        skip = widths[n_levels - 1 - j]
        double_conv(f"up{j}.conv.", 2 * skip, w if j == n_levels - 1 else skip // 2, skip)
    conv("outc.conv.", w, w, 1, bias=True)
    for i, c in enumerate(widths):
        pre = f"process{i + 1}."
        params[pre + "weights"] = (rng.random((c, 2 * cfg["n_basis"])) / c).astype(real)
        params[pre + "latent"] = (rng.random((cfg["n_heads"], cfg["n_tokens"], c // cfg["n_heads"]))
                                  / c).astype(real)
        conv(pre + "encoder_attn.", 2 * c, c, 1, bias=True)
        conv(pre + "decoder_attn.", c, c, 1, bias=True)
    linear("fc0.", w, cfg["in_channels"] + 2)
    linear("fc1.", 128, w)
    linear("fc2.", cfg["out_channels"], 128)
    return params, buffers
