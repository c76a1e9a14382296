"""The LSM's 3x3 convolution (numlab.operators._conv.conv2d) against torch, one thread, float32.

Forward + backward (dx and dW) at the shapes of the LSM's U-Net (width 64, batch 4, 64x64
down to 4x4), against ``torch.nn.functional.conv2d`` + autograd (oneDNN), interleaved rounds
in one process, best of the rounds. ``ConvRatio.track_ratio`` is numlab / torch with the
automatic choice of formulation; the issue's model-level target is <= 1.5x.

By hand: ``python -m benchmarks.bench_operators_conv`` from the repository root prints the
table for every formulation (what ``_conv._conv_method`` should follow);
``python -m benchmarks.bench_operators_conv --unet`` times the LSM's convolutional U-Net alone
(encoder and decoder of the NS configuration without the neural spectral blocks: 18 3x3
convolutions, batch norm + ReLU, pooling, upsampling, padding, concatenation, the 1x1 output
convolution) against the authors' torch modules with the same weights, forward + backward in
training mode, after checking that both give the same output.
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
METHODS = ("auto", "folded", "shifted", "rows", "im2col")


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


def _unet_pair(width=64, grid=64, batch=4, levels=5, seed=0, dtype=np.float32):
    """The reference U-Net (torch, train mode) and a numlab forward/backward with its weights.

    Returns ``(torch_step, numlab_step, x)``; each step runs forward + backward of
    ``sum(out * r)`` and returns the output as NumPy.
    """
    import importlib.util
    import pathlib

    from numlab.operators import _conv

    torch = _torch_single_thread()
    path = pathlib.Path(__file__).resolve().parents[1] / "tests" / "_lsm_reference.py"
    spec = importlib.util.spec_from_file_location("_lsm_reference", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    torch.manual_seed(seed)
    w = width
    widths = [w * 2 ** i for i in range(levels - 1)] + [w * 2 ** (levels - 2)]
    inc = ref.DoubleConv(w, w)
    downs = [ref.Down(widths[i - 1], widths[i]) for i in range(1, levels)]
    ups = []
    for j in range(1, levels):
        skip = widths[levels - 1 - j]
        ups.append(ref.Up(2 * skip, w if j == levels - 1 else skip // 2))
    outc = ref.OutConv(w, w)
    modules = torch.nn.ModuleList([inc, *downs, *ups, outc])
    if dtype == np.float64:
        modules.double()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, w, grid, grid)).astype(dtype)
    r = rng.standard_normal((batch, w, grid, grid)).astype(dtype)
    xt, rt = torch.tensor(x), torch.tensor(r)

    def torch_step():
        modules.zero_grad()
        feats = [inc(xt)]
        for d in downs:
            feats.append(d(feats[-1]))
        h = feats[-1]
        for j, u in enumerate(ups, start=1):
            h = u(h, feats[levels - 1 - j])
        out = outc(h)
        (out * rt).sum().backward()
        torch_step.first_conv_grad = inc.double_conv[0].weight.grad.numpy()
        return out.detach().numpy()

    def seq(double):  # the DoubleConv's (conv weight, bn weight, bn bias) twice
        m = double.double_conv
        return [(m[i].weight.detach().numpy(), m[i + 1].weight.detach().numpy(),
                 m[i + 1].bias.detach().numpy()) for i in (0, 3)]

    blocks = [seq(inc)] + [seq(d.maxpool_conv[1]) for d in downs] + [seq(u.conv) for u in ups]
    out_w = outc.conv.weight.detach().numpy()
    out_b = outc.conv.bias.detach().numpy()

    def double_conv(h, layers, tape):
        for conv_w, bn_w, bn_b in layers:
            h, back = _conv.conv2d(h, conv_w, train=True)
            tape.append(back)
            c = conv_w.shape[0]
            h, back, _ = _conv.batch_norm2d(h, bn_w, bn_b, np.zeros(c, dtype),
                                            np.ones(c, dtype), relu=True, train=True)
            tape.append(back)
        return h

    def numlab_step():
        # Forward with a tape of closures; the backward walks it (skips add their dx).
        tape = []
        feats = [double_conv(x, blocks[0], tape)]
        for i in range(1, levels):
            h, back = _conv.max_pool2d(feats[-1], train=True)
            tape.append(("pool", i - 1, back))
            feats.append(double_conv(h, blocks[i], tape))
        h = feats[-1]
        for j in range(1, levels):
            skip = feats[levels - 1 - j]
            h, b_up = _conv.upsample_bilinear2d(h, 2, train=True)
            h, b_pad = _conv.pad_to(h, skip.shape[2:], train=True)
            h, b_cat = _conv.concat_channels((skip, h), train=True)
            tape.append(("up", levels - 1 - j, (b_up, b_pad, b_cat)))
            h = double_conv(h, blocks[levels - 1 + j], tape)
        out, b_out = _conv.conv2d(h, out_w.reshape(w, w, 1, 1), out_b, padding=0, train=True)
        # Backward.
        g, grads = b_out(r)
        pending = {}  # gradients of the skip features, by level
        for item in reversed(tape):
            if callable(item):
                g, grads = item(g)
            elif item[0] == "up":
                b_up, b_pad, b_cat = item[2]
                (d_skip, g), _ = b_cat(g)
                g, _ = b_up(b_pad(g)[0])
                pending[item[1]] = d_skip
            else:  # pool: the feature at level item[1] also feeds a skip
                g, _ = item[2](g)
                g = g + pending.pop(item[1])
        numlab_step.first_conv_grad = grads["weight"]  # the last closure: inc's first conv
        return out

    return torch_step, numlab_step, x


def unet():
    single_thread()
    # Float64 at a small width: the composition itself (every skip, pad, concat) is exact.
    torch_step, numlab_step, _ = _unet_pair(width=8, grid=32, dtype=np.float64)
    a, b = torch_step(), numlab_step()
    ga, gb = torch_step.first_conv_grad, numlab_step.first_conv_grad
    print(f"float64 U-Net (w 8, 32x32): output {np.max(np.abs(a - b)) / np.max(np.abs(a)):.1e},"
          f" first-conv weight gradient {np.max(np.abs(ga - gb)) / np.max(np.abs(ga)):.1e}")
    torch_step, numlab_step, _ = _unet_pair()
    a, b = torch_step(), numlab_step()
    err = np.max(np.abs(a - b)) / np.max(np.abs(a))
    ga, gb = torch_step.first_conv_grad, numlab_step.first_conv_grad
    g_err = np.max(np.abs(ga - gb)) / np.max(np.abs(ga))
    print(f"U-Net numlab vs torch, max relative difference: output {err:.1e}, gradient of the"
          f" first convolution's weight (through every skip) {g_err:.1e}")
    best = {"torch": np.inf, "numlab": np.inf}
    for _ in range(5):
        for k, fn in (("torch", torch_step), ("numlab", numlab_step)):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    print(f"U-Net fwd+bwd (NS config, w 64, 64x64, batch 4): torch {best['torch']:.3f} s, "
          f"numlab {best['numlab']:.3f} s, ratio {best['numlab'] / best['torch']:.2f}x")


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
    import sys

    unet() if "--unet" in sys.argv else main()
