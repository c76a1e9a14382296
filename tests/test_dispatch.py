"""The kernel registry: selection by namespace, lazy import, forced implementations."""

import sys

import numpy as np
import pytest

from numlab import _backend
from numlab._dispatch import REGISTRY, KernelRegistry, kernel


@pytest.fixture
def registry():
    reg = KernelRegistry()

    @reg.register(
        "toy.row_sums",
        numba="_dispatch_kernels:row_sums",
        cupy="_dispatch_kernels:row_sums_cupy",
        example=lambda xp, rng: ((xp.asarray(rng.standard_normal((4, 3))),), {}),
    )
    def row_sums(x):
        xp = _backend.namespace(x)
        return xp.sum(x, axis=1)

    return reg


def test_registration_does_not_import_implementations(registry):
    sys.modules.pop("_dispatch_kernels", None)
    assert registry.names() == ["toy.row_sums"]
    assert registry["toy.row_sums"].implementations == ("generic", "numba", "cupy")
    assert "_dispatch_kernels" not in sys.modules


def test_selection_follows_the_namespace(backend, registry):
    x = backend.asarray(np.arange(12.0).reshape(4, 3))
    impl = registry.get("toy.row_sums", backend.xp)
    expected = {"numpy": "row_sums", "cupy": "row_sums_cupy"}.get(backend.module, "row_sums")
    assert impl.__name__ == expected
    out = impl(x)
    assert _backend.namespace(out) is backend.xp
    np.testing.assert_allclose(backend.to_numpy(out), [3.0, 12.0, 21.0, 30.0])


def test_resolution_is_cached(registry):
    import numpy as xp

    assert registry.get("toy.row_sums", xp) is registry.get("toy.row_sums", xp)


def test_forcing_an_implementation(registry):
    generic = registry.get("toy.row_sums", np, impl="generic")
    assert generic is registry["toy.row_sums"].generic
    with pytest.raises(ValueError, match="no 'dask' implementation.*generic, numba, cupy"):
        registry.get("toy.row_sums", np, impl="dask")


def test_unknown_kernel_names_the_registered_ones(registry):
    with pytest.raises(KeyError, match="no kernel named 'toy.nope'.*toy.row_sums"):
        registry.get("toy.nope", np)


def test_a_name_registers_once(registry):
    with pytest.raises(ValueError, match="already registered"):
        registry.register("toy.row_sums")(lambda x: x)


def test_bad_dotted_path_is_explained():
    reg = KernelRegistry()
    reg.register("toy.bad", numba="no_colon_here")(lambda x: x)
    with pytest.raises(ValueError, match="package.module:function"):
        reg.get("toy.bad", np)


def test_backends_without_specialisation_fall_back_to_generic(registry):
    import array_api_strict

    assert registry.get("toy.row_sums", array_api_strict) is registry["toy.row_sums"].generic


def test_global_registry_is_the_one_kernel_uses():
    assert kernel.__module__ == "numlab._dispatch"
    with pytest.raises(KeyError, match="no kernel named"):
        kernel("no.such.kernel", np)
    assert isinstance(REGISTRY, KernelRegistry)
