"""`import numlab` stays cheap: no Numba, CuPy or Dask, no compilation, no GPU probe."""

import json
import subprocess
import sys

import pytest

import numlab

HEAVY = ("numba", "cupy", "cupyx", "dask", "distributed", "sklearn", "matplotlib", "llvmlite")


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout


def test_import_pulls_in_no_heavy_library():
    out = _run("import sys, json, numlab; print(json.dumps(sorted(sys.modules)))")
    loaded = {name.split(".")[0] for name in json.loads(out)}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_import_is_fast():
    # Best of three fresh interpreters: the machine is shared and noisy.
    code = "import time; t = time.perf_counter(); import numlab; print(time.perf_counter() - t)"
    best = min(float(_run(code)) for _ in range(3))
    assert best < 0.3, f"import numlab took {best:.3f} s"


def test_families_load_lazily_and_unknown_names_fail():
    for family in numlab.FAMILIES:
        assert family in dir(numlab)
    with pytest.raises(AttributeError, match="no attribute 'not_a_family'"):
        numlab.not_a_family


def test_version_is_a_pep440_string():
    from importlib.metadata import PackageNotFoundError, version

    # the distribution is numlab-toolkit (PyPI's numlab is another project); the package numlab
    try:
        installed = version("numlab-toolkit")
    except PackageNotFoundError:  # an environment set up before the rename: pip install -e .
        pytest.skip("numlab-toolkit is not installed (numlab imported from a checkout)")
    assert numlab.__version__ == installed
