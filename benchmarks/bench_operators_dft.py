"""FFT against the truncated DFT by GEMM per axis: the measurements behind
``numlab.operators._layers._use_dft_gemm`` (one thread, float32).

For an axis of ``n`` points keeping ``k`` frequencies, the table gives FFT time / GEMM
time (above 1: the GEMM is faster) and, in brackets, the rule's choice (``G`` GEMM, ``F``
FFT). Last axis: real lines, ``rfft`` and a slice against ``lines @ [cos | -sin]`` and
the complex assembly; leading axis: complex columns, ``fft`` and the two slices against
the ``(k, n)`` DFT matrix times the columns.

Then a training step of the FNO paper's Darcy 85x85 recipe (``benchmarks/fno_darcy85.py``:
batch 20, width 32, 12 modes per corner, padding 9 on both sides: a 103-point grid, prime)
with the rule against the plain bound ``k <= 3 log2 n``, interleaved CPU-time medians.

Measured 2026-12-03 (2-core VM, another single-threaded job on the other core; the
table moves by 10-30 % from run to run): at k = 24, FFT / GEMM on the last axis 0.78
(n = 64), 1.10 (85), 2.63 (94), 1.05 (96), 5.40 (103), 1.00 (128), and on the leading axis
1.22, 1.55, 3.28, 1.27, 3.78, 1.05. The recipe's step: 1.025 s CPU with the plain bound,
0.854 s with the rule (0.833x; 0.906x in an earlier run); unpadded 85 x 85 0.916x;
64 x 64 (no size with a large prime factor: the same choices) 0.988x, the noise. Where
the rule errs, the loss is small: the leading axis of smooth sizes at k = 24 (the GEMM
1.05-1.27x faster, the rule picks the FFT) and the last axis at n = 85, k = 32 (0.94).

Run: ``python -m benchmarks.bench_operators_dft [--no-step]``.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import scipy.fft

from .common import single_thread

SIZES = (32, 64, 85, 94, 96, 103, 128, 256)
KEPT = (8, 13, 16, 24, 32, 48)


def _median_seconds(fn, repeat=5):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def fft_over_gemm(n, k, last, rng):
    """FFT time / GEMM time for one axis (about 400,000 complex or 1.6 M real points)."""
    from numlab.operators._layers import _dft_matrices

    if last:
        a = rng.standard_normal((1_600_000 // n, n)).astype(np.float32)
        forward, _ = _dft_matrices(n, k, True, "float32")

        def by_fft():
            return scipy.fft.rfft(a, axis=-1)[:, :k]

        def by_gemm():
            parts = a @ forward
            return parts[:, :k].astype(np.complex64) + parts[:, k:].astype(np.complex64) * 1j
    else:
        shape = (400_000 // (13 * n), n, 13)
        a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
        forward, _ = _dft_matrices(n, k, False, "float32")
        neg = k // 2

        def by_fft():
            s = scipy.fft.fft(a, axis=1)
            return np.concatenate((s[:, n - neg:, :], s[:, :k - neg, :]), axis=1)

        def by_gemm():
            return np.matmul(forward, a)

    return _median_seconds(by_fft) / _median_seconds(by_gemm)


def table():
    from numlab.operators._layers import _use_dft_gemm

    rng = np.random.default_rng(0)
    for last, name in ((True, "last axis (real)"), (False, "leading axis (complex)")):
        print(f"{name}: FFT time / GEMM time [the rule's choice]")
        print("  n  " + "".join(f"{k:>12}" for k in KEPT))
        for n in SIZES:
            cells = []
            for k in KEPT:
                if k > (n // 2 + 1 if last else n):
                    cells.append(f"{'-':>12}")
                    continue
                ratio = fft_over_gemm(n, k, last, rng)
                cells.append(f"{ratio:8.2f} [{'G' if _use_dft_gemm(n, k, last) else 'F'}]")
            print(f"{n:>4} " + "".join(cells), flush=True)


def recipe_step(resolution=85, padding=9, rounds=7):
    """CPU seconds of a Darcy-recipe training step: plain bound, then the rule."""
    from numlab.operators import _layers
    from numlab.operators._train import Adam

    from .fno_darcy85 import recipe_fno

    rule = _layers._use_dft_gemm

    def plain(n, k, last):
        return k <= 3 * math.log2(max(n, 2))

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 1, resolution, resolution)).astype(np.float32)
    y = rng.standard_normal((20, 1, resolution, resolution)).astype(np.float32)
    model = recipe_fno(padding=padding, resolution=resolution, rng=0)
    opt = Adam(model.params, lr=1e-3)

    def step(choice):
        _layers._use_dft_gemm = choice
        try:
            start = time.process_time()
            _, grads = model.loss_and_grad(x, y)
            opt.step(grads)
            return time.process_time() - start
        finally:
            _layers._use_dft_gemm = rule

    step(plain), step(rule)
    times = {"plain": [], "rule": []}
    for r in range(rounds):
        for name, choice in (("plain", plain), ("rule", rule))[:: 1 if r % 2 else -1]:
            times[name].append(step(choice))
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv):
    single_thread()
    table()
    if "--no-step" not in argv:
        for resolution, padding in ((85, 9), (85, 0), (64, 0)):
            r = recipe_step(resolution, padding)
            print(f"step {resolution} + 2 x {padding}: plain bound {r['plain']:.3f} s, rule "
                  f"{r['rule']:.3f} s CPU ({r['rule'] / r['plain']:.3f}x)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
