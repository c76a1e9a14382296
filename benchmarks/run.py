"""Run the asv benchmarks in the current Python so that asv SAVES the results, publish, report.

``asv run --python=same`` alone measures and prints but saves nothing (an existing
environment has no commit to file the results under), so ``asv publish`` then shows
nothing. This script runs, from ``benchmarks/`` (where ``asv.conf.json`` is):

1. ``asv machine --yes --machine NAME`` (NAME: ``--machine``, default the host name; the
   machine's details are detected, and results are filed under ``.asv/results/NAME/``);
2. ``asv run --python=same --set-commit-hash <git HEAD> --machine NAME --show-stderr
   [--quick] [-b REGEX]`` (the results are recorded for HEAD: commit first, or know that
   uncommitted changes are measured under HEAD's hash; runs of different ``-b`` subsets
   on the same commit add up in the same results file);
3. ``asv publish`` (HTML in ``benchmarks/.asv/html``; ``asv preview`` from ``benchmarks/``
   serves it at http://127.0.0.1:8080, or open ``index.html`` through any web server);
4. ``python -m benchmarks.report`` on the new results (the numlab / anchor table).

Usage, from the repository root::

    python -m benchmarks.run -b 'bench_sampling\\.SpeedUp' --quick   # one cheap class
    python -m benchmarks.run -b bench_linalg                          # one family
    python -m benchmarks.run                                          # everything (hours)

``--quick`` runs each benchmark once (rough figures, still saved); ``--dry-run`` prints
the commands only; arguments after ``--`` go to ``asv run`` (e.g. ``-- -a repeat=3``).
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import socket
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def commands(
    machine: str, commit: str, bench: str | None, quick: bool, publish: bool, extra: list[str]
) -> list[list[str]]:
    run = [
        "asv",
        "run",
        "--python=same",
        "--set-commit-hash",
        commit,
        "--machine",
        machine,
        "--show-stderr",
    ]
    if quick:
        run.append("--quick")
    if bench:
        run += ["-b", bench]
    cmds = [["asv", "machine", "--yes", "--machine", machine], run + extra]
    if publish:
        cmds.append(["asv", "publish"])
    return cmds


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("-b", "--bench", help="regular expression on benchmark names (asv run -b)")
    parser.add_argument("--quick", action="store_true", help="run each benchmark once")
    parser.add_argument(
        "--machine",
        default=socket.gethostname(),
        help="machine name the results are filed under (default: host name)",
    )
    parser.add_argument("--commit", default="HEAD", help="commit to record the results for")
    parser.add_argument("--no-publish", action="store_true", help="skip asv publish")
    parser.add_argument("--no-report", action="store_true", help="skip the report")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    commit = subprocess.run(
        ["git", "rev-parse", args.commit], cwd=HERE, capture_output=True, text=True, check=True
    ).stdout.strip()
    status = 0
    for cmd in commands(args.machine, commit, args.bench, args.quick, not args.no_publish, extra):
        print(f"$ (cd benchmarks && {shlex.join(cmd)})", flush=True)
        if not args.dry_run:
            rc = subprocess.run(cmd, cwd=HERE).returncode
            if rc and cmd[1] != "run":  # asv run exits 2 when a benchmark failed: go on
                return rc
            status = status or rc
    if not args.no_publish:
        print(
            f"HTML: {HERE / '.asv' / 'html' / 'index.html'}"
            " (serve it: cd benchmarks && asv preview)"
        )
    if not args.no_report and not args.dry_run:
        from . import report

        report_args = ["--machine", args.machine, "--commit", commit]
        if args.bench:
            report_args += ["-b", args.bench]
        print(flush=True)
        report.main(report_args)
    return status


if __name__ == "__main__":
    sys.exit(main())
