"""nl.operators.LSM against a torch model of the authors' LSM_2D, one thread, float32.

Target (issue 16): a training step (forward + backward + Adam) of the Navier-Stokes
configuration (hidden 64, 10 input time steps, patch 4 x 4, batch 4, 64 x 64) <= 1.5x
torch's (torch 2.13 measured 3.3 s per step on the reference workstation). The torch side
is ``tests/_lsm_reference.py`` (checked equal to the authors' module), in training mode,
with numlab's relative L2 loss.

``TimeRatio.track_time_ratio`` gives numlab / torch from interleaved rounds in one process
(the helper of :mod:`benchmarks.bench_operators`); ``time_*`` give absolute times.

By hand: ``python -m benchmarks.bench_operators_lsm`` from the repository root prints them.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .bench_operators import TimeRatio as _TimeRatio
from .bench_operators import _torch_single_thread
from .common import single_thread

# name: (in_channels, hidden, patch, batch, grid)
CASES = {"ns": (10, 64, (4, 4), 4, (64, 64))}


def _data(case, seed=0):
    c_in, _, _, batch, grid = CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c_in, *grid)).astype(np.float32)
    y = rng.standard_normal((batch, 1, *grid)).astype(np.float32)
    return x, y


class _NumlabStep:
    """numlab's LSM: ``step()`` = loss_and_grad (training-mode batch norm) + Adam."""

    def __init__(self, case):
        import numlab as nl
        from numlab.operators._train import Adam

        c_in, hidden, patch, _, _ = CASES[case]
        self.model = nl.operators.LSM(c_in, 1, hidden, patch_size=patch, rng=0)
        self.opt = Adam(self.model.params, lr=1e-3)
        self.x, self.y = _data(case)

    def step(self):
        loss, grads = self.model.loss_and_grad(self.x, self.y)
        self.opt.step(grads)
        return loss

    def forward(self):
        return self.model(self.x)


class _TorchStep:
    """The torch reference (channels-last input, as the authors'): loss, backward, Adam."""

    def __init__(self, case):
        torch = _torch_single_thread()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        sys.path.insert(0, os.path.join(root, "tests"))
        from _lsm_reference import LSM2d

        c_in, hidden, patch, _, _ = CASES[case]
        torch.manual_seed(0)
        self.torch = torch
        self.model = LSM2d(c_in, 1, hidden, patch_size=patch)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        x, y = _data(case)
        self.x = torch.from_numpy(np.moveaxis(x, 1, -1).copy())
        self.y = torch.from_numpy(np.moveaxis(y, 1, -1).copy())

    def step(self):
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        out = self.model(self.x)
        b = out.shape[0]
        diff = (out - self.y).reshape(b, -1).norm(dim=1)
        loss = (diff / self.y.reshape(b, -1).norm(dim=1)).mean()
        loss.backward()
        self.opt.step()
        return loss

    def forward(self):
        self.model.eval()
        with self.torch.no_grad():
            return self.model(self.x)


IMPLS = {"numlab": _NumlabStep, "torch": _TorchStep}


class LSMStep:
    """Training step and inference forward, float32, one thread."""

    params = (list(IMPLS), list(CASES))
    param_names = ["impl", "case"]
    timeout = 900
    number = 1
    repeat = (3, 7, 120.0)

    def setup(self, impl, case):
        single_thread()
        self.run = IMPLS[impl](case)
        self.run.step()  # allocator and JIT warm-up
        self.run.forward()

    def time_train_step(self, impl, case):
        self.run.step()

    def time_forward(self, impl, case):
        self.run.forward()


class TimeRatio(_TimeRatio):
    """numlab time / torch time: medians of interleaved rounds in one process."""

    params = (["train_step", "forward"], list(CASES))
    param_names = ["what", "case"]
    timeout = 1800
    rounds = 5

    def setup(self, what, case):
        single_thread()
        runs = (_NumlabStep(case), _TorchStep(case))
        name = "step" if what == "train_step" else "forward"
        self.pair = tuple(getattr(r, name) for r in runs)
        for fn in self.pair:
            fn()


if __name__ == "__main__":
    single_thread()
    for case in CASES:
        for what in ("train_step", "forward"):
            bench = TimeRatio()
            bench.setup(what, case)
            ratio = bench.track_time_ratio(what, case)
            ms = ", ".join(f"{m:.3f}" for m in bench.medians)
            print(f"TimeRatio.track_time_ratio[{what}, {case}] = {ratio:.3f} "
                  f"(numlab, torch medians {ms} s)", flush=True)
