"""nl.operators.train, the Adam/AdamW optimiser, the schedules and the Gaussian normaliser.

References: torch.optim.Adam / AdamW and torch's CosineAnnealingLR / StepLR (where torch is
installed); a small linear toy model with one real and one complex parameter and an exact
gradient for the backend matrix; the FNO end to end.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import numlab as nl
from numlab import _backend
from numlab.operators import _layers
from numlab.operators._train import Adam, lr_schedule


class ToyModel:
    """``pred = W x + Re(C z)`` with ``z = x + 1j roll(x, 1)`` over the grid: the training
    interface of the FNO (params, loss_and_grad, __call__, dtype) with an exact gradient."""

    def __init__(self, backend, c_in=2, c_out=1, seed=0):
        rng = np.random.default_rng(seed)
        w = 0.3 * rng.standard_normal((c_out, c_in))
        c = 0.3 * (rng.standard_normal((c_out, c_in)) + 1j * rng.standard_normal((c_out, c_in)))
        complex_dtype = np.complex64 if backend.float_name == "float32" else np.complex128
        self.params = {
            "w": backend.asarray(w),
            "c": _backend.asarray(c.astype(complex_dtype), xp=backend.xp, device=backend.device),
        }
        self.dtype = backend.dtype
        self.calls = 0

    def _features(self, x):
        xp = _backend.namespace(x)
        cdt = self.params["c"].dtype
        return xp.astype(x, cdt) + xp.astype(xp.roll(x, 1, axis=-1), cdt) * 1j

    def __call__(self, x):
        xp = _backend.namespace(x)
        z = self._features(x)
        return xp.matmul(self.params["w"], x) + xp.real(xp.matmul(self.params["c"], z))

    def _forward(self, x, train=True):
        xp = _backend.namespace(x)
        z = self._features(x)

        def backprop(dpred):
            gw = xp.sum(xp.matmul(dpred, xp.matrix_transpose(x)), axis=0)
            # dL/dRe c + 1j dL/dIm c = sum dpred conj(z)^T
            dz = xp.astype(dpred, z.dtype)
            gc = xp.sum(xp.matmul(dz, xp.conj(xp.matrix_transpose(z))), axis=0)
            return {"w": gw, "c": gc}

        return self(x), backprop

    def loss_and_grad(self, x, y, loss="l2"):
        self.calls += 1
        fn = {"l2": _layers.relative_l2_loss, "h1": _layers.relative_h1_loss}[loss]
        pred, backprop = self._forward(x)
        value, loss_backprop = fn(pred, y, train=True)
        return float(value), backprop(loss_backprop())


def toy_data(backend, n=40, grid=16, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, grid))
    teacher_w = np.array([[0.7, -0.4]])
    y = teacher_w @ x + 0.5 * np.roll(x[:, :1], 1, axis=-1)
    return backend.asarray(x), backend.asarray(y)


# --------------------------------------------------------------------------- optimiser vs torch


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_equals_torch(decoupled, weight_decay):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    init = {
        "w": rng.standard_normal((3, 4)),
        "b": rng.standard_normal(5),
        "c": rng.standard_normal((2, 3, 4)) + 1j * rng.standard_normal((2, 3, 4)),
    }
    params = {k: v.copy() for k, v in init.items()}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    topt = cls(list(tparams.values()), lr=0.01, weight_decay=weight_decay)
    opt = Adam(params, lr=0.01, weight_decay=weight_decay, decoupled=decoupled)
    for step in range(7):
        grads = {}
        for k, v in init.items():
            g = rng.standard_normal(v.shape) * 10.0 ** rng.integers(-3, 2)
            if np.iscomplexobj(v):
                g = g + 1j * rng.standard_normal(v.shape)
            grads[k] = g
            tparams[k].grad = torch.tensor(g)
        if step == 4:  # a learning-rate change between steps (a schedule)
            opt.lr = 0.003
            for group in topt.param_groups:
                group["lr"] = 0.003
        topt.step()
        opt.step(grads)
        for k in init:
            ref = tparams[k].detach().numpy()
            assert params[k].dtype == init[k].dtype
            np.testing.assert_allclose(params[k], ref, rtol=1e-12, atol=1e-14)
    # the inputs were not written: entries were replaced
    assert not np.shares_memory(params["w"], init["w"])


def test_adam_complex_moments_per_component():
    # |g|^2 in one moment would make the two components' steps equal; torch's are not.
    params = {"c": np.array([0.0 + 0.0j])}
    opt = Adam(params, lr=1.0)
    opt.step({"c": np.array([1.0 + 0.0j])})
    opt.step({"c": np.array([0.0 + 1.0j])})
    # the imaginary part's first step is a full lr step (normalised per component)
    assert abs(params["c"][0].imag) > 0.5


def test_adam_float32_keeps_dtype():
    params = {"w": np.ones(3, np.float32), "c": np.ones(2, np.complex64)}
    opt = Adam(params, lr=0.1, weight_decay=0.1)
    opt.step({"w": np.ones(3, np.float32), "c": np.ones(2, np.complex64)})
    assert params["w"].dtype == np.float32 and params["c"].dtype == np.complex64


# --------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("epochs", [1, 7, 20, 500])
@pytest.mark.parametrize("scheduler", ["cosine", "step", None])
def test_schedule_equals_torch(scheduler, epochs):
    torch = pytest.importorskip("torch")
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([p], lr=3e-3)
    if scheduler == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    elif scheduler == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(epochs // 5, 1), gamma=0.5)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    ref = []
    for _ in range(epochs):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lr_schedule(scheduler, 3e-3, epochs), ref, rtol=1e-12, atol=1e-15)


def test_schedule_callable_and_paper_step():
    rates = lr_schedule(lambda e: 0.5 ** (e // 100), 1e-3, 500)
    assert rates == lr_schedule("step", 1e-3, 500)  # the paper's Darcy StepLR(100, 0.5)
    with pytest.raises(ValueError, match="`scheduler` must return a finite factor"):
        lr_schedule(lambda e: float("nan"), 1e-3, 3)


# --------------------------------------------------------------------------- train on the backends


def test_train_backends(backend):
    x, y = toy_data(backend)
    model = ToyModel(backend)
    xv, yv = toy_data(backend, n=10, seed=5)
    result = nl.operators.train(model, x, y, epochs=15, batch_size=8, lr=0.05,
                                validation=(xv, yv), progress=False, rng=0)
    assert result.stopped == "completed" and result.n_epochs == 15
    assert result.n_steps == 15 * 5
    assert len(result.train_loss) == len(result.validation_loss) == len(result.epoch_time) == 15
    assert result.train_loss[-1] < 0.3 * result.train_loss[0]
    assert result.validation_loss[-1] < 0.3 * result.validation_loss[0]
    assert model.params["w"].dtype == backend.dtype
    assert model.params["c"].dtype == (backend.xp.complex64 if backend.float_name == "float32"
                                       else backend.xp.complex128)
    if backend.device is not None:
        assert all(_backend.device(p) == backend.device for p in model.params.values())
    assert result.total_time > 0 and result.lr[0] == 0.05
    with pytest.raises(AttributeError):
        result.n_epochs = 3  # frozen


def test_reproducible():
    from conftest import BACKENDS

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    runs = []
    for seed in (7, 7, 8):
        model = ToyModel(backend)
        r = nl.operators.train(model, x, y, epochs=3, batch_size=7, lr=0.05, progress=False,
                               rng=seed)
        runs.append((r.train_loss, model.params["w"].copy(), model.params["c"].copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert runs[0][0] != runs[2][0]


def test_result_repr_is_compact():
    from conftest import BACKENDS

    x, y = toy_data(BACKENDS[0])
    result = nl.operators.train(ToyModel(BACKENDS[0]), x, y, epochs=6, batch_size=7,
                                lr=0.05, progress=False, rng=0)
    text = repr(result)
    assert text.startswith("TrainResult(") and "train_loss=tuple(len=6)" in text
    assert len(text) < 400


def test_optimizers_and_losses():
    from conftest import BACKENDS

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    for optimizer in ("adam", "adamw"):
        for loss in ("l2", "h1"):
            for scheduler in ("cosine", "step", None, lambda e: 1.0 / (1 + e)):
                model = ToyModel(backend)
                r = nl.operators.train(model, x, y, epochs=4, lr=0.05, weight_decay=1e-3,
                                       optimizer=optimizer, scheduler=scheduler, loss=loss,
                                       progress=False, rng=0)
                assert r.train_loss[-1] < r.train_loss[0]


def test_progress_bar(capsys):
    from conftest import BACKENDS

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    nl.operators.train(ToyModel(backend), x, y, epochs=2, lr=0.05, rng=0)
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=" in err


# --------------------------------------------------------------------------- stops


class NaNAt(ToyModel):
    """The toy model whose loss (or one gradient) is NaN at call ``at``; keeps a copy of the
    parameters it saw at every call."""

    def __init__(self, backend, at, where="loss"):
        super().__init__(backend)
        self.at, self.where, self.seen = at, where, []

    def loss_and_grad(self, x, y, loss="l2"):
        self.seen.append({k: np.array(_backend.to_numpy(v)) for k, v in self.params.items()})
        value, grads = super().loss_and_grad(x, y, loss)
        if self.calls == self.at:
            if self.where == "loss":
                value = math.nan
            else:
                grads["c"] = grads["c"] * math.inf
        return value, grads


@pytest.mark.parametrize("where", ["loss", "grad"])
def test_non_finite_stops_and_keeps_last_finite_params(where):
    from conftest import BACKENDS

    backend = BACKENDS[0]
    x, y = toy_data(backend)  # 40 samples, batch 8: 5 steps per epoch
    model = NaNAt(backend, at=8, where=where)
    with pytest.warns(RuntimeWarning, match="epoch 2, step 3 of 5") as record:
        result = nl.operators.train(model, x, y, epochs=5, batch_size=8, lr=0.05,
                                    progress=False, rng=0)
    text = str(record[0].message)
    assert ("the loss is nan" in text) if where == "loss" else ("`c`" in text)
    assert result.stopped == "non-finite" and result.n_epochs == 1 and result.n_steps == 7
    assert result.message == text
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, model.seen[-1][k])
        assert np.all(np.isfinite(v))


def test_callback_stops():
    from conftest import BACKENDS

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    seen = []

    def callback(epoch, result, model):
        seen.append((epoch, result.n_epochs, len(result.train_loss)))
        assert result.stopped == "running"
        assert isinstance(model, ToyModel)
        return epoch == 3

    result = nl.operators.train(ToyModel(backend), x, y, epochs=10, lr=0.05, callback=callback,
                                progress=False, rng=0)
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert result.stopped == "callback" and result.n_epochs == 3
    assert "after epoch 3" in result.message


# --------------------------------------------------------------------------- checkpoints


def _numpy_params(model):
    return {k: np.array(_backend.to_numpy(v)) for k, v in model.params.items()}


def test_checkpoint_resume_equals_uninterrupted_run(backend, tmp_path):
    x, y = toy_data(backend)
    xv, yv = toy_data(backend, n=10, seed=5)
    kwargs = dict(epochs=6, batch_size=7, lr=0.05, weight_decay=1e-3, scheduler="step",
                  validation=(xv, yv), progress=False)
    whole_model = ToyModel(backend)
    whole = nl.operators.train(whole_model, x, y, rng=3, **kwargs)

    path = tmp_path / "run.npz"
    stop_at = 4
    first = nl.operators.train(ToyModel(backend), x, y, rng=3, checkpoint=path,
                               callback=lambda e, r, m: e == stop_at, **kwargs)
    assert first.stopped == "callback" and first.n_epochs == stop_at
    resumed_model = ToyModel(backend, seed=9)  # other initial weights: the file's replace them
    resumed = nl.operators.train(resumed_model, x, y, rng=3, checkpoint=path, **kwargs)
    assert resumed.stopped == "completed" and resumed.n_epochs == 6
    assert resumed.n_steps == whole.n_steps
    assert resumed.train_loss == whole.train_loss
    assert resumed.validation_loss == whole.validation_loss and resumed.lr == whole.lr
    assert resumed.epoch_time[:stop_at] == first.epoch_time
    for k, v in _numpy_params(whole_model).items():
        np.testing.assert_array_equal(_numpy_params(resumed_model)[k], v)
        assert resumed_model.params[k].dtype == whole_model.params[k].dtype
    if backend.device is not None:
        assert all(_backend.device(p) == backend.device for p in resumed_model.params.values())
    # a finished run resumes to the end at once, with the final parameters
    again_model = ToyModel(backend, seed=11)
    again = nl.operators.train(again_model, x, y, rng=3, checkpoint=str(path), **kwargs)
    assert again.n_epochs == 6 and again.n_steps == whole.n_steps
    for k, v in _numpy_params(whole_model).items():
        np.testing.assert_array_equal(_numpy_params(again_model)[k], v)
    assert not (tmp_path / "run.npz.partial").exists()


def test_checkpoint_refuses_another_run(tmp_path):
    from conftest import BACKENDS

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    path = tmp_path / "run.npz"
    nl.operators.train(ToyModel(backend), x, y, epochs=2, lr=0.05, progress=False, rng=0,
                       checkpoint=path)
    with pytest.raises(ValueError, match=r"`checkpoint` .* different run .* in batch_size, lr"):
        nl.operators.train(ToyModel(backend), x, y, epochs=2, lr=0.01, batch_size=5,
                           progress=False, rng=0, checkpoint=path)
    with pytest.raises(ValueError, match=r"`checkpoint` .* differs in .*n_samples"):
        nl.operators.train(ToyModel(backend), x[:20], y[:20], epochs=2, lr=0.05,
                           progress=False, rng=0, checkpoint=path)
    other = tmp_path / "model.npz"
    np.savez(other, w=np.zeros(3))
    with pytest.raises(ValueError, match="`checkpoint` .* not a numlab training checkpoint"):
        nl.operators.train(ToyModel(backend), x, y, epochs=2, lr=0.05, progress=False, rng=0,
                           checkpoint=other)
    with pytest.raises(TypeError, match="`checkpoint` must be None or a file path"):
        nl.operators.train(ToyModel(backend), x, y, epochs=2, lr=0.05, progress=False, rng=0,
                           checkpoint=3)


# --------------------------------------------------------------------------- bad input


def test_bad_input():
    from conftest import BACKENDS

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    model = ToyModel(backend)

    def run(**kw):
        args = dict(x=x, y=y, epochs=2, progress=False)
        args.update(kw)
        return nl.operators.train(model, args.pop("x"), args.pop("y"), **args)

    with pytest.raises(ValueError, match="`y` must have as many samples .* as `x`, 40; got 39"):
        run(y=y[:39])
    with pytest.raises(ValueError, match="`epochs` must be >= 1; got 0"):
        run(epochs=0)
    with pytest.raises(ValueError, match="`lr` must be > 0"):
        run(lr=0.0)
    with pytest.raises(ValueError, match="`lr` must be finite"):
        run(lr=math.nan)
    with pytest.raises(ValueError, match="`weight_decay` must be >= 0"):
        run(weight_decay=-1.0)
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        run(batch_size=0)
    with pytest.raises(ValueError, match="`optimizer` must be one of 'adam', 'adamw'; got 'sgd'"):
        run(optimizer="sgd")
    with pytest.raises(ValueError, match="`scheduler` must be one of .*; got 'linear'"):
        run(scheduler="linear")
    with pytest.raises(ValueError, match="`loss` must be one of 'l2', 'h1', 'l2sq'; got 'mse'"):
        run(loss="mse")
    bad = np.array(x)
    bad[3, 0, 2] = np.nan
    with pytest.raises(ValueError, match="`x` must contain only finite values"):
        run(x=bad)
    with pytest.raises(ValueError, match=r"`validation\[1\]` must contain only finite"):
        run(validation=(x, np.full(y.shape, np.inf)))
    with pytest.raises(TypeError, match="`validation` must be None or a pair"):
        run(validation=x)
    with pytest.raises(TypeError, match="`callback` must be callable"):
        run(callback=3)
    with pytest.raises(TypeError, match="`progress` must be True or False"):
        run(progress="yes")
    with pytest.raises(TypeError, match="`rng` must be None"):
        run(rng="seed")
    with pytest.raises(TypeError, match="`output_normalizer` must be None or a fitted"):
        run(output_normalizer=3)


# --------------------------------------------------------------------------- normaliser


def test_normalizer_pointwise_as_li(backend):
    rng = np.random.default_rng(0)
    a = rng.normal(2.0, 3.0, size=(30, 1, 6, 5)) * np.linspace(1, 2, 5)
    norm = nl.operators.UnitGaussianNormalizer().fit(backend.asarray(a))
    mean, std = a.mean(axis=0), a.std(axis=0, ddof=1)  # Li et al.: torch.mean / torch.std
    np.testing.assert_allclose(backend.to_numpy(norm.mean), mean, rtol=backend.rtol)
    np.testing.assert_allclose(backend.to_numpy(norm.std), std, rtol=backend.rtol)
    z = norm.encode(backend.asarray(a[:7]))
    assert z.dtype == backend.dtype
    np.testing.assert_allclose(backend.to_numpy(z), (a[:7] - mean) / (std + 1e-5),
                               rtol=backend.rtol, atol=backend.rtol)
    np.testing.assert_allclose(backend.to_numpy(norm.decode(z)), a[:7], rtol=backend.rtol)


def test_normalizer_channelwise_any_resolution():
    rng = np.random.default_rng(0)
    a = np.stack([rng.normal(5.0, 2.0, (20, 16)), rng.normal(-1.0, 0.5, (20, 16))], axis=1)
    norm = nl.operators.UnitGaussianNormalizer(axis=(0, 2)).fit(a)
    assert norm.mean.shape == (2, 1)
    fine = np.stack([rng.normal(5.0, 2.0, (4, 64)), rng.normal(-1.0, 0.5, (4, 64))], axis=1)
    np.testing.assert_allclose(norm.decode(norm.encode(fine)), fine)
    with pytest.raises(ValueError, match="`a` must match the fitted data on axes"):
        nl.operators.UnitGaussianNormalizer().fit(a).encode(fine)
    with pytest.raises(ValueError, match="must be fitted first"):
        nl.operators.UnitGaussianNormalizer().encode(a)
    with pytest.raises(ValueError, match="`axis` must include 0"):
        nl.operators.UnitGaussianNormalizer(axis=1)
    with pytest.raises(ValueError, match="`a` must contain only finite"):
        nl.operators.UnitGaussianNormalizer().fit(np.full((3, 1, 4), np.nan))


def test_decoded_training_loss_gradient():
    # With an output normaliser the training loss is that of the decoded values (Li et al.);
    # its gradient against central differences, through the point-wise decoding.
    from conftest import BACKENDS

    from numlab.operators._train import _loss_and_grad

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    y = y * np.linspace(1.0, 3.0, y.shape[-1]) + 5.0
    yn = nl.operators.UnitGaussianNormalizer().fit(y)
    model = ToyModel(backend)
    value, grads = _loss_and_grad(model, x, yn.encode(y), "h1", yn)
    ref, _ = _layers.relative_h1_loss(yn.decode(model(x)), y)
    np.testing.assert_allclose(value, float(ref), rtol=1e-12)
    h = 1e-6
    for name, part in (("w", 1.0), ("c", 1.0), ("c", 1j)):
        base = model.params[name].copy()
        model.params[name] = base + h * part * (np.arange(base.size).reshape(base.shape) == 1)
        up = _loss_and_grad(model, x, yn.encode(y), "h1", yn)[0]
        model.params[name] = base - h * part * (np.arange(base.size).reshape(base.shape) == 1)
        down = _loss_and_grad(model, x, yn.encode(y), "h1", yn)[0]
        model.params[name] = base
        g = grads[name].reshape(-1)[1]
        expected = g.real if part == 1.0 else g.imag
        np.testing.assert_allclose((up - down) / (2 * h), expected, rtol=1e-6)


def test_output_normalizer_needs_forward():
    from conftest import BACKENDS

    class Plain:  # the public interface only
        def __init__(self, backend):
            self.toy = ToyModel(backend)
            self.params, self.dtype = self.toy.params, self.toy.dtype

        def __call__(self, x):
            return self.toy(x)

        def loss_and_grad(self, x, y, loss="l2"):
            return self.toy.loss_and_grad(x, y, loss)

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    yn = nl.operators.UnitGaussianNormalizer().fit(y)
    with pytest.raises(TypeError, match="`model` must expose `_forward"):
        nl.operators.train(Plain(backend), x, yn.encode(y), epochs=1, output_normalizer=yn,
                           progress=False)
    # without the normaliser the public interface is enough
    r = nl.operators.train(Plain(backend), x, y, epochs=2, progress=False)
    assert r.n_epochs == 2


def test_validation_decoded_by_output_normalizer():
    from conftest import BACKENDS

    backend = BACKENDS[0]
    x, y = toy_data(backend)
    y = 3.0 * y + 10.0
    yn = nl.operators.UnitGaussianNormalizer(axis=(0, 2)).fit(y)
    model = ToyModel(backend)
    seen = []
    r = nl.operators.train(model, x, yn.encode(y), epochs=2, lr=0.05, validation=(x, y),
                           output_normalizer=yn, progress=False, rng=0,
                           callback=lambda e, res, m: seen.append(
                               float(_layers.relative_l2_loss(yn.decode(m(x)), y)[0])))
    np.testing.assert_allclose(r.validation_loss, seen, rtol=1e-12)


# --------------------------------------------------------------------------- the FNO


def test_fno_end_to_end():
    FNO = getattr(nl.operators, "FNO", None)
    if FNO is None:
        pytest.skip("nl.operators.FNO has not landed")
    rng = np.random.default_rng(0)
    n, s = 64, 32
    # antiderivative operator on periodic zero-mean functions: smooth, learnable in a few epochs
    k = np.arange(1, 6)
    coef = rng.standard_normal((n, 2, 5)) / k
    grid = np.arange(s) / s
    x = np.einsum("nk,ks->ns", coef[:, 0], np.cos(2 * np.pi * np.outer(k, grid))) + np.einsum(
        "nk,ks->ns", coef[:, 1], np.sin(2 * np.pi * np.outer(k, grid)))
    y = np.einsum("nk,ks->ns", coef[:, 0] / (2 * np.pi * k),
                  np.sin(2 * np.pi * np.outer(k, grid))) - np.einsum(
        "nk,ks->ns", coef[:, 1] / (2 * np.pi * k), np.cos(2 * np.pi * np.outer(k, grid)))
    x, y = x[:, None].astype(np.float32), y[:, None].astype(np.float32)
    model = FNO((8,), 16, 1, 1, n_layers=2, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = nl.operators.train(model, x[:48], y[:48], epochs=8, batch_size=8, lr=5e-3,
                               validation=(x[48:], y[48:]), progress=False, rng=0)
    assert r.stopped == "completed"
    assert r.train_loss[-1] < 0.5 * r.train_loss[0]
    assert r.validation_loss[-1] < 0.5 * r.validation_loss[0]
    assert all(v.dtype in (np.float32, np.complex64) for v in model.params.values())


def test_fno_with_output_normalizer():
    FNO = getattr(nl.operators, "FNO", None)
    if FNO is None:
        pytest.skip("nl.operators.FNO has not landed")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 1, 16, 12)).astype(np.float32)
    y = (np.cumsum(x, axis=-1) / 4 + 1.0).astype(np.float32)
    yn = nl.operators.UnitGaussianNormalizer().fit(y)
    model = FNO((6, 6), 8, 1, 1, n_layers=2, rng=0)
    r = nl.operators.train(model, x, yn.encode(y), epochs=6, batch_size=8, lr=1e-2,
                           validation=(x, y), output_normalizer=yn, progress=False, rng=0)
    assert r.train_loss[-1] < 0.95 * r.train_loss[0]
    final = float(_layers.relative_l2_loss(yn.decode(model(x)), y)[0])
    np.testing.assert_allclose(r.validation_loss[-1], final, rtol=1e-5)
