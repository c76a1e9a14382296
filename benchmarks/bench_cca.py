"""nl.cca against its anchor cca_zoo (4.x, NumPy) in the same run.

- ``ExactCCA``: the GEP solver against a SciPy ``eigh(A, B)`` reference (time and
  largest difference in canonical correlations; target <= 1e-6).
- ``DigitsStochastic``: scikit-learn's digits split into left/right image halves, k=5.
  numlab's StochasticCCA (30 epochs, defaults) against cca_zoo's StochasticCCAEY run to
  its converged result (batch 128, its defaults). Targets: time ratio <= 0.5, held-out
  total correlation >= 0.99x the exact solution's, training >= 0.96x.
- ``PatchesMultiview``: left/right halves of 8x8 RGB patches of scikit-learn's two
  sample images (105,878 train / 24,726 held-out rows, 96 + 96 features, covariance
  condition number ~5e5). numlab 10 epochs (whitening preconditioner,
  ``precondition=True``) against cca_zoo 5 epochs, batch 256. Target: held-out total
  correlation >= 0.95x the exact one, in less time than cca_zoo's 5 epochs.

Both libraries run with the default BLAS threads. On a shared 2-core machine the
ratios are noisy: compare medians of interleaved repeats.

``track_*`` report the ratio to the exact solution; ``time_fit`` the fit time.
"""

import warnings

import numpy as np

from .common import cached


def _standardise(train, test):
    keep = train.std(0) > 0
    train, test = train[:, keep], test[:, keep]
    mean, std = train.mean(0), train.std(0)
    return (train - mean) / std, (test - mean) / std


def digits_halves():
    """(X_train, Y_train, X_test, Y_test): left/right halves of the digits, standardised."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images = load_digits().images
    left = images[:, :, :4].reshape(len(images), -1)
    right = images[:, :, 4:].reshape(len(images), -1)
    Xtr, Xte, Ytr, Yte = train_test_split(left, right, test_size=597, random_state=0)
    Xtr, Xte = _standardise(Xtr, Xte)
    Ytr, Yte = _standardise(Ytr, Yte)
    return Xtr, Ytr, Xte, Yte


def image_patches():
    """Left/right halves of 8x8 RGB patches (stride 2) of scikit-learn's sample images.

    Patches from the top 80 % of each image train, those entirely below it test.
    """
    from sklearn.datasets import load_sample_images

    train, test = [], []
    for image in load_sample_images().images:
        image = image.astype(np.float64) / 255.0
        windows = np.lib.stride_tricks.sliding_window_view(image, (8, 8), axis=(0, 1))[::2, ::2]
        rows = np.arange(0, image.shape[0] - 7, 2)
        patches = windows.reshape(windows.shape[0], windows.shape[1], 3, 8, 8)
        split = int(0.8 * image.shape[0])
        train.append(patches[rows + 8 <= split].reshape(-1, 3, 8, 8))
        test.append(patches[rows >= split].reshape(-1, 3, 8, 8))
    train, test = np.concatenate(train), np.concatenate(test)
    halves = []
    for block in (train, test):
        halves.append(block[..., :4].reshape(len(block), -1))
        halves.append(block[..., 4:].reshape(len(block), -1))
    Xtr, Xte = _standardise(halves[0], halves[2])
    Ytr, Yte = _standardise(halves[1], halves[3])
    return tuple(np.ascontiguousarray(a) for a in (Xtr, Ytr, Xte, Yte))


def total_correlation(Za, Zb):
    """Sum of the canonical correlations between two projections (rotation invariant)."""
    qa = np.linalg.qr(Za - Za.mean(0))[0]
    qb = np.linalg.qr(Zb - Zb.mean(0))[0]
    return float(np.linalg.svd(qa.T @ qb, compute_uv=False).sum())


def exact_totals(Xtr, Ytr, Xte, Yte, k):
    import numlab as nl

    res = nl.cca.cca(Xtr, Ytr, k)
    return total_correlation(*res.transform(Xtr, Ytr)), total_correlation(*res.transform(Xte, Yte))


def fit(library, k, Xtr, Ytr, *, epochs, batch_size, seed=0, **options):
    """Fit one library; returns a function projecting (X, Y)."""
    if library == "numlab":
        import numlab as nl

        model = nl.cca.StochasticCCA(
            k, epochs=epochs, batch_size=batch_size, random_state=seed, **options
        )
        model.fit(Xtr, Ytr)
        return lambda X, Y: model.transform(X, Y)
    from cca_zoo.stochastic import StochasticCCAEY

    model = StochasticCCAEY(k, batch_size=batch_size, max_iter=epochs or 1000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cca_zoo warns when stopped before convergence
        model.fit([Xtr, Ytr])
    return lambda X, Y: tuple(model.transform([X, Y]))


class ExactCCA:
    params = [["numlab", "scipy"]]
    param_names = ["solver"]

    def setup(self, solver):
        self.X, self.Y, _, _ = cached("cca-digits", digits_halves)
        self._solve(solver)  # warm up (first-call imports and allocations)

    def _solve(self, solver):
        if solver == "numlab":
            import numlab as nl

            return nl.cca.cca(self.X, self.Y, 5).correlations
        import scipy.linalg

        stacked = np.hstack([self.X - self.X.mean(0), self.Y - self.Y.mean(0)])
        cov = stacked.T @ stacked / (len(stacked) - 1)
        p = self.X.shape[1]
        A, B = cov.copy(), cov.copy()
        A[:p, :p] = A[p:, p:] = 0
        B[:p, p:] = B[p:, :p] = 0
        return scipy.linalg.eigh(A, B, eigvals_only=True)[::-1][:5]

    def time_solve(self, solver):
        self._solve(solver)

    def track_max_difference_vs_scipy(self, solver):
        return float(np.max(np.abs(self._solve(solver) - self._solve("scipy"))))


class DigitsStochastic:
    """numlab 30 epochs vs cca_zoo to convergence; k=5, batch 128."""

    params = [["numlab", "cca_zoo"]]
    param_names = ["library"]
    epochs = {"numlab": 30, "cca_zoo": None}

    def setup(self, library):
        self.data = cached("cca-digits", digits_halves)
        self.exact = cached("cca-digits-exact", lambda: exact_totals(*self.data, 5))
        fit("numlab", 5, *self.data[:2], epochs=1, batch_size=128)  # warm up

    def time_fit(self, library):
        fit(library, 5, *self.data[:2], epochs=self.epochs[library], batch_size=128)

    def _ratios(self, library):
        Xtr, Ytr, Xte, Yte = self.data
        project = fit(library, 5, Xtr, Ytr, epochs=self.epochs[library], batch_size=128)
        return (
            total_correlation(*project(Xtr, Ytr)) / self.exact[0],
            total_correlation(*project(Xte, Yte)) / self.exact[1],
        )

    def track_train_ratio_to_exact(self, library):
        return self._ratios(library)[0]

    def track_heldout_ratio_to_exact(self, library):
        return self._ratios(library)[1]


class PatchesMultiview:
    """numlab 10 epochs vs cca_zoo 5 epochs on 105,878 x (96 + 96) image patches; k=5."""

    params = [["numlab", "cca_zoo"]]
    param_names = ["library"]
    epochs = {"numlab": 10, "cca_zoo": 5}
    timeout = 300
    number = 1
    repeat = 1

    def setup(self, library):
        self.data = cached("cca-patches", image_patches)
        self.exact = cached("cca-patches-exact", lambda: exact_totals(*self.data, 5))

    def _fit(self, library):
        options = {"precondition": True} if library == "numlab" else {}
        return fit(
            library, 5, *self.data[:2], epochs=self.epochs[library], batch_size=256, **options
        )

    def time_fit(self, library):
        self._fit(library)

    def track_heldout_ratio_to_exact(self, library):
        Xtr, Ytr, Xte, Yte = self.data
        project = self._fit(library)
        return total_correlation(*project(Xte, Yte)) / self.exact[1]
