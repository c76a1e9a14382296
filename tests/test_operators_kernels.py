"""The GELU kernels of nl.operators: accuracy, special values, dtypes and backends.

References are independent of numlab's own ``Phi``: SciPy's ``erf``/``erfc`` formula
(float32 results are compared with the float64 reference rounded to float32) and, for
float64 ulp errors in the tails, mpmath at 40 digits.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.special

from numlab._dispatch import kernel

import numlab.operators._kernels  # noqa: F401  (registers the kernels)

IMPLS = ["generic", "numba"]
ROOT = -0.7517915241  # the derivative of GELU vanishes here


def _reference(x):
    """(GELU, derivative) in float64 from SciPy's erfc (erf loses the left tail)."""
    x = np.asarray(x, dtype=np.float64)
    p = 0.5 * scipy.special.erfc(-x / np.sqrt(2.0))
    phi = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    with np.errstate(invalid="ignore"):
        return x * p, p + x * phi


def _ulp(got, ref, dtype):
    """|got - ref| in units of the spacing of ``ref`` rounded to ``dtype``."""
    spacing = np.spacing(np.abs(ref.astype(dtype))).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


def _grid(dtype):
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [
            rng.uniform(-14.0, 14.0, 40000),
            rng.standard_normal(4000),
            -np.geomspace(1e-20, 12.0, 300),
            np.geomspace(1e-20, 1e4, 300),
        ]
    )
    return x.astype(dtype)


def _both(impl, x):
    y = kernel("operators.gelu", np, impl=impl)(x)
    y2, d = kernel("operators.gelu_with_grad", np, impl=impl)(x)
    np.testing.assert_array_equal(y, y2)  # the two kernels agree bit for bit
    return y, d


# float32 ulp bounds: the generic version computes in float64 and rounds once; the Numba
# one computes in float32 arithmetic (vectorised eight lanes wide)
F32_BOUNDS = {"generic": (1.0, 1.0, 1e-8), "numba": (6.0, 16.0, 1e-7)}


@pytest.mark.parametrize("impl", IMPLS)
def test_float32_ulp_error(impl):
    value_ulp, grad_ulp, grad_abs = F32_BOUNDS[impl]
    x = _grid(np.float32)
    y, d = _both(impl, x)
    ry, rd = _reference(x)
    tiny = np.finfo(np.float32).tiny
    keep = np.abs(ry) > tiny
    assert _ulp(y[keep], ry[keep], np.float32).max() <= value_ulp
    assert _ulp(y[keep], ry[keep], np.float32).mean() <= 0.5
    keep = (np.abs(rd) > tiny) & (np.abs(x - ROOT) > 0.1)
    assert _ulp(d[keep], rd[keep], np.float32).max() <= grad_ulp
    near = np.abs(x - ROOT) <= 0.1  # no relative accuracy at a root: absolute error instead
    assert np.max(np.abs(d[near] - rd[near])) <= grad_abs


@pytest.mark.parametrize("impl", IMPLS)
def test_float64_against_scipy_erf(impl):
    x = _grid(np.float64)
    y, d = _both(impl, x)
    # 1 + erf(x / sqrt 2) cancels on the left: its error is absolute there, about eps |x|
    erf_form = 0.5 * x * (1.0 + scipy.special.erf(x / np.sqrt(2.0)))
    eps = np.finfo(np.float64).eps
    keep = x > -6.0
    err = np.abs(y - erf_form)[keep]
    assert np.all(err <= 4 * eps * np.abs(erf_form[keep]) + 2 * eps * np.abs(x[keep]))
    # the erfc form is accurate in relative terms, up to the rounding of x / sqrt 2 that
    # erfc amplifies by about x^2
    ry, rd = _reference(x)
    tol = 4 * eps * (1.0 + x * x) * np.abs(ry)
    assert np.all(np.abs(y - ry) <= tol)
    tol = 4 * eps * (1.0 + x * x) * np.abs(rd) + 2 * eps
    assert np.all(np.abs(d - rd) <= tol)


@pytest.mark.parametrize("impl", IMPLS)
def test_float64_ulp_error_against_mpmath(impl):
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-35.0, 10.0, 600), rng.standard_normal(400)])
    x = x[np.abs(x - ROOT) > 0.2]
    y, d = _both(impl, x)
    with mpmath.workdps(40):
        exact = [(v * mpmath.ncdf(v), mpmath.ncdf(v) + v * mpmath.npdf(v)) for v in map(mpmath.mpf, x)]
    ry = np.array([float(e[0]) for e in exact])
    rd = np.array([float(e[1]) for e in exact])
    assert _ulp(y, ry, np.float64).max() <= 4.0
    assert _ulp(d, rd, np.float64).max() <= 16.0  # Phi + x phi cancels partly near the root


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(impl, dtype):
    big = np.finfo(dtype).max
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, big, -big, tiny, -tiny, 1e-30, -40.0, 40.0], dtype=dtype)
    y, d = _both(impl, x)
    assert y.dtype == dtype and d.dtype == dtype
    assert y[0] == 0 and d[0] == 0.5 and d[1] == 0.5
    assert np.signbit(y[1])  # -0.0 * 1/2
    assert y[2] == np.inf and d[2] == 1.0
    assert y[3] == 0 and d[3] == 0  # not NaN
    assert np.isnan(y[4]) and np.isnan(d[4])
    assert y[5] == big and d[5] == 1.0
    assert y[6] == 0 and d[6] == 0
    assert y[7] == tiny / 2 or y[7] in (0, tiny)  # half of the smallest subnormal rounds
    assert d[7] == 0.5 and d[8] == 0.5
    assert y[9] == dtype(0.5e-30)
    assert y[10] == 0 and d[10] == 0
    assert y[11] == 40.0 and d[11] == 1.0


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3, 4), (4, 0, 3)])
def test_shapes_dtypes_and_input_untouched(impl, dtype, shape, rng):
    x = np.asarray(3.0 * rng.standard_normal(shape), dtype=dtype)
    x_copy = x.copy()
    y, d = _both(impl, x)
    assert y.shape == shape and d.shape == shape
    assert y.dtype == dtype and d.dtype == dtype
    np.testing.assert_array_equal(x, x_copy)
    ry, rd = _reference(x)
    np.testing.assert_allclose(y, ry, rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-30)


@pytest.mark.parametrize("impl", IMPLS)
def test_non_contiguous_and_readonly_input(impl, rng):
    base = rng.standard_normal((6, 8, 10)).astype(np.float32)
    x = base.transpose(2, 0, 1)[::2]
    ro = base.copy()
    ro.flags.writeable = False
    for arr in (x, ro):
        y, d = _both(impl, arr)
        ry, rd = _both("generic", np.ascontiguousarray(arr))
        np.testing.assert_allclose(y, ry, rtol=1e-6)
        np.testing.assert_allclose(d, rd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.complex64, bool])
def test_refuses_other_dtypes(impl, dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        kernel("operators.gelu", np, impl=impl)(np.zeros(3, dtype=dtype))


def test_backends(backend, rng):
    """The dispatched kernel on every backend: Numba on NumPy, generic on strict, CuPy on GPU."""
    x_np = np.concatenate([4.0 * rng.standard_normal(50), [np.inf, -np.inf, np.nan, 0.0, -5.0]])
    x = backend.asarray(x_np)
    xp = backend.xp
    y = kernel("operators.gelu", xp)(x)
    y2, d = kernel("operators.gelu_with_grad", xp)(x)
    assert y.dtype == x.dtype and d.dtype == x.dtype
    x_host = backend.to_numpy(x)
    ry, rd = _reference(x_host)
    ry[x_host == -np.inf] = 0.0  # the reference's -inf * 0
    rd[np.isinf(x_host)] = (x_host[np.isinf(x_host)] > 0).astype(np.float64)
    rtol, atol = (1e-6, 1e-7) if x_host.dtype == np.float32 else (1e-14, 1e-300)
    for got, ref in ((y, ry), (y2, ry), (d, rd)):
        np.testing.assert_allclose(backend.to_numpy(got), ref, rtol=rtol, atol=atol, equal_nan=True)
    np.testing.assert_array_equal(backend.to_numpy(x), x_host)  # input untouched


def test_numba_kernels_run_without_jit():
    """NUMBA_DISABLE_JIT=1 runs the same code as plain Python, with the same results."""
    code = (
        "import numpy as np\n"
        "from numlab._cpu import operators as C\n"
        "from numlab.operators import _kernels as G\n"
        "x = np.array([-50.0, -7.5, -1.0, -0.0, 0.3, 2.0, 9.0, np.inf, -np.inf, np.nan])\n"
        "for dt, tol in ((np.float32, 2e-6), (np.float64, 1e-14)):\n"
        "    for a, b in zip(C.gelu_with_grad(x.astype(dt)), G.gelu_with_grad(x.astype(dt))):\n"
        "        np.testing.assert_allclose(a, b, rtol=tol, atol=1e-30)\n"
        "        assert a.dtype == dt\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)


@pytest.mark.parametrize("ctype", ["float", "double"])
def test_cuda_source_compiles(ctype):
    pytest.importorskip("cupy")
    from test_gpu_sources import compile_source

    from numlab._gpu import operators

    compile_source(operators.source(ctype))
