"""Every specialised implementation of every registered kernel against the generic one.

Each kernel registers an ``example(xp, rng) -> (args, kwargs)``; the inputs are built
with NumPy, the generic implementation on them is the reference, and each specialised
implementation runs on the same data moved to its own backend.
"""

import numpy as np
import pytest

from numlab import _backend
from numlab._dispatch import load_all_kernels

from conftest import cupy_usable

REGISTRY = load_all_kernels()


def _cases():
    cases = []
    for name in REGISTRY.names():
        record = REGISTRY[name]
        for impl in record.paths:
            marks = [pytest.mark.gpu] if impl == "cupy" else []
            cases.append(pytest.param(name, impl, id=f"{name}-{impl}", marks=marks))
    return cases or [pytest.param(None, None, marks=pytest.mark.skip(reason="no kernels registered yet"))]


def _to_backend(value, impl):
    """Move NumPy arrays (and scipy.sparse matrices) inside ``value`` to ``impl``'s backend."""
    if isinstance(value, (tuple, list)):
        return type(value)(_to_backend(v, impl) for v in value)
    if isinstance(value, dict):
        return {k: _to_backend(v, impl) for k, v in value.items()}
    if impl == "cupy" and (isinstance(value, np.ndarray) or _backend.is_sparse(value)):
        import cupy
        import cupyx.scipy.sparse

        return cupyx.scipy.sparse.csr_matrix(value) if _backend.is_sparse(value) else cupy.asarray(value)
    if impl == "dask" and isinstance(value, np.ndarray):
        import dask.array

        return dask.array.from_array(value, chunks=max(1, (value.shape or (1,))[0] // 2))
    return value


def _assert_same(got, expected, rtol, where="result"):
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_same(g, e, rtol, f"{where}[{i}]")
        return
    if _backend.is_sparse(expected):
        expected = expected.toarray()
        got = _backend.to_numpy(got).toarray()
    elif hasattr(expected, "shape") or isinstance(expected, (float, int, np.number)):
        got = _backend.to_numpy(got) if hasattr(got, "shape") else got
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=0, err_msg=where)
    if hasattr(expected, "dtype") and hasattr(got, "dtype"):
        assert got.dtype == expected.dtype, f"{where}: dtype {got.dtype} != {expected.dtype}"


@pytest.mark.parametrize(("name", "impl"), _cases())
def test_specialised_kernel_matches_generic(name, impl):
    if impl == "cupy" and not cupy_usable():
        pytest.skip("cupy.is_available() is false")
    record = REGISTRY[name]
    assert record.example is not None, f"kernel {name!r} must register an example(xp, rng)"
    rng = np.random.default_rng(7)
    args, kwargs = record.example(_backend.namespace(np.empty(0)), rng)
    expected = record.generic(*args, **kwargs)
    got = REGISTRY.get(name, None, impl=impl)(*_to_backend(args, impl), **_to_backend(kwargs, impl))
    _assert_same(got, expected, record.rtol)
