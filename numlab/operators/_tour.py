"""``numlab tour`` entry of nl.operators: a short FNO fit of the Burgers solution operator."""

from __future__ import annotations

import numpy as np

from .._tour import Demo


def _relative_l2(pred, truth):
    return float(np.mean(np.linalg.norm(pred - truth, axis=-1) / np.linalg.norm(truth, axis=-1)))


def _fit_burgers(model, quick):
    """Train ``model`` on Burgers (viscosity 0.01, s = 128); its held-out relative L2, the
    trivial predictor's (u(1) = u(0)), and the sizes used."""
    from .. import pde
    from . import train

    n_train, n_test, epochs, batch = (256, 50, 6, 16) if quick else (256, 100, 20, 32)
    u0, uT = pde.burgers(n_train + n_test, 128, viscosity=0.01, rng=0, dtype=np.float32)
    x, y = u0[:, None], uT[:, None]
    train(model, x[:n_train], y[:n_train], epochs=epochs, batch_size=batch, lr=3e-3,
          progress=False, rng=0)
    error = _relative_l2(model(x[n_train:]), y[n_train:])
    baseline = _relative_l2(x[n_train:], y[n_train:])
    return error, baseline, n_train, n_test, epochs


def fno_burgers_demo(quick: bool) -> Demo:
    from . import FNO

    model = FNO((16,), hidden_channels=32, in_channels=1, out_channels=1, rng=0)
    error, baseline, n_train, n_test, epochs = _fit_burgers(model, quick)
    target = 0.1 if quick else 0.04
    return Demo(
        problem=f"FNO (16 modes, width 32) on Burgers, viscosity 0.01, s = 128, "
                f"{n_train} samples, {epochs} epochs",
        result=f"test relative L2 {error:.3f} ({model.n_params:,} parameters)",
        check=f"vs the ETDRK4 solutions of {n_test} held-out samples (u(1) = u(0): {baseline:.2f})",
        ok=bool(error < target),
    )


def tfno_burgers_demo(quick: bool) -> Demo:
    from . import TFNO

    model = TFNO((16,), hidden_channels=32, in_channels=1, out_channels=1, rng=0)
    error, _, _, n_test, epochs = _fit_burgers(model, quick)
    target = 0.15 if quick else 0.08
    return Demo(
        problem=f"TFNO (Tucker, rank 0.1) on the same Burgers data, {epochs} epochs",
        result=f"test relative L2 {error:.3f}; spectral weights {model.compression:.1f}x "
               f"compressed ({model.n_params:,} parameters)",
        check=f"vs the ETDRK4 solutions of {n_test} held-out samples",
        ok=bool(error < target and 9 <= model.compression <= 11.2),
    )


def lsm_demo(quick: bool) -> Demo:
    from .. import pde
    from . import LSM, UnitGaussianNormalizer, train

    # The authors' Darcy configuration: its parameter count is the reference's.
    reference = LSM(1, 1, hidden_channels=64, patch_size=(6, 6), padding=(11, 11), rng=0)
    n_params = reference.n_params
    del reference
    n_train, epochs = (100, 3) if quick else (200, 10)
    a, u = pde.darcy(n_train + 50, 16, rng=0, dtype=np.float32)
    x, y = a[:, None], u[:, None]
    x_norm = UnitGaussianNormalizer().fit(x[:n_train])
    y_norm = UnitGaussianNormalizer().fit(y[:n_train])
    model = LSM(1, 1, hidden_channels=16, patch_size=(2, 2), n_levels=4, rng=0)
    train(model, x_norm.encode(x[:n_train]), y_norm.encode(y[:n_train]), epochs=epochs, lr=5e-3,
          output_normalizer=y_norm, progress=False, rng=0)
    prediction = y_norm.decode(model(x_norm.encode(x[n_train:])))
    error = _relative_l2(prediction.reshape(50, -1), y[n_train:].reshape(50, -1))
    target = 0.3 if quick else 0.08
    return Demo(
        problem=f"Latent Spectral Model, Darcy 16 x 16, {n_train} samples, {epochs} epochs",
        result=f"test relative L2 {error:.3f}; the Darcy configuration has {n_params:,} parameters",
        check="vs held-out multigrid-CG solutions; the authors' LSM_2D has 19,187,457",
        ok=bool(error < target and n_params == 19_187_457),
    )


DEMOS = [fno_burgers_demo, tfno_burgers_demo, lsm_demo]
