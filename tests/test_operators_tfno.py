"""nl.operators tensorized FNO (CP, Tucker, TT spectral weights): reconstruction against
TensorLy, rank rules against TensorLy / tensorly-torch, the two implementations against each
other and against central differences, neuraloperator's TFNO, save/load, backends, bad input.

TensorLy, tensorly-torch, torch and neuraloperator are references only; their tests skip
cleanly where they are not installed. Sizes are small (the file runs in seconds).
"""

from __future__ import annotations

import numpy as np
import pytest

import numlab as nl
from numlab import _backend
from numlab.operators import _factorized, _layers
from numlab.operators._fno import FNO, TFNO

FACTORIZATIONS = ("cp", "tucker", "tt")
# Spectral weight shapes (c_in, c_out, *kept_modes) of the configurations:
# hidden 32 with n_modes (24, 24) and (16, 16), hidden 64 with n_modes (12, 12).
CONFIG_SHAPES = [(32, 32, 24, 13), (32, 32, 16, 9), (64, 64, 12, 7)]


def _factors(factorization, shape, rank, seed=0):
    rng = np.random.default_rng(seed)
    return _factorized.init_factors(factorization, shape, rank, 0.5, rng, np.complex128)


def _mats(factors):
    return [factors[f"factors.factor_{k}"] for k in range(_factorized._order(factors))]


# --------------------------------------------------------------------------- reconstruction


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("shape", [(5, 4, 6, 4), (3, 4, 5, 4, 3)])
def test_reconstruction_matches_tensorly(factorization, shape):
    tl = pytest.importorskip("tensorly")
    factors = _factors(factorization, shape, 0.4)
    got, _ = _factorized.reconstruct(np, factorization, factors)
    mats = _mats(factors)
    # Importing tensorly-torch (neuraloperator does) switches TensorLy's global backend to
    # PyTorch; the reference here works on NumPy arrays.
    with tl.backend_context("numpy"):
        if factorization == "cp":
            expected = tl.cp_to_tensor((factors["weights"], mats))
        elif factorization == "tucker":
            expected = tl.tucker_to_tensor((factors["core"], mats))
        else:
            expected = tl.tt_to_tensor(mats)
    assert got.shape == shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-12 * np.max(np.abs(expected))


# --------------------------------------------------------------------------- ranks


@pytest.mark.parametrize("shape", CONFIG_SHAPES)
@pytest.mark.parametrize("rank", [0.05, 0.1, 0.42, 1.0])
def test_rank_from_float_matches_tensorly(shape, rank):
    tl = pytest.importorskip("tensorly")
    assert _factorized.validate_rank("cp", shape, rank) == tl.cp_tensor.validate_cp_rank(
        shape, rank)
    assert list(_factorized.validate_rank("tucker", shape, rank)) == list(
        tl.tucker_tensor.validate_tucker_rank(shape, rank))
    assert list(_factorized.validate_rank("tt", shape, rank)) == list(
        tl.tt_tensor.validate_tt_rank(shape, rank))


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_factor_shapes_match_tltorch(factorization):
    torch = pytest.importorskip("torch")
    tltorch = pytest.importorskip("tltorch")
    shape = CONFIG_SHAPES[0]
    tensor = tltorch.FactorizedTensor.new(shape, rank=0.1, factorization=factorization,
                                          dtype=torch.cfloat)
    expected = {k: tuple(v.shape) for k, v in tensor.state_dict().items()}
    got = _factorized.factor_shapes(factorization, shape, 0.1)
    # tltorch keeps a complex parameter as its real view (a trailing axis of 2).
    assert {k: v + (2,) for k, v in got.items()} == expected or got == expected


def test_compression_and_parameter_counts_match_neuraloperator():
    # neuraloperator's counts (hidden 32, n_modes (24, 24), rank 0.1): measured with
    # neuralop.models.FNO(..., factorization=f, rank=0.1), complex counted twice.
    expected = {"tucker": 261_465, "cp": 271_009, "tt": 267_745}
    dense = FNO((24, 24), 32, 1, 1, rng=0)
    assert dense.n_params == 2_569_057 and dense.compression == 1.0
    for factorization, total in expected.items():
        model = FNO((24, 24), 32, 1, 1, factorization=factorization, rank=0.1, rng=0)
        assert model.n_params == total
        fraction = 1.0 / model.compression
        assert 0.09 <= fraction <= 0.115
        assert model.n_params_spectral * model.compression == pytest.approx(dense.n_params_spectral)
    assert TFNO((24, 24), 32, 1, 1, rng=0).n_params == expected["tucker"]


# --------------------------------------------------------------------------- gradients


def _model(factorization, implementation, n_modes=(6, 5), rank=0.5, dtype="float64"):
    return FNO(n_modes, 4, 2, 2, n_layers=2, factorization=factorization, rank=rank,
               implementation=implementation, dtype=dtype, rng=4)


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("n_modes,grid", [((6, 5), (8, 10)), ((4,), (9,)), ((4, 4, 3), (6, 5, 6))])
def test_factorized_equals_reconstructed(factorization, n_modes, grid):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, *grid))
    y = rng.standard_normal((3, 2, *grid))
    a = _model(factorization, "factorized", n_modes)
    b = _model(factorization, "reconstructed", n_modes)
    assert a.implementation_for(3) == "factorized"
    scale = np.max(np.abs(b(x)))
    assert np.max(np.abs(a(x) - b(x))) <= 1e-10 * scale
    loss_a, grads_a = a.loss_and_grad(x, y)
    loss_b, grads_b = b.loss_and_grad(x, y)
    assert abs(loss_a - loss_b) <= 1e-10 * abs(loss_b)
    assert set(grads_a) == set(a.params)
    for name, g in grads_b.items():
        assert grads_a[name].dtype == g.dtype == a.params[name].dtype
        assert np.max(np.abs(grads_a[name] - g)) <= 1e-10 * max(np.max(np.abs(g)), 1e-300), name


@pytest.mark.parametrize("implementation", ["factorized", "reconstructed"])
@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_factor_gradients_match_central_differences(factorization, implementation):
    """Every factor, real and imaginary parts, through the whole model (float64)."""
    rng = np.random.default_rng(1)
    model = _model(factorization, implementation)
    x = rng.standard_normal((2, 2, 8, 10))
    y = rng.standard_normal((2, 2, 8, 10))
    _, grads = model.loss_and_grad(x, y)
    h = 1e-6
    for name, value in model.params.items():
        if ".weight." not in name:
            continue
        index = tuple(int(rng.integers(s)) for s in value.shape)
        for part in (1.0, 1j):
            original = value[index]
            value[index] = original + h * part
            plus, _ = model.loss_and_grad(x, y)
            value[index] = original - h * part
            minus, _ = model.loss_and_grad(x, y)
            value[index] = original
            numeric = (plus - minus) / (2 * h)
            g = grads[name][index]
            analytic = g.real if part == 1.0 else g.imag
            assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (name, part)


def test_automatic_implementation_follows_the_cost_model():
    model = TFNO((24, 24), 32, 1, 1, rng=0)
    assert model.config["implementation"] is None
    for batch in (1, 16, 256):
        expected = _factorized.choose_implementation("tucker", (32, 32, 24, 13), 0.1, batch)
        assert model.implementation_for(batch) == expected
    # CP at rank 0.1 has R = 316 > the channels: reconstructing is cheaper at a large batch.
    assert _factorized.choose_implementation("cp", (32, 32, 24, 13), 0.1, 256) == "reconstructed"
    assert FNO((4,), 4, 1, 1, rng=0).implementation_for(8) is None


# --------------------------------------------------------------------------- neuraloperator


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("neuralop")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_forward_matches_neuraloperator_tfno(torch, factorization):
    from neuralop.models import FNO as TorchFNO

    torch.manual_seed(0)
    torch_model = TorchFNO(n_modes=(8, 6), hidden_channels=8, in_channels=2, out_channels=1,
                           n_layers=2, factorization=factorization.upper(), rank=0.3)
    model = FNO.from_neuraloperator(torch_model)
    assert model.config["factorization"] == factorization
    assert model.n_params == sum(p.numel() * (1 + p.is_complex())
                                 for p in torch_model.parameters())
    x = np.random.default_rng(0).standard_normal((3, 2, 16, 12)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    for implementation in ("factorized", "reconstructed"):
        model.config["implementation"] = implementation
        got = model(x)
        assert got.dtype == np.float32
        assert np.max(np.abs(got - expected)) <= 1e-5 * np.max(np.abs(expected))
    # And back: numlab's weights in neuraloperator; the state dict alone (no metadata).
    back = model.to_neuraloperator()
    with torch.no_grad():
        # (in neuraloperator's "reconstructed" implementation: rounding differs slightly)
        again = back(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(again - expected)) <= 1e-6 * np.max(np.abs(expected))
    state = torch_model.state_dict()
    state.pop("_metadata", None)
    from_state = FNO.from_neuraloperator(state, positional_embedding="grid")
    assert from_state.config["factorization"] == factorization
    assert from_state.n_params == model.n_params
    assert np.max(np.abs(from_state(x) - expected)) <= 1e-5 * np.max(np.abs(expected))


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_float64_forward_matches_neuraloperator(torch, monkeypatch, factorization):
    # neuraloperator allocates spectral tensors as torch.cfloat: make that complex128.
    monkeypatch.setattr(torch, "cfloat", torch.cdouble)
    model = FNO((8, 6), 6, 1, 2, n_layers=2, factorization=factorization, rank=0.4,
                dtype="float64", rng=2)
    torch_model = model.to_neuraloperator()
    grid = (16, 12)
    pe = torch_model.positional_embedding  # numlab's grid, not a float32 linspace
    pe._grid = [torch.from_numpy(c)[None, None] for c in _layers.grid_coordinates(grid)]
    pe._res = torch.Size(grid)
    x = np.random.default_rng(3).standard_normal((2, 1, *grid))
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    assert expected.dtype == np.float64
    assert np.max(np.abs(model(x) - expected)) <= 1e-12 * np.max(np.abs(expected))


# --------------------------------------------------------------------------- files, backends


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_save_load_round_trip(tmp_path, factorization):
    model = FNO((6, 4), 4, 1, 1, n_layers=2, factorization=factorization, rank=0.6,
                dtype="float64", rng=3)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8))
    model.save(tmp_path / "tfno.npz")
    loaded = nl.operators.load(tmp_path / "tfno.npz")
    assert loaded.config == model.config
    assert loaded.n_params == model.n_params
    np.testing.assert_array_equal(loaded(x), model(x))


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_runs_on_every_backend(backend, factorization):
    dtype = "float32" if backend.float_name == "float32" else "float64"
    like = backend.asarray(np.zeros(1))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 8, 10)).astype(dtype)
    y = rng.standard_normal((2, 2, 8, 10)).astype(dtype)
    tol = dict(rtol=2e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    for implementation in ("factorized", "reconstructed"):
        reference = _model(factorization, implementation, dtype=dtype)
        model = _model(factorization, implementation, dtype=dtype)
        model.to(like)
        xb, yb = backend.asarray(x), backend.asarray(y)
        out = model(xb)
        assert type(out) is type(xb) and out.dtype == xb.dtype
        np.testing.assert_allclose(backend.to_numpy(out), reference(x), **tol)
        loss, grads = model.loss_and_grad(xb, yb)
        ref_loss, ref_grads = reference.loss_and_grad(x, y)
        assert abs(loss - ref_loss) <= 1e-4 * abs(ref_loss)
        for name, g in ref_grads.items():
            assert grads[name].dtype == model.params[name].dtype
            np.testing.assert_allclose(_backend.to_numpy(grads[name]), g,
                                       rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("rank", [0.0, -0.1, 1.5])
def test_bad_fraction_rank(rank):
    with pytest.raises(ValueError, match=r"`rank` must be in \(0, 1\]"):
        FNO((4, 4), 4, 1, 1, factorization="tucker", rank=rank)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`factorization` must be None, 'cp', 'tucker' or 'tt'"):
        FNO((4, 4), 4, 1, 1, factorization="svd")
    with pytest.raises(ValueError, match="`implementation` must be"):
        FNO((4, 4), 4, 1, 1, factorization="cp", implementation="dense")
    with pytest.raises(ValueError, match="`rank` must be >= 1"):
        FNO((4, 4), 4, 1, 1, factorization="cp", rank=0)
    with pytest.raises(ValueError, match="`rank` must start and end with 1"):
        FNO((4, 4), 4, 1, 1, factorization="tt", rank=(2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="`rank` must be a tuple of 4 positive ints"):
        FNO((4, 4), 4, 1, 1, factorization="tucker", rank=(2, 2))
    with pytest.raises(TypeError, match="`rank` must be"):
        FNO((4, 4), 4, 1, 1, factorization="cp", rank="half")
    # Case-insensitive names, "dense" = no factorization.
    assert FNO((4, 4), 4, 1, 1, factorization="Tucker", rank=0.5).config["factorization"] == (
        "tucker")
    assert FNO((4, 4), 4, 1, 1, factorization="dense").config["factorization"] is None
