"""nl.operators.LSM against a torch model of the authors' LSM_2D, one thread, float32.

Target (issue 16): a training step (forward + backward + Adam) of the Navier-Stokes
configuration (hidden 64, 10 input time steps, patch 4 x 4, batch 4, 64 x 64) <= 1.5x
torch's (torch 2.13 measured 3.3 s per step on the reference workstation). The torch side
is ``tests/_lsm_reference.py`` (checked equal to the authors' module), in training mode,
with numlab's relative L2 loss.

``TimeRatio.track_time_ratio`` gives numlab / torch from interleaved rounds in one process
(the helper of :mod:`benchmarks.bench_operators`); ``time_*`` give absolute times.

Accuracy (``Accuracy.track_*``, ``--accuracy`` on the command line): LSM against FNO at a
small scale, 32 x 32 grids, 500 train / 100 test samples, batch 20, Adam 1e-3 with the
cosine schedule, relative L2 loss on the decoded solution (inputs and outputs normalised
per channel), one thread, float32, on two nl.pde problems:

- Darcy flow ``a -> u``; LSM width 16;
- Navier-Stokes vorticity, viscosity 1e-4, solved on 64 x 64 and kept on 32 x 32, the
  frames at t = 1..10 -> t = 11..20 (10 channels in and out; "no change" from the last
  input frame has a relative error of ~0.76); LSM width 32 (the authors' is 64).

LSM: patch 4 x 4, 4 levels (the 32 x 32 grid halves to 4 x 4); FNO: n_modes (12, 12),
hidden 32, 4 layers. Both train for the problem's epochs ("equal epochs": 10 for Darcy,
30 for Navier-Stokes), then FNO again for as many epochs as fit in LSM's training time
("equal wall time"). Paper (full scale): Darcy LSM 0.0065, FNO 0.0108; Navier-Stokes
(viscosity 1e-5) LSM 0.1535, FNO 0.1556.

Measured (2-core shared VM, load 3-6, one thread, float32; times noisy)::

    training step NS config      numlab 4.68 s, torch 3.91 s: 1.20x (forward 1.19x)
                                 numlab 2.41 s, torch 2.22 s: 1.09x (forward 1.13x), less load
    Darcy, 10 epochs, seed 0     LSM 0.0216 (307,137 params, 152 s)
                                 FNO 0.0748 (701,281 params, 44 s)
    Darcy, equal time            FNO 0.0295 (34 epochs, 165 s)
    NS, 30 epochs, seeds 0, 1    LSM 0.1954, 0.1953 (1,211,946 params, 706 s, 1066 s)
                                 FNO 0.2030, 0.2011 (702,442 params, 118 s, 164 s)
    NS, equal time, seed 0       FNO 0.1276 (179 epochs, 759 s)
    NS, LSM width 16, seed 0     10 epochs: LSM 0.2948 (308,442 params) vs FNO 0.3023;
                                 30 epochs: LSM 0.2541 vs FNO 0.2030

At equal epochs LSM's error is below FNO's on both problems, as in the paper: 3.5x lower
on Darcy, 3-4% lower on Navier-Stokes (as close as the paper's 1%, and only with the
wider LSM: width 16 falls behind by 30 epochs). At equal wall time LSM keeps its lead on
Darcy (1.4x) but not on Navier-Stokes, where the FNO's 6x cheaper epochs win.

By hand, from the repository root: ``python -m benchmarks.bench_operators_lsm`` (timing),
``python -m benchmarks.bench_operators_lsm --accuracy [darcy] [navier_stokes] [--seed S]``
(about 7 minutes for Darcy, 40 for Navier-Stokes on one quiet core).
"""

from __future__ import annotations

import numpy as np

from .bench_operators import TimeRatio as _TimeRatio
from .bench_operators import _torch_single_thread
from .common import single_thread, tests_module

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
        LSM2d = tests_module("_lsm_reference").LSM2d

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

# Per problem: channels in and out, the LSM's width and the epochs of the "equal epochs"
# runs. Both: 32 x 32 grids, 500 training and 100 test samples, batch 20, Adam 1e-3.
PROBLEMS = {
    "darcy": dict(channels=(1, 1), lsm_width=16, epochs=10),
    "navier_stokes": dict(channels=(10, 10), lsm_width=32, epochs=30),
}
GRID, N_TRAIN, N_TEST, BATCH_SIZE, LR = 32, 500, 100, 20, 1e-3


def _generate(problem, n, seed):
    """(inputs, targets), float32, (samples, channels, 32, 32)."""
    import numlab as nl

    if problem == "darcy":
        a, u = nl.pde.darcy(n, GRID, rng=seed, dtype=np.float32)
        return a[:, None], u[:, None]
    # Vorticity at t = 1..20, solved on 64 x 64, kept on 32 x 32: t = 1..10 -> t = 11..20.
    _, w = nl.pde.navier_stokes(n, GRID, viscosity=1e-4, t_final=20.0, solver_resolution=64,
                                rng=seed, dtype=np.float32)
    return w[:, :10], w[:, 10:]


def problem_data(problem):
    """Train and test sets of ``problem`` (cached on disk)."""
    from .common import cached

    return (cached("lsm-accuracy", _generate, problem, N_TRAIN, 0),
            cached("lsm-accuracy", _generate, problem, N_TEST, 1))


def _models(problem, seed):
    import numlab as nl

    c_in, c_out = PROBLEMS[problem]["channels"]
    width = PROBLEMS[problem]["lsm_width"]
    return {
        "lsm": lambda: nl.operators.LSM(c_in, c_out, width, patch_size=(4, 4), n_levels=4,
                                        rng=seed),
        "fno": lambda: nl.operators.FNO((12, 12), 32, c_in, c_out, n_layers=4, rng=seed),
    }


def train_and_test(problem, name, epochs, seed=0):
    """Train model ``name`` ("lsm" or "fno") on ``problem``; returns a dict of figures."""
    import numlab as nl

    from .bench_operators_accuracy import relative_l2

    single_thread()
    (x, y), (xt, yt) = problem_data(problem)
    axes = (0, 2, 3)
    xn = nl.operators.UnitGaussianNormalizer(axis=axes).fit(x)
    yn = nl.operators.UnitGaussianNormalizer(axis=axes).fit(y)
    model = _models(problem, seed)[name]()
    result = nl.operators.train(model, xn.encode(x), yn.encode(y), epochs=epochs,
                                batch_size=BATCH_SIZE, lr=LR, loss="l2",
                                output_normalizer=yn, progress=False, rng=seed)
    pred = np.concatenate([yn.decode(model(xn.encode(xt[i:i + 50])))
                           for i in range(0, xt.shape[0], 50)])
    return {"problem": problem, "model": name, "n_params": model.n_params, "epochs": epochs,
            "train_seconds": float(result.total_time), "test_error": relative_l2(pred, yt)}


def accuracy_runs(problem, epochs=None, seed=0):
    """LSM and FNO at equal epochs (default: the problem's), then FNO at LSM's wall time."""
    epochs = PROBLEMS[problem]["epochs"] if epochs is None else epochs
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
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of the equal-epochs runs (default: the problem's)")
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
