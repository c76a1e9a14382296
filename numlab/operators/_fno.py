"""The Fourier Neural Operator (neuraloperator 2.0's architecture) with numlab's own gradients."""

from __future__ import annotations

import functools
import json
import math
import numbers

import numpy as np

from .. import _backend, _validation
from . import _factorized, _layers

__all__ = ["FNO", "TFNO", "load"]

_SKIPS = ("linear", "identity", "soft-gating", None)
_LOSSES = _layers.LOSSES
_FORMAT = "numlab.operators.FNO/1"


def _check_dtype(dtype):
    if dtype is None:
        return "float32"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
        for candidate in ("float32", "float64"):
            if str(dtype).endswith(candidate):
                name = candidate
    if name not in ("float32", "float64"):
        raise TypeError(f"`dtype` must be float32 or float64; got {dtype!r}")
    return name


def _check_skip(value, name):
    if value is not None and not isinstance(value, str):
        raise TypeError(f"`{name}` must be one of {_SKIPS!r}; got {value!r}")
    return _validation.check_option(value if value is None else value.lower(), name, _SKIPS)


def _check_padding(domain_padding, d):
    if domain_padding is None:
        return None
    values = domain_padding if isinstance(domain_padding, (list, tuple)) else [domain_padding] * d
    if len(values) != d:
        raise ValueError(
            f"`domain_padding` must be a number or a list of {d} numbers (one per spatial axis); "
            f"got {domain_padding!r}"
        )
    values = [_validation.check_scalar(v, "domain_padding", low=0, low_inclusive=True)
              for v in values]
    return None if not any(values) else values


class _Operator:
    """What numlab's neural operators share: parameters in ``params`` and the architecture
    in ``config`` (with its ``"dtype"``)."""

    @property
    def n_params(self) -> int:
        """Number of real parameters (a complex one counts twice, as neuraloperator's
        ``count_model_params``)."""
        xp = self._xp
        return sum(
            math.prod(p.shape) * (2 if xp.isdtype(p.dtype, "complex floating") else 1)
            for p in self.params.values()
        )

    @property
    def _xp(self):
        return _backend.namespace(next(iter(self.params.values())))

    @property
    def dtype(self):
        """The real dtype of the parameters and of the computation (in the params' library)."""
        return getattr(self._xp, self.config["dtype"])

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"

    def to(self, like):
        """Move the parameters to the library and device of ``like`` (in place).

        Parameters
        ----------
        like : array
            An array of the target library and device.

        Returns
        -------
        model
            ``self``.
        """
        if not _backend.is_array(like):
            raise TypeError(f"`like` must be an array whose library and device the parameters "
                            f"take; got {type(like).__name__}")
        xp = _backend.namespace(like)
        device = _backend.device(like)
        for name, value in self.params.items():
            if _backend.namespace(value) is not xp or _backend.device(value) != device:
                self.params[name] = _backend.asarray(_backend.to_numpy(value), xp=xp, device=device)
        return self

    def hessian(self, x, y, *, loss="l2", gauss_newton=False):
        """The Hessian (or Gauss-Newton matrix) of the training loss on ``(x, y)``, matrix-free.

        Shorthand for ``OperatorLoss(self, x, y, loss=loss).hessian(gauss_newton=...)``
        (:class:`numlab.operators.OperatorLoss`, float64, at the current parameters):
        an ``hvp(v, idx=None)`` over flat real parameter vectors that :mod:`numlab.rmt`
        takes directly.

        Parameters
        ----------
        x : array, shape (n_samples, in_channels, n_1, ..., n_d)
            Training inputs.
        y : array, shape (n_samples, out_channels, n_1, ..., n_d)
            Training targets.
        loss : {"l2", "h1", "l2sq"}
            The relative loss.
        gauss_newton : bool
            The generalised Gauss-Newton matrix instead of the Hessian.

        Returns
        -------
        numlab.rmt.HessianOperator
            With ``n_params`` and ``n_samples``.
        """
        from ._curvature import OperatorLoss

        return OperatorLoss(self, x, y, loss=loss).hessian(gauss_newton=gauss_newton)

    def load_params(self, arrays):
        """Replace the parameters, checking names, shapes and real/complex kinds.

        Parameters
        ----------
        arrays : dict of str to array
            A dict like :attr:`params` (any library); values are cast to the model's dtypes
            and placed on its library and device.
        """
        missing = sorted(set(self.params) - set(arrays))
        extra = sorted(set(arrays) - set(self.params))
        if missing or extra:
            raise ValueError("`params` must have the names of this architecture; "
                             f"missing {missing}, unexpected {extra}")
        xp = self._xp
        device = _backend.device(next(iter(self.params.values())))
        new = {}
        for name, current in self.params.items():
            value = np.asarray(_backend.to_numpy(arrays[name]))
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"`params[{name!r}]` must have shape {tuple(current.shape)}; "
                                 f"got {tuple(value.shape)}")
            want = _backend.numpy_dtype(current.dtype, xp)
            if np.iscomplexobj(value) and want.kind != "c":
                raise TypeError(f"`params[{name!r}]` must be real; got {value.dtype}")
            new[name] = _backend.asarray(value.astype(want, copy=False), xp=xp, device=device)
        self.params.update(new)


class FNO(_Operator):
    """Fourier Neural Operator on 1-D, 2-D or 3-D grids (neuraloperator 2.0's ``FNO``).

    The network maps functions sampled on a regular grid, ``x`` of shape ``(batch,
    in_channels, n_1, ..., n_d)``, to functions on the same grid, ``(batch, out_channels,
    n_1, ..., n_d)``::

        grid embedding -> lifting MLP -> [domain padding] -> n_layers Fourier blocks
        -> [unpadding] -> projection MLP

    Each Fourier block (post-activation, as neuraloperator's default) is
    ``h = SpectralConv(x) + fno_skip(x)``, ``GELU``, ``h = ChannelMLP(h) +
    channel_mlp_skip(x)``, ``GELU`` (no GELU after the last block). The spectral
    convolution multiplies the kept Fourier modes by learned complex matrices, so the
    model is defined for any grid and can be evaluated at another resolution than it was
    trained on (zero-shot super-resolution).

    Parameters
    ----------
    n_modes : sequence of int
        Fourier modes kept per spatial axis, with neuraloperator 2.0's meaning: along every
        axis but the last, the ``n`` frequencies centred on zero (``-n//2 ... n - n//2 - 1``);
        along the last axis (real FFT) the ``n//2 + 1`` frequencies ``0 ... n//2``. Its length
        gives the dimension (1, 2 or 3). Li et al.'s ``modes = m`` ("m modes per corner":
        frequencies ``-m..-1, 0..m-1`` on the leading axes and ``0..m-1`` on the last) is
        closest to ``n_modes = 2m`` per axis, which keeps the same frequencies plus the
        last-axis frequency ``m``.
    hidden_channels : int
        Width of the Fourier blocks.
    in_channels, out_channels : int
        Channels of the input and output functions.
    n_layers : int, default 4
        Number of Fourier blocks.
    lifting_channel_ratio : float, default 2
        The lifting is a two-layer channel MLP with ``int(ratio * hidden_channels)``
        hidden channels; 0 makes it a single linear layer.
    projection_channel_ratio : float, default 2
        The projection's hidden width, ``int(ratio * hidden_channels)`` (> 0).
    use_channel_mlp : bool, default True
        A two-layer channel MLP (``hidden -> round(expansion * hidden) -> hidden``) in
        every block.
    channel_mlp_expansion : float, default 0.5
        Hidden width of the channel MLP as a fraction of ``hidden_channels``.
    fno_skip, channel_mlp_skip : {"linear", "soft-gating", "identity", None}
        Skip connections around the spectral convolution and the channel MLP (both take the
        block's input): a 1x1 convolution without bias, a per-channel weight (initialised
        to 1), the identity, or nothing. Defaults ``"linear"`` and ``"soft-gating"``.
    domain_padding : float or list of float, optional
        Zero padding of ``round(p * n_i)`` points on both sides of axis ``i`` after the
        lifting, removed before the projection (for non-periodic problems).
    positional_embedding : {"grid", None}, default "grid"
        Append the ``d`` coordinates ``i / n`` of the periodic unit grid as input channels.
    dtype : {float32, float64}, default float32
        Real parameters in ``dtype``, spectral weights in the matching complex dtype.
    rng : None, int or numpy.random.Generator
        Initialisation (PyTorch's default initialisers: uniform ``+-1/sqrt(fan_in)`` for
        the 1x1 convolutions, complex normal with variance ``2 / (c_in + c_out)`` for the
        spectral weights).
    like : array, optional
        The parameters live in this array's library and device (NumPy when omitted).
    factorization : {None, "cp", "tucker", "tt"}, default None
        Learn each spectral weight ``(c_in, c_out, *kept_modes)`` in factorized form
        (case-insensitive; "dense" means None): a tensorized FNO (TFNO, Kossaifi et al.).
        The factors are initialised as tensorly-torch's (see
        :func:`numlab.operators._factorized.init_factors`).
    rank : float, int or tuple of int, default 1.0
        With a factorization: a float in (0, 1] is the fraction of the dense spectral
        parameter count to keep, turned into ranks exactly as TensorLy / tensorly-torch do
        (so a model built here and one built by neuraloperator with the same ``rank`` have
        the same shapes); an int or a tuple is an explicit rank (Tucker: per mode; TT: the
        bond ranks with the boundary 1s; CP: an int). Ignored without a factorization.
    implementation : {None, "factorized", "reconstructed"}, default None
        How a factorized layer computes: "reconstructed" rebuilds the dense weight at
        every call and uses the dense product; "factorized" contracts the input's modes
        with the factors directly. Both give the same values and gradients (to rounding).
        None chooses, per layer shape and batch size, the one with fewer multiply-adds
        (:func:`numlab.operators._factorized.choose_implementation`; the benchmark
        ``benchmarks/bench_operators_tfno.py`` times both).

    Attributes
    ----------
    params : dict of str to array
        The parameters, by neuraloperator's ``state_dict`` names (without tltorch's
        ``.tensor`` suffix on dense spectral weights; a factorized weight is stored as its
        factors, ``fno_blocks.convs.<i>.weight.core`` / ``.weights`` /
        ``.factors.factor_<k>``, tensorly-torch's names). Shapes are numlab's: 1x1
        convolution weights ``(c_out, c_in)``,
        biases and soft-gating weights ``(c,)``, spectral weights ``(c_in, c_out,
        *kept_modes)`` (complex). Every call reads ``params[name]`` afresh, so an optimiser
        may update the arrays in place or replace the entries.
    config : dict
        The architecture (JSON-serialisable; :meth:`save` stores it).

    Notes
    -----
    The gradients are numlab's own: each layer of :mod:`numlab.operators._layers` returns
    a closure that computes its backward pass. Complex gradients follow PyTorch's
    convention ``dL/dRe + 1j dL/dIm``.

    Where neuraloperator 2.0 (as released) differs, numlab keeps the exact inverse:
    on an axis other than the last with an odd number of points, neuraloperator applies
    ``fftshift`` where the inverse transform needs ``ifftshift``, which moves every kept
    mode of that axis by one frequency; on even grids (the usual case) the two agree.
    neuraloperator also shrinks ``n_modes`` silently on grids too coarse for them; numlab
    refuses such input.

    References
    ----------
    Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
    A. Anandkumar, "Fourier Neural Operator for Parametric Partial Differential Equations",
    ICLR 2021. J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-Grid
    Tensorized Fourier Neural Operator for High-Resolution PDEs", TMLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> model = nl.operators.FNO((8,), hidden_channels=8, in_channels=1, out_channels=1, rng=0)
    >>> x = np.random.default_rng(0).standard_normal((4, 1, 32)).astype(np.float32)
    >>> model(x).shape
    (4, 1, 32)
    >>> loss, grads = model.loss_and_grad(x, np.sin(x))
    >>> grads["fno_blocks.convs.0.weight"].dtype
    dtype('complex64')
    """

    def __init__(
        self,
        n_modes,
        hidden_channels,
        in_channels,
        out_channels,
        n_layers=4,
        *,
        lifting_channel_ratio=2,
        projection_channel_ratio=2,
        use_channel_mlp=True,
        channel_mlp_expansion=0.5,
        fno_skip="linear",
        channel_mlp_skip="soft-gating",
        domain_padding=None,
        positional_embedding="grid",
        dtype=None,
        rng=None,
        like=None,
        factorization=None,
        rank=1.0,
        implementation=None,
    ):
        if isinstance(n_modes, numbers.Integral) and not isinstance(n_modes, bool):
            n_modes = (n_modes,)
        if not isinstance(n_modes, (list, tuple)) or not 1 <= len(n_modes) <= 3:
            raise ValueError(f"`n_modes` must be a sequence of 1, 2 or 3 integers; got {n_modes!r}")
        n_modes = tuple(_validation.check_int(m, "n_modes", low=1) for m in n_modes)
        d = len(n_modes)
        if positional_embedding not in ("grid", None):
            raise ValueError("`positional_embedding` must be 'grid' or None; "
                             f"got {positional_embedding!r}")
        if isinstance(use_channel_mlp, bool) is False:
            raise TypeError(f"`use_channel_mlp` must be a bool; got {use_channel_mlp!r}")
        self.config = {
            "n_modes": list(n_modes),
            "hidden_channels": _validation.check_int(hidden_channels, "hidden_channels", low=1),
            "in_channels": _validation.check_int(in_channels, "in_channels", low=1),
            "out_channels": _validation.check_int(out_channels, "out_channels", low=1),
            "n_layers": _validation.check_int(n_layers, "n_layers", low=1),
            "lifting_channel_ratio": _validation.check_scalar(
                lifting_channel_ratio, "lifting_channel_ratio", low=0, low_inclusive=True),
            "projection_channel_ratio": _validation.check_scalar(
                projection_channel_ratio, "projection_channel_ratio", low=0),
            "use_channel_mlp": use_channel_mlp,
            "channel_mlp_expansion": _validation.check_scalar(
                channel_mlp_expansion, "channel_mlp_expansion", low=0),
            "fno_skip": _check_skip(fno_skip, "fno_skip"),
            "channel_mlp_skip": _check_skip(channel_mlp_skip, "channel_mlp_skip"),
            "domain_padding": _check_padding(domain_padding, d),
            "positional_embedding": positional_embedding,
            "dtype": _check_dtype(dtype),
            "factorization": _factorized.check_factorization(factorization),
            "rank": list(rank) if isinstance(rank, (list, tuple)) else rank,
            "implementation": _factorized.check_implementation(implementation),
        }
        if self.config["factorization"] is not None:
            # Validated here so that a bad rank fails at construction, with its name.
            _factorized.validate_rank(self.config["factorization"], self._weight_shape, rank)
        for key in ("lifting_channel_ratio", "projection_channel_ratio", "channel_mlp_expansion"):
            if float(self.config[key]).is_integer():
                self.config[key] = int(self.config[key])
        hidden = self.config["hidden_channels"]
        if int(self.config["projection_channel_ratio"] * hidden) < 1:
            raise ValueError("`projection_channel_ratio` * `hidden_channels` must be >= 1; got "
                             f"{projection_channel_ratio} * {hidden}")
        if use_channel_mlp and round(hidden * self.config["channel_mlp_expansion"]) < 1:
            raise ValueError("`channel_mlp_expansion` * `hidden_channels` must round to >= 1; got "
                             f"{channel_mlp_expansion} * {hidden}")
        like = _validation.check_like(like)
        host = _init_params(self.config, _validation.check_rng(rng))
        xp = _backend.namespace(like)
        device = None if like is None else _backend.device(like)
        self.params = {k: _backend.asarray(v, xp=xp, device=device) for k, v in host.items()}

    # ------------------------------------------------------------------ properties

    @property
    def n_modes(self) -> tuple:
        """The ``n_modes`` of the constructor (neuraloperator's meaning)."""
        return tuple(self.config["n_modes"])

    @property
    def n_dim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.config["n_modes"])

    @property
    def _weight_shape(self):
        hidden = self.config["hidden_channels"]
        return (hidden, hidden, *_layers.kept_modes(self.config["n_modes"]))

    @property
    def n_params_spectral(self) -> int:
        """Real parameters of the spectral weights, or of their factors (biases excluded)."""
        return sum(math.prod(p.shape) * 2 for name, p in self.params.items()
                   if ".weight" in name and name.startswith("fno_blocks.convs.")
                   and self._xp.isdtype(p.dtype, "complex floating"))

    @property
    def compression(self) -> float:
        """Dense spectral parameter count / :attr:`n_params_spectral` (1 for a dense FNO)."""
        dense = 2 * math.prod(self._weight_shape) * self.config["n_layers"]
        return dense / self.n_params_spectral

    def implementation_for(self, batch):
        """Return the implementation the factorized layers use for a batch of that size.

        Parameters
        ----------
        batch : int
            Number of samples in a call.

        Returns
        -------
        str or None
            ``"factorized"`` or ``"reconstructed"`` (the constructor's ``implementation``,
            or the cheaper one for the shape and batch); None for a dense FNO.
        """
        cfg = self.config
        if cfg["factorization"] is None:
            return None
        if cfg["implementation"] is not None:
            return cfg["implementation"]
        return _choose(cfg["factorization"], self._weight_shape, _hashable(cfg["rank"]),
                       int(batch))

    # ------------------------------------------------------------------ forward / backward

    def __call__(self, x):
        """Evaluate the operator (inference: no activations are kept).

        Parameters
        ----------
        x : array, shape (batch, in_channels, n_1, ..., n_d)
            Cast to the model's dtype. Any grid fine enough for ``n_modes`` works.

        Returns
        -------
        y : array, shape (batch, out_channels, n_1, ..., n_d)
        """
        x = self._check_input(x, "x")
        y, _ = self._forward(x, train=False)
        return y

    def loss_and_grad(self, x, y, loss="l2"):
        """Relative loss of the prediction on ``x`` against ``y`` and its gradient.

        Parameters
        ----------
        x : array, shape (batch, in_channels, n_1, ..., n_d)
            Inputs, cast to the model's dtype.
        y : array, shape (batch, out_channels, n_1, ..., n_d)
            Targets on the same grid.
        loss : {"l2", "h1", "l2sq"}
            Relative L2 or H1 (periodic central differences) error per sample and output
            channel, averaged over both (see :func:`numlab.operators._layers.relative_l2_loss`):
            neuraloperator's ``LpLoss(d, 2, reduction="mean")`` / ``H1Loss(d,
            reduction="mean")``. neuraloperator's default ``reduction="sum"`` is this value
            times ``batch * out_channels``. ``"l2sq"``: the squared relative L2 error
            (quadratic in the prediction, for :mod:`numlab.rmt`'s learning rates).

        Returns
        -------
        loss : float
            The batch-mean relative loss.
        grads : dict of str to array
            Same keys, shapes and dtypes as :attr:`params`; complex entries hold
            ``dL/dRe + 1j dL/dIm``.
        """
        _validation.check_option(loss, "loss", tuple(_LOSSES))
        x = self._check_input(x, "x")
        y = self._check_input(y, "y", channels=self.config["out_channels"], like=x)
        pred, backprop = self._forward(x, train=True)
        value, loss_backprop = _LOSSES[loss](pred, y, train=True)
        grads = backprop(loss_backprop())
        return float(value), grads

    def _check_input(self, a, name, channels=None, like=None):
        d = self.n_dim
        a = _validation.check_array(a, name, ndim=d + 2)
        xp = _backend.namespace(**{name: a, "params": next(iter(self.params.values()))})
        if channels is None:
            channels = self.config["in_channels"]
            what = "in_channels"
        else:
            what = "out_channels"
        if like is not None and (a.shape[0] != like.shape[0] or a.shape[2:] != like.shape[2:]):
            raise ValueError(
                f"`{name}` must have the batch size and grid of `x`, shape "
                f"{(like.shape[0], channels, *like.shape[2:])}; got {tuple(a.shape)}"
            )
        if a.shape[1] != channels:
            raise ValueError(
                f"`{name}` must have {what}={channels} channels along axis 1 (layout "
                f"(batch, channels, *grid)); got shape {tuple(a.shape)}"
            )
        if like is None:
            widths = self._padding(a.shape[2:])
            padded = [n + 2 * w for n, w in zip(a.shape[2:], widths, strict=True)]
            bad = _layers._check_modes(tuple(padded), _layers.kept_modes(self.n_modes))
            if bad is not None:
                axis, k, n = bad
                padded_note = " after domain padding" if self.config["domain_padding"] else ""
                raise ValueError(
                    f"`{name}` must have a grid fine enough for n_modes={self.n_modes}: axis "
                    f"{axis + 2} (spatial axis {axis}) keeps {k} modes, which needs at least "
                    f"{k} points{padded_note}; "
                    f"got {padded[axis]}"
                )
        if a.dtype != self.dtype:
            a = xp.astype(a, self.dtype)
        return a

    def _padding(self, spatial):
        p = self.config["domain_padding"]
        if p is None:
            return (0,) * len(spatial)
        # Python's round, as neuraloperator's DomainPadding.
        return tuple(round(f * n) for f, n in zip(p, spatial, strict=True))

    def _forward(self, x, *, train):
        """Forward pass; with ``train`` also the closure ``dy -> grads`` over all params."""
        p = self.params
        cfg = self.config
        steps = []  # (parameter-name prefix, backprop), in forward order

        def run(prefix, layer, *args, **kwargs):
            out, bp = layer(*args, train=train, **kwargs)
            steps.append((prefix, bp))
            return out

        if cfg["positional_embedding"] == "grid":
            x = run("", _layers.grid_embedding, x)
        n_lift = 2 if int(cfg["lifting_channel_ratio"] * cfg["hidden_channels"]) else 1
        x = run("lifting.", _layers.channel_mlp, x,
                [p[f"lifting.fcs.{i}.weight"] for i in range(n_lift)],
                [p[f"lifting.fcs.{i}.bias"] for i in range(n_lift)],
                input_grad=False)  # the input needs no gradient: stop there
        widths = self._padding(x.shape[2:])
        x = run("", _layers.pad, x, widths)
        for layer in range(cfg["n_layers"]):
            x = run("fno_blocks.", self._block, x, layer)
        x = run("", _layers.unpad, x, widths)
        x = run("projection.", _layers.channel_mlp, x,
                [p["projection.fcs.0.weight"], p["projection.fcs.1.weight"]],
                [p["projection.fcs.0.bias"], p["projection.fcs.1.bias"]])
        if not train:
            return x, None

        def backprop(dy):
            grads = {}
            for prefix, bp in reversed(steps):
                dy, g = bp(dy)
                for name, value in g.items():
                    grads[prefix + name] = value
                if dy is None:
                    break
            return grads

        return x, backprop

    def _skip(self, kind, prefix, x, train):
        """Skip connection ``kind`` on ``x``: (y, backprop with full names) or (None, None)."""
        p = self.params
        if kind is None:
            return None, None
        if kind == "identity":
            y, bp = _layers.identity(x, train=train)
        elif kind == "soft-gating":
            y, bp = _layers.soft_gating(x, p[prefix + "weight"], train=train)
        else:
            y, bp = _layers.linear(x, p[prefix + "conv.weight"], train=train)
            prefix += "conv."
        if not train:
            return y, None

        def backprop(dy):
            dx, g = bp(dy)
            return dx, {prefix + k: v for k, v in g.items()}

        return y, backprop

    def _block(self, x, layer, *, train):
        """Fourier block ``layer``; gradient names relative to ``fno_blocks.``."""
        p = self.params
        cfg = self.config
        last = layer == cfg["n_layers"] - 1
        conv = f"convs.{layer}."
        fact = cfg["factorization"]
        if fact is None:
            weight = p["fno_blocks." + conv + "weight"]
        else:
            head = "fno_blocks." + conv + "weight."
            weight = {k[len(head):]: v for k, v in p.items() if k.startswith(head)}
        h, bp_conv = _layers.spectral_conv(
            x, weight, p["fno_blocks." + conv + "bias"], factorization=fact,
            implementation=self.implementation_for(x.shape[0]), train=train)
        skip, bp_skip = self._skip(cfg["fno_skip"], f"fno_blocks.fno_skips.{layer}.", x, train)
        if skip is not None:
            h += skip  # h is a fresh array of the spectral convolution
        bp_act = None
        if not last:
            h, bp_act = _layers.gelu(h, train=train)
        bp_mlp = bp_mlp_skip = None
        if cfg["use_channel_mlp"]:
            mlp = f"fno_blocks.channel_mlp.{layer}."
            # The MLP's skip connection also starts from the block's input.
            mlp_skip, bp_mlp_skip = self._skip(
                cfg["channel_mlp_skip"], f"fno_blocks.channel_mlp_skips.{layer}.", x, train)
            h, bp_mlp = _layers.channel_mlp(
                h, [p[mlp + "fcs.0.weight"], p[mlp + "fcs.1.weight"]],
                [p[mlp + "fcs.0.bias"], p[mlp + "fcs.1.bias"]], train=train)
            if mlp_skip is not None:
                h += mlp_skip
        bp_out = None
        if not last:
            h, bp_out = _layers.gelu(h, train=train)
        if not train:
            return h, None

        def backprop(dy):
            grads = {}
            dx_parts = []
            if bp_out is not None:
                dy, _ = bp_out(dy)
            if bp_mlp is not None:
                if bp_mlp_skip is not None:
                    dx, g = bp_mlp_skip(dy)
                    dx_parts.append(dx)
                    grads.update(g)
                dy, g = bp_mlp(dy)
                grads.update({f"channel_mlp.{layer}.{k}": v for k, v in g.items()})
            if bp_act is not None:
                dy, _ = bp_act(dy)
            if bp_skip is not None:
                dx, g = bp_skip(dy)
                dx_parts.append(dx)
                grads.update(g)
            dx, g = bp_conv(dy)
            grads.update({conv + k: v for k, v in g.items()})
            for part in dx_parts:
                dx += part  # dx is a fresh array of the inverse FFT
            # Skip gradients were named with their full prefix; strip the block prefix.
            return dx, {k.removeprefix("fno_blocks."): v for k, v in grads.items()}

        return h, backprop

    # ------------------------------------------------------------------ devices, files

    def save(self, path):
        """Save the architecture and parameters to the ``.npz`` file ``path`` (no pickle).

        The file (at ``path`` exactly, whatever its extension) holds one array per
        parameter (by the names of :attr:`params`) and the architecture as a JSON string
        under ``"__numlab_fno__"``; :func:`load` rebuilds the model. NumPy reads it without
        numlab.

        Parameters
        ----------
        path : str or path-like
            The file to write.
        """
        arrays = {name: _backend.to_numpy(v) for name, v in self.params.items()}
        arrays["__numlab_fno__"] = np.array(json.dumps({"format": _FORMAT, **self.config}))
        # Through a file object: the file is ``path`` itself (np.savez would append ".npz").
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def from_neuraloperator(cls, source, *, dtype=None, like=None, **config):
        """A numlab FNO with the weights of a neuraloperator 2.0 ``FNO`` or ``TFNO``.

        Parameters
        ----------
        source : neuralop.models.FNO or dict
            The module, or its ``state_dict()``. The architecture comes from the module's
            constructor arguments (or the state dict's ``"_metadata"`` entry, which
            neuraloperator 2.0 adds); without them it is read from the weight shapes, and
            what shapes cannot tell (``positional_embedding``, default ``"grid"``;
            ``domain_padding``, default None; skips that have no weights) is taken from
            ``config``.
        dtype : {float32, float64}, optional
            Default: that of the torch weights.
        like : array, optional
            The parameters' library and device (NumPy by default).
        **config
            Constructor arguments of :class:`FNO` that override what ``source`` says.

        Returns
        -------
        FNO

        Raises
        ------
        ValueError
            For options numlab's FNO does not have (normalisation layers, separable
            weights, fixed-rank modes, preactivation, resolution scaling, complex data,
            another non-linearity). Factorized weights (TFNO: CP, Tucker, TT) are read as
            their factors.
        """
        from ._neuralop import from_neuraloperator

        return from_neuraloperator(cls, source, dtype=dtype, like=like, **config)

    def to_neuraloperator(self):
        """Convert this model to a ``neuralop.models.FNO`` module (torch, CPU), in eval mode.

        Requires torch and neuraloperator 2.0. A float64 model gives float64 / complex128
        torch weights (note that neuraloperator's spectral convolution accumulates in
        complex64 whatever the weight dtype).

        Returns
        -------
        torch.nn.Module
            The neuraloperator model; its ``state_dict()`` is the state-dict form.
        """
        from ._neuralop import to_neuraloperator

        return to_neuraloperator(self)


def _init_params(cfg, rng):
    """Host (NumPy) parameters initialised as PyTorch / neuraloperator initialise them."""
    real = np.dtype(cfg["dtype"])
    cplx = np.result_type(real, np.complex64)
    d = len(cfg["n_modes"])
    hidden = cfg["hidden_channels"]
    params = {}

    def conv1x1(name, c_out, c_in, bias=True):
        # torch.nn.Conv1d's default: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
        bound = 1.0 / math.sqrt(c_in)
        params[name + "weight"] = rng.uniform(-bound, bound, (c_out, c_in)).astype(real)
        if bias:
            params[name + "bias"] = rng.uniform(-bound, bound, c_out).astype(real)

    def mlp(prefix, c_in, c_mid, c_out, n_layers=2):
        if n_layers == 1:
            conv1x1(prefix + "fcs.0.", c_out, c_in)
        else:
            conv1x1(prefix + "fcs.0.", c_mid, c_in)
            conv1x1(prefix + "fcs.1.", c_out, c_mid)

    def skip(prefix, kind):
        if kind == "linear":
            conv1x1(prefix + "conv.", hidden, hidden, bias=False)
        elif kind == "soft-gating":
            params[prefix + "weight"] = np.ones(hidden, dtype=real)

    lift_in = cfg["in_channels"] + (d if cfg["positional_embedding"] == "grid" else 0)
    lift_mid = int(cfg["lifting_channel_ratio"] * hidden)
    mlp("lifting.", lift_in, lift_mid, hidden, n_layers=2 if lift_mid else 1)
    kept = _layers.kept_modes(cfg["n_modes"])
    std = math.sqrt(2.0 / (hidden + hidden))
    fact = cfg.get("factorization")
    for layer in range(cfg["n_layers"]):
        shape = (hidden, hidden, *kept)
        if fact is None:
            # Complex normal with E|w|^2 = std^2, as torch's normal_ on a complex tensor.
            w = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * (
                std / math.sqrt(2.0))
            params[f"fno_blocks.convs.{layer}.weight"] = w.astype(cplx)
        else:
            factors = _factorized.init_factors(fact, shape, cfg["rank"], std, rng, cplx)
            for name, value in factors.items():
                params[f"fno_blocks.convs.{layer}.weight.{name}"] = value
        params[f"fno_blocks.convs.{layer}.bias"] = (std * rng.standard_normal(hidden)).astype(real)
        skip(f"fno_blocks.fno_skips.{layer}.", cfg["fno_skip"])
        if cfg["use_channel_mlp"]:
            mid = round(hidden * cfg["channel_mlp_expansion"])
            mlp(f"fno_blocks.channel_mlp.{layer}.", hidden, mid, hidden)
            skip(f"fno_blocks.channel_mlp_skips.{layer}.", cfg["channel_mlp_skip"])
    proj_mid = int(cfg["projection_channel_ratio"] * hidden)
    mlp("projection.", hidden, proj_mid, cfg["out_channels"])
    return params


def load(path, *, like=None):
    """Load an :class:`FNO` saved by :meth:`FNO.save`.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` file written by :meth:`FNO.save`.
    like : array, optional
        Put the parameters in this array's library and device (NumPy by default).

    Returns
    -------
    FNO
        The saved model, with its architecture and parameters.
    """
    like = _validation.check_like(like)
    with np.load(path, allow_pickle=False) as data:
        if "__numlab_fno__" not in data.files:
            raise ValueError(f"`path` must be a file written by FNO.save; {path!r} has no "
                             "'__numlab_fno__' entry")
        config = json.loads(str(data["__numlab_fno__"]))
        fmt = config.pop("format", None)
        if fmt != _FORMAT:
            raise ValueError(f"`path` holds an unknown format {fmt!r} (expected {_FORMAT!r})")
        arrays = {name: data[name] for name in data.files if name != "__numlab_fno__"}
    model = FNO(**config, rng=0, like=like)
    model.load_params(arrays)
    return model


def _hashable(rank):
    return tuple(rank) if isinstance(rank, list) else rank


@functools.lru_cache(maxsize=256)
def _choose(factorization, shape, rank, batch):
    return _factorized.choose_implementation(factorization, shape, rank, batch)


class TFNO(FNO):
    """Tensorized FNO: :class:`FNO` with ``factorization="tucker"`` and ``rank=0.1`` by default.

    neuraloperator's ``TFNO``: each spectral weight is learned as a Tucker decomposition
    holding about 10 % of the dense weight's parameters (any ``factorization`` and
    ``rank`` of :class:`FNO` may be passed).

    Parameters
    ----------
    *args
        :class:`FNO`'s positional arguments (``n_modes, hidden_channels, in_channels,
        out_channels, n_layers``).
    factorization : {"tucker", "cp", "tt"}, default "tucker"
        As in :class:`FNO`.
    rank : float, int or tuple of int, default 0.1
        As in :class:`FNO`: a float is the fraction of the dense spectral parameters kept.
    **kwargs
        :class:`FNO`'s other keyword arguments (``implementation``, ``dtype``, ``rng``, ...).

    References
    ----------
    J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-Grid Tensorized
    Fourier Neural Operator for High-Resolution PDEs", TMLR 2024. T. G. Kolda, B. W. Bader,
    "Tensor Decompositions and Applications", SIAM Review 51(3), 2009.

    Examples
    --------
    >>> import numlab as nl
    >>> model = nl.operators.TFNO((24, 24), hidden_channels=32, in_channels=1, out_channels=1,
    ...                           rng=0)
    >>> round(model.compression, 1)
    10.3
    """

    def __init__(self, *args, factorization="tucker", rank=0.1, **kwargs):
        super().__init__(*args, factorization=factorization, rank=rank, **kwargs)
