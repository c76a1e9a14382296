"""Helpers shared by the asv benchmarks: cached data, JIT warm-up, GPU synchronisation.

Benchmarks time numlab and the issue's anchor library side by side: the anchor is a
benchmark parameter, so one ``asv run`` shows the ratio. Rules (DESIGN.md):

- build data once (``cached``) and warm every JIT up in ``setup`` (``warm_up``): a cached
  Numba kernel still costs about a second on first call in a process;
- synchronise the GPU inside the timed call (``sync``), or CuPy timings measure only the
  kernel launch;
- pin BLAS and Numba to one thread (``single_thread``) when a target says "one thread".

This module only grows: benchmarks of released versions may import any name in it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import pathlib
import pickle
import sys

import numpy as np

CACHE_DIR = pathlib.Path(os.environ.get("NUMLAB_BENCH_CACHE",
                                        pathlib.Path.home() / ".cache" / "numlab-bench"))


def tests_module(module: str):
    """A helper module of the test suite (``tests/<module>.py``: reference models, shared
    problems), imported as the tests import it."""
    tests = str(pathlib.Path(__file__).resolve().parent.parent / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module(module)


def cached(name: str, make, *args):
    """``make(*args)``, computed once and kept on disk under ``name`` and the arguments.

    Use for data that is slow to build (large sparse matrices, reference solutions);
    cheap data can be built in ``setup`` directly.
    """
    key = hashlib.sha1(repr((name, args)).encode()).hexdigest()[:16]
    path = CACHE_DIR / f"{name}-{key}.pkl"
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    value = make(*args)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return value


def sync(result=None):
    """Wait for the GPU when ``result`` (or anything in a tuple of results) is a CuPy array."""
    items = result if isinstance(result, (tuple, list)) else (result,)
    if any(type(x).__module__.startswith("cupy") for x in items):
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    return result


def warm_up(fn, *args, **kwargs):
    """Call ``fn`` once (compiles Numba kernels, CuPy kernels, BLAS threads) and sync."""
    return sync(fn(*args, **kwargs))


@functools.cache
def single_thread():
    """Pin BLAS (threadpoolctl when present) and Numba to one thread for this process."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    import numba

    numba.set_num_threads(1)


def cupy_usable() -> bool:
    """True when CuPy imports and sees a GPU."""
    try:
        import cupy

        return bool(cupy.is_available())
    except Exception:
        return False


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
