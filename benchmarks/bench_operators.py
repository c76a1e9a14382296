"""nl.operators against PyTorch / neuraloperator 2.0 (the issue's anchor), one thread, float32.

Targets (issue 14), as ratios to the anchor in the same run:

- GELU kernels on 2M elements (16 x 32 x 64 x 64): ``gelu`` <= 1.5x torch's ``F.gelu``
  forward; ``gelu_with_grad`` plus the backward product ``dy * dydx`` <= 1.5x torch's
  forward + backward;
- training step (forward + backward + Adam): 2-D FNO (hidden 32, n_modes (24, 24),
  batch 16, 64 x 64) <= 1.1x neuraloperator's; 1-D FNO (hidden 64, n_modes (32,),
  batch 20, 1024 points) <= 1.0x; inference forward <= 1.2x in both;
- peak memory of a training step <= torch's.

``TimeRatio.track_time_ratio`` gives numlab / torch from interleaved rounds in one process
(robust to the load of a shared machine); ``time_*`` give absolute times.
``PeakMemory.track_peak_mb`` measures each side in a fresh subprocess (Linux): after a
warm-up step on one sample (optimiser state, JIT compilation, library set-up, little
memory) the resident set's high-water mark is reset (``/proc/self/clear_refs``), and the
growth of ``VmHWM`` over the resident set at that point during two full steps is the
step's peak (a warm-up at full batch would hide torch's step in the memory its
allocator keeps, while NumPy's large arrays go back to the system); tracemalloc
would not see torch's allocations (its C++ allocator bypasses Python's), so the RSS
high-water mark is the one measure applied to both sides (numlab's tracemalloc peak is
printed beside it).

By hand: ``python -m benchmarks.bench_operators`` from the repository root prints them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from .common import single_thread

GELU_SHAPE = (16, 32, 64, 64)
CASES = {
    # name: (n_modes, hidden, batch, spatial)
    "2d": ((24, 24), 32, 16, (64, 64)),
    "1d": ((32,), 64, 20, (1024,)),
}


def _torch_single_thread():
    import torch

    torch.set_num_threads(1)
    return torch


def _data(case, seed=0):
    _, _, batch, spatial = CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 1, *spatial)).astype(np.float32)
    y = rng.standard_normal((batch, 1, *spatial)).astype(np.float32)
    return x, y


# --------------------------------------------------------------------------- GELU kernels


def _gelu_fns(impl, op):
    """A no-argument callable running ``op`` with ``impl`` on the 2M-element input."""
    x = np.random.default_rng(0).standard_normal(GELU_SHAPE).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal(GELU_SHAPE).astype(np.float32)
    if impl == "numlab":
        from numlab._dispatch import kernel

        import numlab.operators  # noqa: F401  (registers the kernels)

        gelu = kernel("operators.gelu", np)
        gelu_with_grad = kernel("operators.gelu_with_grad", np)
        if op == "forward":
            return lambda: gelu(x)

        def forward_backward():
            y, dydx = gelu_with_grad(x)
            return y, np.multiply(dy, dydx, out=dydx)

        return forward_backward
    torch = _torch_single_thread()
    xt = torch.from_numpy(x)
    dyt = torch.from_numpy(dy)
    if op == "forward":
        return lambda: torch.nn.functional.gelu(xt)
    xr = xt.clone().requires_grad_(True)

    def torch_forward_backward():
        y = torch.nn.functional.gelu(xr)
        y.backward(dyt)
        xr.grad = None
        return y

    return torch_forward_backward


class Gelu:
    """GELU on 16 x 32 x 64 x 64 float32: forward, and forward + backward (value,
    derivative and the product with ``dy``)."""

    params = (["numlab", "torch"], ["forward", "forward_backward"])
    param_names = ["impl", "op"]
    timeout = 300

    def setup(self, impl, op):
        single_thread()
        self.fn = _gelu_fns(impl, op)
        self.fn()  # JIT warm-up

    def time_gelu(self, impl, op):
        self.fn()


# --------------------------------------------------------------------------- FNO


class _NumlabStep:
    """numlab's FNO: ``step()`` = loss_and_grad + Adam; ``forward()`` = inference."""

    def __init__(self, case):
        import numlab as nl
        from numlab.operators._train import Adam

        n_modes, hidden, _, _ = CASES[case]
        self.model = nl.operators.FNO(n_modes, hidden, 1, 1, rng=0)
        self.opt = Adam(self.model.params, lr=1e-3)
        self.x, self.y = _data(case)

    def step(self, batch=None):
        loss, grads = self.model.loss_and_grad(self.x[:batch], self.y[:batch])
        self.opt.step(grads)
        return loss

    def forward(self):
        return self.model(self.x)


class _TorchStep:
    """neuraloperator's FNO: ``step()`` = relative L2 loss, backward, Adam step."""

    def __init__(self, case):
        torch = _torch_single_thread()
        from neuralop.models import FNO

        n_modes, hidden, _, _ = CASES[case]
        torch.manual_seed(0)
        self.torch = torch
        self.model = FNO(n_modes=n_modes, in_channels=1, out_channels=1, hidden_channels=hidden)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        x, y = _data(case)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def step(self, batch=None):
        x, y = self.x[:batch], self.y[:batch]
        self.opt.zero_grad(set_to_none=True)
        out = self.model(x)
        dims = tuple(range(1, out.ndim))
        diff = (out - y).square().sum(dim=dims).sqrt()
        loss = (diff / y.square().sum(dim=dims).sqrt()).mean()  # relative L2, batch mean
        loss.backward()
        self.opt.step()
        return loss

    def forward(self):
        with self.torch.no_grad():
            return self.model(self.x)


IMPLS = {"numlab": _NumlabStep, "neuralop": _TorchStep}


def numlab_fno_available() -> bool:
    try:
        import numlab as nl

        return hasattr(nl.operators, "FNO")
    except ImportError:
        return False


class FNOStep:
    """Training step (forward + backward + Adam) and inference forward, float32, one thread."""

    params = (list(IMPLS), list(CASES))
    param_names = ["impl", "case"]
    timeout = 900
    number = 1
    repeat = (3, 7, 120.0)

    def setup(self, impl, case):
        single_thread()
        self.run = IMPLS[impl](case)
        self.run.step()  # JIT and allocator warm-up
        self.run.forward()

    def time_train_step(self, impl, case):
        self.run.step()

    def time_forward(self, impl, case):
        self.run.forward()


class TimeRatio:
    """numlab time / torch time: medians of interleaved rounds in one process."""

    params = (["gelu_forward", "gelu_forward_backward", "train_step", "forward"], list(CASES))
    param_names = ["what", "case"]
    timeout = 1800
    rounds = 7

    def setup(self, what, case):
        single_thread()
        if what.startswith("gelu"):
            if case != "2d":
                raise NotImplementedError  # asv: skip (the GELU benchmark has one shape)
            op = what.removeprefix("gelu_")
            self.pair = (_gelu_fns("numlab", op), _gelu_fns("torch", op))
            self.rounds = 21
        else:
            runs = (_NumlabStep(case), _TorchStep(case))
            name = "step" if what == "train_step" else "forward"
            self.pair = tuple(getattr(r, name) for r in runs)
        for fn in self.pair:
            fn()

    def track_time_ratio(self, what, case):
        times = ([], [])
        for _ in range(self.rounds):
            for fn, bucket in zip(self.pair, times, strict=True):
                t = time.perf_counter()
                fn()
                bucket.append(time.perf_counter() - t)
        self.medians = tuple(float(np.median(t)) for t in times)
        return self.medians[0] / self.medians[1]

    track_time_ratio.unit = "x torch"


# --------------------------------------------------------------------------- peak memory

_MEMORY_SCRIPT = r"""
import json, os, sys, tracemalloc
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"
from benchmarks.bench_operators import IMPLS
from benchmarks.common import single_thread

def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

single_thread()
impl, case = sys.argv[1], sys.argv[2]
run = IMPLS[impl](case)
run.step(batch=1)  # warm-up on one sample: optimiser state, JIT compilation, FFT plans
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM, the resident set's high-water mark, to the current RSS
base = status_mb("VmRSS")
tracemalloc.start()
run.step()
run.step()
_, traced = tracemalloc.get_traced_memory()
print(json.dumps({"rss_peak_mb": status_mb("VmHWM") - base, "rss_base_mb": base,
                  "tracemalloc_peak_mb": traced / 2**20}))
"""


def peak_memory(impl, case):
    """Peak memory of training steps of ``impl`` measured in a fresh subprocess (dict, MB)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, impl, case],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


class PeakMemory:
    """Growth of the RSS high-water mark during training steps, fresh process per side (MB)."""

    params = (list(IMPLS), list(CASES))
    param_names = ["impl", "case"]
    timeout = 900

    def track_peak_mb(self, impl, case):
        return peak_memory(impl, case)["rss_peak_mb"]

    track_peak_mb.unit = "MB"


if __name__ == "__main__":
    single_thread()
    for impl, op in ((i, o) for o in Gelu.params[1] for i in Gelu.params[0]):
        bench = Gelu()
        bench.setup(impl, op)
        times = []
        for _ in range(21):
            t = time.perf_counter()
            bench.time_gelu(impl, op)
            times.append(time.perf_counter() - t)
        print(f"Gelu.time_gelu[{impl}, {op}] = {1e3 * np.median(times):.2f} ms", flush=True)
    for what in ("gelu_forward", "gelu_forward_backward"):
        bench = TimeRatio()
        bench.setup(what, "2d")
        ratio = bench.track_time_ratio(what, "2d")
        ms = ", ".join(f"{1e3 * m:.2f}" for m in bench.medians)
        print(f"TimeRatio.track_time_ratio[{what}] = {ratio:.3f} (medians {ms} ms)", flush=True)
    if not numlab_fno_available():
        print("nl.operators.FNO is not there yet: no FNO benchmarks")
        sys.exit()
    for case in CASES:
        for what in ("train_step", "forward"):
            bench = TimeRatio()
            bench.setup(what, case)
            ratio = bench.track_time_ratio(what, case)
            ms = ", ".join(f"{1e3 * m:.1f}" for m in bench.medians)
            print(f"TimeRatio.track_time_ratio[{what}, {case}] = {ratio:.3f} "
                  f"(numlab, torch medians {ms} ms)", flush=True)
        for impl in IMPLS:
            mem = peak_memory(impl, case)
            print(f"PeakMemory[{impl}, {case}] = {mem['rss_peak_mb']:.1f} MB RSS high-water growth "
                  f"(tracemalloc {mem['tracemalloc_peak_mb']:.1f} MB)", flush=True)
