"""The LSM's layers (numlab.operators._conv): central differences, torch autograd, batch-norm
state, backends.

Every layer is checked the same way: the scalar ``L = sum(y * r)`` for a fixed random ``r``
is differentiated by the layer's ``backprop(r)`` and by central differences along a random
direction of each input and parameter (float64, two step sizes). ReLU and max-pooling are
only tested on inputs away from their kinks (see ``_away_from_kinks``). torch tests skip
cleanly where torch is not installed. Sizes are small: the file runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from numlab.operators import _conv

# --------------------------------------------------------------------------- helpers


def _call(layer, args, kwargs):
    """``(y, backprop)`` of a layer, dropping batch_norm2d's state."""
    out = layer(*args, **kwargs)
    return out[0], out[1]


def _flat_grads(dx, grads, n_inputs):
    """The input gradients (a tuple when the layer has several inputs) then ``grads``."""
    dxs = list(dx) if isinstance(dx, tuple) else [dx]
    assert len(dxs) == n_inputs
    return dxs, grads


def _check_central_differences(rng, layer, inputs, params, kwargs=None, *, steps=(1e-5, 1e-6),
                               tol=1e-6, pack=None):
    """Directional derivatives of ``sum(layer(...) * r)`` by central differences vs backprop.

    ``inputs`` are differentiated through ``dx``, ``params`` (a dict) through ``grads``;
    ``pack(inputs, params)`` gives the positional arguments (default: inputs then params in
    order).
    """
    kwargs = dict(kwargs or {})
    pack = pack or (lambda ins, ps: (*ins, *ps.values()))
    y, backprop = _call(layer, pack(inputs, params), {**kwargs, "train": True})
    r = rng.standard_normal(y.shape)
    r_copy = r.copy()
    dx, grads = backprop(r)
    np.testing.assert_array_equal(r, r_copy)  # backprop never writes into dy
    dxs, grads = _flat_grads(dx, grads, len(inputs))
    assert set(grads) == set(params)

    def loss(ins, ps):
        return float(np.sum(_call(layer, pack(ins, ps), {**kwargs, "train": False})[0] * r))

    targets = [("input", i, g) for i, g in enumerate(dxs)] + [("param", k, grads[k])
                                                               for k in params]
    for kind, key, g in targets:
        base = inputs[key] if kind == "input" else params[key]
        assert g.shape == base.shape and g.dtype == base.dtype
        u = rng.standard_normal(base.shape)
        exact = float(np.sum(g * u))
        for h in steps:
            def shifted(step, kind=kind, key=key, base=base, u=u):
                ins, ps = list(inputs), dict(params)
                if kind == "input":
                    ins[key] = base + step * u
                else:
                    ps[key] = base + step * u
                return loss(ins, ps)

            fd = (shifted(h) - shifted(-h)) / (2 * h)
            assert abs(fd - exact) <= tol * max(abs(exact), 1.0), (kind, key, h, fd, exact)


def _away_from_kinks(rng, shape, gap=0.05):
    """Values that are distinct in every 2x2 window and away from 0 by at least ``gap``:
    a random permutation of a grid of well-separated magnitudes with random signs."""
    n = int(np.prod(shape))
    values = (np.arange(n) + 1.0) * gap * 2
    values = values / values.max() * 3 + gap
    signs = rng.choice([-1.0, 1.0], size=n)
    return (rng.permutation(values) * signs).reshape(shape)


# --------------------------------------------------------------------------- central differences


@pytest.mark.parametrize("method", ["im2col", "shifted", "folded", "rows"])
@pytest.mark.parametrize(("shape", "c_out", "k", "padding", "bias"), [
    ((2, 3, 5, 7), 4, 3, 1, True),
    ((1, 2, 4, 4), 3, 3, 0, False),
    ((2, 3, 4, 6), 2, 1, 0, True),
])
def test_conv2d_central_differences(rng, monkeypatch, method, shape, c_out, k, padding, bias):
    monkeypatch.setattr(_conv, "_conv_method", lambda *a: method)
    x = rng.standard_normal(shape)
    params = {"weight": rng.standard_normal((c_out, shape[1], k, k))}
    if bias:
        params["bias"] = rng.standard_normal(c_out)
    _check_central_differences(rng, _conv.conv2d, [x], params, {"padding": padding})


@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm2d_central_differences(rng, relu):
    x = rng.standard_normal((3, 4, 5, 3)) * 2 + 1
    stats = (np.zeros(4), np.ones(4))

    def pack(ins, ps):
        return (ins[0], ps["weight"], ps["bias"], *stats)

    params = {"weight": rng.standard_normal(4), "bias": rng.standard_normal(4)}
    # Differentiate the train-mode map: central differences must also use batch statistics.
    def layer(*args, train):
        y, back, _ = _conv.batch_norm2d(*args, relu=relu, train=True)
        return y, (back if train else None)

    if relu:  # keep the normalised values away from the ReLU's kink
        y, _, _ = _conv.batch_norm2d(x, *params.values(), *stats, train=True)
        assert np.min(np.abs(y)) > 1e-3

    _check_central_differences(rng, layer, [x], params, pack=pack)


def test_relu_and_max_pool_central_differences(rng):
    for shape in [(2, 3, 6, 8), (1, 2, 7, 5)]:
        x = _away_from_kinks(rng, shape)
        _check_central_differences(rng, _conv.relu, [x], {})
        _check_central_differences(rng, _conv.max_pool2d, [x], {})


@pytest.mark.parametrize("kwargs", [{"scale": 2}, {"size": (7, 5)}, {"size": (1, 9)}])
def test_resampling_central_differences(rng, kwargs):
    x = rng.standard_normal((2, 3, 4, 5))
    _check_central_differences(rng, _conv.upsample_bilinear2d, [x], {}, kwargs)


def test_padding_and_concat_central_differences(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    _check_central_differences(rng, _conv.pad2d, [x], {}, {"pads": (0, 2, 0, 3)})
    _check_central_differences(rng, _conv.pad2d, [x], {}, {"pads": (-1, 2, 1, -2)})
    _check_central_differences(rng, _conv.pad_to, [x], {}, {"size": (7, 4)})
    y = rng.standard_normal((2, 2, 4, 5))
    _check_central_differences(rng, _conv.concat_channels, [x, y], {},
                               pack=lambda ins, ps: (tuple(ins),))


def test_attention_pieces_central_differences(rng):
    _check_central_differences(rng, _conv.softmax_lastaxis, [rng.standard_normal((2, 3, 5))], {})
    q = rng.standard_normal((2, 3, 5, 4))
    k = rng.standard_normal((2, 3, 7, 4))
    v = rng.standard_normal((2, 3, 7, 6))
    _check_central_differences(rng, _conv.attention, [q, k, v], {})
    _check_central_differences(rng, _conv.sin_cos_basis, [rng.standard_normal((2, 8, 4))], {},
                               {"n_basis": 12})


# --------------------------------------------------------------------------- torch autograd


def _torch_check(torch, ours, theirs, inputs, params, kwargs=None, tol=1e-10):
    """Forward and every gradient of ``ours`` equal to torch autograd on ``theirs``."""
    kwargs = kwargs or {}
    y, backprop = _call(ours, (*inputs, *params.values()), {**kwargs, "train": True})
    t_in = [torch.tensor(a, requires_grad=True) for a in inputs]
    t_par = {k: torch.tensor(a, requires_grad=True) for k, a in params.items()}
    yt = theirs(*t_in, **t_par)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, grads = backprop(dy)
    dxs, grads = _flat_grads(dx, grads, len(inputs))

    def close(a, b):
        b = b.detach().numpy()
        assert a.shape == b.shape
        scale = max(np.max(np.abs(b)), 1e-300)
        assert np.max(np.abs(a - b)) <= tol * scale

    close(y, yt)
    for a, t in zip(dxs, t_in, strict=True):
        close(a, t.grad)
    for k, t in t_par.items():
        close(grads[k], t.grad)


@pytest.mark.parametrize("method", ["im2col", "shifted", "folded", "rows"])
def test_conv2d_matches_torch(rng, monkeypatch, method):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    monkeypatch.setattr(_conv, "_conv_method", lambda *a: method)
    for shape, c_out, k, padding in [((2, 3, 9, 6), 5, 3, 1), ((2, 4, 5, 5), 3, 1, 0),
                                     ((1, 2, 6, 7), 2, 3, 0)]:
        x = rng.standard_normal(shape)
        w = rng.standard_normal((c_out, shape[1], k, k))
        b = rng.standard_normal(c_out)
        _torch_check(torch, _conv.conv2d,
                     lambda x, weight, bias, p=padding: F.conv2d(x, weight, bias, padding=p),
                     [x], {"weight": w, "bias": b}, {"padding": padding})
        _torch_check(torch, _conv.conv2d,
                     lambda x, weight, p=padding: F.conv2d(x, weight, padding=p),
                     [x], {"weight": w}, {"padding": padding})


def test_batch_norm2d_matches_torch_running_stats_and_eval(rng):
    torch = pytest.importorskip("torch")
    c = 4
    bn = torch.nn.BatchNorm2d(c, momentum=0.1, eps=1e-5).double()
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)
    bn.weight.data, bn.bias.data = torch.tensor(weight), torch.tensor(bias)
    mean, var = np.zeros(c), np.ones(c)
    for _ in range(4):
        x = rng.standard_normal((3, c, 5, 6)) * 3 - 1
        y, backprop, stats = _conv.batch_norm2d(x, weight, bias, mean, var, train=True)
        mean, var = stats["running_mean"], stats["running_var"]
        xt = torch.tensor(x, requires_grad=True)
        bn.weight.grad = bn.bias.grad = None
        yt = bn(xt)
        dy = rng.standard_normal(y.shape)
        yt.backward(torch.tensor(dy))
        dx, grads = backprop(dy)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads["weight"], bn.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(grads["bias"], bn.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(mean, bn.running_mean.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(var, bn.running_var.numpy(), rtol=1e-12)
    bn.eval()
    x = rng.standard_normal((2, c, 3, 4))
    y, backprop, stats = _conv.batch_norm2d(x, weight, bias, mean, var)
    assert backprop is None and stats["running_mean"] is mean and stats["running_var"] is var
    np.testing.assert_allclose(y, bn(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm2d_relu_matches_torch(rng):
    torch = pytest.importorskip("torch")
    c = 3
    bn = torch.nn.BatchNorm2d(c).double()
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)
    bn.weight.data, bn.bias.data = torch.tensor(weight), torch.tensor(bias)
    x = rng.standard_normal((2, c, 4, 5)) + 0.5
    y, backprop, stats = _conv.batch_norm2d(x, weight, bias, np.zeros(c), np.ones(c),
                                            relu=True, train=True)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.relu(bn(xt))
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, grads = backprop(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["weight"], bn.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grads["bias"], bn.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(stats["running_var"], bn.running_var.numpy(), rtol=1e-12)
    bn.eval()
    y, _, _ = _conv.batch_norm2d(x, weight, bias, stats["running_mean"], stats["running_var"],
                                 relu=True)
    np.testing.assert_allclose(y, torch.relu(bn(xt)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_kernels_float32(rng):
    """The Numba kernels against the generic ones in float32 at an LSM-like size (the
    kernel registry's own test uses small float64 examples)."""
    pytest.importorskip("numba")
    from numlab._dispatch import REGISTRY

    x3 = (rng.standard_normal((4, 6, 1024)) * 3 + 5).astype(np.float32)
    dy3 = rng.standard_normal(x3.shape).astype(np.float32)
    scale, shift = (rng.standard_normal(6).astype(np.float32) for _ in range(2))

    def both(name, *args):
        return (REGISTRY.get(name, np, impl="generic")(*args),
                REGISTRY.get(name, np, impl="numba")(*args))

    (mean_g, var_g), (mean_n, var_n) = both("operators.channel_moments", x3)
    assert mean_n.dtype == np.float32 and var_n.dtype == np.float32
    np.testing.assert_allclose(mean_n, mean_g, rtol=1e-5)
    np.testing.assert_allclose(var_n, var_g, rtol=1e-5)
    for relu in (False, True):
        g, n = both("operators.channel_affine", x3, scale, shift, relu)
        assert n.dtype == np.float32
        np.testing.assert_array_equal(n, g)  # one multiply and one add, same rounding
    y3 = REGISTRY.get("operators.channel_affine", np, impl="generic")(x3, scale, shift, True)
    for kept in (None, y3):
        (s0g, s1g), (s0n, s1n) = both("operators.channel_grad_sums", dy3, x3, kept, mean_g)
        scale_sums = np.sum(np.abs(dy3), axis=(0, 2)) * 3
        assert np.all(np.abs(s0n - s0g) <= 1e-5 * scale_sums)
        assert np.all(np.abs(s1n - s1g) <= 1e-5 * scale_sums * 3)
        g, n = both("operators.channel_affine_grad", dy3, x3, kept, mean_g, scale, shift, scale)
        assert n.dtype == np.float32
        np.testing.assert_allclose(n, g, rtol=1e-5, atol=1e-5)


def test_pool_resample_pad_match_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in [(2, 3, 6, 8), (1, 2, 7, 5)]:
        x = rng.standard_normal(shape)
        _torch_check(torch, _conv.relu, F.relu, [x], {})
        _torch_check(torch, _conv.max_pool2d, lambda x: F.max_pool2d(x, 2), [x], {})
        _torch_check(torch, _conv.upsample_bilinear2d,
                     lambda x: F.interpolate(x, scale_factor=2, mode="bilinear",
                                             align_corners=True), [x], {}, {"scale": 2})
        _torch_check(torch, _conv.upsample_bilinear2d,
                     lambda x: F.interpolate(x, size=(5, 11), mode="bilinear",
                                             align_corners=True), [x], {}, {"size": (5, 11)})
        _torch_check(torch, _conv.pad2d, lambda x: F.pad(x, [0, 3, 0, 2]), [x], {},
                     {"pads": (0, 3, 0, 2)})
        _torch_check(torch, _conv.pad_to, lambda x: F.pad(x, [1, 2, -1, 0]), [x], {},
                     {"size": (shape[2] - 1, shape[3] + 3)})
    # Ties: torch sends the gradient to the first maximum of each window (row-major).
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2:, 2:] = [[1.0, 2.0], [2.0, 2.0]]
    _torch_check(torch, _conv.max_pool2d, lambda x: F.max_pool2d(x, 2), [x], {})
    a, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 2, 4, 5))
    _torch_check(torch, lambda *xs, train: _conv.concat_channels(xs, train=train),
                 lambda *xs: torch.cat(xs, dim=1), [a, b], {})


def test_attention_pieces_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 5)) * 3
    _torch_check(torch, _conv.softmax_lastaxis, lambda x: torch.softmax(x, dim=-1), [x], {})
    # Shapes of the LSM's encoder (latent tokens attend to a 4x4 patch) and decoder.
    for lq, lk, d in [(4, 16, 8), (16, 4, 8)]:
        q, k, v = (rng.standard_normal((3, 8, n, d)) for n in (lq, lk, lk))
        _torch_check(torch, _conv.attention,
                     lambda q, k, v: torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v,
                     [q, k, v], {})
    z = rng.standard_normal((3, 64, 4))
    n_basis = 12
    modes = torch.arange(n_basis, dtype=torch.float64) / n_basis

    def basis(z):
        arg = modes[None, None, None, :] * z[:, :, :, None] * np.pi
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)

    _torch_check(torch, _conv.sin_cos_basis, basis, [z], {}, {"n_basis": n_basis})


# --------------------------------------------------------------------------- backends


def test_layers_run_on_every_backend(backend, rng):
    """Forward and backward on every backend equal to NumPy in float64 (generic code; the
    readonly backend proves no layer writes into its inputs or into dy)."""
    f32 = backend.float_name == "float32"
    tol = dict(rtol=2e-4, atol=2e-5) if f32 else dict(rtol=1e-10, atol=1e-12)
    x = rng.standard_normal((2, 3, 6, 5))
    cases = [
        (_conv.conv2d, [x], [rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)],
         {"padding": 1}),
        (_conv.conv2d, [x], [rng.standard_normal((4, 3, 1, 1))], {"padding": 0}),
        (_conv.upsample_bilinear2d, [x], [], {"scale": 2}),
        (_conv.batch_norm2d, [x], [rng.standard_normal(3), rng.standard_normal(3),
                                   rng.standard_normal(3), rng.random(3) + 0.5], {}),
        (_conv.relu, [x], [], {}),
        (_conv.max_pool2d, [x], [], {}),
        (_conv.pad_to, [x], [], {"size": (8, 4)}),
        (_conv.softmax_lastaxis, [x], [], {}),
        (_conv.attention, [x, rng.standard_normal((2, 3, 4, 5)),
                           rng.standard_normal((2, 3, 4, 2))], [], {}),
        (_conv.sin_cos_basis, [x[0, 0]], [], {"n_basis": 3}),
    ]
    for layer, inputs, params, kwargs in cases:
        expected_y, expected_back = _call(layer, (*inputs, *params), {**kwargs, "train": True})
        dy = rng.standard_normal(expected_y.shape)
        expected_dx, expected_grads = expected_back(dy)
        args = [backend.asarray(a) for a in (*inputs, *params)]
        y, back = _call(layer, args, {**kwargs, "train": True})
        assert type(y) is type(args[0]) and y.dtype == args[0].dtype, layer.__name__
        np.testing.assert_allclose(backend.to_numpy(y), expected_y, **tol)
        dx, grads = back(backend.asarray(dy))
        dxs = dx if isinstance(dx, tuple) else (dx,)
        exp = expected_dx if isinstance(expected_dx, tuple) else (expected_dx,)
        for got, want in zip(dxs, exp, strict=True):
            assert got.dtype == y.dtype
            np.testing.assert_allclose(backend.to_numpy(got), want, **tol)
        for k, g in expected_grads.items():
            assert grads[k].dtype == y.dtype
            np.testing.assert_allclose(backend.to_numpy(grads[k]), g, **tol)
        inference = _call(layer, args, {**kwargs, "train": False})
        assert inference[1] is None
        if layer is _conv.batch_norm2d:  # inference normalises with the running statistics
            expected_y = _call(layer, (*inputs, *params), {**kwargs, "train": False})[0]
        np.testing.assert_allclose(backend.to_numpy(inference[0]), expected_y, **tol)


def test_conv2d_without_input_gradient(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    for k, padding in [(3, 1), (1, 0)]:
        w = rng.standard_normal((4, 3, k, k))
        y, backprop = _conv.conv2d(x, w, padding=padding, train=True, input_grad=False)
        dx, grads = backprop(np.ones(y.shape))
        assert dx is None and grads["weight"].shape == w.shape


def test_bad_input():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="padding"):
        _conv.conv2d(x, np.zeros((1, 1, 3, 3)), padding=3)
    with pytest.raises(ValueError, match="kernel_size=2"):
        _conv.max_pool2d(x, 3)
    with pytest.raises(ValueError, match="exactly one"):
        _conv.upsample_bilinear2d(x)
    with pytest.raises(ValueError, match="align_corners"):
        _conv.upsample_bilinear2d(x, 2, align_corners=False)
