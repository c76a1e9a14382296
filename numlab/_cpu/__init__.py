"""Numba kernels, one module per algorithm family.

Imported only by :mod:`numlab._dispatch` when a NumPy array reaches a kernel. Rules:
plain arrays and scalars in, ``cache=True``, no ``fastmath`` (it lets NaN checks be
optimised away), no globals; each kernel also runs as Python under ``NUMBA_DISABLE_JIT=1``.
"""
