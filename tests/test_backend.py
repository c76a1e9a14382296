"""The backend layer on every backend of the matrix."""

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

from numlab import _backend


@pytest.mark.dask
def test_namespace_and_device_follow_the_input(backend):
    x = backend.asarray(np.arange(6.0).reshape(2, 3))
    xp = _backend.namespace(x)
    assert xp is backend.xp
    if backend.device is not None:
        assert _backend.device(x) == backend.device
    y = xp.ones((2, 3), dtype=x.dtype, device=_backend.device(x))
    assert _backend.namespace(x, y, None, 2.0) is xp


def test_given_namespace_is_the_array_api_one(backend):
    # A wrapped namespace comes back as it is; a plain module (xp=numpy, xp=cupy) becomes
    # the namespace of its arrays, which has the whole array API (isdtype, device=).
    assert _backend.namespace(xp=backend.xp) is backend.xp
    xp = _backend.namespace(xp=np)
    assert xp is _backend.namespace(np.ones(2))
    assert xp.isdtype(xp.float32, "real floating")


@pytest.mark.dask
def test_to_numpy_round_trips(backend):
    data = np.arange(12.0).reshape(3, 4)
    x = backend.asarray(data)
    out = _backend.to_numpy(x)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, data.astype(out.dtype))
    assert out.dtype == _backend.numpy_dtype(backend.dtype, backend.xp)


@pytest.mark.dask
def test_random_draws_are_placed_on_the_backend_and_reproducible(backend):
    xp, dev = backend.xp, backend.device
    draws = {
        "normal": lambda g: _backend.random_normal(g, (3, 4), xp=xp, device=dev, dtype=backend.dtype),
        "uniform": lambda g: _backend.random_uniform(g, (5,), low=-1, high=1, xp=xp, device=dev,
                                                     dtype=backend.dtype),
        "integers": lambda g: _backend.random_integers(g, 0, 10, (7,), xp=xp, device=dev),
    }
    for kind, draw in draws.items():
        a, b = draw(np.random.default_rng(5)), draw(np.random.default_rng(5))
        assert _backend.namespace(a) is xp, kind
        if dev is not None:
            assert _backend.device(a) == dev, kind
        if kind != "integers":
            assert a.dtype == backend.dtype, kind
        np.testing.assert_array_equal(_backend.to_numpy(a), _backend.to_numpy(b))
    # The same seed gives the same numbers on every backend.
    reference = np.random.default_rng(5).standard_normal((3, 4))
    got = _backend.to_numpy(draws["normal"](np.random.default_rng(5)))
    np.testing.assert_allclose(got, reference, rtol=1e-6 if got.dtype == np.float32 else 0)


def test_float_dtype_keeps_float32_and_promotes_integers(backend):
    xp = backend.xp
    f = backend.asarray(np.ones(3))
    i = backend.asarray(np.arange(3))
    assert _backend.float_dtype(xp, f) == backend.dtype
    assert xp.isdtype(_backend.float_dtype(xp, i), "real floating")
    with pytest.raises(TypeError, match="complex"):
        _backend.float_dtype(xp, xp.asarray([1j], device=backend.device))


def test_mixed_libraries_are_a_clear_error():
    import array_api_strict

    with pytest.raises(TypeError, match="different array libraries"):
        _backend.namespace(np.ones(3), array_api_strict.ones(3))
    # the odd one out is named, by keyword or by position
    with pytest.raises(
        TypeError, match=r"`b` is of type array_api_strict.Array while `a`, `M` are numpy.ndarray"
    ):
        _backend.namespace(a=np.ones(3), b=array_api_strict.ones(3), M=np.ones((3, 3)))
    with pytest.raises(TypeError, match=r"`argument 2` is of type array_api_strict.Array while `argument 1` is numpy"):
        _backend.namespace(np.ones(3), array_api_strict.ones(3))


def test_mixed_devices_are_a_clear_error():
    import array_api_strict as strict

    a = strict.ones(3)
    b = strict.ones(3, device=strict.Device("device1"))
    with pytest.raises(ValueError, match="different devices.*`y` on .*device1"):
        _backend.namespace(x=a, y=b)


def test_scalars_and_none_alone_mean_numpy():
    assert _backend.is_numpy(_backend.namespace(None, 1.0, 3))


def test_sparse_matrices_count_as_their_dense_library():
    A = scipy.sparse.random(5, 4, density=0.5, format="csr", random_state=0)
    xp = _backend.namespace(A, np.ones(4))
    assert _backend.is_numpy(xp) and _backend.is_sparse(A) and not _backend.is_sparse(np.ones(2))
    assert _backend.device(A) == "cpu"
    assert _backend.sparse_module(xp) is scipy.sparse
    assert _backend.to_numpy(A) is A
    assert not _backend.is_sparse(scipy.sparse.linalg.aslinearoperator(A))


def test_as_csr_gives_canonical_format():
    coo = scipy.sparse.coo_matrix(([1.0, 2.0, 3.0], ([0, 0, 1], [1, 1, 0])), shape=(2, 2))
    csr = _backend.as_csr(coo)
    assert csr.format == "csr" and csr.has_canonical_format
    np.testing.assert_array_equal(csr.toarray(), [[0.0, 3.0], [3.0, 0.0]])


def test_sparse_module_refuses_backends_without_sparse():
    import array_api_strict

    with pytest.raises(TypeError, match="sparse matrices are not supported"):
        _backend.sparse_module(array_api_strict)


def test_is_backend_predicates(backend):
    xp = backend.xp
    flags = {
        "numpy": _backend.is_numpy(xp),
        "cupy": _backend.is_cupy(xp),
        "dask": _backend.is_dask(xp),
        "strict": _backend.is_strict(xp),
    }
    assert sum(flags.values()) == 1
    assert flags[backend.module.split(".")[0].replace("array_api_", "")]


@pytest.mark.gpu
def test_cupy_sparse_and_to_numpy():
    import cupy
    import cupyx.scipy.sparse

    A = cupyx.scipy.sparse.random(5, 4, density=0.5, format="csr", random_state=0)
    xp = _backend.namespace(A, cupy.ones(4))
    assert _backend.is_cupy(xp) and _backend.is_sparse(A)
    assert _backend.sparse_module(xp) is cupyx.scipy.sparse
    assert scipy.sparse.issparse(_backend.to_numpy(A))
