"""benchmarks/report.py on a tiny fake asv results folder (asv 0.6 format), no asv run."""

import json
import math

import pytest

from benchmarks import report

COLUMNS = [
    "result",
    "params",
    "version",
    "started_at",
    "duration",
    "stats_ci_99_a",
    "stats_ci_99_b",
    "stats_q_25",
    "stats_q_75",
    "stats_number",
    "stats_repeat",
    "samples",
    "profile",
]


def _write(tmp_path, results, meta, commit="abc123", date=1, machine="box"):
    folder = tmp_path / machine
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "machine.json").write_text(json.dumps({"machine": machine, "version": 1}))
    data = {
        "commit_hash": commit,
        "date": date,
        "env_name": "existing-py",
        "params": {"machine": machine, "cpu": "fake", "num_cpu": "2"},
        "result_columns": COLUMNS,
        "results": results,
        "version": 2,
    }
    path = folder / f"{commit[:8]}-existing-py.json"
    # asv writes NaN for skipped parameter combinations (json's default)
    path.write_text(json.dumps(data))
    meta_path = tmp_path / "benchmarks.json"
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta_path.write_text(json.dumps({**old, **meta, "version": 2}))
    return path


def _meta(name, kind, param_names, unit="seconds"):
    return {name: {"name": name, "type": kind, "param_names": param_names, "unit": unit}}


@pytest.fixture
def results(tmp_path):
    dpp = "bench_sampling.ProjectionDPP.time_sample"
    speed = "bench_sampling.SpeedUp.track_speedup"
    ot = "bench_ot.TimeToTolerance.time_solve"
    rp = "bench_random_projection.FitTransform.time_fit_transform"
    imp = "bench_import.ImportTime.timeraw_import_numlab"
    plain = "bench_linalg.TolRank.time_tol_mode"
    res = {
        # library x case, product order: (numlab, d2-m91), (numlab, d5-m56), (dppy, ...), ...
        dpp: [
            [0.001, 0.002, 0.1, 0.01],
            [["'numlab'", "'dppy'"], ["'d2-m91'", "'d5-m56'"]],
            "v",
            0,
            1.0,
            [0, 0, 0, 0],
            [1, 1, 1, 1],
        ],
        speed: [[91.0, 10.0], [["'d2-m91'", "'d5-m56'"]], "v", 0, 1.0],
        # case x implementation; numlab-log failed (null), regot skipped (NaN)
        ot: [
            [0.3, None, 2.0, float("nan")],
            [
                ["'pc2000-1e-3-1e-8'"],
                ["'numlab-sns'", "'numlab-log'", "'pot-sinkhorn_knopp'", "'regot-ssns'"],
            ],
            "v",
            0,
            1.0,
        ],
        # FitTransform: numlab ran, the anchor (sklearn) failed
        rp: [[0.01, None], [["'numlab'", "'sklearn'"]], "v", 0, 1.0],
        imp: [[0.2], [], "v", 0, 1.0],
        plain: [[1.0, 2.0], [["0.01", "0.001"]], "v", 0, 1.0],
    }
    meta = {
        **_meta(dpp, "time", ["library", "case"]),
        **_meta(speed, "track", ["case"], "x"),
        **_meta(ot, "time", ["case", "implementation"]),
        **_meta(rp, "time", ["implementation"]),
        **_meta(imp, "time", []),
        **_meta(plain, "time", ["tol"]),
    }
    _write(tmp_path, res, meta)
    return tmp_path


def _rows(folder, **kw):
    path = report.find_results(folder)
    _, benches = report.load(path)
    return report.build_rows(benches, **kw)


def _by(rows, bench, params_part):
    return [r for r in rows if r.benchmark == bench and params_part in r.params]


def test_pairing_and_ratio(results):
    rows = _rows(results)
    (row,) = _by(rows, "sampling.ProjectionDPP.time_sample", "case=d2-m91")
    assert row.params == "case=d2-m91, numlab vs dppy"
    assert row.numlab == 0.001 and row.anchor == 0.1
    assert row.ratio == pytest.approx(0.01)
    assert row.target.text() == "ratio <= 0.05" and row.verdict == "yes"
    (row,) = _by(rows, "sampling.ProjectionDPP.time_sample", "case=d5-m56")
    assert row.ratio == pytest.approx(0.2) and row.verdict == "NO"


def test_ratio_benchmark_and_ge_target(results):
    rows = _rows(results)
    (met,) = _by(rows, "sampling.SpeedUp.track_speedup", "d2-m91")
    (missed,) = _by(rows, "sampling.SpeedUp.track_speedup", "d5-m56")
    assert met.ratio == 91.0 and met.numlab == "" and met.verdict == "yes"
    assert missed.ratio == 10.0 and missed.verdict == "NO"


def test_named_anchor_numlab_target_failed_and_skipped(results):
    rows = _rows(results)
    sns = _by(rows, "ot.TimeToTolerance.time_solve", "numlab-sns vs pot-sinkhorn_knopp")
    verdicts = {r.target.text(): r.verdict for r in sns}
    assert verdicts == {"ratio <= 0.25": "yes", "numlab <= 0.4": "yes"}
    assert sns[0].ratio == pytest.approx(0.15)
    (log,) = _by(rows, "ot.TimeToTolerance.time_solve", "numlab-log")
    assert log.numlab is None and log.ratio is None and log.target is None
    table = report.format_table(rows)
    assert "failed" in table
    # regot's NaN (skipped) is never the default anchor: pot-sinkhorn_knopp comes first
    assert not _by(rows, "ot.TimeToTolerance.time_solve", "regot")


def test_failed_anchor_gives_unknown_verdict(results):
    (row,) = _by(_rows(results), "random_projection.FitTransform.time_fit_transform", "numlab")
    assert row.anchor is None and row.ratio is None and row.verdict == "?"


def test_unpaired_without_target_hidden_unless_all(results):
    assert not _by(_rows(results), "linalg.TolRank.time_tol_mode", "")
    assert len(_by(_rows(results, show_all=True), "linalg.TolRank.time_tol_mode", "tol=")) == 2
    (imp,) = _by(_rows(results), "import.ImportTime.timeraw_import_numlab", "")
    assert imp.numlab == 0.2 and imp.verdict == "yes"


def test_filter_latest_and_missing(results, capsys):
    rows = _rows(results, pattern="SpeedUp")
    assert {r.benchmark for r in rows} == {"sampling.SpeedUp.track_speedup"}
    _write(
        results,
        {"bench_sampling.SpeedUp.track_speedup": [[5.0], [["'d2-m91'"]], "v"]},
        _meta("bench_sampling.SpeedUp.track_speedup", "track", ["case"], "x"),
        commit="def456",
        date=2,
    )
    (row,) = _rows(results, pattern="SpeedUp")
    assert row.ratio == 5.0 and row.verdict == "NO"
    assert report.main(["--results", str(results), "--commit", "abc", "-b", "sampling"]) == 0
    out = capsys.readouterr().out
    assert "sampling.ProjectionDPP.time_sample" in out and " 91 " in out
    assert "with a target have no result" in out


def test_no_results(tmp_path, capsys):
    assert report.main(["--results", str(tmp_path)]) == 1
    assert "no asv results" in capsys.readouterr().err


def test_cells():
    assert report._cell(None) == "failed"
    assert report._cell(math.nan) == "n/a"
    assert report._cell(0.00123, "seconds", "time") == "1.23ms"
    assert report._cell(2.5, "seconds", "time") == "2.5s"
