"""numlab against its anchors, read from asv's saved results: one table, one line per pair.

``python -m benchmarks.report [--results DIR] [--machine NAME] [--commit HASH] [-b REGEX] [--all]``
(from the repository root) reads the results that ``python -m benchmarks.run`` (or
``asv run --python=same --set-commit-hash ...``) saved under ``benchmarks/.asv/results``:
by default the newest results file (latest commit date, then newest file) of the machine
whose results were written last. It prints, per benchmark and parameter combination,
numlab's median, the anchor's, their ratio, the issue's target and whether it is met.

Pairing rule (the conventions of ``benchmarks/bench_*.py``):

- **side by side**: the implementation is a benchmark parameter (``implementation``,
  ``impl``, ``library``, ``solver``, ``method``: whatever its name), recognised as the
  parameter axis where at least one value starts with ``numlab`` (``numlab``,
  ``numlab-sns``, ``numlab-lanczos``, ...) and another does not. For every combination of
  the other parameters, each numlab value is paired with the anchor, the first other
  value on that axis (``sklearn``, ``pot-sinkhorn_knopp``, ``dppy``, ...) or the one a
  target below names; ratio = numlab / anchor, for ``time_*`` (asv's median) as for
  ``track_*`` values (errors, iterations, memory, HVP counts).
- **ratio benchmarks**: a ``track_*`` benchmark without such an axis whose name says it
  is a ratio (``ratio``, ``speedup``, ``_over_``: ``TimeRatio.track_time_ratio`` =
  numlab / anchor from interleaved rounds, ``SpeedUp.track_speedup`` = anchor / numlab,
  ``StepRatio.track_ratio``) is shown as its own ratio, with empty numlab/anchor columns.
- benchmarks with a target below are always shown (numlab-only targets such as seconds
  per sample apply to the numlab column); ``--all`` shows every other benchmark too.

Cells: ``failed`` (asv stored null: an exception), ``n/a`` (NaN: skipped, e.g. no GPU or a
``NotImplementedError`` in setup), ``-`` (not in this results file). Targets are the
issues' own, cited in ``TARGETS`` (the benchmark module docstrings quote them); a row
without a target has an empty target column. Standard library only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import pathlib
import re
import sys
from dataclasses import dataclass, field

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / ".asv" / "results"
RATIO_NAME = re.compile(r"ratio|speedup|_over_")


@dataclass(frozen=True)
class Target:
    """``op`` one of ``<=``, ``>=``, ``in`` (``value`` a (lo, hi) pair); ``on`` ``ratio``
    (numlab / anchor, or a ratio benchmark's value) or ``numlab`` (numlab's own value);
    ``where`` restricts it to parameter values; ``anchor`` pairs numlab with that anchor
    value instead of the default one."""

    op: str
    value: float | tuple[float, float]
    on: str = "ratio"
    where: dict = field(default_factory=dict)
    anchor: str | None = None
    source: str = ""

    def met(self, x: float) -> bool:
        if self.op == "<=":
            return x <= self.value
        if self.op == ">=":
            return x >= self.value
        lo, hi = self.value
        return lo <= x <= hi

    def text(self) -> str:
        what = "ratio" if self.on == "ratio" else "numlab"
        if self.op == "in":
            return f"{what} in {_num(self.value[0])}-{_num(self.value[1])}"
        return f"{what} {self.op} {_num(self.value)}"


def T(op, value, on="ratio", anchor=None, source="", **where):
    return Target(op, value, on, {k: str(v) for k, v in where.items()}, anchor, source)


_OT, _LIN, _RP = "issue 3 (bench_ot)", "issue 4 (bench_linalg)", "issue 5 (bench_random_projection)"
_GR, _OP, _TF = (
    "issue 5 (bench_graph)",
    "issue 14 (bench_operators)",
    "issue 15 (bench_operators_tfno)",
)
_PDE, _CCA, _SMP = "issue 13 (bench_pde)", "issues 19 (bench_cca)", "bench_sampling"
_DASK = "issue 18 (bench_dask)"

# Benchmark name (module.Class.method) -> the targets, as the module docstrings
# quote them. Only what can be cited; a target given as "anchor's + 0.001" or "plus the run
# time" is not a fixed number and is left out.
TARGETS: dict[str, list[Target]] = {
    "bench_ot.TimeToTolerance.time_solve": [
        T(
            "<=",
            0.25,
            anchor="pot-sinkhorn_knopp",
            implementation="numlab-sns",
            case="pc2000-1e-3-1e-8",
            source=_OT,
        ),
        T("<=", 0.4, on="numlab", implementation="numlab-sns", case="pc2000-1e-3-1e-8", source=_OT),
        T("<=", 1.0, on="numlab", implementation="numlab-sns", case="digits-1e-3-1e-9", source=_OT),
        T("<=", 1.5, on="numlab", implementation="numlab-sns", case="pc1000-1e-4-1e-9", source=_OT),
    ],
    "bench_ot.TimeToTolerance.track_iterations": [
        T("<=", 100, on="numlab", implementation="numlab-sns", case="pc2000-1e-3-1e-8", source=_OT),
    ],
    "bench_ot.PerIteration.track_ms_per_iteration": [
        T("<=", 1.5, anchor="pot-sinkhorn_knopp", source=_OT),
        T("<=", 1 / 20, anchor="pot-sinkhorn_log", source=_OT),
    ],
    "bench_ot.Accuracy.track_plan_l1_error": [T("<=", 1e-6, on="numlab", source=_OT)],
    "bench_ot.Accuracy.track_cost_relative_error": [T("<=", 1e-7, on="numlab", source=_OT)],
    "bench_ot.PeakMemory.track_extra_buffers": [T("<=", 4, on="numlab", source=_OT)],
    "bench_linalg.DenseRandomizedSVD.time_svd": [T("<=", 0.5, source=_LIN)],
    "bench_linalg.SparseRandomizedSVD.time_svd": [T("<=", 0.5, source=_LIN)],
    "bench_linalg.DenseRandomizedSVD.track_spectral_error": [T("<=", 1.01, source=_LIN)],
    "bench_linalg.SparseRandomizedSVD.track_spectral_error": [T("<=", 1.01, source=_LIN)],
    "bench_linalg.TimeRatio.track_time_ratio": [
        T("<=", 0.5, case="dense", source=_LIN),
        T("<=", 0.5, case="sparse", source=_LIN),
    ],
    "bench_linalg.PissaInit.time_pissa": [T("<=", 0.3, on="numlab", source=_LIN)],
    # issue 18: at equal time (2 reads of A each), a smaller error than svd_compressed's default
    "bench_dask.DaskRandomizedSVD.time_svd": [T("<=", 1.0, impl="numlab-n_iter=1", source=_DASK)],
    "bench_dask.DaskRandomizedSVD.track_spectral_error": [
        T("<=", 1.0, impl="numlab-n_iter=1", source=_DASK)
    ],
    "bench_linalg.PissaInit.track_residual_ratio": [T("<=", 1.0005, on="numlab", source=_LIN)],
    "bench_linalg.TolRank.track_rank_ratio": [T("<=", 1.1, source=_LIN)],
    "bench_linalg.TolRank.track_error_over_tol": [T("<=", 1.0, source=_LIN)],
    "bench_random_projection.FitTransform.time_fit_transform": [T("<=", 0.05, source=_RP)],
    "bench_random_projection.Distortion.track_distortion_mean": [
        T("in", (0.99, 1.01), on="numlab", source=_RP)
    ],
    "bench_random_projection.Distortion.track_distortion_std": [T("<=", 1.15, source=_RP)],
    "bench_graph.FastRPTime.time_fastrp": [T("<=", 0.25, source=_GR)],
    "bench_cca.ExactCCA.track_max_difference_vs_scipy": [T("<=", 1e-6, on="numlab", source=_CCA)],
    "bench_cca.DigitsStochastic.time_fit": [T("<=", 0.5, source=_CCA)],
    "bench_cca.DigitsStochastic.track_train_ratio_to_exact": [
        T(">=", 0.96, on="numlab", source=_CCA)
    ],
    "bench_cca.DigitsStochastic.track_heldout_ratio_to_exact": [
        T(">=", 0.99, on="numlab", source=_CCA)
    ],
    "bench_cca.PatchesMultiview.time_fit": [T("<=", 1.0, source=_CCA)],
    "bench_cca.PatchesMultiview.track_train_ratio_to_exact": [
        T(">=", 0.96, on="numlab", source=_CCA)
    ],
    "bench_cca.PatchesMultiview.track_heldout_ratio_to_exact": [
        T(">=", 0.93, on="numlab", source=_CCA)
    ],
    "bench_cca.ZooProblems.time_fit": [T("<=", 1.0, source=_CCA)],
    "bench_cca.ZooProblems.track_ratio_to_exact": [T(">=", 0.99, source=_CCA)],
    "bench_sampling.ProjectionDPP.time_sample": [
        T("<=", 1 / 20, case="d2-m91", source=_SMP),
        T("<=", 1 / 20, case="d5-m56", source=_SMP),
        T("<=", 0.05, on="numlab", case="d1-m500", source=_SMP),
    ],
    "bench_sampling.SpeedUp.track_speedup": [
        T(">=", 20, case="d2-m91", source=_SMP),
        T(">=", 20, case="d5-m56", source=_SMP),
    ],
    "bench_sampling.ErrorRatio.track_median_error_ratio": [
        T("<=", 1.5, scheme="2xdpp", source=_SMP),
        T("<=", 1.15, scheme="lnm-dpp", source=_SMP),
    ],
    "bench_import.ImportTime.timeraw_import_numlab": [
        T("<=", 0.3, on="numlab", source="bench_import")
    ],
    "bench_import.ImportTime.track_heavy_modules_imported": [
        T("<=", 0, on="numlab", source="bench_import")
    ],
    "bench_operators.TimeRatio.track_time_ratio": [
        T("<=", 1.5, what="gelu_forward", source=_OP),
        T("<=", 1.5, what="gelu_forward_backward", source=_OP),
        T("<=", 1.1, what="train_step", case="2d", source=_OP),
        T("<=", 1.0, what="train_step", case="1d", source=_OP),
        T("<=", 1.2, what="forward", source=_OP),
    ],
    "bench_operators.PeakMemory.track_peak_mb": [T("<=", 1.0, source=_OP)],
    "bench_operators_lsm.TimeRatio.track_time_ratio": [
        T("<=", 1.5, what="train_step", source="issue 16 (bench_operators_lsm)")
    ],
    "bench_operators_tfno.Compression.track_fraction": [T("in", (0.09, 0.115), source=_TF)],
    "bench_operators_tfno.StepRatio.track_ratio": [
        T("<=", 1.0, against="dense_numlab", source=_TF),
        T("<=", 1.1, against="neuralop_tfno", source=_TF),
    ],
    "bench_operators_mg.MultigridNavierStokes.track_error_ratio": [
        T("<=", 1.15, source="issue 15 (bench_operators_mg)")
    ],
    "bench_operators_mg.MultigridNavierStokes.track_memory_ratio": [
        T("<=", 0.4, source="issue 15 (bench_operators_mg)")
    ],
    "bench_pde.BurgersThousandSamples.track_seconds_per_1000": [
        T("<=", 60, on="numlab", source=_PDE)
    ],
    "bench_pde.NavierStokesPerSample.track_seconds_per_sample": [
        T("<=", 5, on="numlab", source=_PDE)
    ],
    "bench_pde.NavierStokesAccuracy.track_relative_error_t1": [
        T("<=", 1e-3, on="numlab", source=_PDE)
    ],
    "bench_pde_darcy.DarcyPerSample.track_ms_per_sample": [
        T("<=", 20, on="numlab", resolution=85, source="issue 13 (bench_pde_darcy)"),
        T("<=", 1000, on="numlab", resolution=421, source="issue 13 (bench_pde_darcy)"),
    ],
}


# --------------------------------------------------------------------------- reading


def _unquote(v) -> str:
    """asv stores parameter values as their repr: ``"'numlab'"`` -> ``numlab``."""
    s = str(v)
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def find_results(
    results_dir: pathlib.Path, machine: str | None = None, commit: str | None = None
) -> pathlib.Path | None:
    """The results file to report: newest commit date, then newest file, of ``machine``
    (default: the machine whose results were written last), matching ``commit`` (prefix)."""
    files = [p for p in pathlib.Path(results_dir).glob("*/*.json") if p.name != "machine.json"]
    if machine:
        files = [p for p in files if p.parent.name == machine]
    elif files:
        newest = max(files, key=lambda p: p.stat().st_mtime).parent.name
        files = [p for p in files if p.parent.name == newest]
    loaded = []
    for p in files:
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if commit and not str(data.get("commit_hash", "")).startswith(commit):
            continue
        loaded.append((data.get("date") or 0, p.stat().st_mtime, p))
    return max(loaded)[2] if loaded else None


@dataclass
class Bench:
    name: str
    kind: str  # time, track, peakmem, mem, timeraw
    unit: str
    param_names: list[str]
    params: list[list[str]]
    values: dict[tuple[str, ...], float | None]  # parameter combination -> value

    def value(self, combo) -> float | None | str:
        return self.values.get(tuple(combo), "-")


def load(results_file: pathlib.Path) -> tuple[dict, dict[str, Bench]]:
    """(header of the results file, benchmarks by name) from one asv results file and the
    ``benchmarks.json`` beside its machine folder (parameter names and units)."""
    data = json.loads(pathlib.Path(results_file).read_text())
    meta_path = pathlib.Path(results_file).parent.parent / "benchmarks.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    columns = data.get("result_columns", ["result", "params"])
    out = {}
    for name, row in data.get("results", {}).items():
        cols = dict(zip(columns, row if isinstance(row, list) else [row], strict=False))
        result = cols.get("result")
        params = [[_unquote(v) for v in axis] for axis in (cols.get("params") or [])]
        info = meta.get(name, {})
        names = list(info.get("param_names") or [f"p{i}" for i in range(len(params))])
        kind = info.get("type") or name.rsplit(".", 1)[-1].split("_", 1)[0]
        unit = info.get("unit") or ("seconds" if kind in ("time", "timeraw") else "")
        combos = list(itertools.product(*params)) if params else [()]
        if not isinstance(result, list):
            result = [result] * len(combos)
        values = {
            c: (float(v) if v is not None else None) for c, v in zip(combos, result, strict=False)
        }
        out[name] = Bench(name, "time" if kind == "timeraw" else kind, unit, names, params, values)
    return data, out


# --------------------------------------------------------------------------- pairing


def impl_axis(bench: Bench) -> int | None:
    """Index of the parameter axis holding numlab and its anchors, or None."""
    for i, axis in enumerate(bench.params):
        ours = [v for v in axis if v.startswith("numlab")]
        if ours and len(ours) < len(axis):
            return i
    return None


@dataclass
class Row:
    benchmark: str
    params: str
    numlab: float | None | str  # value, None (failed), "-" (missing); NaN: skipped
    anchor: float | None | str
    ratio: float | None | str
    target: Target | None
    unit: str
    kind: str

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        x = self.ratio if self.target.on == "ratio" else self.numlab
        if not isinstance(x, float) or math.isnan(x):
            return "?"
        return "yes" if self.target.met(x) else "NO"


def _targets_for(name: str, named: dict[str, str]) -> list[Target]:
    return [t for t in TARGETS.get(name, []) if all(named.get(k) == v for k, v in t.where.items())]


def _ratio(a, b):
    if not isinstance(a, float) or not isinstance(b, float):
        return None if (a is None or b is None) else "-"
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b if b else math.inf


def rows_for(bench: Bench, show_all: bool = False) -> list[Row]:
    rows = []
    short = bench.name.removeprefix("bench_")
    axis = impl_axis(bench)
    combos = list(itertools.product(*bench.params)) if bench.params else [()]
    if axis is None:
        is_ratio = bench.kind == "track" and RATIO_NAME.search(bench.name.rsplit(".", 1)[-1])
        for combo in combos:
            named = dict(zip(bench.param_names, combo, strict=False))
            targets = _targets_for(bench.name, named)
            if not (targets or is_ratio or show_all):
                continue
            label = ", ".join(f"{k}={v}" for k, v in named.items())
            v = bench.value(combo)
            for t in targets or [None]:
                on_ratio = is_ratio and (t is None or t.on == "ratio")
                rows.append(
                    Row(
                        short,
                        label,
                        "" if on_ratio else v,
                        "",
                        v if on_ratio else "",
                        t,
                        bench.unit,
                        bench.kind,
                    )
                )
        return rows
    values = bench.params[axis]
    anchors = [v for v in values if not v.startswith("numlab")]
    others = [
        (n, a)
        for i, (n, a) in enumerate(zip(bench.param_names, bench.params, strict=False))
        if i != axis
    ]
    for rest in itertools.product(*[a for _, a in others]) if others else [()]:
        for ours in [v for v in values if v.startswith("numlab")]:
            named = dict(zip([n for n, _ in others], rest, strict=False))
            named[bench.param_names[axis]] = ours
            targets = _targets_for(bench.name, named)
            pairs = {}  # anchor -> targets
            for t in targets:
                pairs.setdefault(t.anchor or anchors[0], []).append(t)
            if not pairs:
                pairs[anchors[0]] = []
            for anchor, ts in pairs.items():

                def value(impl, rest=rest):
                    combo = list(rest)
                    combo.insert(axis, impl)
                    return bench.value(combo)

                a, b = value(ours), value(anchor)
                label = ", ".join(
                    [f"{k}={v}" for k, v in zip([n for n, _ in others], rest, strict=False)]
                    + [f"{ours} vs {anchor}"]
                )
                for t in ts or [None]:
                    rows.append(Row(short, label, a, b, _ratio(a, b), t, bench.unit, bench.kind))
    return rows


def build_rows(
    benches: dict[str, Bench], pattern: str | None = None, show_all: bool = False
) -> list[Row]:
    rows = []
    for name in sorted(benches):
        if pattern and not re.search(pattern, name):
            continue
        rows.extend(rows_for(benches[name], show_all))
    return rows


def missing_targets(benches: dict[str, Bench], pattern: str | None = None) -> list[str]:
    return sorted(n for n in TARGETS if n not in benches and (not pattern or re.search(pattern, n)))


# --------------------------------------------------------------------------- printing


def _num(x) -> str:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        if x == 0 or (1e-3 <= abs(x) < 1e5):
            return f"{x:.4g}"
        return f"{x:.3g}"
    return str(x)


def _cell(x, unit: str = "", kind: str = "") -> str:
    if x is None:
        return "failed"
    if isinstance(x, str):
        return x
    if math.isnan(x):
        return "n/a"
    if kind == "time" or unit == "seconds":
        for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(x) >= scale or scale == 1e-6:
                return f"{x / scale:.3g}{suffix}"
    if kind == "peakmem" or unit == "bytes":
        return f"{x / 2**20:.3g}MiB"
    return _num(x)


def format_table(rows: list[Row]) -> str:
    head = ("benchmark", "params", "numlab", "anchor", "ratio", "target", "met")
    body = [
        (
            r.benchmark,
            r.params,
            _cell(r.numlab, r.unit, r.kind),
            _cell(r.anchor, r.unit, r.kind),
            _cell(r.ratio) if r.ratio != "" else "",
            r.target.text() if r.target else "",
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
    right = {2, 3, 4}
    lines = []
    for i, line in enumerate([head, *body]):
        cells = [
            c.rjust(w) if j in right else c.ljust(w)
            for j, (c, w) in enumerate(zip(line, widths, strict=False))
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--results",
        type=pathlib.Path,
        default=RESULTS_DIR,
        help=f"asv results folder (default {RESULTS_DIR})",
    )
    parser.add_argument("--machine", help="machine name (default: the one written last)")
    parser.add_argument("--commit", help="commit hash or prefix (default: the latest)")
    parser.add_argument("-b", "--bench", help="regular expression on benchmark names (as asv's -b)")
    parser.add_argument(
        "--all", action="store_true", help="also benchmarks with no anchor, ratio or target"
    )
    parser.add_argument(
        "--missing",
        action="store_true",
        help="list the benchmarks with a target that have no result",
    )
    args = parser.parse_args(argv)
    path = find_results(args.results, args.machine, args.commit)
    if path is None:
        print(
            f"no asv results in {args.results}"
            + (f" for machine {args.machine}" if args.machine else "")
            + (f" at commit {args.commit}" if args.commit else "")
            + ": run `python -m benchmarks.run` first (asv run --python=same saves nothing "
            "without --set-commit-hash)",
            file=sys.stderr,
        )
        return 1
    data, benches = load(path)
    params = data.get("params", {})
    print(
        f"asv results {path}\ncommit {str(data.get('commit_hash'))[:12]}, machine "
        f"{params.get('machine', path.parent.name)} ({params.get('cpu', '?')}, "
        f"{params.get('num_cpu', '?')} cpus); ratio = numlab / anchor (SpeedUp: anchor / numlab)\n"
    )
    rows = build_rows(benches, args.bench, args.all)
    print(format_table(rows) if rows else "no benchmark in this file pairs numlab with an anchor")
    missing = missing_targets(benches, args.bench)
    if missing:
        print(
            f"\n{len(missing)} benchmarks with a target have no result in this file"
            + (": " + ", ".join(missing) if args.missing else " (--missing lists them)")
        )
    verdicts = [r.verdict for r in rows if r.verdict]
    print(
        f"\ntargets: {verdicts.count('yes')} met, {verdicts.count('NO')} missed, "
        f"{verdicts.count('?')} without a value"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
