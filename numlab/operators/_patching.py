"""Multi-grid domain decomposition of MG-TFNO: :class:`MultigridPatching2D` and the
:class:`MultigridModel` that trains a neural operator on its patches.

A field of shape ``(batch, C, H, W)`` on a periodic domain is cut into ``n x n`` patches,
``n = 2**levels``. Every patch carries, besides its own pixels (plus a margin of
``round(padding_fraction * H)`` / ``round(padding_fraction * W)`` pixels taken from its
neighbours, wrapping around the domain), ``levels`` coarser views of the field: at level
``l`` the field subsampled by ``2**l``, cut to a window of the same pixel size centred on
the patch, so the context widens by ``2**l`` as the resolution drops. The views are
concatenated along the channels; the model sees ``C * (levels + 1)`` channels on a grid
``n`` times smaller per axis. Its output patches are cropped and stitched back.

Every operation here is a gather or its adjoint (a scatter-add), written with the array
API's ``take``, reshapes and matrix products by 0/1 selection matrices, so the same code
runs on NumPy, CuPy and array-api-strict, and gradients flow both ways.

References
----------
J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-Grid Tensorized
Fourier Neural Operator for High-Resolution PDEs", TMLR 2024 (arXiv 2310.00120);
neuraloperator 2.0's ``neuralop.training.patching.MultigridPatching2D``.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from .. import _backend
from .._validation import check_array, check_int, check_option, check_scalar
from . import _layers
from ._fno import _Operator

__all__ = ["MultigridPatching2D", "MultigridModel"]

_LOSSES = _layers.LOSSES


@functools.lru_cache(maxsize=256)
def _window_indices(size, n, pad, level):
    """Indices into an axis of ``size`` points of the ``n`` windows of level ``level``.

    Returns a NumPy int64 array of shape ``(n * (size // n + 2 * pad),)``: window ``i``
    (patch ``i`` along this axis) is the slice ``[i * win:(i + 1) * win]``.

    neuraloperator's construction: subsample by ``s = 2**level``, circular-pad by
    ``s_pad``, unfold windows of ``win = patch + 2 pad`` points with stride
    ``patch // s``. Read as indices: window ``i`` holds the subsampled points
    ``(i * stride - s_pad + k) mod (size / s)``, ``k = 0 .. win - 1``, i.e. the full-grid
    points ``s`` times those. At level 0 (``s = 1``) this is the patch with its margin.
    """
    patch = size // n
    sub = 2**level
    n_sub = size // sub
    stride = patch // sub
    # neuraloperator's padding: enough for n windows of `patch` points at `stride`,
    # split evenly between both sides, plus the level-0 margin.
    s_pad = math.ceil((patch + (n - 1) * stride - n_sub) / 2.0) + pad
    win = patch + 2 * pad
    start = np.arange(n)[:, None] * stride - s_pad
    return (sub * ((start + np.arange(win)[None, :]) % n_sub)).reshape(-1)


class MultigridPatching2D:
    """Multi-grid domain decomposition of a periodic 2-D field (MG-TFNO's patching).

    ``patch`` maps ``x`` of shape ``(B, C, H, W)`` to ``(B * n**2, C * (levels + 1), h, w)``
    with ``n = 2**levels``, ``h = H / n + 2 p_h``, ``w = W / n + 2 p_w`` and
    ``p_h = round(padding_fraction * H)``, ``p_w = round(padding_fraction * W)``:

    - channels ``[0, C)``: patch ``(i, j)`` of the field (rows ``i H/n ... (i+1) H/n``,
      columns likewise) with a margin of ``p_h`` rows and ``p_w`` columns from its
      neighbours, wrapping around the periodic domain (circular padding);
    - channels ``[l C, (l+1) C)``, ``l = 1 .. levels``: the field subsampled by ``2**l``
      (``x[:, :, ::2**l, ::2**l]``), circular-padded and cut to a window of ``h x w``
      points roughly centred on the patch: coarser, wider context of the same pixel size.

    Patches are stacked along the batch axis, sample-major then row-major: sample ``b``,
    patch ``(i, j)`` is entry ``b * n**2 + i * n + j``. ``unpatch`` crops the margins of
    the model's output patches ``(B * n**2, C', h, w)`` and stitches them into ``(B, C',
    H, W)``. This is neuraloperator 2.0's ``MultigridPatching2D`` (``_make_mg_patches``
    and ``unpatch(..., evaluation=True)``) as functions of arrays; ``levels=0`` is the
    identity (no patches, no margin), as there.

    Parameters
    ----------
    levels : int, default 0
        Number of coarse levels; the field is cut into ``2**levels`` patches per axis.
    padding_fraction : float or (float, float), default 0.0
        Margin of every patch as a fraction of the full grid (height, width), in
        ``[0, 0.5]``.
    stitching : bool, default True
        How :class:`MultigridModel` trains: the loss on the stitched full-domain output
        (True), or patch-wise against the target cut into the same patches (False,
        neuraloperator's ``stitching=False``). Inference always stitches.

    Attributes
    ----------
    n_patches : int
        ``2**levels``, patches per axis.

    Notes
    -----
    The grid must split into ``n`` equal patches per axis with at least ``n`` points each
    (``H`` and ``W`` divisible by ``2**levels`` and at least ``4**levels``), so that every
    coarse window moves by at least one point from one patch to the next.

    ``patch_adjoint`` and ``unpatch_adjoint`` are the transposes of the two linear maps
    (the gradient of a loss with respect to the input, and from the stitched output to
    the output patches: zero in the margins). Both infer the full grid from the patch
    size, which determines it (``H/n + 2 round(f H)`` grows strictly with ``H``).

    References
    ----------
    J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-Grid Tensorized
    Fourier Neural Operator for High-Resolution PDEs", TMLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> mg = nl.operators.MultigridPatching2D(levels=1, padding_fraction=0.125)
    >>> x = np.random.default_rng(0).standard_normal((3, 2, 64, 48))
    >>> xp = mg.patch(x)
    >>> xp.shape  # 4 patches per sample; 2 levels x 2 channels; 32 + 2*8, 24 + 2*6
    (12, 4, 48, 36)
    >>> bool((mg.unpatch(xp)[:, :2] == x).all())
    True
    """

    def __init__(self, levels=0, padding_fraction=0.0, stitching=True):
        self.levels = check_int(levels, "levels", low=0)
        if isinstance(padding_fraction, numbers.Real):
            padding_fraction = (padding_fraction, padding_fraction)
        if not isinstance(padding_fraction, (tuple, list)) or len(padding_fraction) != 2:
            raise TypeError(
                "`padding_fraction` must be a real number or a pair (height, width); "
                f"got {padding_fraction!r}"
            )
        self.padding_fraction = tuple(
            check_scalar(f, "padding_fraction", low=0.0, low_inclusive=True, high=0.5)
            for f in padding_fraction
        )
        if not isinstance(stitching, (bool, np.bool_)):
            raise TypeError(f"`stitching` must be True or False; got {stitching!r}")
        self.stitching = bool(stitching)

    def __repr__(self):
        return (f"MultigridPatching2D(levels={self.levels}, padding_fraction="
                f"{self.padding_fraction}, stitching={self.stitching})")

    @property
    def n_patches(self) -> int:
        """Patches per axis, ``2**levels``."""
        return 2**self.levels

    # ------------------------------------------------------------------ geometry

    def padding(self, shape):
        """The margin ``(p_h, p_w)`` in points of the patches of a ``shape = (H, W)`` grid.

        Python's ``round`` of ``padding_fraction * H`` (as neuraloperator); ``(0, 0)`` when
        ``levels = 0``.

        Parameters
        ----------
        shape : tuple of int
            The full grid ``(H, W)``.

        Returns
        -------
        tuple of int
            ``(p_h, p_w)``.
        """
        if self.levels == 0:
            return (0, 0)
        return tuple(int(round(f * s)) for f, s in zip(self.padding_fraction, shape, strict=True))

    def _check_grid(self, shape):
        n = self.n_patches
        for s in shape:
            if s % n or s < n * n:
                deepest = 0
                while all(t % 2 ** (deepest + 1) == 0 and t >= 4 ** (deepest + 1)
                          for t in shape):
                    deepest += 1
                raise ValueError(
                    f"`levels` must be at most {deepest} for a {shape[0]}x{shape[1]} grid "
                    f"(each axis divisible by 2**levels and at least 4**levels points); "
                    f"got {self.levels}"
                )

    def _grid_from_patches(self, patched_shape, name):
        """The full grid ``(H, W)`` whose patches are ``patched_shape = (h, w)``."""
        n = self.n_patches
        grid = []
        for axis, (h, f) in enumerate(zip(patched_shape, self.padding_fraction, strict=True)):
            # h = H / n + 2 round(f H) grows strictly with the patch size H / n: search it.
            found = [p for p in range(1, h + 1) if p + 2 * int(round(f * n * p)) == h]
            if not found:
                raise ValueError(
                    f"`{name}` must hold patches made by this patching (levels={self.levels}, "
                    f"padding_fraction={self.padding_fraction}): no grid gives patches of "
                    f"{h} points along axis {axis + 2}; got shape {patched_shape}"
                )
            grid.append(n * found[0])
        return tuple(grid)

    def _check(self, a, name, like=None):
        a = check_array(a, name, ndim=4, dtype=None, finite=False)
        xp = _backend.namespace(a)
        if not xp.isdtype(a.dtype, "real floating"):
            raise TypeError(f"`{name}` must have a real floating dtype; got {a.dtype}")
        return a, xp

    # ------------------------------------------------------------------ patch

    def patch(self, x):
        """Cut ``x`` into multi-grid patches.

        Parameters
        ----------
        x : array, shape (B, C, H, W)
            A real floating field on a periodic grid.

        Returns
        -------
        array, shape (B * n**2, C * (levels + 1), H / n + 2 p_h, W / n + 2 p_w)
            Same dtype and device as ``x``; ``n = 2**levels``, ``(p_h, p_w) =
            padding((H, W))``.
        """
        x, xp = self._check(x, "x")
        if self.levels == 0:
            return x
        shape = tuple(x.shape[2:])
        self._check_grid(shape)
        n = self.n_patches
        pads = self.padding(shape)
        dev = _backend.device(x)
        batch, channels = x.shape[:2]
        win = [s // n + 2 * p for s, p in zip(shape, pads, strict=True)]
        out = []
        for level in range(self.levels + 1):
            rows, cols = (
                _backend.asarray(_window_indices(s, n, p, level), xp=xp, device=dev)
                for s, p in zip(shape, pads, strict=True)
            )
            blocks = xp.take(xp.take(x, rows, axis=2), cols, axis=3)
            out.append(self._blocks_to_batch(blocks, xp, batch, channels, win))
        return xp.concat(out, axis=1)

    def patch_adjoint(self, g):
        """Transpose of :meth:`patch`: the gradient with respect to ``x`` from ``g``.

        Parameters
        ----------
        g : array, shape (B * n**2, C * (levels + 1), h, w)
            The gradient of a loss with respect to ``patch(x)``.

        Returns
        -------
        array, shape (B, C, H, W)
            Every point of ``x`` collects the entries of ``g`` it was copied to.
        """
        g, xp = self._check(g, "g")
        if self.levels == 0:
            return g
        n = self.n_patches
        win = tuple(g.shape[2:])
        shape = self._grid_from_patches(win, "g")
        self._check_grid(shape)
        pads = self.padding(shape)
        levels = self.levels + 1
        if g.shape[0] % (n * n) or g.shape[1] % levels:
            raise ValueError(
                f"`g` must have a multiple of n**2 = {n * n} patches on axis 0 and of "
                f"levels + 1 = {levels} channel groups on axis 1; got shape {tuple(g.shape)}"
            )
        batch, channels = g.shape[0] // (n * n), g.shape[1] // levels
        dev = _backend.device(g)
        dx = None
        for level in range(levels):
            blocks = self._batch_to_blocks(
                g[:, level * channels:(level + 1) * channels, ...], xp, batch, channels, win
            )
            # Scatter-add of the gather: dx = S_rows^T @ blocks @ S_cols with the 0/1
            # selection matrices (the array API has no scatter-add).
            s_rows, s_cols = (
                self._selection(_window_indices(s, n, p, level), s, xp, g.dtype, dev)
                for s, p in zip(shape, pads, strict=True)
            )
            term = xp.matmul(xp.matmul(xp.matrix_transpose(s_rows), blocks), s_cols)
            dx = term if dx is None else dx + term
        return dx

    # ------------------------------------------------------------------ unpatch

    def unpatch(self, y):
        """Crop the margins of output patches and stitch them into full fields.

        Parameters
        ----------
        y : array, shape (B * n**2, C', H / n + 2 p_h, W / n + 2 p_w)
            Patches in :meth:`patch`'s order (any number of channels ``C'``).

        Returns
        -------
        array, shape (B, C', H, W)
            ``unpatch(patch(x))[:, :C]`` is ``x`` exactly.
        """
        y, xp = self._check(y, "y")
        if self.levels == 0:
            return y
        n = self.n_patches
        shape = self._grid_from_patches(tuple(y.shape[2:]), "y")
        self._check_grid(shape)
        if y.shape[0] % (n * n):
            raise ValueError(
                f"`y` must have a multiple of n**2 = {n * n} patches on axis 0; "
                f"got shape {tuple(y.shape)}"
            )
        return self._stitch(self.crop(y), shape)

    def unpatch_adjoint(self, g):
        """Transpose of :meth:`unpatch`: full-field gradients to output-patch gradients.

        Parameters
        ----------
        g : array, shape (B, C', H, W)
            The gradient of a loss with respect to the stitched output.

        Returns
        -------
        array, shape (B * n**2, C', H / n + 2 p_h, W / n + 2 p_w)
            Each patch's share of ``g``, zero in the margins (they were cropped).
        """
        g, xp = self._check(g, "g")
        if self.levels == 0:
            return g
        shape = tuple(g.shape[2:])
        self._check_grid(shape)
        ph, pw = self.padding(shape)
        core = self.patch_targets(g)
        out = xp.zeros((*core.shape[:2], core.shape[2] + 2 * ph, core.shape[3] + 2 * pw),
                       dtype=g.dtype, device=_backend.device(g))
        out[:, :, ph:ph + core.shape[2], pw:pw + core.shape[3]] = core
        return out

    def crop(self, y):
        """Remove the margins of patches.

        Parameters
        ----------
        y : array, shape (B n**2, C', h, w)
            Patches with their margins (a model's output on :meth:`patch`).

        Returns
        -------
        array, shape (B n**2, C', H / n, W / n)
            The patches without margins.
        """
        y, xp = self._check(y, "y")
        if self.levels == 0:
            return y
        h, w = y.shape[2:]
        ph, pw = self.padding(self._grid_from_patches((h, w), "y"))
        return y[:, :, ph:h - ph, pw:w - pw]

    def patch_targets(self, y):
        """Cut targets into the level-0 patches without margins (``stitching=False``).

        ``(B, C', H, W) -> (B * n**2, C', H / n, W / n)``, the layout of
        ``crop(model(patch(x)))``; the inverse of stitching.

        Parameters
        ----------
        y : array, shape (B, C', H, W)
            Full-domain targets.

        Returns
        -------
        array, shape (B * n**2, C', H / n, W / n)
            The targets cut into patches.
        """
        y, xp = self._check(y, "y")
        if self.levels == 0:
            return y
        shape = tuple(y.shape[2:])
        self._check_grid(shape)
        n = self.n_patches
        return self._blocks_to_batch(y, xp, y.shape[0], y.shape[1], [s // n for s in shape])

    def wrap(self, model):
        """Wrap ``model`` so that it is trained and evaluated on these patches.

        Parameters
        ----------
        model : FNO-like
            The inner operator (see :class:`MultigridModel`).

        Returns
        -------
        MultigridModel
            ``MultigridModel(model, self)``.
        """
        return MultigridModel(model, self)

    # ------------------------------------------------------------------ layout helpers

    def _blocks_to_batch(self, blocks, xp, batch, channels, win):
        """``(B, C, n h, n w)`` (patch (i, j) = block (i, j)) -> ``(B n**2, C, h, w)``."""
        n = self.n_patches
        a = xp.reshape(blocks, (batch, channels, n, win[0], n, win[1]))
        a = xp.permute_dims(a, (0, 2, 4, 1, 3, 5))
        return xp.reshape(a, (batch * n * n, channels, win[0], win[1]))

    def _batch_to_blocks(self, a, xp, batch, channels, win):
        """Inverse of :meth:`_blocks_to_batch`."""
        n = self.n_patches
        a = xp.reshape(a, (batch, n, n, channels, win[0], win[1]))
        a = xp.permute_dims(a, (0, 3, 1, 4, 2, 5))
        return xp.reshape(a, (batch, channels, n * win[0], n * win[1]))

    def _stitch(self, core, shape):
        n = self.n_patches
        batch = core.shape[0] // (n * n)
        xp = _backend.namespace(core)
        return self._batch_to_blocks(core, xp, batch, core.shape[1], [s // n for s in shape])

    @staticmethod
    def _selection(indices, size, xp, dtype, device):
        """The 0/1 matrix ``S`` of shape ``(len(indices), size)`` with ``S[k, indices[k]] = 1``."""
        s = (indices[:, None] == np.arange(size)[None, :]).astype(np.float64)
        return _backend.asarray(s, xp=xp, device=device, dtype=dtype)


class MultigridModel:
    """A neural operator trained and evaluated on multi-grid patches (MG-TFNO's recipe).

    ``model`` sees ``patching.patch(x)``; its output patches are cropped and stitched
    back, so ``MultigridModel(model, patching)(x)`` maps ``(B, C, H, W)`` to ``(B,
    out_channels, H, W)`` like a full-domain model and :func:`numlab.operators.train`
    works unchanged. MG-TFNO (Kossaifi et al.) is a TFNO wrapped this way::

        mg = nl.operators.MultigridPatching2D(levels=1, padding_fraction=0.125)
        model = nl.operators.MultigridModel(
            nl.operators.TFNO((16, 16), hidden_channels=32, in_channels=C * 2,
                              out_channels=C), mg)

    Parameters
    ----------
    model : FNO-like
        The inner operator, with ``in_channels = C * (levels + 1)``; it must expose
        ``params``, ``__call__``, ``n_params``, ``dtype`` and ``_forward(x, train=True) ->
        (pred, backprop)`` with ``backprop(dpred) -> grads`` (numlab's FNO and TFNO do).
    patching : MultigridPatching2D
        The domain decomposition applied to inputs and outputs.

    Attributes
    ----------
    params : dict of str to array
        The inner model's parameter dict itself (live: an optimiser updating it trains
        the inner model).
    model, patching
        As given.

    Notes
    -----
    With ``patching.stitching`` (the default) :meth:`loss_and_grad` measures the loss of
    the stitched full-domain prediction against ``y``; the gradient reaches the output
    patches through :meth:`MultigridPatching2D.unpatch_adjoint` (zero on the cropped
    margins). Otherwise the loss is patch-wise: the cropped output patches against
    ``patching.patch_targets(y)``, averaged over patches (neuraloperator's
    ``stitching=False``). Calling the model always stitches (neuraloperator's evaluation
    mode).

    References
    ----------
    J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-Grid Tensorized
    Fourier Neural Operator for High-Resolution PDEs", TMLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> mg = nl.operators.MultigridPatching2D(levels=1, padding_fraction=0.125)
    >>> inner = nl.operators.FNO((8, 8), hidden_channels=8, in_channels=2, out_channels=1,
    ...                          rng=0)
    >>> model = nl.operators.MultigridModel(inner, mg)
    >>> x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    >>> model(x).shape
    (2, 1, 32, 32)
    >>> loss, grads = model.loss_and_grad(x, np.sin(x))
    >>> sorted(grads) == sorted(model.params)
    True
    """

    def __init__(self, model, patching):
        if not isinstance(patching, MultigridPatching2D):
            raise TypeError(
                f"`patching` must be a MultigridPatching2D; got {type(patching).__name__}"
            )
        for attr in ("params", "_forward", "dtype"):
            if not hasattr(model, attr):
                raise TypeError(
                    f"`model` must expose `{attr}` (as numlab's FNO); got {type(model).__name__}"
                )
        self.model = model
        self.patching = patching

    def __repr__(self):
        return f"MultigridModel({self.model!r}, {self.patching!r})"

    @property
    def params(self):
        """The inner model's parameter dict (the same object)."""
        return self.model.params

    @property
    def n_params(self) -> int:
        """The inner model's parameter count (patching has no parameters)."""
        return self.model.n_params

    @property
    def dtype(self):
        """The inner model's dtype."""
        return self.model.dtype

    def _patch_input(self, x):
        x = check_array(x, "x", ndim=4)
        cfg = getattr(self.model, "config", None)
        levels = self.patching.levels + 1
        if cfg is not None and "in_channels" in cfg and cfg["in_channels"] != levels * x.shape[1]:
            raise ValueError(
                f"`x` must have in_channels / (levels + 1) = {cfg['in_channels']} / {levels} "
                f"channels (the inner model sees every level's channels); got shape "
                f"{tuple(x.shape)}"
            )
        xp = _backend.namespace(x)
        if x.dtype != self.dtype:
            x = xp.astype(x, self.dtype)
        return self.patching.patch(x)

    def __call__(self, x):
        """Evaluate on the patches of ``x`` and stitch: ``(B, C, H, W) -> (B, C_out, H, W)``."""
        return self.patching.unpatch(self.model(self._patch_input(x)))

    def _forward(self, x, *, train):
        """Stitched forward pass; with ``train`` also ``backprop(d_stitched) -> grads``."""
        pred, backprop = self.model._forward(self._patch_input(x), train=train)
        out = self.patching.unpatch(pred)
        if not train:
            return out, None
        return out, (lambda dy: backprop(self.patching.unpatch_adjoint(dy)))

    hessian = _Operator.hessian

    def loss_and_grad(self, x, y, loss="l2"):
        """Relative loss of the prediction on ``x`` against ``y`` and its gradient.

        Parameters
        ----------
        x : array, shape (B, C, H, W)
            Full-domain inputs.
        y : array, shape (B, C_out, H, W)
            Full-domain targets.
        loss : {"l2", "h1", "l2sq"}
            As :meth:`numlab.operators.FNO.loss_and_grad`; on the stitched output, or per
            patch when ``patching.stitching`` is False.

        Returns
        -------
        loss : float
            The batch-mean relative loss.
        grads : dict of str to array
            Same keys, shapes and dtypes as :attr:`params`.
        """
        check_option(loss, "loss", tuple(_LOSSES))
        x = check_array(x, "x", ndim=4)
        y = check_array(y, "y", ndim=4)
        xp = _backend.namespace(y)
        if y.dtype != self.dtype:
            y = xp.astype(y, self.dtype)
        if y.shape[0] != x.shape[0] or tuple(y.shape[2:]) != tuple(x.shape[2:]):
            raise ValueError(
                f"`y` must have the batch size and grid of `x`, shape "
                f"{(x.shape[0], 'C_out', *x.shape[2:])}; got {tuple(y.shape)}"
            )
        if self.patching.stitching:
            pred, backprop = self._forward(x, train=True)
            value, loss_backprop = _LOSSES[loss](pred, y, train=True)
            return float(value), backprop(loss_backprop())
        pred, backprop = self.model._forward(self._patch_input(x), train=True)
        value, loss_backprop = _LOSSES[loss](
            self.patching.crop(pred), self.patching.patch_targets(y), train=True
        )
        # The crop's transpose: the patch gradient inside, zeros on the margins.
        d_core = loss_backprop()
        d_pred = xp.zeros(pred.shape, dtype=pred.dtype, device=_backend.device(pred))
        ph = (pred.shape[2] - d_core.shape[2]) // 2
        pw = (pred.shape[3] - d_core.shape[3]) // 2
        d_pred[:, :, ph:ph + d_core.shape[2], pw:pw + d_core.shape[3]] = d_core
        return float(value), backprop(d_pred)
