"""The ``numlab`` command: ``numlab info``, ``numlab tour`` and ``numlab compile``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sys
import textwrap
import time

import numlab

#: The distribution's name on PyPI; the import name is ``numlab``.
DISTRIBUTION = "numlab-toolkit"

DEPENDENCIES = (
    "numpy",
    "scipy",
    "numba",
    "networkx",
    "array-api-compat",
    "tqdm",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "cupy",
    "dask",
    "distributed",
    "scikit-learn",
    "pot",
)

#: Importable module -> the distribution that provides it (for the tour's skip lines).
_REFERENCE_DISTRIBUTIONS = {"sklearn": "scikit-learn", "ot": "pot", "torch": "torch",
                            "neuralop": "neuraloperator", "cca_zoo": "cca-zoo", "dppy": "dppy"}

#: Widest line the tour's table takes (it narrows to a smaller terminal, down to 72).
TABLE_WIDTH = 100


def install_hint(extra: str) -> str:
    """``pip install`` command for an extra, in its PyPI form (and from a checkout)."""
    return f"pip install '{DISTRIBUTION}[{extra}]'; from a checkout: pip install '.[{extra}]'"


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
        return f"not installed ({install_hint('gpu')})"
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
        return f"not installed ({install_hint('dask')})"
    distributed = _version("distributed")
    zarr = _version("zarr")
    return f"dask {dask}, " + (
        f"distributed {distributed}" if distributed else "distributed not installed"
    ) + (f", zarr {zarr}" if zarr else "") + (
        "; taken by ot.dist, the lstsq bases, nl.pde (chunks=), linalg.randomized_svd / "
        "randomized_range_finder (subspace, krylov, single_pass; tol=), "
        "VerySparseRandomProjection (fit, transform, inverse_transform), graph.fastrp and "
        "cca.StochasticCCA / StochasticPLS (fit, partial_fit streaming row blocks; "
        "transform) so far"
    )


def kernel_cache_dir() -> str | None:
    """The directory where Numba caches numlab's compiled kernels (None if it cannot tell).

    Numba tries, in order: ``NUMBA_CACHE_DIR`` when set, ``__pycache__`` beside the kernel
    modules (``numlab/_cpu``) when writable, then a per-user directory.
    """
    try:
        from numba.core import caching
    except Exception:
        return None
    source = os.path.join(os.path.dirname(numlab.__file__), "_cpu", "ot.py")

    def probe():  # a function defined in numlab/_cpu stands for every kernel there
        pass

    for locator in caching.CacheImpl._locator_classes:
        try:
            found = locator.from_function(probe, source)
            if found is None:
                continue
            found.ensure_cache_path()
            return found.get_cache_path()
        except Exception:
            continue
    return None


def _cache_contents(path: str | None) -> tuple[int, int]:
    """(number of compiled kernels, bytes) in numlab's kernel cache."""
    if not path or not os.path.isdir(path):
        return 0, 0
    count = size = 0
    for entry in os.scandir(path):
        if entry.name.endswith(".nbc"):
            count += 1
        if entry.name.endswith((".nbc", ".nbi")):
            size += entry.stat().st_size
    return count, size


def _kernel_cache() -> str:
    path = kernel_cache_dir()
    if path is None:
        return "unknown (Numba not usable)"
    count, size = _cache_contents(path)
    how = "NUMBA_CACHE_DIR" if os.environ.get("NUMBA_CACHE_DIR") else "set NUMBA_CACHE_DIR to move"
    return (f"{path} ({count} compiled kernels, {size / 2**20:.1f} MiB; {how}; "
            "`numlab compile` fills it)")


def info(out=None) -> None:
    """Print versions and the backends usable on this machine."""
    out = out or sys.stdout
    rows = [
        ("numlab", numlab.__version__),
        ("distribution", f"{DISTRIBUTION} (import numlab)"),
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


def tour_families() -> list[str]:
    """The families that ship a tour (``numlab/<family>/_tour.py``), in tour order."""
    return [
        f for f in numlab.FAMILIES
        if _family_exists(f) and importlib.util.find_spec(f"numlab.{f}._tour") is not None
    ]


def _tour_demos(families=None):
    """(family, demo function) for every demo of ``families`` (default: all)."""
    for family in families or tour_families():
        module = importlib.import_module(f"numlab.{family}._tour")
        for demo in module.DEMOS:
            yield family, demo


def _missing_reference(exc: BaseException) -> str | None:
    """The distribution a demo lacks, when ``exc`` is a missing third-party module."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.partition(".")[0]
    if top == "numlab":
        return None
    return _REFERENCE_DISTRIBUTIONS.get(top, top)


@contextlib.contextmanager
def _jit_timer():
    """Yield a callable giving the seconds spent in Numba's compiler (compiling or loading a
    cached kernel) since entry; 0 where Numba is not importable."""
    try:
        import numba  # noqa: F401  (imported here, not inside the first demo's timing)
        from numba.core import event
    except Exception:
        yield lambda: 0.0
        return
    listener = event.TimingListener()
    with event.install_listener("numba:compiler_lock", listener):
        yield lambda: listener.duration if listener.done else 0.0


def _wrap_rows(rows, header, width):
    """Lines of a table whose third column (free text) wraps to make the table ``width`` wide."""
    fixed = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    text_col = 1
    others = sum(w for c, w in enumerate(fixed) if c != text_col) + 2 * (len(header) - 1)
    fixed[text_col] = max(20, min(fixed[text_col], width - others))
    lines = []

    def emit(cells):
        wrapped = [textwrap.wrap(cell, fixed[c], subsequent_indent="  ") or [""]
                   if c == text_col else [cell] for c, cell in enumerate(cells)]
        for i in range(max(len(w) for w in wrapped)):
            parts = [(w[i] if i < len(w) else "") for w in wrapped]
            aligned = [p.rjust(fixed[c]) if c >= len(header) - 2 else p.ljust(fixed[c])
                       for c, p in enumerate(parts)]
            lines.append("  ".join(aligned).rstrip())

    emit(header)
    lines.append("  ".join("-" * w for w in fixed))
    for r in rows:
        emit(r)
    return lines


def tour(quick: bool = False, out=None, families=None, width=None, skip_missing=True) -> bool:
    """Run one short demonstration per family and print a table.

    Parameters
    ----------
    quick : bool
        Smaller problems (for CI).
    out : file, optional
        Where to print (default ``sys.stdout``).
    families : list of str, optional
        The families to run (default: every family with a tour).
    width : int, optional
        The table's width (default: the terminal's, at most 100 columns).
    skip_missing : bool
        Skip a demo whose reference library is missing (else it fails).

    Returns
    -------
    bool
        True when every demo that ran passed its check (a demo whose reference library is
        missing is skipped, with the command that installs it).
    """
    out = out or sys.stdout
    from numlab._tour import Demo

    if width is None:
        width = max(72, min(TABLE_WIDTH, shutil.get_terminal_size((TABLE_WIDTH, 24)).columns))
    demos = list(_tour_demos(families))
    if not demos:
        print("numlab tour: no algorithm family is implemented yet", file=out)
        return True
    print(f"numlab {numlab.__version__} tour{' (quick)' if quick else ''}: {len(demos)} demos "
          "(jit: compiling or loading Numba kernels)", file=out)
    rows, skipped, failed = [], {}, 0
    start = time.perf_counter()
    with _jit_timer() as jit_seconds:
        for i, (family, demo) in enumerate(demos, 1):
            label = f"[{i}/{len(demos)}] nl.{family}: {demo.__name__}"
            print(f"{label} ...", end="", flush=True, file=out)
            t0, jit0 = time.perf_counter(), jit_seconds()
            status = "ok"
            try:
                result = demo(quick)
                if not result.ok:
                    status = "FAILED"
            except Exception as exc:  # report and go on: one broken family must not hide the rest
                missing = _missing_reference(exc)
                if missing is not None and skip_missing:
                    status = "skipped"
                    skipped.setdefault(missing, []).append(f"nl.{family}")
                    result = Demo(demo.__name__, f"skipped: needs {missing}", "", False)
                else:
                    status = "FAILED"
                    message = f"{type(exc).__name__}: {exc}"
                    if missing is not None:
                        message += f" ({install_hint('tour')})"
                    result = Demo(demo.__name__, "raised", message, False)
            seconds = time.perf_counter() - t0
            jit = jit_seconds() - jit0
            failed += status == "FAILED"
            note = f" {status} (jit {jit:.2f} s, run {seconds - jit:.2f} s)"
            if status == "skipped":
                note = f" skipped (needs {missing})"
            print(note, flush=True, file=out)
            text = f"{result.problem}: {result.result}" + (
                f"; {result.check}" if result.check else "")
            rows.append((f"nl.{family}", text, status,
                         "" if status == "skipped" else f"{jit:.2f}",
                         "" if status == "skipped" else f"{seconds - jit:.2f}"))
    print(file=out)
    header = ("family", "problem: numlab's result; check against a reference", "status",
              "jit s", "run s")
    for line in _wrap_rows(rows, header, width):
        print(line, file=out)
    total = time.perf_counter() - start
    ran = len(rows) - sum(len(v) for v in skipped.values())
    print(f"\n{ran - failed}/{ran} checks passed in {total:.1f} s"
          + (f", {len(rows) - ran} skipped" if skipped else ""), file=out)
    if skipped:
        names = ", ".join(f"{d} ({', '.join(sorted(set(f)))})" for d, f in skipped.items())
        print(textwrap.fill(f"skipped for want of a reference library: {names}", width),
              file=out)
        print(f"  to add them: {install_hint('tour')}", file=out)
    return failed == 0


def compile_kernels(families=None, out=None, progress=True) -> float:
    """Compile the Numba kernels of ``families`` into the kernel cache (default: all).

    Runs a small call of each family's functions in float64 and float32, the dtypes the
    kernels are specialised for, so that later sessions load the kernels from the cache
    instead of compiling them. Returns the seconds spent.
    """
    from tqdm.auto import tqdm

    from numlab._warmup import warmups

    out = out or sys.stdout
    steps = warmups(families)
    for family in families or ():
        if not any(f == family for f, _, _ in steps):
            print(f"nl.{family} has no Numba kernels: nothing to compile", file=out)
    path = kernel_cache_dir()
    before, _ = _cache_contents(path)
    start = time.perf_counter()
    with tqdm(steps, desc="numlab compile", unit="step", disable=not progress, file=out,
              dynamic_ncols=True) as bar:
        for family, label, run in bar:
            bar.set_postfix_str(f"nl.{family}: {label}", refresh=True)
            run()
    seconds = time.perf_counter() - start
    after, size = _cache_contents(path)
    print(f"numlab compile: {len(steps)} warm-up calls in {seconds:.1f} s; kernel cache {path}: "
          f"{after} compiled kernels ({after - before:+d}), {size / 2**20:.1f} MiB", file=out)
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numlab",
        description=numlab.__doc__.splitlines()[0]
        + f" (distribution {DISTRIBUTION}, import numlab)",
    )
    parser.add_argument("--version", action="version", version=f"numlab {numlab.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("info", help="versions, the backends usable here and the kernel cache")
    tour_parser = commands.add_parser(
        "tour", help="one short demonstration per algorithm family, checked against a reference",
        description="Run one short demonstration per algorithm family (or of the families "
        "named), each checked against an independent reference. Demos whose reference library "
        f"is missing are skipped ({install_hint('tour')} adds them).",
    )
    tour_parser.add_argument("families", nargs="*", metavar="FAMILY",
                             help=f"families to run (default all): {', '.join(numlab.FAMILIES)}")
    tour_parser.add_argument("--quick", action="store_true", help="smaller problems (for CI)")
    tour_parser.add_argument("--no-skip", action="store_true",
                             help="a demo whose reference library is missing fails (for CI)")
    compile_parser = commands.add_parser(
        "compile", help="compile the Numba kernels into the on-disk cache (once per install)",
        description="Fill the Numba kernel cache so that the first call of each family in "
        "later sessions loads its kernels instead of compiling them.",
    )
    compile_parser.add_argument("families", nargs="*", metavar="FAMILY",
                                help="families to compile (default all)")
    return parser


def _check_families(parser, names, available):
    families = []
    for name in names:
        family = name.removeprefix("nl.").removeprefix("numlab.").replace("-", "_")
        if family not in available:
            parser.error(f"unknown family {name!r}; choose from {', '.join(available)}")
        if family not in families:
            families.append(family)
    return families or None


def main(argv=None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `numlab info | head -1`: the reader left; no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "info":
        info()
        return 0
    if args.command == "compile":
        compile_kernels(_check_families(parser, args.families, list(numlab.FAMILIES)))
        return 0
    families = _check_families(parser, args.families, tour_families())
    return 0 if tour(quick=args.quick, families=families, skip_missing=not args.no_skip) else 1


if __name__ == "__main__":
    sys.exit(main())
