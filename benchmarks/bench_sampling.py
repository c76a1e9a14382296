"""nl.sampling / nl.lstsq against their anchor DPPy (0.3.3) in the same run.

- ``ProjectionDPP``: one projection DPP sample of the Legendre ensemble (uniform measure on
  [-1, 1]^d) in DPPy's own basis order (``compute_ordering``, so both sample the same
  V_m): numlab's ``projection_dpp`` against ``MultivariateJacobiOPE(N, zeros).sample()``.
  Cases d = 2, m = 91 and d = 5, m = 56 (target: numlab >= 20x faster), d = 2, m = 200
  (chain rule on both sides), and d = 1, m = 500 (DPPy's tridiagonal model against
  numlab's; target numlab under 50 ms). ``track_speedup`` times both libraries in
  interleaved repeats and reports the ratio of medians.
- ``ErrorRatio``: median over 30 draws of ``||f - f_n|| / ||f - P_m f||`` for
  ``f = prod |x_i - 0.3|^{5/2}`` (exact reference) with d = 1 (m = 20), 2 (m = 45),
  5 (m = 56). Targets: 2 x DPP (n = 2m) <= 1.5 and, in d = 1, 2, <= 0.85x i.i.d. (n = 2m);
  ceil(ln m) x DPP <= 1.15; single DPP (n = m) reported.
"""

import time
import warnings

import numpy as np

from .common import warm_up

CASES = {"d1-m500": (1, 500), "d2-m91": (2, 91), "d5-m56": (5, 56), "d2-m200": (2, 200)}


def _samplers(case):
    from dppy.multivariate_jacobi_ope import MultivariateJacobiOPE, compute_ordering

    import numlab as nl

    d, m = CASES[case]
    basis = nl.lstsq.LegendreBasis(None, None, indices=compute_ordering(m, d))
    ope = MultivariateJacobiOPE(m, np.zeros((d, 2)))
    rng = np.random.default_rng(0)
    state = np.random.RandomState(0)

    def ours():
        return nl.sampling.projection_dpp(basis, rng=rng).points

    def theirs():
        return ope.sample(random_state=state)

    return ours, theirs


class ProjectionDPP:
    params = (["numlab", "dppy"], list(CASES))
    param_names = ["library", "case"]
    timeout = 300

    def setup(self, library, case):
        warnings.simplefilter("ignore")
        ours, theirs = _samplers(case)
        self.sample = ours if library == "numlab" else theirs
        warm_up(self.sample)

    def time_sample(self, library, case):
        self.sample()


class SpeedUp:
    """``time(DPPy) / time(numlab)``, medians of per-call times from interleaved repeats.

    numlab's call is run ``inner`` times per DPPy call: a call of about a millisecond on a
    busy machine is often preempted for a whole scheduler slice, which a handful of
    repeats would turn into the median.
    """

    params = [list(CASES)]
    param_names = ["case"]
    timeout = 600
    repeats = 7
    inner = 10

    def setup(self, case):
        warnings.simplefilter("ignore")
        self.ours, self.theirs = _samplers(case)
        warm_up(self.ours)
        warm_up(self.theirs)

    def track_speedup(self, case):
        ours, theirs = [], []
        for _ in range(self.repeats):
            for fn, out, count in ((self.ours, ours, self.inner), (self.theirs, theirs, 1)):
                for _ in range(count):
                    start = time.perf_counter()
                    fn()
                    out.append(time.perf_counter() - start)
        return float(np.median(theirs) / np.median(ours))

    track_speedup.unit = "x"


SCHEMES = ["2xdpp", "iid-2m", "volume-2m", "lnm-dpp", "dpp"]
DIMS = {1: 19, 2: 8, 5: 3}  # total degree: m = 20, 45, 56


class ErrorRatio:
    params = ([1, 2, 5], SCHEMES)
    param_names = ["dim", "scheme"]
    timeout = 300

    def setup(self, dim, scheme):
        import numlab as nl

        self.m = nl.lstsq.LegendreBasis(dim, DIMS[dim]).m

    def track_median_error_ratio(self, dim, scheme):
        from numlab.lstsq._tour import error_ratios

        m = self.m
        sampler, n = {
            "2xdpp": ("repeated_dpp", 2 * m),
            "iid-2m": ("iid", 2 * m),
            "volume-2m": ("volume", 2 * m),
            "lnm-dpp": ("repeated_dpp", int(np.ceil(np.log(m))) * m),
            "dpp": ("dpp", m),
        }[scheme]
        return float(np.median(error_ratios(dim, DIMS[dim], sampler, n, 30, seed=0)))

    track_median_error_ratio.unit = "ratio"
