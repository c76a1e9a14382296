"""nl.operators.FNO: gradients (central differences, torch autograd), neuraloperator parity,
interchange, save/load, backends and bad input.

torch / neuraloperator tests skip cleanly where they are not installed. Sizes are small:
the whole file runs in well under a minute on one core.
"""

from __future__ import annotations

import numpy as np
import pytest

import numlab as nl
from numlab import _backend
from numlab.operators import _layers
from numlab.operators._fno import FNO

# (n_modes, grid, constructor options): 1-D; 2-D non-square with odd sizes and every mode
# kept, the Nyquist frequency of the last axis included (n_modes[-1] = 10 on 10 points);
# 3-D with the other skip kinds and domain padding.
GRAD_CASES = {
    "1d": ((6,), (16,), {}),
    "2d": ((9, 10), (9, 10), {}),
    "2d-padded": ((4, 6), (8, 11), {"domain_padding": 0.2, "lifting_channel_ratio": 0}),
    "3d": ((4, 4, 4), (6, 5, 8), {"fno_skip": "soft-gating", "channel_mlp_skip": "linear"}),
}


def _data(rng, model, grid, batch=2, dtype=np.float64):
    x = rng.standard_normal((batch, model.config["in_channels"], *grid)).astype(dtype)
    y = rng.standard_normal((batch, model.config["out_channels"], *grid)).astype(dtype)
    return x, y


def _small(n_modes, dtype="float64", rng=1, **options):
    return FNO(n_modes, 4, 2, 2, n_layers=2, dtype=dtype, rng=rng, **options)


# --------------------------------------------------------------------------- gradients


@pytest.fixture(params=["rule", "fft", "dft-gemm"])
def transform(request, monkeypatch):
    """Each axis by the measured rule, or all by FFT, or all by truncated DFT (GEMM)."""
    if request.param != "rule":
        use_gemm = request.param == "dft-gemm"
        monkeypatch.setattr(_layers, "_use_dft_gemm", lambda n, k, last: use_gemm)
    return request.param


def test_dft_gemm_rule_raised_for_sizes_with_large_prime_factors():
    # sizes of small primes keep the measured bound k <= 3 log2 n
    assert _layers._use_dft_gemm(64, 18, False) and not _layers._use_dft_gemm(64, 19, False)
    assert _layers._use_dft_gemm(96, 19, True) and not _layers._use_dft_gemm(96, 20, True)
    # a prime size (85 + 2 x 9 of padding) transforms 24 modes by GEMM (4-6x faster there),
    # raised at most 4x
    assert _layers._use_dft_gemm(103, 24, False) and _layers._use_dft_gemm(103, 24, True)
    assert _layers._use_dft_gemm(103, 80, False) and not _layers._use_dft_gemm(103, 81, False)
    assert [_layers._factor_sum(n) for n in (1, 2, 12, 85, 103)] == [0, 2, 7, 22, 103]


@pytest.mark.parametrize(("case", "loss"), [("1d", "l2"), ("2d", "h1"), ("2d-padded", "l2"),
                                            ("3d", "h1")])
def test_gradient_matches_central_differences(case, loss, transform, rng):
    n_modes, grid, options = GRAD_CASES[case]
    model = _small(n_modes, **options)
    x, y = _data(rng, model, grid)
    value, grads = model.loss_and_grad(x, y, loss=loss)
    assert set(grads) == set(model.params)

    def loss_at(params):
        saved = dict(model.params)
        model.params.update(params)
        try:
            return model.loss_and_grad(x, y, loss=loss)[0]
        finally:
            model.params.update(saved)

    # Entries of every parameter, real and imaginary parts.
    h = 1e-6
    worst = 0.0
    for name, p in model.params.items():
        assert grads[name].shape == p.shape and grads[name].dtype == p.dtype
        for i in rng.choice(p.size, size=min(2, p.size), replace=False):
            units = (1.0, 1j) if np.iscomplexobj(p) else (1.0,)
            for unit in units:
                e = np.zeros(p.size, dtype=p.dtype)
                e[i] = unit * h
                e = e.reshape(p.shape)
                fd = (loss_at({name: p + e}) - loss_at({name: p - e})) / (2 * h)
                g = grads[name].reshape(-1)[i]
                analytic = g.real if unit == 1.0 else g.imag
                worst = max(worst, abs(fd - analytic) / max(abs(fd), 1e-2 * abs(value)))
    assert worst <= 1e-6, worst

    # A random direction through all parameters at two step sizes.
    direction = {}
    for name, p in model.params.items():
        d = rng.standard_normal(p.shape)
        if np.iscomplexobj(p):
            d = d + 1j * rng.standard_normal(p.shape)
        direction[name] = d.astype(p.dtype)
    analytic = sum(float(np.sum(grads[n].real * d.real + grads[n].imag * d.imag))
                   for n, d in direction.items())
    for h in (1e-5, 1e-6):
        plus = loss_at({n: model.params[n] + h * d for n, d in direction.items()})
        minus = loss_at({n: model.params[n] - h * d for n, d in direction.items()})
        fd = (plus - minus) / (2 * h)
        assert abs(fd - analytic) <= 1e-6 * abs(analytic), (h, fd, analytic)


def test_loss_values_and_gradients_of_the_losses(rng):
    pred = rng.standard_normal((3, 2, 7, 6))
    y = rng.standard_normal((3, 2, 7, 6))
    for loss_fn in (_layers.relative_l2_loss, _layers.relative_h1_loss):
        value, backprop = loss_fn(pred, y, train=True)
        g = backprop()
        d = rng.standard_normal(pred.shape)
        h = 1e-6
        fd = (float(loss_fn(pred + h * d, y)[0]) - float(loss_fn(pred - h * d, y)[0])) / (2 * h)
        assert fd == pytest.approx(float(np.sum(g * d)), rel=1e-7)
        # A perfect prediction has loss 0 and a zero (not NaN) gradient.
        zero, bp = loss_fn(y, y, train=True)
        assert float(zero) == 0.0 and np.all(bp() == 0)
    expected = np.mean(np.linalg.norm((pred - y).reshape(3, 2, -1), axis=-1)
                       / (np.linalg.norm(y.reshape(3, 2, -1), axis=-1) + 1e-8))
    assert float(_layers.relative_l2_loss(pred, y)[0]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("spatial", "kept"), [((16,), (5,)), ((9, 10), (9, 6)),
                                              ((8, 7, 6), (4, 5, 3)), ((12, 16), (5, 9))])
def test_kept_mode_transforms(spatial, kept, transform, rng):
    x = rng.standard_normal((2, 3, *spatial))
    xp = _backend.namespace(x)
    fft = _backend.fft_namespace(xp)
    modes = _layers._to_modes(xp, fft, x, kept)
    axes = tuple(range(2, x.ndim))
    full = np.fft.rfftn(x, axes=axes)
    # the kept frequencies of rfftn, centred on every axis but the last
    index = [np.arange(k) - k // 2 for k in kept[:-1]] + [np.arange(kept[-1])]
    expected = full[(slice(None), slice(None), *np.ix_(*index))]
    np.testing.assert_allclose(modes, expected, atol=1e-11)
    # the inverse is irfftn of the zero-filled half spectrum
    z = np.zeros_like(full)
    z[(slice(None), slice(None), *np.ix_(*index))] = modes
    np.testing.assert_allclose(_layers._from_modes(xp, fft, modes, spatial),
                               np.fft.irfftn(z, s=spatial, axes=axes), atol=1e-13)


def test_spectral_conv_is_the_exact_fourier_multiplier(rng):
    # Every mode kept with identity matrices reproduces x (odd sizes: the inverse shift).
    x = rng.standard_normal((2, 3, 7, 9))
    w = np.zeros((3, 3, *_layers.kept_modes((7, 9))), dtype=complex)
    for i in range(3):
        w[i, i] = 1
    y, _ = _layers.spectral_conv(x, w)
    np.testing.assert_allclose(y, x, atol=1e-13)
    # One frequency (-2, 1) of channel 0 only.
    w = np.zeros_like(w)
    w[0, 0, 7 // 2 - 2, 1] = 1.0 + 0.5j
    y, _ = _layers.spectral_conv(x, w)
    X = np.fft.rfftn(x[:, 0], axes=(1, 2))
    Z = np.zeros_like(X)
    Z[:, -2, 1] = (1.0 + 0.5j) * X[:, -2, 1]
    np.testing.assert_allclose(y[:, 0], np.fft.irfftn(Z, s=(7, 9), axes=(1, 2)), atol=1e-13)


# --------------------------------------------------------------------------- model interface


def test_params_dtypes_and_counts():
    model = FNO((8, 6), 8, 3, 2, n_layers=2, rng=0)
    assert model.dtype == np.float32
    for name, p in model.params.items():
        spectral = name.startswith("fno_blocks.convs.") and name.endswith("weight")
        expected = np.complex64 if spectral else np.float32
        assert p.dtype == expected, name
    assert model.params["fno_blocks.convs.0.weight"].shape == (8, 8, 8, 4)
    x = np.ones((2, 3, 16, 12), dtype=np.float32)
    assert model(x).dtype == np.float32
    _, grads = model.loss_and_grad(x, np.ones((2, 2, 16, 12), np.float32))
    for k, p in model.params.items():
        assert grads[k].dtype == p.dtype and grads[k].shape == p.shape
    # float64 input to a float32 model computes in float32.
    assert model(x.astype(np.float64)).dtype == np.float32


def test_params_are_read_at_every_call(rng):
    model = _small((4,))
    x, _ = _data(rng, model, (8,))
    before = model(x)
    model.params["projection.fcs.1.bias"] = model.params["projection.fcs.1.bias"] + 1.0
    np.testing.assert_allclose(model(x), before + 1.0, atol=1e-12)
    model.params["projection.fcs.1.bias"][...] -= 1.0  # in place
    np.testing.assert_allclose(model(x), before, atol=1e-12)


def test_zero_shot_other_resolution(rng):
    model = _small((6, 6), dtype="float32")
    x = rng.standard_normal((2, 2, 16, 16)).astype(np.float32)
    fine = np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)
    assert model(x).shape == (2, 2, 16, 16)
    assert model(fine).shape == (2, 2, 32, 32)
    assert np.all(np.isfinite(model(fine)))


def test_save_load_round_trip(tmp_path, rng):
    model = FNO((6, 4), 4, 2, 3, n_layers=2, domain_padding=[0.25, 0.0], fno_skip="soft-gating",
                dtype="float64", rng=3)
    x, y = _data(rng, model, (8, 8))
    path = tmp_path / "fno.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as f:  # plain NumPy reads it, no pickle
        assert "__numlab_fno__" in f.files
    loaded = nl.operators.load(path)
    assert loaded.config == model.config
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded(x), model(x))
    assert loaded.loss_and_grad(x, y)[0] == model.loss_and_grad(x, y)[0]
    model.save(tmp_path / "no-extension")  # written where asked
    assert nl.operators.load(tmp_path / "no-extension").config == model.config
    with pytest.raises(ValueError, match="`path` must be a file written by FNO.save"):
        np.savez(tmp_path / "other.npz", a=np.zeros(2))
        nl.operators.load(tmp_path / "other.npz")


def test_to_moves_parameters(backend, rng):
    model = _small((4,))
    x, _ = _data(rng, model, (8,))
    expected = model(x)
    like = backend.asarray(np.zeros(1))
    assert model.to(like) is model
    got = model(backend.asarray(x, dtype=backend.xp.float64))  # the model stays float64
    np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-10, atol=1e-12)
    model.to(np.zeros(1))
    assert all(isinstance(p, np.ndarray) for p in model.params.values())


def test_runs_on_every_backend(backend, rng):
    """The generic code on NumPy, array-api-strict (device1, float32) and CuPy."""
    dtype = "float32" if backend.float_name == "float32" else "float64"
    like = backend.asarray(np.zeros(1))
    for n_modes, grid, options in GRAD_CASES.values():
        reference = _small(n_modes, dtype=dtype, **options)
        model = _small(n_modes, dtype=dtype, like=like, **options)
        x, y = _data(rng, model, grid, dtype=np.dtype(dtype))
        xb, yb = backend.asarray(x), backend.asarray(y)
        out = model(xb)
        assert type(out) is type(xb) and out.dtype == xb.dtype
        assert _backend.device(out) == _backend.device(xb)
        tol = dict(rtol=2e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(backend.to_numpy(out), reference(x), **tol)
        value, grads = model.loss_and_grad(xb, yb, loss="h1")
        ref_value, ref_grads = reference.loss_and_grad(x, y, loss="h1")
        assert value == pytest.approx(ref_value, rel=tol["rtol"])
        for name, g in grads.items():
            assert g.dtype == model.params[name].dtype
            np.testing.assert_allclose(backend.to_numpy(g), ref_grads[name],
                                       rtol=tol["rtol"] * 50, atol=tol["atol"] * 50)


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_named(rng):
    model = _small((6, 4))
    x, y = _data(rng, model, (8, 8))
    with pytest.raises(ValueError, match="`x` must have in_channels=2"):
        model(x[:, :1])
    with pytest.raises(ValueError, match="`x` must be a 4-D array"):
        model(x[0])
    with pytest.raises(ValueError, match="`x` must have a grid fine enough"):
        model(x[:, :, :5, :])  # 6 centred modes on 5 points
    with pytest.raises(ValueError, match="`x` must have a grid fine enough"):
        model(x[:, :, :, :3])  # last axis: 4 // 2 + 1 = 3 modes need 4 points
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`x` must contain only finite"):
        model(bad)
    bad = y.copy()
    bad[1, 1, 1, 1] = np.inf
    with pytest.raises(ValueError, match="`y` must contain only finite"):
        model.loss_and_grad(x, bad)
    with pytest.raises(ValueError, match="`y` must have out_channels=2"):
        model.loss_and_grad(x, y[:, :1])
    with pytest.raises(ValueError, match="`y` must have the batch size and grid of `x`"):
        model.loss_and_grad(x, y[:, :, :6])
    with pytest.raises(ValueError, match="`loss` must be one of"):
        model.loss_and_grad(x, y, loss="l1")
    with pytest.raises(TypeError, match="`x` must be an array"):
        model("abc")
    with pytest.raises(TypeError, match="`x` must be real"):
        model(x.astype(complex))
    with pytest.raises(ValueError, match="`n_modes`"):
        FNO((4, 4, 4, 4), 4, 1, 1)
    with pytest.raises(ValueError, match="`n_modes` must be >= 1"):
        FNO((0,), 4, 1, 1)
    with pytest.raises(ValueError, match="`fno_skip`"):
        FNO((4,), 4, 1, 1, fno_skip="dense")
    with pytest.raises(TypeError, match="`dtype`"):
        FNO((4,), 4, 1, 1, dtype="int32")
    with pytest.raises(ValueError, match="`domain_padding`"):
        FNO((4, 4), 4, 1, 1, domain_padding=[0.1])


# --------------------------------------------------------------------------- neuraloperator


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("neuralop")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture
def torch64(torch, monkeypatch):
    """torch with neuraloperator's spectral buffer in complex128.

    neuraloperator allocates the spectral output as ``torch.cfloat`` whatever the input
    dtype, so its float64 model rounds to complex64 there; a float64 comparison needs the
    buffer at full precision.
    """
    monkeypatch.setattr(torch, "cfloat", torch.cdouble)
    return torch


def _same_grid(torch, torch_model, grid):
    """Give neuraloperator the grid numlab uses (its own linspace runs in float32 even for a
    float64 model, which matters at 1e-12 on grids that are not powers of two)."""
    pe = torch_model.positional_embedding
    coords = _layers.grid_coordinates(tuple(grid))
    dtype = next(torch_model.parameters()).dtype
    if dtype.is_complex:
        dtype = torch.float64 if dtype == torch.complex128 else torch.float32
    pe._grid = [torch.from_numpy(c).to(dtype)[None, None] for c in coords]
    pe._res = torch.Size(grid)


PARITY_CASES = {
    "1d": ((6,), (15,), {}),
    "2d": ((8, 6), (16, 11), {"domain_padding": 0.125}),
    "3d": ((4, 4, 4), (8, 6, 7), {"fno_skip": "soft-gating", "channel_mlp_skip": "linear",
                                  "lifting_channel_ratio": 0}),
}


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_forward_matches_neuraloperator(torch, case, rng):
    n_modes, grid, options = PARITY_CASES[case]
    model = FNO(n_modes, 8, 2, 3, n_layers=3, rng=5, **options)
    torch_model = model.to_neuraloperator()
    x = rng.standard_normal((2, 2, *grid)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    got = model(x)
    assert np.max(np.abs(got - expected)) <= 1e-5 * np.max(np.abs(expected))
    # Zero-shot at another resolution agrees too.
    fine = tuple(2 * n for n in grid)
    x = rng.standard_normal((2, 2, *fine)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(model(x) - expected)) <= 1e-5 * np.max(np.abs(expected))


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_float64_forward_and_gradients_match_torch_autograd(torch64, case, rng):
    torch = torch64
    from neuralop.losses import H1Loss, LpLoss

    n_modes, grid, options = PARITY_CASES[case]
    model = FNO(n_modes, 6, 2, 3, n_layers=3, dtype="float64", rng=6, **options)
    torch_model = model.to_neuraloperator()
    _same_grid(torch, torch_model, grid)
    x, y = _data(rng, model, grid)
    d = len(grid)
    for loss, torch_loss in (("l2", LpLoss(d=d, p=2, reduction="mean")),
                             ("h1", H1Loss(d=d, reduction="mean"))):
        torch_model.zero_grad()
        pred = torch_model(torch.from_numpy(x))
        ref = torch_loss(pred, torch.from_numpy(y))
        ref.backward()
        np.testing.assert_allclose(model(x), pred.detach().numpy(), rtol=0,
                                   atol=1e-12 * float(pred.detach().abs().max()))
        value, grads = model.loss_and_grad(x, y, loss=loss)
        assert value == pytest.approx(float(ref.detach()), rel=1e-12)
        for name, p in torch_model.named_parameters():
            ours = grads[name.removesuffix(".tensor")]
            theirs = p.grad.numpy().reshape(ours.shape)
            scale = np.max(np.abs(theirs))
            assert np.max(np.abs(ours - theirs)) <= 1e-10 * max(scale, 1e-300), name


def test_models_run_in_either_library(torch, rng):
    from neuralop.models import FNO as TorchFNO

    torch.manual_seed(0)
    torch_model = TorchFNO(n_modes=(8, 6), in_channels=1, out_channels=2, hidden_channels=8,
                           n_layers=2, domain_padding=0.25, channel_mlp_skip="linear")
    x = rng.standard_normal((3, 1, 16, 12)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    scale = np.max(np.abs(expected))
    # from the module (architecture from its constructor) and from its state_dict
    for source in (torch_model, torch_model.state_dict()):
        model = FNO.from_neuraloperator(source)
        assert model.config["domain_padding"] == [0.25, 0.25]
        assert np.max(np.abs(model(x) - expected)) <= 1e-5 * scale
    # a state dict without metadata: shapes give the architecture, the rest is told
    state = {k: v for k, v in torch_model.state_dict().items() if k != "_metadata"}
    model = FNO.from_neuraloperator(state, domain_padding=0.25)
    assert np.max(np.abs(model(x) - expected)) <= 1e-5 * scale
    from neuralop.utils import count_model_params

    assert model.n_params == count_model_params(torch_model)
    # and back: a numlab model runs in neuraloperator
    back = model.to_neuraloperator()
    with torch.no_grad():
        again = back(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(again - expected)) <= 1e-6 * scale


def test_unsupported_neuraloperator_options(torch):
    from neuralop.models import FNO as TorchFNO

    torch_model = TorchFNO(n_modes=(4, 4), in_channels=1, out_channels=1, hidden_channels=4,
                           n_layers=1, norm="group_norm")
    with pytest.raises(ValueError, match="norm='group_norm'"):
        FNO.from_neuraloperator(torch_model)
    with pytest.raises(TypeError, match="`source`"):
        FNO.from_neuraloperator([1, 2])
