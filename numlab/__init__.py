"""numlab: algorithms from recent numerical papers behind a NumPy-style API.

The algorithm families are subpackages, imported on first attribute access so that
``import numlab`` stays cheap and never imports Numba, CuPy or Dask::

    import numlab as nl
    nl.linalg.randomized_svd(A, 10)

Every function takes the array namespace of its inputs (NumPy, CuPy, Dask or any
array-API library) and returns arrays of the same kind, on the same device.
"""

import importlib

__version__ = "0.1.0.dev0"

#: The algorithm families, in the order of the tour and of the README table.
FAMILIES = (
    "ot",
    "linalg",
    "random_projection",
    "graph",
    "cca",
    "sampling",
    "lstsq",
    "rmt",
    "operators",
    "pde",
)

__all__ = ["__version__", "FAMILIES", *FAMILIES]


def __getattr__(name):
    # PEP 562: the families load on first use.
    if name in FAMILIES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(
                f"numlab.{name} is planned but not implemented yet in numlab {__version__}"
            ) from None
        globals()[name] = module
        return module
    raise AttributeError(f"module 'numlab' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
