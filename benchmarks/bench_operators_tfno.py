"""Tensorized FNO (TFNO) against numlab's dense FNO and neuraloperator's TFNO, one thread, float32.

Targets (issue 15), measured in the same run:

- compression: rank 0.1 keeps 0.09-0.115 of the dense spectral parameters for every
  factorization at hidden 32, n_modes (24, 24) (``Compression.track_fraction``;
  neuraloperator's Tucker TFNO: 261,465 parameters in all against 2,569,057 dense);
- training step (forward + backward + Adam) of TFNO-Tucker rank 0.1 with the faster
  implementation for the shape (numlab's automatic choice) <= 1.0x numlab's dense FNO step
  and <= 1.1x neuraloperator's TFNO step (2-D, hidden 32, n_modes (24, 24), batch 16,
  64 x 64): ``StepRatio.track_ratio``, from interleaved rounds in one process;
- ``Implementation.track_factorized_over_reconstructed``: the two implementations of each
  factorization timed against each other (what the automatic choice should follow).

Measured (2-core shared VM, load 4-5, one thread, float32; interleaved medians, noisy):

- fractions kept at rank 0.1: Tucker 0.0972 (ranks (18, 18, 13, 7)), CP 0.1009 (R = 316),
  TT 0.0996 (ranks (1, 28, 24, 16, 1)); totals 261,465 / 271,009 / 267,745 parameters,
  equal to neuraloperator's;
- one spectral layer, forward + backward (batch 16, 64 x 64; min of 7): dense 23-38 ms;
  Tucker factorized 33 ms / reconstructed 66 ms; CP 148 / 190 ms; TT 61 / 49 ms: the
  multiply-add rule picks factorized, factorized, reconstructed, the faster each time;
- whole training steps, factorized / reconstructed (quieter machine, load ~2): Tucker
  0.392 / 0.423 s, CP 0.654 / 0.771 s, TT 0.492 / 0.504 s (the rule picks reconstructed
  for TT: a 2 % miss, within the noise);
- training step: TFNO-Tucker (factorized) 0.340 s, dense numlab FNO 0.346 s (0.98x),
  neuraloperator TFNO 0.543 s (0.63x) at load ~2; under load 4-5 (order not rotated)
  0.596 / 0.585 / 0.842 s (1.02x, 0.71x). Adam on 10x fewer parameters saves ~40 ms a
  step; the factorized product costs about as much more (B (C r_0 + r_0 r_1 + r_1 C)
  against B C^2 multiply-adds per mode): TFNO-Tucker is at parity with the dense step,
  not clearly below it.
- after the modes-first Tucker spatial operator (``_factorized._spatial_tucker``: no
  moveaxis copies), ``--step`` (numlab only, 3 sets of 15 interleaved rounds, wall and CPU
  (``time.process_time``) medians, load 5-8): TFNO / dense wall 0.932, 1.007, 1.003; CPU
  0.999, 0.973, 1.011 (CPU s ~0.44-0.48 each). Still parity, not reliably <= 1.0. Where
  the time goes (CPU time, same process): Adam 3.4 ms (TFNO, 56 arrays, 137k reals)
  against 18.7 ms (dense, 40 arrays, 1.29M reals), -15 ms a step; one spectral layer
  forward + backward 32.8 ms (Tucker factorized) against 30.7 ms (dense), +2.2 ms x 4
  layers; the factorized contraction alone 5.2 ms against 3.6 ms for the dense per-mode
  products: at ranks (18, 18) the factorized product has 1.44x the dense multiply-adds
  (16 (32*18 + 18*18 + 18*32) against 16*32*32 per mode), and any other association
  (``(P H_m) Q``, or rebuilding ``W``) costs more. The rest of the step (transforms,
  MLPs, GELU) is shared: -15 + 9 ms of ~450 ms is ~0.99 at this shape, inside the noise.
  Again 2026-12-03 with no other job running (``--step``): wall 0.986, 0.972, 1.018; CPU
  0.991, 0.941, 0.989 (CPU s ~0.60-0.64 each): parity, the target (<= 1.0x) not reliably met.
- Darcy (``--darcy``; nl.pde 16x16, 1000 train / 100 test, zero-shot 32x32, seed 0): dense
  FNO (16, 16) hidden 32, 1,192,801 parameters, 28 epochs in 101 s: test 0.0117, zero-shot
  0.0945; TFNO-Tucker rank 0.42, 520,761 parameters (2.29x fewer), 22 epochs in 85 s:
  test 0.0105 (0.89x dense), zero-shot 0.0913. Earlier runs with a less fair epoch split
  (one trial epoch each, load changing): dense 0.0093 (42 epochs, 158 s) against TFNO
  0.0069 (37 epochs, 193 s); dense 0.0178 (15, 101 s) against TFNO 0.0101 (24, 157 s).
  A TFNO epoch costs ~1.25x a dense one here: at rank 0.42 the Tucker ranks
  (26, 26, 13, 7) are close to the full sizes, so the factorized product does more
  multiply-adds than the dense one (neuraloperator's TFNO is slower still).

By hand: ``python -m benchmarks.bench_operators_tfno`` from the repository root prints them all;
``python -m benchmarks.bench_operators_tfno --step`` the TFNO / dense step ratios alone (wall and
CPU, ~3 minutes);
``python -m benchmarks.bench_operators_tfno --darcy`` runs the paper's claim at this
machine's scale (~5 min): nl.pde Darcy 16x16 (1000 train) and zero-shot 32x32, dense FNO
against TFNO-Tucker rank 0.42 at equal wall time (~150 s each, one thread).
"""

from __future__ import annotations

import time

import numpy as np

from .bench_operators import CASES, _data, _torch_single_thread
from .common import single_thread

CASE = "2d"  # hidden 32, n_modes (24, 24), batch 16, 64 x 64
FACTORIZATIONS = ("tucker", "cp", "tt")
# neuraloperator 2.0's total parameter counts at this shape, rank 0.1 (measured here).
NEURALOP_TOTAL = {"dense": 2_569_057, "tucker": 261_465, "cp": 271_009, "tt": 267_745}


class _NumlabStep:
    """numlab FNO / TFNO: ``step()`` = loss_and_grad + Adam."""

    def __init__(self, factorization=None, rank=0.1, implementation=None):
        import numlab as nl
        from numlab.operators._train import Adam

        n_modes, hidden, _, _ = CASES[CASE]
        self.model = nl.operators.FNO(n_modes, hidden, 1, 1, factorization=factorization,
                                      rank=rank, implementation=implementation, rng=0)
        self.opt = Adam(self.model.params, lr=1e-3)
        self.x, self.y = _data(CASE)

    def step(self):
        loss, grads = self.model.loss_and_grad(self.x, self.y)
        self.opt.step(grads)
        return loss


class _TorchStep:
    """neuraloperator's TFNO (its default implementation, "factorized"): loss, backward, Adam."""

    def __init__(self, factorization="tucker", rank=0.1, implementation="factorized"):
        torch = _torch_single_thread()
        from neuralop.models import FNO

        n_modes, hidden, _, _ = CASES[CASE]
        torch.manual_seed(0)
        self.model = FNO(n_modes=n_modes, in_channels=1, out_channels=1, hidden_channels=hidden,
                         factorization=factorization, rank=rank, implementation=implementation)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        x, y = _data(CASE)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        out = self.model(self.x)
        dims = tuple(range(1, out.ndim))
        diff = (out - self.y).square().sum(dim=dims).sqrt()
        loss = (diff / self.y.square().sum(dim=dims).sqrt()).mean()
        loss.backward()
        self.opt.step()
        return loss


def interleaved_medians(fns, rounds=7, clock=time.perf_counter):
    """Median seconds of each callable, run in turn ``rounds`` times (after one warm-up each).

    The order rotates every round, so that no callable always follows the same one (a run
    after torch's step, say, may find the caches cold). ``clock`` is wall time by default;
    ``time.process_time`` (this process's CPU time: one thread, so the same quantity
    without the time the process waits for the CPU) is far less noisy on a shared machine.
    """
    return [float(np.median(t)) for t in interleaved_times(fns, rounds, clock)]


def interleaved_times(fns, rounds=7, clock=time.perf_counter):
    """The seconds of every round of each callable (see :func:`interleaved_medians`)."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    n = len(fns)
    for r in range(rounds):
        for i in range(n):
            j = (i + r) % n
            t = clock()
            fns[j]()
            times[j].append(clock() - t)
    return times


class Compression:
    """Fraction of the dense spectral parameters kept at rank 0.1 (target 0.09-0.115)."""

    params = (list(FACTORIZATIONS),)
    param_names = ["factorization"]

    def track_fraction(self, factorization):
        import numlab as nl

        n_modes, hidden, _, _ = CASES[CASE]
        model = nl.operators.FNO(n_modes, hidden, 1, 1, factorization=factorization, rank=0.1,
                                 rng=0)
        return 1.0 / model.compression

    track_fraction.unit = "of dense"

    def track_total_params(self, factorization):
        import numlab as nl

        n_modes, hidden, _, _ = CASES[CASE]
        return nl.operators.FNO(n_modes, hidden, 1, 1, factorization=factorization, rank=0.1,
                                rng=0).n_params

    track_total_params.unit = "parameters"


class StepRatio:
    """TFNO-Tucker (automatic implementation) step / dense numlab step and / neuraloperator
    TFNO step, interleaved medians."""

    params = (["dense_numlab", "neuralop_tfno"],)
    param_names = ["against"]
    timeout = 1800

    def setup_cache(self):
        single_thread()
        tfno, dense, torch_tfno = _NumlabStep("tucker"), _NumlabStep(None), _TorchStep()
        medians = interleaved_medians([tfno.step, dense.step, torch_tfno.step], rounds=11)
        return {"tfno": medians[0], "dense_numlab": medians[1], "neuralop_tfno": medians[2],
                "implementation": tfno.model.implementation_for(CASES[CASE][2])}


def step_ratio_cpu(rounds=15, repeats=1):
    """TFNO-Tucker / dense numlab training step: medians of interleaved rounds, wall and
    CPU time (``repeats`` independent sets of ``rounds``). numlab only (torch's CPU time
    is not comparable: its own thread pool). Returns a list of dicts."""
    single_thread()
    tfno, dense = _NumlabStep("tucker"), _NumlabStep(None)
    out = []
    for _ in range(repeats):
        wall = interleaved_medians([tfno.step, dense.step], rounds=rounds)
        cpu = interleaved_medians([tfno.step, dense.step], rounds=rounds,
                                  clock=time.process_time)
        out.append({"wall": wall[0] / wall[1], "cpu": cpu[0] / cpu[1],
                    "tfno_cpu_s": cpu[0], "dense_cpu_s": cpu[1]})
    return out

    def track_ratio(self, medians, against):
        return medians["tfno"] / medians[against]

    track_ratio.unit = "x"


class Implementation:
    """Step time, implementation="factorized" over "reconstructed", per factorization."""

    params = (list(FACTORIZATIONS),)
    param_names = ["factorization"]
    timeout = 1800

    def setup(self, factorization):
        single_thread()
        self.runs = [_NumlabStep(factorization, implementation=i)
                     for i in ("factorized", "reconstructed")]

    def track_factorized_over_reconstructed(self, factorization):
        fact, recon = interleaved_medians([r.step for r in self.runs], rounds=5)
        return fact / recon

    track_factorized_over_reconstructed.unit = "x"


# --------------------------------------------------------------------------- Darcy (paper's claim)


def _darcy_setup():
    from .bench_operators_accuracy import DARCY, _normalizers, problem_data

    (x, y), test, fine = problem_data(DARCY)
    xn, yn = _normalizers(DARCY, x, y)
    return (xn.encode(x), yn.encode(y)), test, fine, xn, yn


def _darcy_model(factorization, rank, seed):
    import numlab as nl

    from .bench_operators_accuracy import DARCY

    return nl.operators.FNO(DARCY.n_modes, DARCY.hidden, 1, 1, n_layers=4,
                            factorization=factorization, rank=rank, rng=seed)


def darcy_epoch_seconds(configs, seed=0, rounds=3):
    """Median seconds of one training epoch of each ``(factorization, rank)``, interleaved
    (one warm-up epoch each first: JIT compilation, first-touch allocations)."""
    import dataclasses

    from .bench_operators_accuracy import DARCY, _train_numlab

    single_thread()
    (x, y), _, _, _, _ = _darcy_setup()
    one = dataclasses.replace(DARCY, epochs=1)
    fns = [lambda f=f, r=r: _train_numlab(_darcy_model(f, r, seed), x, y, one, seed)
           for f, r in configs]
    return interleaved_medians(fns, rounds=rounds)


def darcy_train(factorization=None, rank=0.42, epochs=20, seed=0):
    """Train on nl.pde Darcy 16x16 (1000 train) for ``epochs`` epochs (one thread).

    The recipe of ``bench_operators_accuracy.DARCY`` (AdamW 8e-3, weight decay 1e-4, cosine,
    batch 32, H1 loss, normalised data, error on the decoded solution). Returns test and
    zero-shot (32x32) relative L2 errors, parameters, seconds.
    """
    import dataclasses

    from .bench_operators_accuracy import DARCY, _train_numlab, relative_l2

    single_thread()
    (x, y), (xt, yt), (xf, yf), xn, yn = _darcy_setup()
    problem = dataclasses.replace(DARCY, epochs=epochs)
    model, seconds = _train_numlab(_darcy_model(factorization, rank, seed), x, y, problem, seed)

    def error(a, u):
        pred = np.concatenate([model(xn.encode(a[i:i + 100])) for i in range(0, len(a), 100)])
        return relative_l2(yn.decode(pred), u)

    return {"factorization": factorization or "dense", "rank": rank if factorization else 1.0,
            "n_params": model.n_params, "compression": model.compression, "epochs": epochs,
            "train_seconds": seconds, "test_error": error(xt, yt),
            "zero_shot_error": error(xf, yf)}


def main_darcy(budget=150.0, seed=0):
    """Dense FNO against TFNO-Tucker rank 0.42 at equal wall time: the epochs of each are
    ``budget`` over its epoch time, both measured interleaved (the cosine schedule needs the
    count up front; interleaving makes the split fair on a loaded machine)."""
    configs = [(None, 1.0), ("tucker", 0.42)]
    seconds = darcy_epoch_seconds(configs, seed=seed)
    print(f"\nDarcy 16x16 (1000 train), zero-shot 32x32, equal wall time ~{budget:.0f} s, "
          f"one thread; epoch seconds (interleaved medians): dense {seconds[0]:.2f}, "
          f"TFNO {seconds[1]:.2f}")
    rows = [darcy_train(f, r, epochs=max(1, round(budget / t)), seed=seed)
            for (f, r), t in zip(configs, seconds, strict=True)]
    for r in rows:
        print(f"  {r['factorization']:6s} rank {r['rank']:<5} params {r['n_params']:>9,} "
              f"(spectral compression {r['compression']:.2f}x)  epochs {r['epochs']:3d}  "
              f"{r['train_seconds']:.0f} s  test {r['test_error']:.4f}  zero-shot "
              f"{r['zero_shot_error']:.4f}")
    dense, tfno = rows
    print(f"  TFNO / dense: error {tfno['test_error'] / dense['test_error']:.2f}x (target <= 1), "
          f"parameters {dense['n_params'] / tfno['n_params']:.2f}x fewer (target >= 2)")


def main():
    single_thread()
    n_modes, hidden, batch, spatial = CASES[CASE]
    print(f"TFNO, hidden {hidden}, n_modes {n_modes}, batch {batch}, grid {spatial}, float32, "
          "one thread")
    print("\ncompression at rank 0.1 (target: 0.09-0.115 of the dense spectral count)")
    bench = Compression()
    for f in FACTORIZATIONS:
        print(f"  {f:7s} fraction {bench.track_fraction(f):.4f}  total params "
              f"{bench.track_total_params(f):,} (neuraloperator {NEURALOP_TOTAL[f]:,}; dense "
              f"{NEURALOP_TOTAL['dense']:,})")
    print("\nimplementations (step seconds, interleaved medians)")
    from numlab.operators import _factorized

    for f in FACTORIZATIONS:
        runs = [_NumlabStep(f, implementation=i) for i in ("factorized", "reconstructed")]
        fact, recon = interleaved_medians([r.step for r in runs], rounds=5)
        chosen = _factorized.choose_implementation(f, (hidden, hidden, n_modes[0],
                                                       n_modes[1] // 2 + 1), 0.1, batch)
        print(f"  {f:7s} factorized {fact:.3f} s  reconstructed {recon:.3f} s  "
              f"ratio {fact / recon:.2f}  automatic choice: {chosen}")
    print("\ntraining step (forward + backward + Adam)")
    medians = StepRatio().setup_cache()
    print(f"  numlab TFNO-Tucker 0.1 ({medians['implementation']}) {medians['tfno']:.3f} s, "
          f"numlab dense FNO {medians['dense_numlab']:.3f} s, neuraloperator TFNO "
          f"{medians['neuralop_tfno']:.3f} s")
    print(f"  ratio vs dense numlab {medians['tfno'] / medians['dense_numlab']:.2f} "
          "(target <= 1.0), "
          f"vs neuraloperator TFNO {medians['tfno'] / medians['neuralop_tfno']:.2f} "
          "(target <= 1.1)")


if __name__ == "__main__":
    import sys

    if "--darcy" in sys.argv:
        main_darcy()
    elif "--step" in sys.argv:
        print("TFNO-Tucker / dense numlab FNO training step (interleaved medians, 15 rounds):")
        for r in step_ratio_cpu(rounds=15, repeats=3):
            print(f"  wall {r['wall']:.3f}  CPU {r['cpu']:.3f}  (CPU s: TFNO "
                  f"{r['tfno_cpu_s']:.3f}, dense {r['dense_cpu_s']:.3f})", flush=True)
    else:
        main()
