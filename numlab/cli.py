"""The ``numlab`` command: ``numlab info`` and ``numlab tour``."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
import time

import numlab

DEPENDENCIES = (
    "numpy",
    "scipy",
    "numba",
    "networkx",
    "array-api-compat",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "cupy",
    "dask",
    "distributed",
    "scikit-learn",
    "pot",
)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _numba_status() -> str:
    try:
        import numba
        from numba.np.ufunc import parallel
    except Exception as exc:  # a broken install must not break `numlab info`
        return f"not usable ({exc})"
    # The threading layer is chosen on first parallel launch; tell what it would pick.
    layer = numba.config.THREADING_LAYER
    try:
        parallel._launch_threads()
        layer = numba.threading_layer()
    except Exception:
        pass
    return f"{numba.__version__}, threading layer {layer}, {numba.get_num_threads()} threads"


def _cupy_status() -> str:
    if importlib.util.find_spec("cupy") is None:
        return "not installed (pip install 'numlab[gpu]')"
    try:
        import cupy

        if not cupy.is_available():
            return f"cupy {cupy.__version__} installed, but no usable CUDA GPU"
        device = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(device.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        free, total = device.mem_info
        return (
            f"cupy {cupy.__version__}, GPU {device.id}: {name}, "
            f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), "
            f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}"
        )
    except Exception as exc:
        return f"not usable: {type(exc).__name__}: {exc}"


def _dask_status() -> str:
    dask = _version("dask")
    if dask is None:
        return "not installed (pip install 'numlab[dask]')"
    distributed = _version("distributed")
    return f"dask {dask}, " + (
        f"distributed {distributed}" if distributed else "distributed not installed"
    ) + "; taken by ot.dist, the lstsq bases and nl.pde (chunks=) so far"


def _kernel_cache() -> str:
    import numba

    return numba.config.CACHE_DIR or "beside each kernel module (__pycache__), numba's default"


def info(out=None) -> None:
    """Print versions and the backends usable on this machine."""
    out = out or sys.stdout
    rows = [
        ("numlab", numlab.__version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", f"{platform.platform()}, {os.cpu_count()} CPUs"),
    ]
    rows += [(d, v) for d in DEPENDENCIES if (v := _version(d)) is not None]
    rows += [
        ("backend numpy", "usable (CPU)"),
        ("backend numba", _numba_status()),
        ("backend cupy", _cupy_status()),
        ("backend dask", _dask_status()),
        ("kernel cache", _kernel_cache()),
        ("families", ", ".join(f for f in numlab.FAMILIES if _family_exists(f)) or "none yet"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}", file=out)


def _family_exists(family: str) -> bool:
    return importlib.util.find_spec(f"numlab.{family}") is not None


def _tour_demos():
    """(family, demo function) for every family that ships a ``_tour`` module."""
    for family in numlab.FAMILIES:
        if not _family_exists(family):
            continue
        if importlib.util.find_spec(f"numlab.{family}._tour") is None:
            continue
        module = importlib.import_module(f"numlab.{family}._tour")
        for demo in module.DEMOS:
            yield family, demo


def tour(quick: bool = False, out=None) -> bool:
    """Run one short demonstration per family, print a table; True when every check passed."""
    out = out or sys.stdout
    from numlab._tour import Demo

    demos = list(_tour_demos())
    if not demos:
        print("numlab tour: no algorithm family is implemented yet", file=out)
        return True
    print(f"numlab {numlab.__version__} tour{' (quick)' if quick else ''}: {len(demos)} demos", file=out)
    rows = []
    start = time.perf_counter()
    for i, (family, demo) in enumerate(demos, 1):
        label = f"[{i}/{len(demos)}] nl.{family}: {demo.__name__}"
        print(f"{label} ...", end="", flush=True, file=out)
        t0 = time.perf_counter()
        try:
            result = demo(quick)
        except Exception as exc:  # report and go on: one broken family must not hide the rest
            message = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ImportError):
                message += " (the tour's references: pip install 'numlab[tour]')"
            result = Demo(demo.__name__, "raised", message, False)
        seconds = time.perf_counter() - t0
        print(f" {'ok' if result.ok else 'FAILED'} ({seconds:.2f} s)", flush=True, file=out)
        rows.append((f"nl.{family}", result.problem, result.result, result.check,
                     "ok" if result.ok else "FAILED", f"{seconds:.2f} s"))
    header = ("family", "problem", "numlab computed", "check against a reference", "", "time")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    print(file=out)
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip(), file=out)
    ok = all(r[4] == "ok" for r in rows)
    total = time.perf_counter() - start
    print(f"\n{sum(r[4] == 'ok' for r in rows)}/{len(rows)} checks passed in {total:.1f} s", file=out)
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="numlab", description=numlab.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"numlab {numlab.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="versions and the backends usable on this machine")
    tour_parser = commands.add_parser(
        "tour", help="one short demonstration per algorithm family, checked against a reference"
    )
    tour_parser.add_argument("--quick", action="store_true", help="smaller problems (for CI)")
    args = parser.parse_args(argv)
    if args.command == "info":
        info()
        return 0
    return 0 if tour(quick=args.quick) else 1


if __name__ == "__main__":
    sys.exit(main())
