"""CuPy kernels, one module per algorithm family.

Imported only by :mod:`numlab._dispatch` when a CuPy array reaches a kernel: CUDA source
strings compiled by per-device memoized factories (``cupy.memoize(for_each_device=True)``)
with descriptive kernel names.
"""
