"""nl.operators.LSM: parameter count, forward and gradients vs a torch model of the authors'
LSM_2D (tests/_lsm_reference.py), batch-norm running statistics, central differences,
save/load, training and bad input.

torch tests skip cleanly where torch is not installed. Sizes are small (a few seconds).
"""

from __future__ import annotations

import numpy as np
import pytest

import numlab as nl
from numlab.operators import LSM

# A small 5-level configuration: 29 x 31 padded to 32 x 32 (levels 32 .. 2, patch 2 x 2);
# numlab's padding is (bottom, right), the reference's (right, bottom).
SMALL = dict(hidden_channels=16, n_basis=6, n_tokens=3, patch_size=(2, 2), padding=(3, 1))
GRID = (29, 31)


def _reference(model):
    """The torch reference with this model's architecture and weights (eval mode)."""
    torch = pytest.importorskip("torch")
    from _lsm_reference import LSM2d

    cfg = model.config
    module = LSM2d(cfg["in_channels"], cfg["out_channels"], cfg["hidden_channels"],
                   cfg["n_basis"], cfg["n_tokens"], tuple(cfg["patch_size"]),
                   tuple(cfg["padding"][::-1]), cfg["n_heads"], cfg["n_levels"])
    module = module.double() if cfg["dtype"] == "float64" else module
    state = {k: torch.from_numpy(np.array(v)) for k, v in {**model.params,
                                                          **model.buffers}.items()}
    module.load_state_dict(state)
    return module.eval()


def _torch_in(x):
    import torch

    return torch.from_numpy(np.moveaxis(x, 1, -1).copy())


def _torch_out(y):
    return np.moveaxis(y.detach().numpy(), -1, 1)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _data(rng, model, grid, batch=2, dtype=np.float64):
    x = rng.standard_normal((batch, model.config["in_channels"], *grid)).astype(dtype)
    y = rng.standard_normal((batch, model.config["out_channels"], *grid)).astype(dtype)
    return x, y


# --------------------------------------------------------------------------- architecture


def test_darcy_parameter_count():
    model = LSM(1, 1, 64, n_basis=12, n_tokens=4, patch_size=(6, 6), padding=(11, 11), rng=0)
    assert model.n_params == 19_187_457


def test_parameters_have_the_reference_names_and_shapes():
    model = LSM(2, 1, **SMALL, rng=0)
    module = _reference(model)
    state = module.state_dict()
    assert set(state) == set(model.params) | set(model.buffers)
    for name, value in {**model.params, **model.buffers}.items():
        assert tuple(value.shape) == tuple(state[name].shape), name
    assert model.n_params == sum(p.numel() for p in module.parameters())


def test_reference_darcy_parameter_count():
    pytest.importorskip("torch")
    from _lsm_reference import LSM2d, darcy_config, n_params

    assert n_params(LSM2d(**darcy_config())) == 19_187_457


# --------------------------------------------------------------------------- torch parity


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_forward_matches_torch_float32(mode):
    model = LSM(2, 1, **SMALL, rng=0)
    rng = np.random.default_rng(1)
    # Non-trivial running statistics for eval mode.
    for name, value in model.buffers.items():
        if name.endswith("running_mean"):
            model.buffers[name] = rng.standard_normal(value.shape).astype(np.float32) * 0.1
        elif name.endswith("running_var"):
            model.buffers[name] = rng.uniform(0.5, 2.0, value.shape).astype(np.float32)
    module = _reference(model)
    x, _ = _data(rng, model, GRID, batch=3, dtype=np.float32)
    if mode == "eval":
        got = model(x)
    else:
        module.train()
        got, _ = model._forward(x, train=True)
    want = _torch_out(module(_torch_in(x)))
    assert got.dtype == np.float32
    assert _rel(got, want) <= 1e-5


@pytest.mark.parametrize("level", [0, 2])
def test_latent_attention_matches_torch(level, monkeypatch):
    """The encoder's attention weights of block ``process{level + 1}``, recorded inside the
    torch reference, put back on the level's grid."""
    torch = pytest.importorskip("torch")
    from _lsm_reference import NeuralSpectralBlock2d

    model = LSM(2, 1, **SMALL, rng=0)
    module = _reference(model)
    x, _ = _data(np.random.default_rng(2), model, GRID, batch=2, dtype=np.float32)
    recorded = []

    def record(q, k, v):
        attn = torch.softmax(torch.einsum("bhlc,bhsc->bhls", q, k), dim=-1)
        recorded.append(attn)
        return torch.einsum("bhls,bhsc->bhlc", attn, v)

    monkeypatch.setattr(NeuralSpectralBlock2d, "self_attn", staticmethod(record))
    block = getattr(module, f"process{level + 1}")
    calls = []  # (attention calls before the block, the block's input shape)
    block.register_forward_pre_hook(lambda _, args: calls.append((len(recorded),
                                                                  args[0].shape)))
    with torch.no_grad():
        module(_torch_in(x))
    first, (b, _, h, w) = calls[0]
    want = recorded[first].numpy()  # the block's first call: the tokens attend to the pixels
    p1, p2 = SMALL["patch_size"]
    heads, tokens = model.config["n_heads"], SMALL["n_tokens"]
    want = want.reshape(b, h // p1, w // p2, heads, tokens, p1, p2)
    want = want.transpose(0, 3, 4, 1, 5, 2, 6).reshape(b, heads, tokens, h, w)

    got = model.latent_attention(x, level=level)
    assert got.shape == (2, heads, tokens, 32 >> level, 32 >> level)
    assert _rel(got, want) <= 1e-5
    # Every token's weights sum to one over each patch.
    sums = got.reshape(b, heads, tokens, h // p1, p1, w // p2, p2).sum(axis=(4, 6))
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)


def test_latent_attention_bad_level():
    model = LSM(1, 1, 8, n_heads=4, n_levels=3, patch_size=(2, 2), rng=0)
    with pytest.raises(ValueError, match="`level`"):
        model.latent_attention(np.zeros((1, 1, 16, 16)), level=3)


def _torch_loss(pred, y, eps=1e-8):
    # numlab's relative L2 (mean over samples and channels, eps added to the norm of y).
    b, c = y.shape[:2]
    diff = (pred - y).reshape(b, c, -1).norm(dim=-1)
    return (diff / (y.reshape(b, c, -1).norm(dim=-1) + eps)).mean()


def test_gradients_and_running_stats_match_torch_float64():
    torch = pytest.importorskip("torch")
    model = LSM(2, 1, **SMALL, dtype="float64", rng=0)
    module = _reference(model).train()
    rng = np.random.default_rng(2)
    for step in range(2):
        x, y = _data(rng, model, GRID)
        loss, grads = model.loss_and_grad(x, y)
        module.zero_grad()
        pred = module(_torch_in(x)).permute(0, 3, 1, 2)
        want = _torch_loss(pred, torch.from_numpy(y))
        want.backward()
        assert abs(loss - want.item()) <= 1e-12
        for name, p in module.named_parameters():
            g = p.grad.numpy()
            assert np.abs(grads[name] - g).max() <= 1e-10 * np.abs(g).max(), (step, name)
            assert grads[name].dtype == np.float64
    state = module.state_dict()
    for name, value in model.buffers.items():
        np.testing.assert_allclose(value, state[name].numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    assert int(model.buffers["inc.double_conv.1.num_batches_tracked"]) == 2


# --------------------------------------------------------------------------- gradients


def test_gradient_central_differences():
    model = LSM(1, 2, 8, n_basis=4, n_tokens=2, patch_size=(2, 2), n_heads=4, n_levels=3,
                dtype="float64", rng=3)
    rng = np.random.default_rng(4)
    x, y = _data(rng, model, (8, 16))
    _, grads = model.loss_and_grad(x, y)
    direction = {k: rng.standard_normal(v.shape) for k, v in model.params.items()}
    slope = sum(float(np.sum(grads[k] * direction[k])) for k in grads)
    base = {k: v.copy() for k, v in model.params.items()}
    # A small step: ReLU kinks of the batch-normalised activations lie densely near 0.
    h = 1e-7
    values = []
    for sign in (1, -1):
        for k in base:
            model.params[k] = base[k] + sign * h * direction[k]
        values.append(model.loss_and_grad(x, y)[0])
    numeric = (values[0] - values[1]) / (2 * h)
    assert abs(numeric - slope) <= 1e-6 * abs(slope)


# --------------------------------------------------------------------------- interface


def test_save_load_round_trip(tmp_path):
    model = LSM(1, 1, 8, n_heads=4, n_levels=2, patch_size=(2, 2), rng=5)
    x, y = _data(np.random.default_rng(6), model, (8, 8), dtype=np.float32)
    model.loss_and_grad(x, y)  # running statistics away from their initial values
    path = tmp_path / "lsm.npz"
    model.save(path)
    other = LSM.load(path)
    assert other.config == model.config
    for name in model.buffers:
        np.testing.assert_array_equal(other.buffers[name], model.buffers[name])
    np.testing.assert_array_equal(other(x), model(x))


def test_trains_with_nl_operators_train():
    model = LSM(1, 1, 8, n_heads=4, n_levels=2, patch_size=(2, 2), rng=7)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = np.sin(x)
    before = model.loss_and_grad(x, y)[0]
    nl.operators.train(model, x, y, epochs=5, batch_size=4, lr=1e-2, progress=False, rng=0)
    assert model.loss_and_grad(x, y)[0] < before
    assert model(x).dtype == np.float32


def test_bad_input():
    with pytest.raises(ValueError, match="`n_heads` must divide `hidden_channels`"):
        LSM(1, 1, 12, n_heads=8)
    model = LSM(1, 1, 8, n_heads=4, n_levels=3, patch_size=(2, 2), padding=(1, 0), rng=0)
    with pytest.raises(ValueError, match="`x` must have a grid that, after padding"):
        model(np.zeros((1, 1, 15, 12)))  # 16 x 12 -> level 2 is 4 x 3
    with pytest.raises(ValueError, match="in_channels=1"):
        model(np.zeros((1, 2, 15, 16)))
    with pytest.raises(ValueError, match="`patch_size` must be"):
        LSM(1, 1, 8, patch_size=(2, 2, 2))


# --------------------------------------------------------------------------- backends


def test_runs_on_every_backend(backend):
    """The generic code on NumPy, array-api-strict (device1, float32) and CuPy."""
    dtype = "float32" if backend.float_name == "float32" else "float64"
    options = dict(n_basis=4, n_tokens=2, patch_size=(2, 2), padding=(1, 0), n_heads=4,
                   n_levels=3, dtype=dtype, rng=9)
    reference = LSM(2, 1, 8, **options)
    model = LSM(2, 1, 8, **options, like=backend.asarray(np.zeros(1)))
    x, y = _data(np.random.default_rng(10), model, (7, 8), dtype=np.dtype(dtype))
    xb, yb = backend.asarray(x), backend.asarray(y)
    tol = dict(rtol=2e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    value, grads = model.loss_and_grad(xb, yb)
    ref_value, ref_grads = reference.loss_and_grad(x, y)
    assert value == pytest.approx(ref_value, rel=tol["rtol"])
    for name, g in grads.items():
        assert g.dtype == model.params[name].dtype
        np.testing.assert_allclose(backend.to_numpy(g), ref_grads[name],
                                   rtol=tol["rtol"] * 50, atol=tol["atol"] * 50, err_msg=name)
    out = model(xb)  # eval mode, with the running statistics of one training step
    assert type(out) is type(xb) and out.dtype == xb.dtype
    np.testing.assert_allclose(backend.to_numpy(out), reference(x), **tol)
    np.testing.assert_allclose(backend.to_numpy(model.latent_attention(xb, level=1)),
                               reference.latent_attention(x, level=1), **tol)
    model.to(np.zeros(1))
    assert all(isinstance(v, np.ndarray) for v in {**model.params, **model.buffers}.values())
