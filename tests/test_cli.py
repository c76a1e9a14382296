"""`numlab info` and `numlab tour` (the tour's own demos are tested by running it in CI)."""

import io

import numlab
from numlab import cli
from numlab._tour import Demo


def test_info_lists_versions_and_backends():
    out = io.StringIO()
    cli.info(out)
    text = out.getvalue()
    assert text.splitlines()[0].split() == ["numlab", numlab.__version__]
    for key in ("numpy", "backend numba", "backend cupy", "backend dask", "kernel cache"):
        assert key in text


def test_tour_reports_failures_and_keeps_going(monkeypatch):
    def good(quick):
        return Demo("a problem", "a result", "a check", True)

    def broken(quick):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_tour_demos", lambda: [("linalg", good), ("ot", broken)])
    out = io.StringIO()
    assert cli.tour(quick=True, out=out) is False
    text = out.getvalue()
    assert "RuntimeError: boom" in text and "FAILED" in text
    assert "1/2 checks passed" in text


def test_tour_names_the_extra_when_a_reference_is_missing(monkeypatch):
    def needs_pot(quick):
        raise ModuleNotFoundError("No module named 'ot'", name="ot")

    monkeypatch.setattr(cli, "_tour_demos", lambda: [("ot", needs_pot)])
    out = io.StringIO()
    assert cli.tour(quick=True, out=out) is False
    assert "pip install 'numlab[tour]'" in out.getvalue()


def test_main_parses_commands(capsys):
    assert cli.main(["info"]) == 0
    assert "backend numba" in capsys.readouterr().out
