"""Curvature of the neural operators' training loss (numlab.operators.OperatorLoss).

References: torch's double-backward Hessian-vector and Gauss-Newton products on the same
model (neuraloperator, copied weights, float64), the dense Hessian's eigenvalues, and
symmetry and difference checks where torch has no counterpart (LSM, multi-grid).
"""

from __future__ import annotations

import numpy as np
import pytest

import numlab as nl
from numlab.operators import FNO, LSM, TFNO, MultigridPatching2D, OperatorLoss, _layers


def _burgers(n, s=32):
    u0, u1 = nl.pde.burgers(n, s, viscosity=0.05, rng=0)
    return u0[:, None], u1[:, None]


def _tiny(cls=FNO, **options):
    return cls((6,), hidden_channels=6, in_channels=1, out_channels=1, n_layers=2,
               dtype="float64", rng=3, **options)


# --------------------------------------------------------------------------- torch reference


@pytest.fixture
def torch64(monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("neuralop")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # neuraloperator allocates its spectral buffer as torch.cfloat whatever the dtype.
    monkeypatch.setattr(torch, "cfloat", torch.cdouble)
    yield torch
    torch.set_num_threads(threads)


class _TorchLoss:
    """The same loss in torch, with autograd's curvature products in numlab's flat layout."""

    def __init__(self, torch, model, f, x, y):
        self.torch, self.f = torch, f
        self.module = model.to_neuraloperator()
        grid = x.shape[2:]
        pe = self.module.positional_embedding  # numlab's grid, in float64
        pe._grid = [torch.from_numpy(c)[None, None] for c in _layers.grid_coordinates(grid)]
        pe._res = torch.Size(grid)
        named = dict(self.module.named_parameters())
        self.params = [named[n] if n in named else named[n + ".tensor"] for n in f._names]
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def loss(self, pred):
        torch = self.torch
        err = torch.linalg.norm((pred - self.y).flatten(2), dim=-1)
        ref = torch.linalg.norm(self.y.flatten(2), dim=-1)
        if self.f.loss_name == "l2sq":
            return (err**2 / (ref**2 + 1e-8)).mean()
        return (err / (ref + 1e-8)).mean()

    def flat(self, tensors):
        torch = self.torch
        return np.concatenate([(torch.view_as_real(t) if t.is_complex() else t)
                               .detach().numpy().ravel() for t in tensors])

    def unflat(self, v):
        named = self.f.unflatten(v)
        return [self.torch.from_numpy(np.asarray(named[n])).reshape(p.shape)
                for n, p in zip(self.f._names, self.params, strict=True)]

    def _pairing(self, a, b):
        # sum Re(conj(a) b): differentiating it gives torch's dL/dRe + 1j dL/dIm convention
        torch = self.torch
        return sum(torch.real(torch.conj(ai) * bi).sum() for ai, bi in zip(a, b, strict=True))

    def gradient(self):
        g = self.torch.autograd.grad(self.loss(self.module(self.x)), self.params)
        return self.flat(g)

    def hvp(self, v):
        torch = self.torch
        g = torch.autograd.grad(self.loss(self.module(self.x)), self.params, create_graph=True)
        return self.flat(torch.autograd.grad(self._pairing(g, self.unflat(v)), self.params))

    def gauss_newton(self, v):
        torch = self.torch
        pred = self.module(self.x)
        # J v by the double-vjp trick, the loss Hessian in output space, then J^T.
        u = torch.zeros_like(pred, requires_grad=True)
        g = torch.autograd.grad(pred, self.params, u, create_graph=True)
        jv = torch.autograd.grad(self._pairing(g, self.unflat(v)), u)[0]
        p = pred.detach().requires_grad_(True)
        dl = torch.autograd.grad(self.loss(p), p, create_graph=True)[0]
        hjv = torch.autograd.grad((dl * jv).sum(), p)[0]
        return self.flat(torch.autograd.grad(pred, self.params, hjv))


# (torch's double backward through tensorly-torch's factorized weights crashes in torch
# 2.13: the factorized models are checked by symmetry and second differences below.)
@pytest.mark.parametrize("loss", ["l2", "l2sq"])
def test_products_match_torch_double_backward(torch64, loss):
    x, y = _burgers(6)
    model = _tiny()
    f = OperatorLoss(model, x, y, loss=loss)
    ref = _TorchLoss(torch64, model, f, x, y)
    assert f.n_params == model.n_params
    g = ref.gradient()
    np.testing.assert_allclose(f.gradient(f.w0), g, rtol=0, atol=1e-10 * np.abs(g).max())
    v = np.random.default_rng(0).standard_normal(f.n_params)
    for ours, theirs in ((f.hvp(f.w0, v), ref.hvp(v)),
                         (f.gauss_newton(f.w0, v), ref.gauss_newton(v))):
        assert np.linalg.norm(ours - theirs) <= 1e-7 * np.linalg.norm(theirs)


def test_top_eigenvalue_in_30_products_matches_the_dense_hessian(torch64):
    """The issue's check: lambda_max to 1e-6 relative in <= 30 HVPs (tiny model, dense
    Hessian from torch autograd as the reference)."""
    x, y = _burgers(8)
    model = FNO((4,), hidden_channels=4, in_channels=1, out_channels=1, n_layers=2,
                dtype="float64", rng=2)
    f = OperatorLoss(model, x, y, loss="l2sq")
    ref = _TorchLoss(torch64, model, f, x, y)
    eye = np.eye(f.n_params)
    dense = np.stack([ref.hvp(e) for e in eye], axis=1)
    exact = np.linalg.eigvalsh((dense + dense.T) / 2)[-1]
    H = model.hessian(x, y, loss="l2sq")
    res = nl.rmt.eigsh(H, tol=1e-7, max_matvec=30, rng=0)
    assert res.converged and res.n_matvec <= 30
    assert res.values[-1] == pytest.approx(exact, rel=1e-6)


# --------------------------------------------------------------------------- numlab only


def test_flat_layout_round_trips_and_interleaves_complex_pairs():
    x, y = _burgers(4)
    model = _tiny()
    f = OperatorLoss(model, x, y)
    back = f.unflatten(f.w0)
    for name, value in model.params.items():
        assert back[name].dtype.kind == value.dtype.kind
        np.testing.assert_array_equal(back[name], value)
    name = "fno_blocks.convs.0.weight"
    start = sum(f._sizes[n] for n in f._names[: f._names.index(name)])
    w = model.params[name].ravel()
    np.testing.assert_array_equal(f.w0[start:start + 2 * w.size:2], w.real)
    np.testing.assert_array_equal(f.w0[start + 1:start + 2 * w.size:2], w.imag)


MODELS = {
    "fno": (FNO, {}),
    "tfno-tucker": (TFNO, {"rank": 0.5}),
    "cp-reconstructed": (FNO, {"factorization": "cp", "rank": 0.5,
                               "implementation": "reconstructed"}),
    "tt": (FNO, {"factorization": "tt", "rank": 0.5}),
}


@pytest.mark.parametrize(("model", "loss"), [("fno", "l2"), ("fno", "h1"), ("fno", "l2sq"),
                                             ("tfno-tucker", "l2"), ("cp-reconstructed", "l2sq"),
                                             ("tt", "h1")])
def test_hessian_and_gauss_newton_are_symmetric_and_match_differences(model, loss):
    x, y = _burgers(5)
    cls, options = MODELS[model]
    f = OperatorLoss(_tiny(cls, **options), x, y, loss=loss)
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal((2, f.n_params))
    w = f.w0
    for product in (f.hvp, f.gauss_newton):
        assert u @ product(w, v) == pytest.approx(v @ product(w, u), rel=1e-7)
    # Gauss-Newton is positive semi-definite; the Hessian's quadratic form is the
    # second difference of the loss.
    assert v @ f.gauss_newton(w, v) >= 0
    h = 1e-4
    second = (f.loss(w + h * v) - 2 * f.loss(w) + f.loss(w - h * v)) / h**2
    assert v @ f.hvp(w, v) == pytest.approx(second, rel=1e-4)


def test_batches_and_the_model_is_left_untouched():
    x, y = _burgers(6)
    model = _tiny()
    before = {k: v.copy() for k, v in model.params.items()}
    H = model.hessian(x, y)
    assert (H.n_params, H.n_samples) == (model.n_params, 6)
    f = H.model
    v = np.random.default_rng(2).standard_normal(f.n_params)
    idx = np.array([1, 4])
    np.testing.assert_allclose(H(v, idx), f.hvp(f.w0, v, idx))
    # The batch mean: the full Hessian is the mean of the per-sample ones.
    mean = sum(H(v, np.array([i])) for i in range(6)) / 6
    np.testing.assert_allclose(H(v), mean, rtol=1e-6, atol=1e-9 * np.abs(mean).max())
    for k, value in model.params.items():
        np.testing.assert_array_equal(value, before[k])


def test_lsm_and_multigrid_models(rng):
    a, u = nl.pde.darcy(4, 16, rng=0)
    x, y = a[:, None], u[:, None]
    lsm = LSM(1, 1, hidden_channels=4, n_basis=2, n_tokens=2, n_heads=2, patch_size=(2, 2),
              n_levels=2, dtype="float64", rng=0)
    buffers = {k: v.copy() for k, v in lsm.buffers.items()}
    f = OperatorLoss(lsm, x, y, loss="l2sq")
    u_, v = rng.standard_normal((2, f.n_params))
    # (LSM's ReLUs and max-pooling make its loss piecewise smooth: second differences of
    # the loss jump across kinks, so only symmetry and the Gauss-Newton sign are checked.)
    assert u_ @ f.hvp(f.w0, v) == pytest.approx(v @ f.hvp(f.w0, u_), rel=1e-6)
    assert v @ f.gauss_newton(f.w0, v) >= 0
    for k, value in lsm.buffers.items():  # the training forward ran on a copy
        np.testing.assert_array_equal(value, buffers[k])

    patching = MultigridPatching2D(levels=1, padding_fraction=0.125)
    inner = FNO((4, 4), hidden_channels=4, in_channels=2, out_channels=1, n_layers=2,
                dtype="float64", rng=0)
    mg = patching.wrap(inner)
    f = OperatorLoss(mg, x, y)
    value, grads = mg.loss_and_grad(x, y)
    assert f.loss(f.w0) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(f.gradient(f.w0), f.flatten(grads))
    u_, v = rng.standard_normal((2, f.n_params))
    assert u_ @ f.gauss_newton(f.w0, v) == pytest.approx(v @ f.gauss_newton(f.w0, u_), rel=1e-6)
    assert v @ f.gauss_newton(f.w0, v) >= 0


def test_rmt_takes_the_operator_directly():
    x, y = _burgers(16)
    model = _tiny()
    H = model.hessian(x, y, loss="l2sq")
    top = nl.rmt.eigsh(H, rng=0)
    nodes, weights = nl.rmt.spectral_density(H, k=10, n_probes=1, rng=0)
    assert nodes.max() == pytest.approx(top.values[-1], rel=1e-3)
    curve = nl.rmt.batch_curvature(H, batch_sizes=[2, 16], n_batches=3, k=15, rng=0)
    assert curve.mean[-1] == pytest.approx(curve.lambda_full, rel=1e-6)
    assert curve.samples[0].shape == (3,) and np.all(np.isfinite(curve.samples[0]))
    lr = nl.rmt.max_learning_rate(H, batch_size=4, method="mean", n_batches=3, k=15, rng=0)
    assert lr.lambda_full == pytest.approx(top.values[-1], rel=1e-5)
    assert lr.lr == pytest.approx(2 / lr.lambda_max, rel=1e-12)
    with pytest.raises(ValueError, match="`n_params` must be the operator's n_params"):
        nl.rmt.max_learning_rate(H, 3)


def test_squared_l2_loss_gradient_matches_differences(rng):
    pred, y = rng.standard_normal((2, 3, 2, 7, 6))
    value, backprop = _layers.squared_l2_loss(pred, y, train=True)
    expected = np.mean(np.sum((pred - y).reshape(3, 2, -1) ** 2, -1)
                       / (np.sum(y.reshape(3, 2, -1) ** 2, -1) + 1e-8))
    assert float(value) == pytest.approx(expected, rel=1e-12)
    d = rng.standard_normal(pred.shape)
    h = 1e-6
    fd = (float(_layers.squared_l2_loss(pred + h * d, y)[0])
          - float(_layers.squared_l2_loss(pred - h * d, y)[0])) / (2 * h)
    assert fd == pytest.approx(float(np.sum(backprop() * d)), rel=1e-7)


def test_runs_on_every_backend(backend):
    x, y = _burgers(4)
    dtype = "float32" if backend.float_name == "float32" else "float64"
    reference = OperatorLoss(_tiny(), x, y, dtype=dtype)
    model = _tiny().to(backend.asarray(np.zeros(1)))
    f = OperatorLoss(model, backend.asarray(x), backend.asarray(y), dtype=dtype)
    v = np.random.default_rng(0).standard_normal(f.n_params).astype(dtype)
    got = f.hvp(f.w0, backend.asarray(v))
    assert type(got) is type(f.w0) and got.dtype == f.dtype
    tol = 1e-2 if dtype == "float32" else 1e-8
    expected = reference.hvp(reference.w0, v)
    assert np.linalg.norm(backend.to_numpy(got) - expected) <= tol * np.linalg.norm(expected)


def test_bad_input_is_named():
    x, y = _burgers(4)
    with pytest.raises(TypeError, match="`model` must be a numlab operator model"):
        OperatorLoss(object(), x, y)
    with pytest.raises(ValueError, match="`y` must have one target per input"):
        OperatorLoss(_tiny(), x, y[:3])
    with pytest.raises(ValueError, match="`loss`"):
        OperatorLoss(_tiny(), x, y, loss="l1")
    f = OperatorLoss(_tiny(), x, y)
    with pytest.raises(ValueError, match="`v` must have shape"):
        f.hvp(f.w0, f.w0[:-1])
    with pytest.raises(ValueError, match="`w` must contain only finite"):
        f.gradient(np.full(f.n_params, np.nan))


def test_measured_divergence_on_an_operator():
    """Real SGD / Adam runs on the flat loss: the 10x-spike criterion checked at every step
    finds instability no later than the default blow-up criterion, and a rate far below
    the linear-stability limit 2 / lambda_max trains without diverging."""
    x, y = _burgers(16)
    f = OperatorLoss(_tiny(), x, y, loss="l2sq")
    lam = nl.rmt.eigsh(f.hessian(), rng=0).values[-1]
    kwargs = dict(n_steps=30, seeds=(0,), rtol=0.1, lr_start=2 / lam)
    blow_up = nl.rmt.measure_max_learning_rate(f, 16, **kwargs)
    spike = nl.rmt.measure_max_learning_rate(f, 16, check_every=1, peak=10.0, **kwargs)
    assert 0.5 * 2 / lam < spike <= blow_up * 1.1
    adam = nl.rmt.measure_max_learning_rate(f, 4, optimizer="adam", n_steps=20, seeds=(0,),
                                            rtol=0.2, lr_start=1e-2)
    assert adam > 0
    with pytest.raises(ValueError, match="`peak`"):
        nl.rmt.measure_max_learning_rate(f, 4, peak=0.5)
    with pytest.raises(ValueError, match="`optimizer`"):
        nl.rmt.measure_max_learning_rate(f, 4, optimizer="rmsprop")
