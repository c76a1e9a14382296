"""Shared input checks: they accept what is right and name the argument otherwise."""

import numpy as np
import pytest
import scipy.sparse

from numlab import _backend
from numlab._validation import (
    check_array,
    check_int,
    check_option,
    check_probability_vector,
    check_rng,
    check_scalar,
)


def test_check_array_accepts_and_converts(backend):
    x = check_array(backend.asarray(np.ones((2, 3))), "X", ndim=2, shape=(2, None))
    assert x.dtype == backend.dtype and _backend.namespace(x) is backend.xp
    ints = check_array(backend.asarray(np.arange(4)), "X")
    assert backend.xp.isdtype(ints.dtype, "real floating")


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        (np.ones(3), {"ndim": 2}, ValueError, r"`X` must be a 2-D array; got 1-D with shape \(3,\)"),
        (np.ones((2, 3)), {"shape": (3, None)}, ValueError, r"`X` must have shape \(3, \?\); got \(2, 3\)"),
        (np.ones((0, 3)), {}, ValueError, r"`X` must not be empty"),
        (np.array([1.0, np.nan]), {}, ValueError, r"`X` must contain only finite values"),
        (np.array([1.0, np.inf]), {}, ValueError, r"`X` must contain only finite values"),
        (np.array([1j]), {}, TypeError, r"`X` must be real; got complex"),
        (np.array(["a"]), {}, TypeError, r"`X` must have a real numeric dtype"),
    ],
)
def test_check_array_rejects(backend, data, kwargs, error, match):
    if data.dtype.kind in "cU" and backend.module != "numpy":
        pytest.skip("this dtype does not exist on the backend")
    with pytest.raises(error, match=match):
        check_array(backend.asarray(data, dtype=None if data.dtype.kind != "f" else backend.dtype),
                    "X", **kwargs)


def test_check_array_sparse_and_non_arrays():
    A = scipy.sparse.random(4, 3, density=0.5, format="csr", random_state=0)
    assert check_array(A, "A", allow_sparse=True) is A
    with pytest.raises(TypeError, match="`A` must be a dense array; got a sparse csr_matrix"):
        check_array(A, "A")
    bad = A.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="`A` must contain only finite"):
        check_array(bad, "A", allow_sparse=True)
    with pytest.raises(TypeError, match="`A` must be an array; got str"):
        check_array("abc", "A")
    np.testing.assert_array_equal(check_array([[1.0, 2.0]], "A"), [[1.0, 2.0]])


def test_check_probability_vector(backend):
    a = check_probability_vector(backend.asarray(np.array([0.25, 0.75])), "a", 2)
    np.testing.assert_allclose(backend.to_numpy(a), [0.25, 0.75])
    uniform = check_probability_vector(None, "a", 4, xp=backend.xp, dtype=backend.dtype,
                                       device=backend.device)
    np.testing.assert_allclose(backend.to_numpy(uniform), np.full(4, 0.25))
    with pytest.raises(ValueError, match="`a` must be non-negative"):
        check_probability_vector(backend.asarray(np.array([1.5, -0.5])), "a", 2)
    with pytest.raises(ValueError, match="`a` must sum to 1.*got a sum of 1.5"):
        check_probability_vector(backend.asarray(np.array([1.0, 0.5])), "a", 2)
    with pytest.raises(ValueError, match=r"`a` must have shape \(3,\); got \(2,\)"):
        check_probability_vector(backend.asarray(np.array([0.5, 0.5])), "a", 3)


def test_check_scalar():
    assert check_scalar(2, "reg", low=0) == 2.0
    assert check_scalar(0.0, "tol", low=0, low_inclusive=True) == 0.0
    with pytest.raises(ValueError, match="`reg` must be > 0; got 0.0"):
        check_scalar(0.0, "reg", low=0)
    with pytest.raises(ValueError, match="`p` must be <= 1; got 2.0"):
        check_scalar(2.0, "p", high=1)
    with pytest.raises(ValueError, match="`p` must be < 1; got 1.0"):
        check_scalar(1.0, "p", high=1, high_inclusive=False)
    with pytest.raises(ValueError, match="`reg` must be finite; got nan"):
        check_scalar(float("nan"), "reg")
    with pytest.raises(TypeError, match="`reg` must be a real number; got 'a' of type str"):
        check_scalar("a", "reg")
    with pytest.raises(TypeError, match="`reg` must be a real number"):
        check_scalar(True, "reg")


def test_check_int():
    assert check_int(np.int64(3), "k", low=1) == 3
    with pytest.raises(ValueError, match="`k` must be >= 1; got 0"):
        check_int(0, "k", low=1)
    with pytest.raises(ValueError, match="`k` must be <= 5; got 6"):
        check_int(6, "k", high=5)
    with pytest.raises(TypeError, match="`k` must be an integer; got 2.5 of type float"):
        check_int(2.5, "k")
    with pytest.raises(TypeError, match="`k` must be an integer; got True"):
        check_int(True, "k")


def test_check_option():
    assert check_option("sns", "method", ("sns", "log")) == "sns"
    with pytest.raises(ValueError, match="`method` must be one of 'sns', 'log'; got 'x'"):
        check_option("x", "method", ("sns", "log"))


def test_check_rng():
    g = np.random.default_rng(1)
    assert check_rng(g) is g
    assert check_rng(3).integers(1000) == np.random.default_rng(3).integers(1000)
    assert isinstance(check_rng(None), np.random.Generator)
    assert isinstance(check_rng(np.random.SeedSequence(4)), np.random.Generator)
    with pytest.raises(TypeError, match="use numpy.random.default_rng instead of RandomState"):
        check_rng(np.random.RandomState(0))
    with pytest.raises(ValueError, match="`random_state` must be a non-negative integer seed"):
        check_rng(-1, "random_state")
    with pytest.raises(TypeError, match="`rng` must be None, an integer seed or a numpy.random.Generator; got str"):
        check_rng("seed")


def test_lazy_arrays_refused_unless_allowed():
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.array([1.0, np.nan]), chunks=1)
    with pytest.raises(TypeError, match=r"`X` must be an in-memory array \(NumPy, CuPy, \.\.\.\); got a lazy dask"):
        check_array(x, "X")
    assert check_array(x, "X", allow_lazy=True) is x  # no finiteness check: it would compute x


def test_families_refuse_dask_with_the_argument_named_or_take_it():
    # Families not yet written for Dask (the scale-out issue) refuse a Dask array at
    # their entry, naming the argument, instead of failing deep inside or building a
    # task graph 1000x slower than NumPy; the elementwise ones, randomized_svd, the random
    # projection, fastrp and the stochastic CCA take it.
    da = pytest.importorskip("dask.array")
    import dask

    import numlab as nl

    data = np.random.default_rng(0).uniform(-1.0, 1.0, (40, 6))
    x = da.from_array(data, chunks=20)
    square = da.from_array(np.abs(data[:6]), chunks=3)
    refused = {
        "W": lambda: nl.linalg.pissa_init(x, 2, rng=0),
        "M": lambda: nl.ot.sinkhorn(None, None, square, 0.1),
        "X ": lambda: nl.rmt.LeastSquares(x, x[:, 0]),
        "A ": lambda: nl.sampling.dpp_rows(x, rng=0),
    }
    for name, call in refused.items():
        with pytest.raises(TypeError, match=rf"`{name.strip()}` must be an in-memory array"):
            call()
    with pytest.raises(TypeError, match="`X` must not be a Dask array"):
        nl.cca.cca(x[:, :3], x[:, 3:], 1)
    D = nl.ot.dist(x, x[:5])
    assert _backend.is_lazy(D)
    np.testing.assert_allclose(np.asarray(D), nl.ot.dist(data, data[:5]))
    basis = nl.lstsq.LegendreBasis(6, 1)
    np.testing.assert_allclose(np.asarray(basis(x)), basis(data))
    with dask.config.set(scheduler="synchronous"):
        S = nl.linalg.randomized_svd(x, 2, rng=0)[1]
    np.testing.assert_allclose(S, nl.linalg.randomized_svd(data, 2, rng=0)[1], rtol=1e-12)
    est = nl.random_projection.VerySparseRandomProjection(3, random_state=0).fit(x)
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(est.transform(x).compute(), est.transform(data))
        U = nl.graph.fastrp(square.rechunk({1: -1}), 4, rng=0)
    np.testing.assert_allclose(U, nl.graph.fastrp(np.abs(data[:6]), 4, rng=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`G` must be chunked by rows only"):
        nl.graph.fastrp(square, 4, rng=0)
    # the stochastic CCA streams the row blocks (the exact one refuses, above)
    xs, ys = x[:, :3].rechunk({1: -1}), x[:, 3:].rechunk({1: -1})
    with dask.config.set(scheduler="synchronous"):
        model = nl.cca.StochasticCCA(1, epochs=2, batch_size=8, random_state=0).fit(xs, ys)
        Z = model.transform(xs)
    assert _backend.is_lazy(Z) and Z.shape == (40, 1)
    with pytest.raises(ValueError, match="`Y` must be chunked by rows only"):
        nl.cca.StochasticCCA(1).fit(xs, x[:, 3:].rechunk((20, 1)))


def test_check_like():
    from numlab._validation import check_like

    assert check_like(None) is None
    x = np.zeros(3)
    assert check_like(x) is x
    assert check_like(np.float32(1.0)) is not None
    with pytest.raises(TypeError, match="`like` must be None or an array"):
        check_like([1.0, 2.0])
    with pytest.raises(TypeError, match="`template` must be None or an array"):
        check_like("numpy", "template")
