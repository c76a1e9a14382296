"""First-call (JIT compile) cost of each family's main function, cold and warm Numba cache.

Run ``python benchmarks/first_call.py [FAMILY ...] [--repeat N]``. For each family it starts
fresh interpreters (nothing in ``sys.modules``) and times, after ``import numlab`` and the
family's import:

- ``cold``: the first call with an empty kernel cache (``NUMBA_CACHE_DIR`` set to a new
  directory): Numba compiles every kernel the call reaches;
- ``warm``: the first call in a new process whose cache the cold run filled (what a user
  sees from the second session on, or after ``numlab compile``);
- ``run``: the second call in the warm process (the run time proper);
- ``compile = cold - run``: the compile cost the issue's target bounds (<= 2 s).

The problems are small (a run of tens of milliseconds) so that the first-call overhead
dominates. Each figure is the median of ``--repeat`` processes (default 1).

Measured on the 2-core development box (Numba 0.68.1, Python 3.11), seconds, one process
each; "before" is main at ca22d72 (FastRP and the random projection on ``parallel=True``
kernels), "after" is the change of issue 17 (serial ``nogil`` kernels on a thread pool,
numlab/_cpu/_threads.py; no ``ndarray.sort``). The box is shared with other jobs, so the
figures move by 2-3x with its load; compare the columns of one table.

A. Quiet box (load ~2), 2026-12-03; families whose kernels did not change were measured
once and are the same code before and after:

================== ===================== ===================== ==============
family             before cold / warm    after cold / warm     run (2nd call)
================== ===================== ===================== ==============
ot                 9.59 / 1.00           (unchanged)           0.036
linalg             0.26 / 0.50           (unchanged)           0.094
random_projection  31.54 / 3.17          9.47 / 1.56           0.007-0.035
graph              32.76 / 3.00          5.15 / 0.80           0.007-0.202
cca                0.39 / 0.47           (unchanged)           0.016
sampling           13.83 / 1.58          (unchanged)           0.000
lstsq              9.93 / 1.26           (unchanged)           0.002
rmt                0.38 / 0.56           (unchanged)           0.028
operators          3.13 / 1.78           (unchanged)           0.023
pde                0.64 / 0.82           (unchanged)           0.064
================== ===================== ===================== ==============

B. Interleaved (``--before /tmp/numlab-before``: each family before, then after, under the
same load, here about 3x the quiet box's because a CI run and three test suites shared it):

================== ===================== =====================
family             before cold / warm    after cold / warm
================== ===================== =====================
graph              99.08 / 2.83          12.88 / 1.55
random_projection  27.13 / 5.92          19.23 / 4.25
ot                 27.71 / 2.06          23.85 / 2.90
sampling           27.68 / 4.41          29.00 / 3.27
lstsq              27.40 / 3.38          29.09 / 3.26
operators          5.40 / 2.47           4.59 / 2.31
linalg             0.66 / 0.62           0.62 / 0.55
cca                0.44 / 0.43           0.45 / 0.47
rmt                0.85 / 0.78           0.80 / 0.85
pde                1.07 / 0.96           1.08 / 1.64
================== ===================== =====================

The issue's target (cold <= 2 s plus the run time) is met by linalg, cca, rmt and pde
(no Numba kernels), not yet by ot (9.6 s quiet: serial kernels whose LLVM optimisation
of unrolled, vectorised loops dominates), sampling / lstsq (10-14 s: the chain-rule DPP
kernel and the BLAS wrappers it calls), random_projection (9.5 s), graph (5.2 s) and
operators (3.1 s). With a filled cache (``numlab compile``, once per install) every
family's first call is 0.5-1.6 s on the quiet box.

C. ot, sampling, lstsq after their kernel rework (issue 17, 2026-12-03), interleaved
(``--before`` = main at 4990c81, ``--repeat 3``, medians), box load ~2; wall seconds and, in
the same processes, CPU seconds (``time.process_time``, which moves less with the load):

================== ============================ ============================ =========
family             before cold / warm           after cold / warm            run (2nd)
                   wall; CPU                    wall; CPU
================== ============================ ============================ =========
ot                 9.10 / 1.05; 9.03 / 1.04     5.80 / 1.07; 5.75 / 1.07     0.010
sampling           7.18 / 1.04; 7.15 / 1.04     4.70 / 1.10; 4.69 / 1.08     0.001
lstsq              7.14 / 1.02; 7.12 / 1.01     5.46 / 1.12; 5.43 / 1.11     0.002
================== ============================ ============================ =========

What changed: the jitted kernels allocate nothing (their NumPy wrappers pass outputs and
scratch in: every ``np.empty`` / ``np.zeros`` / ``np.eye`` / ``astype`` / ``view`` form was
a separate compilation of 0.05-0.25 s), ``np.dot`` in the sampler became loops (its BLAS
wrappers compiled for 0.2-0.7 s per operand layout), the OT CG helpers are inlined and the
final plan scaling is NumPy. Per kernel (CPU s, cold, one process each): OT
``scaling_step`` 1.38 -> 0.66, ``marginals`` 1.25 -> 0.43, ``sparse_plan_csr`` 0.70 ->
0.34, ``csr_newton_cg`` 1.42 -> 1.17, ``kernel_matrix`` 0.63 -> 0.44, ``scale_plan``
0.15 -> none; sampler ``chain_rule_dpp`` 4.61 -> ~2.9, ``christoffel`` 0.46 -> ~0.35.
The floor under every family with Numba kernels is ~1.2 CPU s (``import numba`` 0.4-0.5 s
and the first compilation in a process, 0.75 s even for a trivial kernel); ``NUMBA_OPT=0``
changes nothing, so what remains is Numba's own typing and lowering, which grows with the
number of statements of a kernel, not LLVM's optimisation.

D. Every family on main at 2f238a5 (2026-12-03, one process each, ``OMP_NUM_THREADS=1``,
another single-threaded job on the second core), seconds:

================== ============ =====
family             cold / warm  run
================== ============ =====
ot                 4.61 / 0.69  0.006
linalg             0.16 / 0.14  0.007
random_projection  5.70 / 1.70  0.007
graph              6.60 / 1.00  0.008
cca                0.14 / 0.15  0.001
sampling           4.27 / 0.94  0.001
lstsq              4.36 / 0.93  0.002
rmt                0.33 / 0.31  0.017
operators          1.54 / 1.14  0.016
pde                0.30 / 0.39  0.033
================== ============ =====

operators now meets the target too (its two GELU kernels); ot, sampling, lstsq,
random_projection and graph do not (4.3-6.6 s). Where graph's and random_projection's
time goes (Numba's compile events, seconds, nested): ``_first_step`` 1.6,
``_columns_in_blocks_range`` 1.1, ``_second_step`` 1.1, ``_propagate_step`` 1.0;
``_project_csr_blocks_range`` 2.1, ``_project_dense`` 1.1; ``np.zeros`` / ``np.empty``
inside kernels 0.9 in each. Compiling the hash helpers as separate functions instead of
``inline="always"`` changed nothing beyond the noise (graph 5.9 s, random_projection
5.2 s). What is left is Numba's typing and lowering per kernel: a cold first call of
about 2 s for these families needs kernels compiled ahead of time (a build step with a
compiler), not a smaller JIT.

Reproduce::

    git worktree add /tmp/numlab-before ca22d72
    python benchmarks/first_call.py --before /tmp/numlab-before   # B
    python benchmarks/first_call.py graph random_projection       # A, one family at a time
    git worktree add /tmp/numlab-before-c 4990c81
    python benchmarks/first_call.py ot sampling lstsq --before /tmp/numlab-before-c --repeat 3  # C
    python benchmarks/first_call.py                                 # D
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

#: family -> (setup code, the call timed). The setup builds small inputs with NumPy only.
CASES = {
    "ot": (
        "import numpy as np\n"
        "rng = np.random.default_rng(0); x = rng.random((200, 2)); y = rng.random((200, 2))\n"
        "a = np.full(200, 1 / 200); M = nl.ot.dist(x, y); M /= M.max()\n",
        "nl.ot.sinkhorn(a, a, M, 1e-2)",
    ),
    "linalg": (
        "import numpy as np\nA = np.random.default_rng(0).random((500, 200))\n",
        "nl.linalg.randomized_svd(A, 10, rng=0)",
    ),
    "random_projection": (
        "import numpy as np, scipy.sparse as sp\n"
        "X = sp.random(200, 10_000, density=0.01, format='csr', random_state=0)\n"
        "D = np.random.default_rng(0).random((200, 1000))\n",
        "nl.random_projection.VerySparseRandomProjection(100, random_state=0).fit_transform(X);"
        " nl.random_projection.VerySparseRandomProjection(100, random_state=0).fit_transform(D)",
    ),
    "graph": (
        "import networkx as nx\nG = nx.barabasi_albert_graph(2000, 3, seed=0)\n",
        "nl.graph.fastrp(G, 32, rng=0)",
    ),
    "cca": (
        "import numpy as np\nrng = np.random.default_rng(0)\n"
        "X = rng.random((300, 20)); Y = X[:, :10] + rng.random((300, 10))\n",
        "nl.cca.cca(X, Y, 3)",
    ),
    "sampling": (
        "import numpy as np\nbasis = nl.lstsq.LegendreBasis(2, 5)\n",
        "nl.sampling.projection_dpp(basis, rng=0, method='chain_rule')",
    ),
    "lstsq": (
        "import numpy as np\nbasis = nl.lstsq.LegendreBasis(2, 5)\n"
        "f = lambda x: np.exp(x[:, 0]) * np.sin(x[:, 1])\n",
        "nl.lstsq.weighted_least_squares(f, basis, 2 * basis.m, rng=0)",
    ),
    "rmt": (
        "import numpy as np\nrng = np.random.default_rng(0); B = rng.standard_normal((300, 300));"
        " H = B + B.T\n",
        "nl.rmt.eigsh(lambda v: H @ v, 300, n_eig=2, rng=0)",
    ),
    "operators": (
        "import numpy as np\nrng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((8, 1, 64)).astype(np.float32); y = np.sin(x)\n"
        "model = nl.operators.FNO((8,), hidden_channels=16, in_channels=1, out_channels=1,"
        " rng=0)\n",
        "nl.operators.train(model, x, y, epochs=1, batch_size=4, progress=False)",
    ),
    "pde": (
        "",
        "nl.pde.burgers(2, 64, viscosity=0.05, rng=0)",
    ),
}

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numlab as nl
nl.{family}
print(nl.__file__, file=sys.stderr)
{setup}
t1 = time.perf_counter(); c1 = time.process_time()
{call}
t2 = time.perf_counter(); c2 = time.process_time()
{call}
t3 = time.perf_counter(); c3 = time.process_time()
print(json.dumps({{"import": t1 - t0, "first": t2 - t1, "second": t3 - t2,
                  "first_cpu": c2 - c1, "second_cpu": c3 - c2}}))
"""


def _child(family: str, cache: str, source: str | None = None) -> dict:
    setup, call = CASES[family]
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    # numlab from this checkout, or from ``source`` (e.g. a git worktree of an older commit);
    # run from the cache directory so that the current directory shadows neither
    env["PYTHONPATH"] = (source or _REPO) + os.pathsep + env.get("PYTHONPATH", "")
    code = _CHILD.format(family=family, setup=setup, call=call)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=cache)
    if out.returncode:
        raise RuntimeError(f"{family}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(family: str, repeat: int = 1, source: str | None = None) -> dict:
    """Median cold first call, warm first call and run time of ``family``'s case (seconds)."""
    keys = ("cold", "warm", "run", "cold_cpu", "warm_cpu", "run_cpu")
    values = {k: [] for k in keys}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="numlab-first-call-") as cache:
            c = _child(family, cache, source)
            w = _child(family, cache, source)
        for suffix in ("", "_cpu"):
            values["cold" + suffix].append(c["first" + suffix])
            values["warm" + suffix].append(w["first" + suffix])
            values["run" + suffix].append(min(c["second" + suffix], w["second" + suffix]))
    r = {k: statistics.median(v) for k, v in values.items()}
    r["compile"] = max(r["cold"] - r["run"], 0.0)
    r["compile_cpu"] = max(r["cold_cpu"] - r["run_cpu"], 0.0)
    return r


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("families", nargs="*", default=list(CASES), metavar="FAMILY")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", metavar="DIR",
                        help="also time the numlab in checkout DIR (interleaved, same load), "
                        "e.g. git worktree add /tmp/numlab-before ca22d72")
    args = parser.parse_args(argv)
    print(f"{'family':<18} {'':>6} {'cold s':>7} {'warm s':>7} {'run s':>7} {'compile s':>9}"
          f"   {'cpu: cold':>9} {'warm':>6} {'run':>6} {'compile':>7}")
    for family in args.families:
        for label, source in ([("before", args.before)] if args.before else []) + [("now", None)]:
            r = measure(family, args.repeat, source)
            print(f"{family:<18} {label:>6} {r['cold']:7.2f} {r['warm']:7.2f} {r['run']:7.3f} "
                  f"{r['compile']:9.2f}   {r['cold_cpu']:9.2f} {r['warm_cpu']:6.2f} "
                  f"{r['run_cpu']:6.3f} {r['compile_cpu']:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
