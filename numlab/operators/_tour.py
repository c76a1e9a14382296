"""``numlab tour`` entry of nl.operators: a short FNO fit of the Burgers solution operator."""

from __future__ import annotations

import numpy as np

from .._tour import Demo


def _relative_l2(pred, truth):
    return float(np.mean(np.linalg.norm(pred - truth, axis=-1) / np.linalg.norm(truth, axis=-1)))


def fno_burgers_demo(quick: bool) -> Demo:
    from .. import pde
    from . import FNO, train

    n_train, n_test, epochs, batch = (256, 50, 6, 16) if quick else (256, 100, 20, 32)
    u0, uT = pde.burgers(n_train + n_test, 128, viscosity=0.01, rng=0, dtype=np.float32)
    x, y = u0[:, None], uT[:, None]
    model = FNO((16,), hidden_channels=32, in_channels=1, out_channels=1, rng=0)
    train(model, x[:n_train], y[:n_train], epochs=epochs, batch_size=batch, lr=3e-3,
          progress=False, rng=0)
    error = _relative_l2(model(x[n_train:]), y[n_train:])
    # The trivial predictor u(1) = u(0) shows how much the operator had to learn.
    baseline = _relative_l2(x[n_train:], y[n_train:])
    target = 0.1 if quick else 0.04
    return Demo(
        problem=f"FNO (16 modes, width 32) on Burgers, viscosity 0.01, s = 128, "
                f"{n_train} samples, {epochs} epochs",
        result=f"test relative L2 {error:.3f} ({model.n_params:,} parameters)",
        check=f"vs the ETDRK4 solutions of {n_test} held-out samples (u(1) = u(0): {baseline:.2f})",
        ok=bool(error < target),
    )


DEMOS = [fno_burgers_demo]
