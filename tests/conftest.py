"""Shared fixtures: the backend matrix, a seeded ``rng`` and the gpu/slow/dask markers.

``backend`` (and its namespace, ``xp``) runs a test once per array backend:

- ``numpy``: plain NumPy, float64;
- ``numpy-readonly``: NumPy arrays with ``writeable=False`` (numlab must not write into
  its inputs);
- ``strict``: array-api-strict, the proof that generic code uses only the standard;
- ``strict-device1-float32``: array-api-strict on its second device, in float32 (catches
  arrays created on the default device and silent float64 promotion);
- ``cupy``: only where ``cupy.is_available()``; carries the ``gpu`` marker;
- ``dask``: only for tests marked ``@pytest.mark.dask`` (families that support Dask).

Build test data in NumPy and move it with ``backend.asarray``; compare with
``backend.to_numpy``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util

import numpy as np
import pytest

from numlab import _backend


@functools.cache
def cupy_usable() -> bool:
    """True when CuPy imports and sees a GPU (importing cupy alone proves nothing)."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:
        return False


@dataclasses.dataclass(frozen=True)
class Backend:
    """One entry of the backend matrix."""

    name: str
    module: str
    device_name: str | None = None
    float_name: str = "float64"
    readonly: bool = False

    @functools.cached_property
    def xp(self):
        mod = importlib.import_module(self.module)
        return _backend.namespace(mod.asarray([0.0]))

    @property
    def device(self):
        if self.device_name is None:
            return None
        import array_api_strict

        return array_api_strict.Device(self.device_name)

    @property
    def dtype(self):
        """The float dtype tests use on this backend."""
        return getattr(self.xp, self.float_name)

    @property
    def rtol(self) -> float:
        """A relative tolerance fit for :attr:`dtype`."""
        return 1e-4 if self.float_name == "float32" else 1e-10

    def asarray(self, x, dtype=None):
        """NumPy data ``x`` as an array of this backend (floats in :attr:`dtype`)."""
        x = np.asarray(x)
        if dtype is None and np.issubdtype(x.dtype, np.floating):
            dtype = self.dtype
        out = _backend.asarray(x, xp=self.xp, device=self.device, dtype=dtype)
        if self.readonly:
            out = np.array(out)
            out.flags.writeable = False
        return out

    def to_numpy(self, x):
        return _backend.to_numpy(x)


BACKENDS = [
    Backend("numpy", "numpy"),
    Backend("numpy-readonly", "numpy", readonly=True),
    Backend("strict", "array_api_strict"),
    Backend("strict-device1-float32", "array_api_strict", "device1", "float32"),
    Backend("cupy", "cupy"),
    Backend("dask", "dask.array"),
]


def _backend_params(with_dask: bool):
    params = []
    for b in BACKENDS:
        marks = []
        if b.name == "dask":
            if not with_dask:
                continue
            if importlib.util.find_spec("dask") is None:
                marks.append(pytest.mark.skip(reason="dask is not installed"))
        if b.name == "cupy":
            marks.append(pytest.mark.gpu)
            if not cupy_usable():
                marks.append(pytest.mark.skip(reason="cupy.is_available() is false"))
        params.append(pytest.param(b, id=b.name, marks=marks))
    return params


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "dask: the test also runs on the Dask backend of the `backend` fixture"
    )


def pytest_generate_tests(metafunc):
    if {"backend", "xp"} & set(metafunc.fixturenames):
        with_dask = metafunc.definition.get_closest_marker("dask") is not None
        metafunc.parametrize("backend", _backend_params(with_dask), indirect=True)


@pytest.fixture
def backend(request) -> Backend:
    """The array backend this test instance runs on."""
    return request.param


@pytest.fixture
def xp(backend):
    """The array namespace of ``backend``."""
    return backend.xp


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded generator: every test draws the same data on every run."""
    return np.random.default_rng(20261124)


@pytest.fixture(scope="module")
def client(request):
    """A ``distributed`` client of 2 worker processes (1 thread, 1 GiB each) on loopback,
    started and shut down around the module (the Dask tests); a module that runs past its
    ``MODULE_TIMEOUT_S`` (default 240 s) dumps the stacks and exits instead of hanging."""
    import faulthandler

    distributed = pytest.importorskip("distributed")
    faulthandler.dump_traceback_later(getattr(request.module, "MODULE_TIMEOUT_S", 240),
                                      exit=True)
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit="1GiB",
        worker_class=distributed.Nanny,
        timeout=60,
    )
    c = distributed.Client(cluster, timeout=60)
    try:
        yield c
    finally:
        c.close(timeout=20)
        cluster.close(timeout=20)
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def sync():
    """Dask's synchronous scheduler (in this process) for the test."""
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="synchronous"):
        yield


def pytest_collection_modifyitems(config, items):
    # A test that asks for the GPU but finds none is skipped, never failed.
    if cupy_usable():
        return
    skip = pytest.mark.skip(reason="cupy.is_available() is false")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
