"""nl.operators.LSM against a torch model of the authors' LSM_2D, one thread, float32.

Target (issue 16): a training step (forward + backward + Adam) of the Navier-Stokes
configuration (hidden 64, 10 input time steps, patch 4 x 4, batch 4, 64 x 64) <= 1.5x
torch's (torch 2.13 measured 3.3 s per step on the reference workstation). The torch side
is ``tests/_lsm_reference.py`` (checked equal to the authors' module), in training mode,
with numlab's relative L2 loss.

``TimeRatio.track_time_ratio`` gives numlab / torch from interleaved rounds in one process
(the helper of :mod:`benchmarks.bench_operators`); ``time_*`` give absolute times.

Accuracy (``Accuracy.track_*``, ``--accuracy`` on the command line): LSM against FNO on
nl.pde.darcy at a small scale, 32 x 32, 500 train / 100 test samples, batch 20, Adam 1e-3
with the cosine schedule, relative L2 loss on the decoded solution (inputs and outputs
normalised per channel), one thread, float32; LSM hidden 16, patch 4 x 4, 4 levels (the
32 x 32 grid halves to 4 x 4), FNO n_modes (12, 12), hidden 32, 4 layers. Both train for
``ACCURACY_EPOCHS`` epochs ("equal epochs"), then FNO again for as many epochs as fit in
LSM's training time ("equal wall time"). Paper (full scale, 85 x 85, 1000 samples, 500
epochs): LSM 0.0065, FNO 0.0108.

Measured (2-core shared VM, load 3-4, one thread, float32, seed 0; times noisy)::

    training step NS config      numlab 4.68 s, torch 3.91 s: 1.20x (forward 1.19x)
                                 numlab 2.41 s, torch 2.22 s: 1.09x (forward 1.13x), less load
    Darcy 32x32, 10 epochs       LSM 0.0216 (307,137 params, 152 s)
                                 FNO 0.0748 (701,281 params, 44 s)
    Darcy 32x32, equal time      FNO 0.0295 (34 epochs, 165 s)

LSM's error is below FNO's at equal epochs (3.5x) and at equal wall time (1.4x), as in
the paper.

By hand: ``python -m benchmarks.bench_operators_lsm [--accuracy]`` from the repository root
prints them.
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


# --------------------------------------------------------------------------- accuracy

ACCURACY_EPOCHS = 10
# name: (grid, n_train, n_test, batch_size, lr, channels in, channels out)
PROBLEMS = {
    "darcy": (32, 500, 100, 20, 1e-3, 1, 1),
    "navier_stokes": (32, 500, 100, 20, 1e-3, 10, 10),
}


def _generate(problem, n, seed):
    """(inputs, targets), float32, (samples, channels, 32, 32)."""
    import numlab as nl

    grid = PROBLEMS[problem][0]
    if problem == "darcy":
        a, u = nl.pde.darcy(n, grid, rng=seed, dtype=np.float32)
        return a[:, None], u[:, None]
    # Vorticity at t = 1..20, solved on 64 x 64, kept on 32 x 32: t = 1..10 -> t = 11..20.
    _, w = nl.pde.navier_stokes(n, grid, viscosity=1e-4, t_final=20.0, solver_resolution=64,
                                rng=seed, dtype=np.float32)
    return w[:, :10], w[:, 10:]


def problem_data(problem):
    """Train and test sets of ``problem`` (cached on disk)."""
    from .common import cached

    _, n_train, n_test, *_ = PROBLEMS[problem]
    return (cached("lsm-accuracy", _generate, problem, n_train, 0),
            cached("lsm-accuracy", _generate, problem, n_test, 1))


def _models(problem, seed):
    import numlab as nl

    c_in, c_out = PROBLEMS[problem][5:]
    return {
        "lsm": lambda: nl.operators.LSM(c_in, c_out, 16, patch_size=(4, 4), n_levels=4,
                                        rng=seed),
        "fno": lambda: nl.operators.FNO((12, 12), 32, c_in, c_out, n_layers=4, rng=seed),
    }


def train_and_test(problem, name, epochs, seed=0):
    """Train model ``name`` ("lsm" or "fno") on ``problem``; returns a dict of figures."""
    import numlab as nl

    from .bench_operators_accuracy import relative_l2

    single_thread()
    (x, y), (xt, yt) = problem_data(problem)
    _, _, _, batch_size, lr, _, _ = PROBLEMS[problem]
    axes = (0, 2, 3)
    xn = nl.operators.UnitGaussianNormalizer(axis=axes).fit(x)
    yn = nl.operators.UnitGaussianNormalizer(axis=axes).fit(y)
    model = _models(problem, seed)[name]()
    result = nl.operators.train(model, xn.encode(x), yn.encode(y), epochs=epochs,
                                batch_size=batch_size, lr=lr, loss="l2",
                                output_normalizer=yn, progress=False, rng=seed)
    pred = np.concatenate([yn.decode(model(xn.encode(xt[i:i + 50])))
                           for i in range(0, xt.shape[0], 50)])
    return {"problem": problem, "model": name, "n_params": model.n_params, "epochs": epochs,
            "train_seconds": float(result.total_time), "test_error": relative_l2(pred, yt)}


def accuracy_runs(problem, epochs=ACCURACY_EPOCHS, seed=0):
    """LSM and FNO at equal epochs, then FNO at LSM's wall time."""
    lsm = train_and_test(problem, "lsm", epochs, seed)
    fno = train_and_test(problem, "fno", epochs, seed)
    per_epoch = fno["train_seconds"] / epochs
    fno_time = train_and_test(problem, "fno",
                              max(epochs, int(lsm["train_seconds"] / per_epoch)), seed)
    return {"lsm": lsm, "fno": fno, "fno_equal_time": fno_time}


class Accuracy:
    """Test relative L2 of LSM and FNO (equal epochs; FNO at equal time), 32 x 32."""

    params = (list(PROBLEMS), ["lsm", "fno", "fno_equal_time"])
    param_names = ["problem", "run"]
    timeout = 7200
    number = 1
    repeat = 1

    def setup_cache(self):
        return {problem: accuracy_runs(problem) for problem in PROBLEMS}

    def track_test_error(self, results, problem, run):
        return results[problem][run]["test_error"]

    def track_train_seconds(self, results, problem, run):
        return results[problem][run]["train_seconds"]

    track_test_error.unit = "relative L2"
    track_train_seconds.unit = "seconds"


def main():
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accuracy", nargs="*", choices=list(PROBLEMS), default=None,
                        help="train and test LSM and FNO on these problems (default: all) "
                             "instead of timing")
    parser.add_argument("--epochs", type=int, default=ACCURACY_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    single_thread()
    if args.accuracy is not None:
        for problem in args.accuracy or PROBLEMS:
            for run, r in accuracy_runs(problem, args.epochs, args.seed).items():
                print(f"Accuracy[{problem}, {run}]: {r['model']} {r['n_params']:,} params, "
                      f"{r['epochs']} epochs, {r['train_seconds']:.0f} s, "
                      f"test rel. L2 {r['test_error']:.4f} (seed {args.seed})", flush=True)
        return
    for case in CASES:
        for what in ("train_step", "forward"):
            bench = TimeRatio()
            bench.setup(what, case)
            ratio = bench.track_time_ratio(what, case)
            ms = ", ".join(f"{m:.3f}" for m in bench.medians)
            print(f"TimeRatio.track_time_ratio[{what}, {case}] = {ratio:.3f} "
                  f"(numlab, torch medians {ms} s)", flush=True)


if __name__ == "__main__":
    main()
