"""nl.operators.MultigridPatching2D and MultigridModel (MG-TFNO's domain decomposition):
exact round trip, neuraloperator parity, adjoints, gradients of the patched model, backends
and bad input. Small sizes: the file runs in a few seconds on one core.
"""

from __future__ import annotations

import numpy as np
import pytest

import numlab as nl
from numlab import _backend

LEVELS = (0, 1, 2)
FRACTIONS = (0.0, 1 / 16, 0.125, 0.25)
GRIDS = ((64, 64), (48, 40), (32, 48))


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize("levels", LEVELS)
def test_round_trip_is_exact(levels, fraction, grid, rng):
    mg = nl.operators.MultigridPatching2D(levels, fraction)
    x = rng.standard_normal((2, 3, *grid))
    patched = mg.patch(x)
    n = 2**levels
    pad = mg.padding(grid)
    assert patched.shape == (2 * n * n, 3 * (levels + 1),
                             grid[0] // n + 2 * pad[0], grid[1] // n + 2 * pad[1])
    back = mg.unpatch(patched)
    assert back.shape == (2, 3 * (levels + 1), *grid)
    np.testing.assert_array_equal(back[:, :3], x)
    # Level-0 patches without margins are the targets' layout; stitching inverts it.
    np.testing.assert_array_equal(mg.unpatch(mg.unpatch_adjoint(x)), x)


def test_patch_layout(rng):
    """Patch (i, j) of sample b is entry b n^2 + i n + j, with wrapped-around margins."""
    mg = nl.operators.MultigridPatching2D(1, 0.125)
    x = rng.standard_normal((2, 1, 16, 8))
    p = mg.patch(x)  # margins 2 (rows) and 1 (columns); patches 8 x 4 -> 12 x 6
    rows = np.arange(8 - 2, 16 + 2) % 16
    cols = np.arange(4 - 1, 8 + 1) % 8
    np.testing.assert_array_equal(p[1 * 4 + 1 * 2 + 1, 0], x[1, 0][np.ix_(rows, cols)])
    # Level 1: x[::2, ::2] (8 x 4) in a 12 x 6 window centred on the patch.
    centre_rows = (np.arange(12) - 6 + 4 + 2) % 8  # patch rows 8..15 -> coarse 4..7
    centre_cols = (np.arange(6) - 3 + 2 + 1) % 4
    np.testing.assert_array_equal(
        p[1 * 4 + 1 * 2 + 1, 1], x[1, 0, ::2, ::2][np.ix_(centre_rows, centre_cols)]
    )


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("fraction", FRACTIONS)
@pytest.mark.parametrize("levels", LEVELS)
def test_equals_neuraloperator(levels, fraction, grid, rng):
    torch = pytest.importorskip("torch")
    patching = pytest.importorskip("neuralop.training.patching")
    x = rng.standard_normal((2, 3, *grid))
    ref = patching.MultigridPatching2D(torch.nn.Identity(), levels, fraction)
    ref_x, _ = ref.patch(torch.from_numpy(x), torch.from_numpy(x))
    mg = nl.operators.MultigridPatching2D(levels, fraction)
    patched = mg.patch(x)
    np.testing.assert_array_equal(patched, ref_x.numpy())
    if levels > 0:  # neuraloperator's unpatch needs the state that patch leaves for levels > 0
        out = rng.standard_normal((patched.shape[0], 2, *patched.shape[2:]))
        ref_y, _ = ref.unpatch(torch.from_numpy(out), None, evaluation=False)
        np.testing.assert_array_equal(mg.unpatch(out), ref_y.numpy())
        # stitching=False: targets cut by make_patches(y, n, p=0).
        ref_t = patching.make_patches(torch.from_numpy(x), n=2**levels, p=0)
        np.testing.assert_array_equal(mg.patch_targets(x), ref_t.numpy())


@pytest.mark.parametrize("levels,fraction,grid", [(1, 0.125, (16, 24)), (2, 1 / 16, (32, 16)),
                                                  (1, 0.5, (8, 8))])
def test_adjoints(levels, fraction, grid, rng):
    """<patch(x), g> = <x, patch_adjoint(g)> and likewise for unpatch."""
    mg = nl.operators.MultigridPatching2D(levels, fraction)
    x = rng.standard_normal((2, 2, *grid))
    px = mg.patch(x)
    g = rng.standard_normal(px.shape)
    np.testing.assert_allclose(np.vdot(px, g), np.vdot(x, mg.patch_adjoint(g)), rtol=1e-12)
    y = rng.standard_normal((px.shape[0], 3, *px.shape[2:]))
    h = rng.standard_normal((2, 3, *grid))
    np.testing.assert_allclose(np.vdot(mg.unpatch(y), h), np.vdot(y, mg.unpatch_adjoint(h)),
                               rtol=1e-12)


def test_runs_on_every_backend(backend, rng):
    """Generic code on NumPy, array-api-strict (device1, float32) and CuPy; dtype kept."""
    mg = nl.operators.MultigridPatching2D(1, 0.125)
    x_np = rng.standard_normal((2, 2, 16, 24))
    x = backend.asarray(x_np)
    px = mg.patch(x)
    assert px.dtype == backend.dtype
    assert _backend.device(px) == _backend.device(x)
    np.testing.assert_array_equal(backend.to_numpy(mg.unpatch(px))[:, :2],
                                  backend.to_numpy(x))
    g = backend.asarray(rng.standard_normal(px.shape))
    dx = mg.patch_adjoint(g)
    assert dx.dtype == backend.dtype and dx.shape == x.shape
    ref = nl.operators.MultigridPatching2D(1, 0.125).patch_adjoint(backend.to_numpy(g))
    np.testing.assert_allclose(backend.to_numpy(dx), ref, rtol=backend.rtol, atol=1e-5)


def _model(levels, fraction, stitching, dtype=np.float64, seed=0):
    mg = nl.operators.MultigridPatching2D(levels, fraction, stitching=stitching)
    inner = nl.operators.FNO((4, 4), hidden_channels=4, in_channels=1 * (levels + 1),
                             out_channels=1, n_layers=2, dtype=dtype, rng=seed)
    return mg.wrap(inner)


@pytest.mark.parametrize("stitching", [True, False])
@pytest.mark.parametrize("loss", ["l2", "h1"])
def test_gradient_central_differences(stitching, loss, rng):
    """The patched model's gradient along random directions of every parameter."""
    model = _model(1, 0.125, stitching)
    x = rng.standard_normal((2, 1, 16, 16))
    y = rng.standard_normal((2, 1, 16, 16))
    _, grads = model.loss_and_grad(x, y, loss=loss)
    base = {k: v.copy() for k, v in model.params.items()}
    for name in base:
        v = rng.standard_normal(base[name].shape)
        if np.iscomplexobj(base[name]):
            v = v + 1j * rng.standard_normal(base[name].shape)
        eps = 1e-6
        values = []
        for sign in (1, -1):
            model.params[name] = base[name] + sign * eps * v
            values.append(model.loss_and_grad(x, y, loss=loss)[0])
        model.params[name] = base[name]
        numeric = (values[0] - values[1]) / (2 * eps)
        # Torch's convention: a complex gradient is dL/dRe + 1j dL/dIm.
        analytic = float(np.sum(grads[name].real * v.real + grads[name].imag * v.imag))
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), name


def test_stitched_loss_is_full_domain_loss(rng):
    """stitching=True: the loss is the relative error of model(x), the stitched output."""
    model = _model(1, 0.125, True)
    x = rng.standard_normal((3, 1, 16, 16))
    y = rng.standard_normal((3, 1, 16, 16))
    pred = model(x)
    expected = np.mean(np.linalg.norm((pred - y).reshape(3, -1), axis=1)
                       / np.linalg.norm(y.reshape(3, -1), axis=1))
    assert model.loss_and_grad(x, y)[0] == pytest.approx(expected, rel=1e-8)  # eps in the ratio
    assert model.params is model.model.params
    assert model.n_params == model.model.n_params
    assert model.dtype == np.float64


def test_trains_with_train_and_keeps_dtype(rng):
    """nl.operators.train works unchanged on the wrapper; float32 stays float32."""
    model = _model(1, 0.125, True, dtype=np.float32)
    x = rng.standard_normal((8, 1, 16, 16)).astype(np.float32)
    y = np.roll(x, 3, axis=-1)
    before = model.loss_and_grad(x, y)[0]
    nl.operators.train(model, x, y, epochs=8, batch_size=4, lr=1e-2, progress=False)
    assert model.loss_and_grad(x, y)[0] < before
    assert model(x).dtype == np.float32


@pytest.mark.parametrize(
    "kwargs,match",
    [({"levels": -1}, "`levels` must be >= 0"),
     ({"levels": 1.5}, "`levels` must be an integer"),
     ({"levels": 1, "padding_fraction": 0.6}, r"`padding_fraction` must be <= 0.5"),
     ({"levels": 1, "padding_fraction": -0.1}, r"`padding_fraction` must be >= 0"),
     ({"levels": 1, "padding_fraction": (0.1, 0.2, 0.3)}, "`padding_fraction` must be a real"),
     ({"levels": 1, "stitching": "yes"}, "`stitching` must be True or False")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        nl.operators.MultigridPatching2D(**kwargs)


def test_bad_input(rng):
    mg = nl.operators.MultigridPatching2D(2, 0.125)
    with pytest.raises(ValueError, match=r"`levels` must be at most 1 for a 8x8 grid.*got 2"):
        mg.patch(rng.standard_normal((1, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"`levels` must be at most 1 for a 24x18 grid"):
        mg.patch(rng.standard_normal((1, 1, 24, 18)))  # 18 is not divisible by 4
    with pytest.raises(ValueError, match=r"`x` must be a 4-D array; got 3-D"):
        mg.patch(rng.standard_normal((1, 16, 16)))
    with pytest.raises(ValueError, match=r"`y` must hold patches made by this patching"):
        mg.unpatch(rng.standard_normal((16, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"`y` must have a multiple of n\*\*2 = 16 patches"):
        mg.unpatch(rng.standard_normal((3, 1, 12, 12)))
    model = _model(1, 0.125, True)
    with pytest.raises(ValueError, match=r"`x` must have in_channels / \(levels \+ 1\)"):
        model(rng.standard_normal((1, 2, 16, 16)))
    with pytest.raises(ValueError, match=r"`y` must have the batch size and grid of `x`"):
        model.loss_and_grad(rng.standard_normal((1, 1, 16, 16)),
                            rng.standard_normal((1, 1, 16, 8)))
    with pytest.raises(TypeError, match=r"`patching` must be a MultigridPatching2D"):
        nl.operators.MultigridModel(model.model, 0.125)
