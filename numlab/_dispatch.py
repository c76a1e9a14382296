"""The kernel registry: one name, up to four implementations, chosen by the inputs.

Algorithm code is written against the array API. Where an array-at-a-time expression is
too slow or too memory hungry, it calls a *kernel* by name instead::

    step = kernel("ot.log_scaling", xp)
    f = step(M, g, reg)

A kernel is registered once, on its generic (array-API) implementation, which is the
specification every specialised implementation is tested against::

    @register_kernel(
        "ot.log_scaling",
        numba="numlab._cpu.ot:log_scaling",
        cupy="numlab._gpu.ot:log_scaling",
        example=_log_scaling_example,
    )
    def log_scaling(M, g, reg): ...

Specialised implementations are named by dotted path (``"module:attribute"``) and
imported on first use only, so importing numlab never imports Numba or CuPy, never
compiles and never probes a GPU. Every implementation takes the same arguments and
returns the same result (up to rounding) as the generic one; ``example(xp, rng)``
builds small inputs on which the tests compare them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable

from . import _backend

__all__ = ["IMPLEMENTATIONS", "KernelRegistry", "REGISTRY", "register_kernel", "kernel"]

#: The implementation kinds, in order of preference for their backend.
IMPLEMENTATIONS = ("generic", "numba", "cupy", "dask")


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One registered kernel: the generic function and the paths of its specialisations."""

    name: str
    generic: Callable
    paths: dict[str, str]
    example: Callable | None = None
    rtol: float = 1e-10

    @property
    def implementations(self) -> tuple[str, ...]:
        """The registered implementation kinds, ``"generic"`` first."""
        return ("generic", *self.paths)


@functools.cache
def _resolve(path: str) -> Callable:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"numlab: kernel path {path!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module_name), attribute)


def _native_implementation(xp) -> str | None:
    if _backend.is_numpy(xp):
        return "numba"
    if _backend.is_cupy(xp):
        return "cupy"
    if _backend.is_dask(xp):
        return "dask"
    return None


class KernelRegistry:
    """A mapping of kernel names to :class:`Kernel` records."""

    def __init__(self):
        self._kernels: dict[str, Kernel] = {}

    def register(self, name, *, numba=None, cupy=None, dask=None, example=None, rtol=1e-10):
        """Decorator registering the decorated function as the generic implementation."""
        paths = {k: v for k, v in (("numba", numba), ("cupy", cupy), ("dask", dask)) if v}

        def decorate(generic):
            if name in self._kernels and self._kernels[name].generic is not generic:
                raise ValueError(f"numlab: kernel {name!r} is already registered")
            self._kernels[name] = Kernel(name, generic, paths, example, rtol)
            return generic

        return decorate

    def __getitem__(self, name) -> Kernel:
        try:
            return self._kernels[name]
        except KeyError:
            known = ", ".join(sorted(self._kernels)) or "none"
            raise KeyError(f"numlab: no kernel named {name!r} (registered: {known})") from None

    def __contains__(self, name) -> bool:
        return name in self._kernels

    def names(self) -> list[str]:
        """The registered kernel names, sorted."""
        return sorted(self._kernels)

    def get(self, name, xp, *, impl=None) -> Callable:
        """The implementation of kernel ``name`` for arrays of namespace ``xp``.

        Parameters
        ----------
        name : str
            Registered kernel name.
        xp : namespace
            The inputs' namespace; NumPy picks the Numba implementation, CuPy the CuPy
            one, Dask the Dask one, when registered; anything else the generic one.
        impl : {"generic", "numba", "cupy", "dask"}, optional
            Force one implementation (tests, debugging).
        """
        record = self[name]
        if impl is None:
            native = _native_implementation(xp)
            impl = native if native in record.paths else "generic"
        if impl == "generic":
            return record.generic
        if impl not in record.paths:
            raise ValueError(
                f"numlab: kernel {name!r} has no {impl!r} implementation "
                f"(it has {', '.join(record.implementations)})"
            )
        return _resolve(record.paths[impl])


#: The registry of numlab's own kernels.
REGISTRY = KernelRegistry()

register_kernel = REGISTRY.register


def kernel(name: str, xp, *, impl: str | None = None) -> Callable:
    """The implementation of numlab kernel ``name`` for arrays of namespace ``xp``."""
    return REGISTRY.get(name, xp, impl=impl)


def load_all_kernels() -> KernelRegistry:
    """Import every algorithm family so that :data:`REGISTRY` holds all their kernels."""
    import numlab

    for family in numlab.FAMILIES:
        try:
            getattr(numlab, family)
        except AttributeError:
            continue  # a planned family that does not exist yet
    return REGISTRY
