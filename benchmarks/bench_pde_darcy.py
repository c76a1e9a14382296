"""nl.pde.darcy: time per sample, sparse direct solve against multigrid-preconditioned CG.

Targets (issue 13), one thread: 85x85 <= 20 ms per sample, 421x421 <= 1 s per sample.
The two exact solvers of the same discrete system are the ``solver`` parameter, so one
run shows both (``darcy(solver="auto")`` uses the faster). ``track_ms_per_sample`` is
the median of three rounds of a whole ``darcy`` call (random field, coefficient, solve)
divided by the number of samples; ``track_relative_residual`` checks the solve is exact.
On a GPU (CuPy) the ``multigrid`` solver runs on the device: ``DarcyGPU``.

By hand: ``python -m benchmarks.bench_pde_darcy`` from the repository root prints them.
"""

from __future__ import annotations

import time

import numpy as np

from .common import cupy_usable, single_thread, sync, warm_up

# Samples per timed call: enough to amortise the batched solver's per-operation overhead
# (its default batch at 85² holds 145 samples), few enough to keep a round short.
SAMPLES = {85: 32, 421: 2}


def _residual(a, u):
    """max over samples of ||A u - 1|| / ||1|| with the 5-point operator (matrix-free)."""
    s = a.shape[-1]
    h2 = (s - 1) ** 2
    c = a[:, 1:-1, 1:-1]
    uc = u[:, 1:-1, 1:-1]
    Au = np.zeros_like(uc)
    for nb_a, nb_u in (
        (a[:, :-2, 1:-1], u[:, :-2, 1:-1]),
        (a[:, 2:, 1:-1], u[:, 2:, 1:-1]),
        (a[:, 1:-1, :-2], u[:, 1:-1, :-2]),
        (a[:, 1:-1, 2:], u[:, 1:-1, 2:]),
    ):
        Au += h2 * (c + nb_a) / 2 * (uc - nb_u)
    return float(np.max(np.linalg.norm((Au - 1).reshape(len(a), -1), axis=1) / (s - 2)))


class DarcyPerSample:
    params = ([85, 421], ["direct", "multigrid"])
    param_names = ["resolution", "solver"]
    timeout = 600
    number = 1
    repeat = (1, 3, 60.0)

    def setup(self, resolution, solver):
        import numlab as nl

        single_thread()
        self.run = lambda: nl.pde.darcy(SAMPLES[resolution], resolution, rng=0, solver=solver)
        warm_up(nl.pde.darcy, 1, 9, rng=0, solver=solver)  # caches, imports

    def time_darcy(self, resolution, solver):
        self.run()

    def track_ms_per_sample(self, resolution, solver):
        rounds = []
        for _ in range(3):
            t = time.perf_counter()
            self.run()
            rounds.append(time.perf_counter() - t)
        return 1e3 * float(np.median(rounds)) / SAMPLES[resolution]

    def track_relative_residual(self, resolution, solver):
        return _residual(*self.run())

    track_ms_per_sample.unit = "ms"
    track_relative_residual.unit = "relative residual"


class DarcyGPU:
    """The batched multigrid-CG on CuPy (skipped without a GPU); per-sample milliseconds."""

    params = [85, 421]
    param_names = ["resolution"]
    timeout = 600

    def setup(self, resolution):
        if not cupy_usable():
            raise NotImplementedError("no usable CuPy GPU")
        import cupy

        import numlab as nl

        like = cupy.zeros(1)
        self.n = 256 if resolution == 85 else 16
        self.run = lambda: sync(nl.pde.darcy(self.n, resolution, rng=0, like=like))
        self.run()

    def track_ms_per_sample(self, resolution):
        rounds = []
        for _ in range(3):
            t = time.perf_counter()
            self.run()
            rounds.append(time.perf_counter() - t)
        return 1e3 * float(np.median(rounds)) / self.n

    track_ms_per_sample.unit = "ms"


if __name__ == "__main__":
    resolutions, solvers = DarcyPerSample.params
    for resolution in resolutions:
        for solver in solvers:
            bench = DarcyPerSample()
            bench.setup(resolution, solver)
            ms = bench.track_ms_per_sample(resolution, solver)
            res = bench.track_relative_residual(resolution, solver)
            print(f"darcy {resolution}x{resolution} {solver:9s}: {ms:8.1f} ms per sample "
                  f"(relative residual {res:.1e})", flush=True)
    if cupy_usable():
        for resolution in DarcyGPU.params:
            bench = DarcyGPU()
            bench.setup(resolution)
            print(f"darcy {resolution}x{resolution} cupy multigrid: "
                  f"{bench.track_ms_per_sample(resolution):8.2f} ms per sample", flush=True)
