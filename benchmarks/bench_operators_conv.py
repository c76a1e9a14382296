"""The LSM's 3x3 convolution (numlab.operators._conv.conv2d) against torch, one thread, float32.

Forward + backward (dx and dW) at the shapes of the LSM's U-Net (width 64, batch 4, 64x64
down to 4x4), against ``torch.nn.functional.conv2d`` + autograd (oneDNN), interleaved rounds
in one process, best of the rounds. ``ConvRatio.track_ratio`` is numlab / torch with the
automatic choice of formulation; the issue's model-level target is <= 1.5x.

By hand: ``python -m benchmarks.bench_operators_conv`` from the repository root prints the
table for every formulation (what ``_conv._conv_method`` should follow).
"""

from __future__ import annotations

import time

import numpy as np

from .bench_operators import _torch_single_thread
from .common import single_thread

# (batch, c_in, c_out, grid): the LSM NS configuration's 3x3 convolutions (w = 64).
SHAPES = [
    (4, 64, 64, 64),
    (4, 128, 64, 64),
    (4, 128, 128, 32),
    (4, 256, 256, 16),
    (4, 512, 512, 8),
    (4, 1024, 256, 8),
    (4, 512, 512, 4),
]
METHODS = ("auto", "folded", "shifted", "im2col")


def _timers(shape, methods=("auto",), seed=0):
    """``{name: (forward_backward, forward)}`` for torch and each numlab formulation."""
    from numlab.operators import _conv

    torch = _torch_single_thread()
    b, c_in, c_out, n = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, c_in, n, n)).astype(np.float32)
    w = (rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(9 * c_in)).astype(np.float32)
    dy = rng.standard_normal((b, c_out, n, n)).astype(np.float32)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    dyt = torch.tensor(dy)

    def torch_fb():
        xt.grad = wt.grad = None
        torch.nn.functional.conv2d(xt, wt, padding=1).backward(dyt)

    def torch_f():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, padding=1)

    timers = {"torch": (torch_fb, torch_f)}
    rule = _conv._conv_method
    for m in methods:
        choose = rule if m == "auto" else (lambda *a, m=m: m)

        def fb(choose=choose):
            _conv._conv_method = choose
            try:
                _conv.conv2d(x, w, padding=1, train=True)[1](dy)
            finally:
                _conv._conv_method = rule

        def f(choose=choose):
            _conv._conv_method = choose
            try:
                _conv.conv2d(x, w, padding=1)
            finally:
                _conv._conv_method = rule

        timers[m] = (fb, f)
    return timers


def measure(shape, methods=("auto",), rounds=7):
    """Best-of-``rounds`` seconds ``{name: (forward_backward, forward)}``, interleaved."""
    timers = _timers(shape, methods)
    best = {k: [np.inf, np.inf] for k in timers}
    for _ in range(rounds):
        for k, pair in timers.items():
            for i, fn in enumerate(pair):
                t0 = time.perf_counter()
                fn()
                best[k][i] = min(best[k][i], time.perf_counter() - t0)
    return best


class ConvRatio:
    """numlab conv2d forward + backward over torch's, per LSM shape (automatic formulation)."""

    params = [[str(s) for s in SHAPES]]
    param_names = ["shape"]
    timeout = 300

    def setup(self, shape):
        single_thread()
        self.shape = tuple(int(v) for v in shape.strip("()").split(","))

    def track_ratio(self, shape):
        best = measure(self.shape)
        return best["auto"][0] / best["torch"][0]

    track_ratio.unit = "numlab / torch"


def main():
    single_thread()
    for shape in SHAPES:
        best = measure(shape, METHODS)
        t_fb, t_f = best["torch"]
        cells = [f"{m} {best[m][0] * 1e3:.1f} ms ({best[m][0] / t_fb:.2f}x) fwd "
                 f"{best[m][1] / t_f:.2f}x" for m in METHODS]
        print(f"{shape}: torch {t_fb * 1e3:.1f} ms (fwd {t_f * 1e3:.1f}) | " + " | ".join(cells),
              flush=True)


if __name__ == "__main__":
    main()
