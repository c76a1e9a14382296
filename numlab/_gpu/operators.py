"""CuPy kernels of :mod:`numlab.operators`: the exact GELU and its derivative.

Same signatures and results as the generic versions in
:mod:`numlab.operators._kernels`. One CUDA source, compiled per dtype and per device:
float32 is computed in double and rounded once (the GPU has the double throughput for
an element-wise kernel, which memory bandwidth bounds anyway); ``Phi`` is CUDA's
``normcdf`` (accurate in both tails) and ``exp(-x^2 / 2)`` takes the rounding error of
``x^2`` (an exact ``fma``) into account, so that large ``|x|`` stays within a few ulp.
"""

from __future__ import annotations

import cupy

_CTYPES = {cupy.dtype(cupy.float32): "float", cupy.dtype(cupy.float64): "double"}
_THREADS = 256

# x phi(x) uses x clamped to +-40: phi is 0 there, and inf * 0 would give NaN
_SOURCE = r"""
__device__ __forceinline__ void numlab_gelu_parts(double x, double* y, double* dydx)
{
    const double p = normcdf(x);
    const double a = fmin(fabs(x), 40.0);
    const double hi = a * a;
    const double lo = fma(a, a, -hi);  /* a^2 = hi + lo exactly */
    const double phi = 0.3989422804014327 * exp(-0.5 * hi) * (1.0 - 0.5 * lo);
    /* -a Q(a) on the left keeps -inf out of the product */
    *y = x < 0.0 ? -a * p : x * p;
    *dydx = x < 0.0 ? p - a * phi : p + a * phi;
    if (x != x) {
        *y = x;
        *dydx = x;
    }
}

extern "C" __global__ void numlab_gelu_{ctype}(
    const {ctype}* x, {ctype}* y, const long long n)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        double v, d;
        numlab_gelu_parts((double)x[i], &v, &d);
        y[i] = ({ctype})v;
    }
}

extern "C" __global__ void numlab_gelu_with_grad_{ctype}(
    const {ctype}* x, {ctype}* y, {ctype}* dydx, const long long n)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        double v, d;
        numlab_gelu_parts((double)x[i], &v, &d);
        y[i] = ({ctype})v;
        dydx[i] = ({ctype})d;
    }
}
"""


def source(ctype):
    """The CUDA source for element type ``ctype`` (``"float"`` or ``"double"``)."""
    return _SOURCE.replace("{ctype}", ctype)


@cupy.memoize(for_each_device=True)
def _module(ctype):
    return cupy.RawModule(code=source(ctype))


def _prepare(x):
    ctype = _CTYPES.get(cupy.dtype(x.dtype))
    if ctype is None:
        raise TypeError(f"numlab: x must be a float32 or float64 array, got dtype {x.dtype}")
    flat = cupy.ascontiguousarray(x).reshape(-1)
    blocks = max(1, min((flat.size + _THREADS - 1) // _THREADS, 65535))
    return ctype, flat, (blocks,)


def gelu(x):
    """The exact GELU ``x Phi(x)`` (see :func:`numlab.operators._kernels.gelu`)."""
    ctype, flat, grid = _prepare(x)
    y = cupy.empty_like(flat)
    if flat.size:
        _module(ctype).get_function(f"numlab_gelu_{ctype}")(
            grid, (_THREADS,), (flat, y, cupy.int64(flat.size))
        )
    return y.reshape(x.shape)


def gelu_with_grad(x):
    """GELU and its derivative (see :func:`numlab.operators._kernels.gelu_with_grad`)."""
    ctype, flat, grid = _prepare(x)
    y = cupy.empty_like(flat)
    dydx = cupy.empty_like(flat)
    if flat.size:
        _module(ctype).get_function(f"numlab_gelu_with_grad_{ctype}")(
            grid, (_THREADS,), (flat, y, dydx, cupy.int64(flat.size))
        )
    return y.reshape(x.shape), dydx.reshape(x.shape)
