"""Check that each extra the docs name suffices on its own for what it is documented to run.

Runs in CI's full environment (every extra installed), in a few seconds, without a venv per
extra: for each extra it walks the dependency closure of ``numlab-toolkit[extra]`` through
the installed distributions' metadata, and checks that every third-party module imported by
the files that extra serves (``tour``: the families' ``_tour.py``; ``docs``: the tutorials
and docs/conf.py; ``test``: tests/, with ``neuralop`` as README's test command installs it;
``bench``: benchmarks/) is provided by that closure. Imports guarded by ``try/except
ImportError`` or ``pytest.importorskip`` are optional; in tests and benchmarks only the
module-level imports count (a function importing cupy or torch is gated by a marker or a
skip). ``gpu``, ``dask`` and ``neuralop`` must provide the modules numlab uses from
them. Exit status 1 and one line per missing module when an extra falls short.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NAME = PROJECT["name"]

#: extra -> files whose imports it must satisfy (globs under the repository root)
SERVES = {
    "tour": ["numlab/*/_tour.py"],
    "docs": ["docs/conf.py", "docs/check_pages.py", "docs/examples/**/*.py"],
    "test": ["tests/**/*.py"],
    "bench": ["benchmarks/*.py"],
}
#: extra -> modules it must provide (what numlab imports from it)
PROVIDES = {
    "gpu": ["cupy", "cupyx"],
    "dask": ["dask", "distributed"],
    "neuralop": ["torch", "neuralop"],
}
#: extra -> the extras installed with it by the documented command
WITH = {"test": ["neuralop"]}
#: extras whose files' imports count only at module level
MODULE_LEVEL = {"test", "bench"}
#: modules that are not third-party distributions: numlab and the repository's own files
LOCAL = {"numlab", "benchmarks", "tests"} | {
    p.stem for d in ("tests", "benchmarks", "docs") for p in (ROOT / d).glob("*.py")}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(spec: str) -> tuple[str, set[str], str]:
    """(name, extras, marker) of a Requires-Dist line."""
    spec, _, marker = spec.partition(";")
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(\[([^\]]*)\])?", spec)
    extras = {_canonical(e) for e in (m.group(3) or "").split(",") if e.strip()}
    return _canonical(m.group(1)), extras, marker.strip()


def _marker_ok(marker: str, extras: set[str]) -> bool:
    if not marker:
        return True
    found = re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    if found:
        return any(_canonical(e) in extras for e in found)
    try:
        from packaging.markers import Marker

        return Marker(marker).evaluate()
    except Exception:
        return True


def closure(extra: str) -> set[str]:
    """Canonical names of the distributions ``NAME[extra]`` installs (itself included)."""
    seen: set[str] = {_canonical(NAME)}
    # the first level from pyproject.toml (the checkout), the rest from installed metadata
    todo = [_requirement(spec)[:2] for spec in
            [*PROJECT["dependencies"], *PROJECT["optional-dependencies"][extra]]]
    while todo:
        name, extras = todo.pop()
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for spec in requires:
            dep, dep_extras, marker = _requirement(spec)
            if _marker_ok(marker, extras):
                todo.append((dep, dep_extras))
    return {k.partition("[")[0] for k in seen}


def _modules_of(distributions: set[str]) -> set[str]:
    provided = set()
    for module, dists in md.packages_distributions().items():
        if any(_canonical(d) in distributions for d in dists):
            provided.add(module)
    return provided


def _optional_lines(tree: ast.AST) -> set[int]:
    """Line numbers of imports that may fail (inside try with an ImportError-ish handler)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            names = set()
            for handler in node.handlers:
                t = handler.type
                for n in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    names.add(getattr(n, "id", None) or getattr(n, "attr", None))
            if names & {"ImportError", "ModuleNotFoundError", "Exception", None}:
                for sub in node.body:
                    for inner in ast.walk(sub):
                        lines.add(getattr(inner, "lineno", -1))
    return lines


def imports(path: Path, module_level: bool = False) -> dict[str, int]:
    """Required top-level third-party modules imported by ``path`` -> a line number."""
    tree = ast.parse(path.read_text(), str(path))
    optional = _optional_lines(tree)
    skipped = {n.args[0].value.partition(".")[0] for n in ast.walk(tree)
               if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "importorskip"
               and n.args and isinstance(n.args[0], ast.Constant)}
    found = {}
    nodes = tree.body if module_level else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if node.lineno in optional:
            continue
        for name in names:
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top in LOCAL or top in skipped:
                continue
            found.setdefault(top, node.lineno)
    return found


def main() -> int:
    extras = PROJECT["optional-dependencies"]
    problems = []
    for extra in [*SERVES, *PROVIDES]:
        if extra not in extras:
            problems.append(f"[{extra}]: not an extra of {NAME}")
            continue
        provided = _modules_of(set().union(*(closure(e) for e in [extra, *WITH.get(extra, [])])))
        needed = {}
        for pattern in SERVES.get(extra, ()):
            for path in sorted(ROOT.glob(pattern)):
                for module, line in imports(path, extra in MODULE_LEVEL).items():
                    needed.setdefault(module, f"{path.relative_to(ROOT)}:{line}")
        for module in PROVIDES.get(extra, ()):
            needed.setdefault(module, "numlab's use of it")
        installed_anywhere = set(md.packages_distributions())
        missing = {m: w for m, w in needed.items() if m not in provided}
        for module, where in sorted(missing.items()):
            if extra in PROVIDES and module not in installed_anywhere:
                continue  # e.g. cupy on a machine without CUDA: checked where it installs
            problems.append(f"[{extra}] lacks {module!r} (imported at {where})")
        print(f"[{extra}]: {len(needed)} modules needed, "
              f"{len(needed) - len(missing)} provided by {NAME}[{extra}] alone")
    for line in problems:
        print("MISSING", line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
