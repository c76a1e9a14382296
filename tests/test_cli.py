"""The ``numlab`` command: info, tour and compile (the tour's own demos run in CI)."""

import io
import os
import subprocess
import sys

import pytest

import numlab
from numlab import cli
from numlab._tour import Demo


def _good(quick):
    return Demo("a problem", "a result", "a check", True)


def test_info_lists_versions_backends_and_kernel_cache():
    out = io.StringIO()
    cli.info(out)
    text = out.getvalue()
    assert text.splitlines()[0].split() == ["numlab", numlab.__version__]
    for key in ("numpy", "backend numba", "backend cupy", "backend dask", "kernel cache"):
        assert key in text
    assert "numlab-toolkit" in text
    cache = cli.kernel_cache_dir()
    assert cache is not None and os.path.isabs(cache)
    line = next(line for line in text.splitlines() if line.startswith("kernel cache"))
    assert cache in line


def test_kernel_cache_dir_follows_numba_cache_dir(tmp_path):
    code = "from numlab import cli; print(cli.kernel_cache_dir())"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.startswith(str(tmp_path))


def test_hints_name_the_pypi_distribution_not_pypis_numlab():
    hint = cli.install_hint("gpu")
    assert "pip install 'numlab-toolkit[gpu]'" in hint
    assert "'numlab[" not in hint


def test_tour_reports_failures_and_keeps_going(monkeypatch):
    def broken(quick):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_tour_demos", lambda families: [("linalg", _good), ("ot", broken)])
    out = io.StringIO()
    assert cli.tour(quick=True, out=out) is False
    text = out.getvalue()
    assert "RuntimeError: boom" in text and "FAILED" in text
    assert "1/2 checks passed" in text


def test_tour_skips_a_demo_whose_reference_is_missing(monkeypatch):
    def needs_pot(quick):
        raise ModuleNotFoundError("No module named 'ot'", name="ot")

    monkeypatch.setattr(cli, "_tour_demos", lambda families: [("ot", needs_pot), ("linalg", _good)])
    out = io.StringIO()
    assert cli.tour(quick=True, out=out) is True
    text = out.getvalue()
    assert "skipped (needs pot)" in text
    assert "1/1 checks passed" in text and "1 skipped" in text
    assert "pip install 'numlab-toolkit[tour]'" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    # --no-skip (CI): the same demo fails, naming the extra
    out = io.StringIO()
    assert cli.tour(quick=True, out=out, skip_missing=False) is False
    assert "FAILED" in out.getvalue() and "numlab-toolkit[tour]" in out.getvalue()


def test_a_missing_numlab_module_is_a_failure_not_a_skip(monkeypatch):
    def broken_import(quick):
        raise ModuleNotFoundError("No module named 'numlab.nothing'", name="numlab.nothing")

    monkeypatch.setattr(cli, "_tour_demos", lambda families: [("ot", broken_import)])
    out = io.StringIO()
    assert cli.tour(quick=True, out=out) is False
    assert "FAILED" in out.getvalue()


def test_tour_table_fits_100_columns_and_has_a_header(monkeypatch):
    def wordy(quick):
        return Demo("entropic OT between two 2000-point clouds, reg=1e-3 " * 3,
                    "71 iterations (67 Sinkhorn + 4 Newton), violation 3e-10 " * 2,
                    "vs POT sinkhorn_knopp: plan within 1e-7, cost within 1e-9 " * 2, True)

    monkeypatch.setattr(cli, "_tour_demos",
                        lambda families: [("random_projection", wordy), ("ot", _good)])
    out = io.StringIO()
    assert cli.tour(quick=True, out=out, width=100)
    lines = out.getvalue().splitlines()
    table = lines[lines.index("") + 1:]
    assert max(len(line) for line in table) <= 100
    header = table[0].split()
    assert header[0] == "family" and header[-3:] == ["status", "jit", "s", "run", "s"][-3:]
    assert all(cell for cell in header)
    assert any("nl.random_projection" in line for line in table)
    # every word of the long cell is printed (wrapped, not cut)
    assert sum(line.count("Sinkhorn") for line in table) == 2


def test_tour_separates_jit_time(monkeypatch):
    numba = pytest.importorskip("numba")

    def compiles(quick):
        @numba.njit  # a new function: always compiled, never cached
        def f(x):
            return x + 1

        f(1)
        return Demo("p", "r", "c", True)

    monkeypatch.setattr(cli, "_tour_demos", lambda families: [("ot", compiles)])
    out = io.StringIO()
    assert cli.tour(quick=True, out=out)
    progress = next(line for line in out.getvalue().splitlines() if line.startswith("[1/1]"))
    jit = float(progress.split("jit ")[1].split(" s")[0])
    assert jit > 0.01


def test_tour_runs_the_families_named(monkeypatch):
    seen = []

    def demos(families):
        seen.append(families)
        return [(f, _good) for f in families]

    monkeypatch.setattr(cli, "_tour_demos", demos)
    monkeypatch.setattr(cli, "tour_families", lambda: ["ot", "linalg", "graph"])
    assert cli.main(["tour", "--quick", "graph", "nl.ot"]) == 0
    assert seen == [["graph", "ot"]]
    with pytest.raises(SystemExit) as exc:
        cli.main(["tour", "nosuchfamily"])
    assert exc.value.code == 2


def test_bare_numlab_prints_help(capsys):
    assert cli.main([]) == 0
    text = capsys.readouterr().out
    for command in ("info", "tour", "compile"):
        assert command in text
    assert text.startswith("usage: numlab")


def test_main_parses_commands(capsys):
    assert cli.main(["info"]) == 0
    assert "backend numba" in capsys.readouterr().out


def test_compile_names_families_without_kernels(capsys):
    cli.compile_kernels(["linalg"], progress=False)
    assert "nl.linalg has no Numba kernels" in capsys.readouterr().out


def test_compile_fills_an_empty_kernel_cache(tmp_path):
    # a fresh process with its own cache: the graph warm-up writes compiled kernels there
    code = "from numlab import cli; cli.main(['compile', 'graph'])"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "numlab compile: 2 warm-up calls" in run.stdout
    assert any(name.endswith(".nbc") for _, _, files in os.walk(tmp_path) for name in files)
    assert "numlab compile" in run.stderr + run.stdout  # the tqdm bar names itself


def test_version_is_set_in_one_place(capsys):
    import importlib.metadata
    import pathlib

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.split() == ["numlab", numlab.__version__]
    try:  # installed as numlab-toolkit: the metadata's version is read from numlab/__init__.py
        assert importlib.metadata.version(cli.DISTRIBUTION) == numlab.__version__
    except importlib.metadata.PackageNotFoundError:
        pass
    citation = pathlib.Path(numlab.__file__).parent.parent / "CITATION.cff"
    if citation.exists():  # a checkout: the citation does not repeat the version
        assert "\nversion:" not in citation.read_text()


def test_a_closed_pipe_is_no_traceback():
    # `numlab info | head -1`: the reader leaves after one line
    run = subprocess.run(f"'{sys.executable}' -m numlab info | head -1", shell=True,
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.startswith("numlab")
    assert "Traceback" not in run.stderr


def test_every_warm_up_runs():
    # the warm-ups call the public API; run them as plain Python (no compilation) to catch
    # a call that raises, in a few seconds of CPU
    code = ("from numlab._warmup import warmups\n"
            "steps = warmups()\n"
            "for family, label, run in steps: run()\n"
            "print(len(steps), sorted({f for f, _, _ in steps}))")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "'graph', 'lstsq', 'operators', 'ot', 'random_projection', 'sampling'" in run.stdout
