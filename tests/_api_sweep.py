"""The public API with bad and extreme inputs (issue 19): cases, perturbations, verdicts.

Each :class:`Case` is one public function or method with a small valid call. A
perturbation replaces one argument (an array: NaN, inf, 1e300, 1e-300, empty, wrong
ndim, int/bool/float16/complex/object dtype, a list, read-only, Fortran order, an
array of another library; a scalar: NaN, inf, negative, zero, 1e300, a string, ...).
:func:`verdict` runs the call and says what happened:

- ``"ok"``: a result whose floating arrays are finite (or a warning said they are not);
- ``"clear"``: a ValueError or TypeError whose message names the argument;
- ``"unnamed"``: an error that does not name the argument, or of another type;
- ``"silent"``: NaN or inf in the result and no warning;
- ``"mutated"``: an input array was modified;
- ``"dtype"``: float32 input everywhere gave a result that is not float32.

Used by tests/test_reliability.py (a derandomised hypothesis sample of all the cases)
and by ``python tests/_api_sweep.py`` (every case, a summary of the bad verdicts).
"""

from __future__ import annotations

import dataclasses
import warnings

import array_api_strict
import numpy as np
import scipy.sparse

import numlab as nl


def _rng(seed=0):
    return np.random.default_rng(seed)


def _cloud(n=8, d=2, seed=0):
    return _rng(seed).random((n, d))


def _cost(n=8, m=7):
    M = nl.ot.dist(_cloud(n), _cloud(m, seed=1))
    return M / M.max()


def _weights(n, seed=2):
    w = _rng(seed).random(n) + 0.1
    return w / w.sum()


def _tall(n=30, m=12, seed=3):
    return _rng(seed).standard_normal((n, m))


def _graph(n=20, seed=4):
    A = scipy.sparse.random(n, n, density=0.25, format="csr", random_state=seed)
    return (A + A.T).tocsr()


def _least_squares():
    X = _rng(5).standard_normal((24, 3))
    return nl.rmt.LeastSquares(X, X[:, 0] + 0.1)


def _logistic():
    X = _rng(6).standard_normal((24, 3))
    return nl.rmt.LogisticRegression(X, (X[:, 0] > 0).astype(np.int64), alpha=0.1)


def _hvp():
    model = _least_squares()
    return model.hessian(model.init_params(rng=0)), model.n_params


def _matvec():
    # a diagonal operator of any size: a wrong n is numlab's to catch, not the callable's
    return lambda v: np.linspace(1.0, 5.0, v.shape[0]) * v


@dataclasses.dataclass
class Case:
    """A public call: ``fn(**args)`` with ``args`` built fresh by ``make()``.

    ``arrays`` names the array arguments, ``scalars`` the scalar ones; ``main`` picks the
    result arrays whose finiteness and dtype are checked (default: every floating array
    found in the result); ``float32``: whether float32 arrays in give float32 out (not
    where a callable or a fitted model decides the dtype, or the result is documented
    host float64); ``skip``: ``(argument, perturbation)`` pairs that test the caller's
    own callable rather than numlab.
    """

    name: str
    fn: object
    make: object
    arrays: tuple = ()
    scalars: tuple = ()
    main: object = None
    float32: bool = True
    skip: tuple = ()


def _sinkhorn(**kw):
    with warnings.catch_warnings():
        # a tiny or huge reg may not converge in the small budget: that is flagged
        warnings.simplefilter("ignore", nl.ot.ConvergenceWarning)
        res = nl.ot.sinkhorn(**kw)
    if not res.converged:
        return None  # honest: converged=False
    return res


def _vsrp_fit(X, **params):
    return nl.random_projection.VerySparseRandomProjection(**params).fit(X).transform(X)


def _vsrp_transform(X):
    est = nl.random_projection.VerySparseRandomProjection(4, random_state=0).fit(_tall(10, 40))
    return est.transform(X)


def _vsrp_inverse(X):
    est = nl.random_projection.VerySparseRandomProjection(4, random_state=0).fit(_tall(10, 40))
    return est.inverse_transform(X)


def _slq_estimate(**kw):
    step = nl.rmt.SLQLearner(12, k=5, rng=0).estimate(lambda v, idx=None: 2.0 * v, **kw)
    return np.array([step.lr, step.lambda_max])


def _model_call(method):
    def call(w=None, v=None, center=None, model="ls"):
        m = _least_squares() if model == "ls" else _logistic()
        if method == "loss":
            return m.loss(w)
        if method == "gradient":
            return m.gradient(w)
        if method == "hvp":
            return m.hvp(w, v)
        if method == "hessian_op":
            return nl.rmt.HessianOperator(m, w)(v)
        if method == "local_quadratic":
            return nl.rmt.LocalQuadratic(m, center).loss(w)
        raise AssertionError(method)

    return call


def _model_init(cls):
    def call(X, y, **kw):
        model = getattr(nl.rmt, cls)(X, y, **kw)
        w = model.init_params(rng=0)
        return model.loss(w), model.gradient(w)

    return call


def _slq(n_params, **kw):
    learner = nl.rmt.SLQLearner(n_params, **kw)
    # a diagonal Hessian of any size: a wrong n_params is numlab's to catch
    step = learner.update(0, lambda v, idx=None: np.linspace(1.0, 10.0, v.shape[0]) * v)
    return np.array([step.lr, step.momentum])


def _w(n=4):
    return np.full(n, 0.1)


def _views(n=40, seed=8):
    X = _tall(n, 4, seed)
    return dict(X=X, Y=X[:, :3] + 0.5 * _tall(n, 3, seed + 1))


def _stochastic_cca(X, Y, **params):
    return nl.cca.StochasticCCA(2, epochs=2, batch_size=16, random_state=0, **params).fit(X, Y)


def _stochastic_transform(X, Y):
    return _stochastic_cca(**_views()).transform(X, Y)


def _fno(**params):
    return nl.operators.FNO((4,), 4, 1, 1, n_layers=1, rng=0, **params)


def _fno_call(x):
    return _fno()(x)


def _fno_loss_and_grad(x, y, **kw):
    loss, grads = _fno(dtype="float64").loss_and_grad(x, y, **kw)
    return [np.array([loss]), *grads.values()]


def _operator_hvp(x, y, v, **kw):
    f = nl.operators.OperatorLoss(_fno(dtype="float64"), x, y, **kw)
    return f.hvp(f.w0, v)


def _lsm_call(x):
    return nl.operators.LSM(1, 1, 8, n_heads=4, n_levels=2, patch_size=(2, 2), rng=0)(x)


def _train(x, y, **kw):
    result = nl.operators.train(_fno(), x, y, progress=False, rng=0, **kw)
    return np.asarray(result.train_loss)


def _normalize(a, **kw):
    return nl.operators.UnitGaussianNormalizer(**kw).fit(a).encode(a)


CASES = [
    Case(
        "ot.sinkhorn", _sinkhorn,
        lambda: dict(a=_weights(8), b=_weights(7, 3), M=_cost(), reg=0.05, tol=1e-6,
                     max_iter=2000),
        arrays=("a", "b", "M"),
        scalars=("reg", "tol", "max_iter", "method", "switch_tol", "warn", "progress"),
        main=lambda r: [] if r is None else [r.plan],
    ),
    Case(
        "ot.sinkhorn2", lambda **kw: nl.ot.sinkhorn2(**kw, warn=False),
        lambda: dict(a=_weights(8), b=np.stack([_weights(7, 3), _weights(7, 4)], 1),
                     M=_cost(), reg=0.05, tol=1e-6),
        arrays=("a", "b", "M"), scalars=("reg", "progress"),
    ),
    Case("ot.dist", nl.ot.dist, lambda: dict(x1=_cloud(6), x2=_cloud(5, seed=1)),
         arrays=("x1", "x2"), scalars=("metric",)),
    Case(
        "linalg.randomized_svd", nl.linalg.randomized_svd,
        lambda: dict(A=_tall(), k=3, rng=0),
        arrays=("A",),
        scalars=("k", "n_oversamples", "n_iter", "method", "tol", "rng", "progress"),
    ),
    Case("linalg.randomized_range_finder", nl.linalg.randomized_range_finder,
         lambda: dict(A=_tall(), size=4, rng=0), arrays=("A",),
         scalars=("size", "n_iter", "method", "rng", "progress")),
    Case("linalg.pissa_init", nl.linalg.pissa_init, lambda: dict(W=_tall(), r=3, rng=0),
         arrays=("W",), scalars=("r", "n_iter", "n_oversamples", "method")),
    Case("random_projection.VerySparseRandomProjection.fit", _vsrp_fit,
         lambda: dict(X=_tall(10, 40), n_components=4, random_state=0), arrays=("X",),
         scalars=("n_components", "density", "eps", "dense_output", "matrix_free",
                  "random_state")),
    Case("random_projection.VerySparseRandomProjection.transform", _vsrp_transform,
         lambda: dict(X=_tall(6, 40)), arrays=("X",)),
    Case("random_projection.VerySparseRandomProjection.inverse_transform", _vsrp_inverse,
         lambda: dict(X=_tall(6, 4)), arrays=("X",)),
    Case("random_projection.johnson_lindenstrauss_min_dim",
         nl.random_projection.johnson_lindenstrauss_min_dim,
         lambda: dict(n_samples=100, eps=0.5), scalars=("n_samples", "eps")),
    Case("random_projection.very_sparse_random_matrix",
         lambda **kw: nl.random_projection.very_sparse_random_matrix(**kw).toarray(),
         lambda: dict(n_components=3, n_features=20, rng=0),
         scalars=("n_components", "n_features", "density", "rng", "dtype")),
    Case("graph.fastrp", nl.graph.fastrp, lambda: dict(G=_graph(), dim=8, rng=0),
         arrays=("G",), scalars=("dim", "beta", "normalize", "standardize", "dtype", "rng")),
    Case("graph.fastrp(dense)", nl.graph.fastrp,
         lambda: dict(G=_graph().toarray(), dim=8, rng=0), arrays=("G",), scalars=("weights",)),
    Case("sampling.optimal_iid", nl.sampling.optimal_iid,
         lambda: dict(basis=nl.lstsq.LegendreBasis(2, 2), n=8, rng=0, like=np.ones(2)),
         arrays=("like",), scalars=("n", "rng"), main=lambda r: [r.points, r.weights]),
    Case("sampling.projection_dpp", nl.sampling.projection_dpp,
         lambda: dict(basis=nl.lstsq.LegendreBasis(2, 2), rng=0), scalars=("method", "rng"),
         main=lambda r: [r.points, r.weights]),
    Case("sampling.volume_sampling", nl.sampling.volume_sampling,
         lambda: dict(basis=nl.lstsq.LegendreBasis(1, 3), n=6, rng=0), scalars=("n",),
         main=lambda r: [r.points, r.weights]),
    Case("sampling.repeated_dpp", nl.sampling.repeated_dpp,
         lambda: dict(basis=nl.lstsq.LegendreBasis(1, 3), r=2, rng=0), scalars=("r", "progress"),
         main=lambda r: [r.points, r.weights]),
    Case("sampling.dpp_rows", nl.sampling.dpp_rows, lambda: dict(A=_tall(20, 4), rng=0),
         arrays=("A",), main=lambda r: [r.weights]),
    Case("sampling.volume_sampling_rows", nl.sampling.volume_sampling_rows,
         lambda: dict(A=_tall(20, 4), n=6, rng=0), arrays=("A",), scalars=("n",),
         main=lambda r: [r.weights]),
    Case("lstsq.LegendreBasis", lambda x, **kw: nl.lstsq.LegendreBasis(**kw)(x),
         lambda: dict(x=_cloud(5) * 2 - 1, dim=2, degree=3), arrays=("x",),
         scalars=("dim", "degree", "index_set")),
    Case("lstsq.HermiteBasis.k_m", lambda x, **kw: nl.lstsq.HermiteBasis(**kw).k_m(x),
         lambda: dict(x=_cloud(5), dim=2, degree=2), arrays=("x",), scalars=("degree",)),
    Case("lstsq.FeatureBasis",
         lambda x, candidates, **kw: nl.lstsq.FeatureBasis(lambda z: z ** 2, candidates, **kw)(x),
         lambda: dict(x=_cloud(4), candidates=_cloud(30, seed=7)),
         arrays=("x", "candidates"), scalars=("rtol",)),
    Case("lstsq.multi_indices", nl.lstsq.multi_indices, lambda: dict(dim=3, degree=2),
         scalars=("dim", "degree", "index_set")),
    Case("lstsq.weighted_least_squares",
         lambda **kw: nl.lstsq.weighted_least_squares(
             lambda x: np.sin(x[:, 0]), nl.lstsq.LegendreBasis(1, 3), **kw),
         lambda: dict(n_samples=10, rng=0), scalars=("n_samples", "sampler", "cond_warning"),
         main=lambda r: [r.coef]),
    Case("rmt.lanczos", nl.rmt.lanczos,
         lambda: dict(matvec=_matvec(), n=12, k=5, rng=0, v0=np.ones(12)),
         arrays=("v0",), scalars=("n", "k", "reorth", "return_vectors"),
         main=lambda r: [r[0], r[1]], float32=False,
         # a v0 of another library reaches the NumPy matvec: the caller's error
         skip=(("v0", "another library"),)),
    Case("rmt.ritz", nl.rmt.ritz, lambda: dict(alpha=np.array([1.0, 2.0, 3.0]),
                                                beta=np.array([0.5, 0.5])),
         arrays=("alpha", "beta"), float32=False),
    Case("rmt.eigsh", nl.rmt.eigsh, lambda: dict(matvec=_matvec(), n=12, n_eig=2, rng=0,
                                                  v0=np.ones(12)),
         arrays=("v0",), scalars=("n", "n_eig", "which", "tol", "max_matvec"),
         main=lambda r: [r.values], float32=False,
         # a v0 of another library reaches the NumPy matvec: the caller's error
         skip=(("v0", "another library"),)),
    Case("rmt.spectral_density", nl.rmt.spectral_density,
         lambda: dict(matvec=_matvec(), n=12, n_probes=2, k=5, rng=0),
         scalars=("n", "n_probes", "k", "progress"), float32=False),
    Case("rmt.smooth_density", nl.rmt.smooth_density,
         lambda: dict(nodes=np.array([0.0, 1.0, 2.0]), weights=np.array([0.2, 0.3, 0.5]),
                      sigma=0.1),
         arrays=("nodes", "weights", "grid"), scalars=("sigma",), float32=False),
    Case("rmt.trace", nl.rmt.trace, lambda: dict(matvec=_matvec(), n=12, n_probes=6, rng=0),
         scalars=("n", "n_probes", "method")),
    Case("rmt.batch_curvature",
         lambda **kw: nl.rmt.batch_curvature(*_hvp(), **kw),
         lambda: dict(n_samples=24, batch_sizes=np.array([2, 8]), n_batches=3, k=5, rng=0),
         arrays=("batch_sizes",),
         scalars=("n_samples", "n_batches", "k", "tol", "confidence", "progress"),
         main=lambda r: [r.mean], float32=False),
    Case("rmt.fit_batch_scaling", nl.rmt.fit_batch_scaling,
         lambda: dict(batch_sizes=np.array([1.0, 2, 4, 8, 16]),
                      lambdas=10.0 + 30.0 / np.array([1.0, 2, 4, 8, 16])),
         arrays=("batch_sizes", "lambdas", "sigma"), scalars=("n_samples",),
         main=lambda r: [np.array([r.lambda_full, r.slope])], float32=False),
    Case("rmt.finite_sample_factor", nl.rmt.finite_sample_factor,
         lambda: dict(batch_size=4, n_samples=100), scalars=("batch_size", "n_samples")),
    Case("rmt.max_learning_rate",
         lambda **kw: nl.rmt.max_learning_rate(*_hvp(), **kw),
         lambda: dict(batch_size=None, rng=0, k=8),
         scalars=("batch_size", "optimizer", "momentum", "method", "k", "tol", "progress"),
         main=lambda r: [np.array([r.lr])]),
    Case("rmt.scale_learning_rate", nl.rmt.scale_learning_rate,
         lambda: dict(lr=0.1, batch_from=8, batch_to=32),
         scalars=("lr", "batch_from", "batch_to", "optimizer", "critical_batch_size")),
    Case("rmt.gradient_noise_scale",
         lambda **kw: nl.rmt.gradient_noise_scale(
             lambda idx=None: _least_squares().gradient(np.full(4, 0.1), idx), 24, **kw),
         lambda: dict(batch_size=4, n_batches=4, rng=0), scalars=("batch_size", "n_batches"),
         # noise (B_noise) is NaN by design without an hvp
         main=lambda r: [np.array([r.simple, r.grad_norm_sq])]),
    Case("rmt.SLQLearner", _slq, lambda: dict(n_params=12, k=5, rng=0),
         scalars=("n_params", "every", "k", "n_probes", "quantile", "safety", "max_momentum")),
    Case("rmt.SLQLearner.estimate", _slq_estimate, lambda: dict(like=np.ones(12)),
         arrays=("like",), float32=False),
    Case("rmt.measure_max_learning_rate",
         lambda **kw: np.array([nl.rmt.measure_max_learning_rate(_least_squares(), **kw)]),
         lambda: dict(batch_size=4, w0=np.zeros(4), n_steps=20, seeds=(0,)), arrays=("w0",),
         scalars=("batch_size", "n_steps", "momentum", "rtol", "lr_start", "progress"),
         float32=False),
    Case("rmt.LeastSquares", _model_init("LeastSquares"),
         lambda: dict(X=_tall(16, 3), y=_tall(16, 1)[:, 0]), arrays=("X", "y"),
         scalars=("fit_intercept",)),
    Case("rmt.LogisticRegression", _model_init("LogisticRegression"),
         lambda: dict(X=_tall(16, 3), y=np.arange(16) % 2), arrays=("X", "y"),
         scalars=("alpha",)),
    Case("rmt.MLP", _model_init("MLP"),
         lambda: dict(X=_tall(16, 3), y=np.arange(16) % 3, hidden=4), arrays=("X", "y"),
         scalars=("hidden", "loss")),
    Case("rmt.LeastSquares.loss", _model_call("loss"), lambda: dict(w=_w()), arrays=("w",),
         float32=False),
    Case("rmt.LogisticRegression.gradient", _model_call("gradient"),
         lambda: dict(w=_w(8), model="logistic"), arrays=("w",), float32=False),
    Case("rmt.LeastSquares.hvp", _model_call("hvp"), lambda: dict(w=_w(), v=np.ones(4)),
         arrays=("w", "v"), float32=False),
    Case("rmt.HessianOperator", _model_call("hessian_op"),
         lambda: dict(w=_w(), v=np.ones(4)), arrays=("w", "v"), float32=False),
    Case("rmt.LocalQuadratic", _model_call("local_quadratic"),
         lambda: dict(center=_w(), w=np.ones(4)), arrays=("center", "w"), float32=False),
    Case("cca.cca", nl.cca.cca, lambda: dict(_views(), n_components=2),
         arrays=("X", "Y"), scalars=("n_components", "reg"),
         main=lambda r: [r.correlations, *r.weights]),
    Case("cca.pls", nl.cca.pls, lambda: dict(_views(), n_components=2),
         arrays=("X", "Y"), scalars=("n_components", "reg"),
         main=lambda r: [r.correlations, *r.weights]),
    Case("cca.StochasticCCA.fit", _stochastic_cca, _views,
         arrays=("X", "Y"), scalars=("reg", "lr", "optimizer", "objective", "precondition"),
         main=lambda r: list(r.weights_)),
    Case("cca.StochasticCCA.transform", _stochastic_transform,
         lambda: _views(10, seed=11), arrays=("X", "Y"),
         float32=False),
    Case("pde.gaussian_random_field", nl.pde.gaussian_random_field,
         lambda: dict(n_samples=2, resolution=16, rng=0),
         scalars=("n_samples", "resolution", "ndim", "alpha", "tau", "sigma", "batch_size")),
    Case("pde.burgers", nl.pde.burgers, lambda: dict(n_samples=2, resolution=32, rng=0),
         scalars=("n_samples", "resolution", "viscosity", "t_final", "time_step")),
    Case("pde.darcy", nl.pde.darcy, lambda: dict(n_samples=2, resolution=9, rng=0),
         scalars=("n_samples", "resolution", "solver", "coefficient")),
    Case("pde.navier_stokes", nl.pde.navier_stokes,
         lambda: dict(n_samples=1, resolution=16, t_final=0.5, record_every=0.25, rng=0),
         scalars=("n_samples", "resolution", "viscosity", "t_final", "record_every",
                  "time_step")),
    Case("operators.FNO", _fno_call, lambda: dict(x=_tall(2, 16)[:, None]), arrays=("x",)),
    Case("operators.FNO.loss_and_grad", _fno_loss_and_grad,
         lambda: dict(x=_tall(2, 16)[:, None], y=_tall(2, 16, seed=5)[:, None]),
         arrays=("x", "y"), scalars=("loss",), float32=False),
    Case("operators.OperatorLoss.hvp", _operator_hvp,
         lambda: dict(x=_tall(2, 16)[:, None], y=_tall(2, 16, seed=5)[:, None],
                      v=_rng(7).standard_normal(_fno().n_params)),
         arrays=("x", "y", "v"), scalars=("loss", "dtype"), float32=False),
    Case("operators.LSM", _lsm_call, lambda: dict(x=_tall(8, 8)[None, None]), arrays=("x",)),
    Case("operators.train", _train,
         lambda: dict(x=_tall(4, 16)[:, None], y=_tall(4, 16, seed=6)[:, None], epochs=2,
                      batch_size=2),
         arrays=("x", "y"), scalars=("epochs", "batch_size", "lr", "weight_decay",
                                     "optimizer", "scheduler", "loss"), float32=False),
    Case("operators.UnitGaussianNormalizer", _normalize, lambda: dict(a=_tall(4, 16)[:, None]),
         arrays=("a",), scalars=("axis", "eps")),
]

CASES_BY_NAME = {c.name: c for c in CASES}


# --------------------------------------------------------------------------- perturbations


class Skip(Exception):
    """The perturbation does not apply to this value."""


def _float(v):
    if not (isinstance(v, np.ndarray) and v.dtype.kind == "f"):
        raise Skip
    return v.copy()


def _set_first(value):
    def perturb(v):
        v = _float(v)
        if v.size == 0:
            raise Skip
        v.flat[0] = value
        return v

    return perturb


def _readonly(v):
    v = np.array(v)
    v.setflags(write=False)
    return v


def _lower_ndim(v):
    if v.ndim >= 2:
        return v.reshape(-1)
    return v[0]


def _dense(v):
    if not isinstance(v, np.ndarray):
        raise Skip
    return v


ARRAY_PERTURBATIONS = {
    "nan": _set_first(np.nan),
    "inf": _set_first(np.inf),
    "huge": lambda v: _float(v) * 1e300,
    "tiny": lambda v: _float(v) * 1e-300,
    "negative": lambda v: -_float(v),
    "empty": lambda v: _dense(v)[:0],
    "no columns": lambda v: _dense(v)[:, :0] if _dense(v).ndim == 2 else _skip(),
    "ndim + 1": lambda v: _dense(v)[None],
    "ndim - 1": lambda v: _lower_ndim(_dense(v)),
    "int": lambda v: np.rint(_dense(v) * 3).astype(np.int64),
    "bool": lambda v: _dense(v) > np.median(_dense(v)),
    "float16": lambda v: _dense(v).astype(np.float16),
    "float32": lambda v: _dense(v).astype(np.float32),
    "complex": lambda v: _dense(v) + 0.5j,
    "object": lambda v: _dense(v).astype(object),
    "list": lambda v: _dense(v).tolist(),
    "read-only": lambda v: _readonly(_dense(v)),
    "Fortran": lambda v: np.asfortranarray(_dense(v)),
    "another library": lambda v: array_api_strict.asarray(_dense(v)),
    "string": lambda v: "abc",
    "dok": lambda v: scipy.sparse.dok_matrix(_dense(v)) if _dense(v).ndim == 2 else _skip(),
}

SCALAR_PERTURBATIONS = {
    "nan": lambda v: np.nan,
    "inf": lambda v: np.inf,
    "-inf": lambda v: -np.inf,
    "negative": lambda v: -1,
    "zero": lambda v: 0,
    "huge": lambda v: 1e300,
    "tiny": lambda v: 1e-300,
    "fraction": lambda v: 0.5,
    "string": lambda v: "yes",
    "None": lambda v: None,
    "bool": lambda v: True,
    "list": lambda v: [1],
    "complex": lambda v: 1 + 1j,
}


def _skip():
    raise Skip


# --------------------------------------------------------------------------- verdicts


def _arrays_in(result):
    """The floating arrays found in a result (arrays, tuples, dataclasses, floats)."""
    if result is None:
        return []
    if scipy.sparse.issparse(result):
        return [result.data]
    if isinstance(result, (float, np.floating)):
        return [np.asarray(result)]
    if hasattr(result, "__array_namespace__") or isinstance(result, np.ndarray):
        return [result]
    if isinstance(result, (tuple, list)):
        return [a for item in result for a in _arrays_in(item)]
    if dataclasses.is_dataclass(result):
        return [a for f in dataclasses.fields(result) for a in _arrays_in(getattr(result, f.name))]
    return []


def _host(a):
    if isinstance(a, np.ndarray):
        return a
    return np.asarray(array_api_strict.asarray(a, copy=True)._array) if hasattr(
        a, "_array") else np.asarray(a)


def _names(message, name):
    # numlab's messages quote the argument; scikit-learn's NaN check says "Input X"
    return f"`{name}`" in message or message.startswith(f"Input {name} ")


def _snapshot(args):
    return {
        k: (v.copy() if isinstance(v, np.ndarray) else
            v.copy() if scipy.sparse.issparse(v) else None)
        for k, v in args.items()
    }


def _unchanged(before, args):
    for k, old in before.items():
        if old is None:
            continue
        new = args[k]
        if scipy.sparse.issparse(old):
            if (old != new).nnz:
                return False
        elif old.dtype != object and not np.array_equal(old, new, equal_nan=old.dtype.kind in "fc"):
            return False
    return True


def _is_float_array(v):
    return (isinstance(v, np.ndarray) or scipy.sparse.issparse(v)) and v.dtype.kind == "f"


def verdict(case, arg=None, perturbation=None, *, all_float32=False, any_name=False):
    """Run ``case`` with ``arg`` perturbed; returns ``(verdict, detail)``.

    ``perturbation`` None: ``arg`` only names the argument that errors must name (its
    bad value is already in ``case.make()``). ``any_name``: an error that names another
    argument in backticks is clear too (a random value of one argument is often
    inconsistent with the others: "`x` must have shape (n, 35)").
    """
    args = case.make()
    if (arg, perturbation) in case.skip:
        raise Skip
    if perturbation is not None:
        table = ARRAY_PERTURBATIONS if arg in case.arrays else SCALAR_PERTURBATIONS
        args[arg] = table[perturbation](args.get(arg, np.ones(3) if arg in case.arrays else 1.0))
    if all_float32:
        args = {k: v.astype(np.float32) if _is_float_array(v) else v for k, v in args.items()}
    before = _snapshot(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = case.fn(**args)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            if perturbation == "another library" and "array_api_strict" in message:
                # the odd one out of two libraries may be either argument
                others = [a for a in case.arrays if a in args and _names(message, a)]
                if others:
                    return "clear", f"{type(exc).__name__}: {message[:300]}"
            if any_name and any(f"`{name}`" in message for name in args):
                return "clear", f"{type(exc).__name__}: {message[:300]}"
            if arg is None or _names(message, arg):
                named = "clear" if arg is not None else "unnamed"
                return named, f"{type(exc).__name__}: {message[:300]}"
            return "unnamed", f"{type(exc).__name__}: {message[:300]}"
        except Exception as exc:  # noqa: BLE001 (the sweep reports every kind)
            return "unnamed", f"{type(exc).__name__}: {str(exc)[:300]}"
    if not _unchanged(before, args):
        return "mutated", ""
    outputs = case.main(result) if case.main is not None else _arrays_in(result)
    warned = any(not issubclass(w.category, DeprecationWarning) for w in caught)
    for out in outputs:
        host = _host(out)
        if host.dtype.kind == "f" and not np.all(np.isfinite(host)) and not warned:
            return "silent", f"non-finite result and no warning (dtype {host.dtype})"
    if all_float32:
        for out in outputs:
            host = _host(out)
            if host.dtype.kind == "f" and host.ndim and host.dtype != np.float32:
                return "dtype", f"float32 input gave {host.dtype}"
    return "ok", "; ".join(str(w.message)[:120] for w in caught)


def all_cases():
    """Every (case, argument, perturbation) triple, the valid call and float32 first."""
    for case in CASES:
        yield case, None, None
        for arg in case.arrays:
            for p in ARRAY_PERTURBATIONS:
                yield case, arg, p
        for arg in case.scalars:
            for p in SCALAR_PERTURBATIONS:
                yield case, arg, p


def main():
    """Run every case; print the counts and every verdict that is not ok/clear."""
    counts = {}
    for case, arg, p in all_cases():
        try:
            v, detail = verdict(case, arg, p)
        except Skip:
            continue
        counts[v] = counts.get(v, 0) + 1
        if v not in ("ok", "clear") or (arg is None and v != "ok"):
            print(f"{v:8s} {case.name}  {arg}={p}: {detail}")
    for case in CASES:
        if not case.float32 or not any(map(_is_float_array, case.make().values())):
            continue
        v, detail = verdict(case, all_float32=True)
        counts[v] = counts.get(v, 0) + 1
        if v != "ok":
            print(f"{v:8s} {case.name}  all float32: {detail}")
    print(counts)


if __name__ == "__main__":
    main()
