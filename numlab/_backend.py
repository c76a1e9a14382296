"""Array backends: the one module of numlab that knows library names.

Every public function asks its inputs for their namespace with :func:`namespace` and
then uses only that ``xp``, placing new arrays on the inputs' device (:func:`device`)
with the inputs' dtype. NumPy conversion happens only at explicit boundaries
(:func:`to_numpy`); nothing here imports CuPy or Dask unless such an array arrives.

Sparse matrices (``scipy.sparse`` and ``cupyx.scipy.sparse``) count as arrays of
their dense library: a CSR matrix has the NumPy namespace, a cupyx one the CuPy one.
"""

from __future__ import annotations

import array_api_compat as _compat
import numpy as np

__all__ = [
    "namespace",
    "device",
    "to_device",
    "to_numpy",
    "asarray",
    "size",
    "is_numpy",
    "is_cupy",
    "is_dask",
    "is_strict",
    "is_lazy",
    "is_array",
    "is_sparse",
    "sparse_module",
    "as_csr",
    "numpy_dtype",
    "float_dtype",
    "is_real_floating",
    "random_normal",
    "random_uniform",
    "random_integers",
    "fft_namespace",
]

size = _compat.size
is_array = _compat.is_array_api_obj
is_lazy = _compat.is_lazy_array


# --------------------------------------------------------------------------- namespaces


def is_sparse(x) -> bool:
    """True for a ``scipy.sparse`` or ``cupyx.scipy.sparse`` matrix or array."""
    module = type(x).__module__
    # scipy.sparse.linalg (LinearOperator) shares the prefix but holds no matrices.
    return module.startswith(("scipy.sparse", "cupyx.scipy.sparse")) and ".linalg" not in module


def _dense_stand_in(x):
    """An object whose namespace and device are those of ``x``.

    A sparse matrix stands for its dense library; its ``data`` array carries both.
    """
    if is_sparse(x):
        # DOK and LIL matrices hold no ``data`` array; they are SciPy's (host) formats
        data = getattr(x, "data", None)
        return data if is_array(data) else np.empty(0)
    return x


def library_name(x) -> str:
    """The library an argument comes from, as a user would name it (``numpy.ndarray``)."""
    x = _dense_stand_in(x)
    return f"{type(x).__module__.split('.')[0]}.{type(x).__qualname__}"


def _mixed_libraries_error(named):
    """TypeError naming the argument(s) whose library differs from the others'.

    ``named`` is a list of ``(name, array)``; the reference library is the one most
    arguments share (the first argument's on a tie).
    """
    libs = [(name, library_name(x)) for name, x in named]
    counts = {}
    for _, lib in libs:
        counts[lib] = counts.get(lib, 0) + 1
    ref = max(counts, key=lambda lib: (counts[lib], -[v for _, v in libs].index(lib)))
    odd = [f"`{name}` is of type {lib}" for name, lib in libs if lib != ref]
    same = ", ".join(f"`{name}`" for name, lib in libs if lib == ref)
    verb = "is" if counts[ref] == 1 else "are"
    return TypeError(
        f"numlab: {'; '.join(odd)} while {same} {verb} {ref}: arguments from different "
        "array libraries are not mixed (convert them to one library first: numlab never "
        "converts between libraries silently)"
    )


def namespace(*arrays, xp=None, **named):
    """The array namespace shared by ``arrays`` (array-api-compat wrapped).

    ``None`` and Python scalars are ignored. Arrays from different libraries, or on
    different devices, are an error: numlab never moves data between devices silently.
    Arrays passed by keyword are named in that error (``namespace(a=a, M=M)``).

    Parameters
    ----------
    *arrays : arrays, sparse matrices, Python scalars or None
        Arguments named by position in messages.
    **named : arrays, sparse matrices, Python scalars or None
        Arguments named by their keyword in messages.
    xp : namespace, optional
        Returned when given (lets a caller that already knows skip the work); a plain
        library module (``numpy``, ``cupy``), which lacks parts of the array API
        (``isdtype``, ``asarray(device=)``), is replaced by its wrapped namespace.

    Returns
    -------
    xp : module
        The array-API namespace (NumPy when every argument is a scalar or None).

    Raises
    ------
    TypeError
        If the arrays come from different libraries.
    ValueError
        If the arrays live on different devices.
    """
    if xp is not None:
        if getattr(xp, "__name__", "").startswith(("array_api_compat.", "array_api_strict")):
            return xp
        return _compat.array_namespace(xp.empty(0))
    given = [(f"argument {i + 1}", a) for i, a in enumerate(arrays)] + list(named.items())
    given = [
        (name, a) for name, a in given
        if a is not None and not isinstance(a, (bool, int, float, complex))
    ]
    dense = [_dense_stand_in(a) for _, a in given]
    if not dense:
        return _compat.array_namespace(np.empty(0))
    try:
        xp = _compat.array_namespace(*dense)
    except TypeError:
        raise _mixed_libraries_error(given) from None
    devices = []
    for a in dense:
        d = _compat.device(a)
        if not any(d == seen for seen in devices):
            devices.append(d)
    if len(devices) > 1:
        where = ", ".join(
            f"`{name}` on {_compat.device(a)}"
            for (name, _), a in zip(given, dense, strict=True)
        )
        raise ValueError(
            f"numlab: the array arguments live on different devices ({where}); move "
            "them to one device first"
        )
    return xp


def is_numpy(xp) -> bool:
    """True when ``xp`` is NumPy's namespace (plain or array-api-compat wrapped)."""
    return _compat.is_numpy_namespace(xp)


def is_cupy(xp) -> bool:
    """True when ``xp`` is CuPy's namespace (plain or array-api-compat wrapped)."""
    return _compat.is_cupy_namespace(xp)


def is_dask(xp) -> bool:
    """True when ``xp`` is ``dask.array`` (plain or array-api-compat wrapped)."""
    return _compat.is_dask_namespace(xp)


def is_strict(xp) -> bool:
    """True when ``xp`` is ``array_api_strict`` (used in tests only)."""
    return _compat.is_array_api_strict_namespace(xp)


# --------------------------------------------------------------------------- devices


def device(x):
    """The device of an array or sparse matrix (``"cpu"`` for NumPy and Dask)."""
    return _compat.device(_dense_stand_in(x))


def to_device(x, device, /):
    """Move ``x`` to ``device`` (explicit, never implicit)."""
    return _compat.to_device(x, device)


def to_numpy(x) -> np.ndarray:
    """A NumPy copy (or view) of ``x`` from any backend.

    CuPy arrays are copied to the host, Dask arrays computed, array-api-strict arrays on
    another device moved to the CPU first. Sparse matrices become ``scipy.sparse``.
    For tests, CLI output and explicit conversion: algorithm code stays on ``xp``.
    """
    if is_sparse(x):
        if type(x).__module__.startswith("cupyx"):
            return x.get()
        return x
    if isinstance(x, np.ndarray):
        return x
    if _compat.is_cupy_array(x):
        return x.get()
    if _compat.is_dask_array(x):
        return np.asarray(x.compute())
    if _compat.is_array_api_strict_namespace(_compat.array_namespace(x)):
        import array_api_strict

        x = x.to_device(array_api_strict.Device("CPU_DEVICE"))
        return np.from_dlpack(x)
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)


def asarray(x, *, xp, device=None, dtype=None):
    """``x`` (any array-like, NumPy included) as an array of ``xp`` on ``device``.

    A NumPy array going to Dask becomes a single-chunk Dask array.
    """
    if is_dask(xp) and isinstance(x, np.ndarray):
        import dask.array

        x = dask.array.from_array(x, chunks=x.shape or ())
        return x if dtype is None else xp.astype(x, dtype)
    if is_strict(xp) and isinstance(x, np.ndarray):
        # array-api-strict refuses NumPy arrays for non-CPU devices; go through the CPU.
        x = xp.asarray(x, dtype=dtype)
        return x if device is None else x.to_device(device)
    return xp.asarray(x, device=device, dtype=dtype)


# --------------------------------------------------------------------------- dtypes

_DTYPE_NAMES = (
    "float32",
    "float64",
    "complex64",
    "complex128",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
)


def numpy_dtype(dtype, xp=None) -> np.dtype:
    """The NumPy dtype equal to ``dtype`` of namespace ``xp``."""
    try:
        return np.dtype(dtype)
    except TypeError:
        pass
    if xp is not None:
        for name in _DTYPE_NAMES:
            if dtype == getattr(xp, name, None):
                return np.dtype(name)
    raise TypeError(f"numlab: cannot map dtype {dtype!r} to a NumPy dtype")


def is_real_floating(xp, dtype) -> bool:
    """True for float32/float64 (and float16 where the backend has it)."""
    return xp.isdtype(dtype, "real floating")


def float_dtype(xp, *arrays, **named):
    """The real floating dtype of a computation on ``arrays``.

    float32 stays float32, mixed float32/float64 gives float64, and integer or boolean
    input computes in the backend's default float (float64, or float32 on devices without
    float64). Complex input is refused: numlab's algorithms are real. Arrays passed by
    keyword are named in that error.
    """
    for name, a in named.items():
        if hasattr(a, "dtype") and xp.isdtype(a.dtype, "complex floating"):
            raise TypeError(f"`{name}` must be real; got complex dtype {a.dtype}")
    arrays = arrays + tuple(named.values())
    dtypes = [a.dtype for a in arrays if hasattr(a, "dtype")]
    floats = [d for d in dtypes if xp.isdtype(d, "real floating")]
    if any(xp.isdtype(d, "complex floating") for d in dtypes):
        raise TypeError("numlab: complex input is not supported; pass real arrays")
    if floats:
        return xp.result_type(*floats)
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None and arrays:
        return info().default_dtypes(device=device(arrays[0]))["real floating"]
    return xp.float64


# --------------------------------------------------------------------------- randomness
#
# Draws come from one numpy.random.Generator on the host and are then placed on the
# target backend and device: the same seed gives the same numbers on every backend, and
# no backend-specific random API is needed (array-api-strict has none).


def _host_dtype(dtype, xp):
    return np.float64 if dtype is None else numpy_dtype(dtype, xp)


def random_normal(rng, shape, *, xp, device=None, dtype=None):
    """Standard normal draws of ``shape`` from ``rng`` as an ``xp`` array on ``device``.

    Drawn in float64 and rounded to ``dtype``, so that a float32 run sees the same
    numbers as a float64 one.
    """
    x = rng.standard_normal(shape).astype(_host_dtype(dtype, xp), copy=False)
    return asarray(x, xp=xp, device=device, dtype=dtype)


def random_uniform(rng, shape, *, low=0.0, high=1.0, xp, device=None, dtype=None):
    """Uniform draws on ``[low, high)`` of ``shape`` as an ``xp`` array on ``device``."""
    host_dtype = _host_dtype(dtype, xp)
    x = rng.uniform(low, high, size=shape).astype(host_dtype, copy=False)
    return asarray(x, xp=xp, device=device, dtype=dtype)


def random_integers(rng, low, high, shape, *, xp, device=None, dtype=None):
    """Integers on ``[low, high)`` of ``shape`` as an ``xp`` array on ``device``."""
    x = rng.integers(low, high, size=shape, dtype=np.int64)
    if dtype is not None:
        x = x.astype(numpy_dtype(dtype, xp), copy=False)
    return asarray(x, xp=xp, device=device, dtype=dtype)


# --------------------------------------------------------------------------- FFT


def fft_namespace(xp):
    """The FFT module to use for arrays of ``xp``: ``scipy.fft`` for NumPy, ``xp.fft`` otherwise.

    ``scipy.fft`` keeps float32 in single precision (``numpy.fft`` computes in float64 and
    costs 2-5x more on float32 data) and runs one thread unless asked (``workers=``); it
    has the array API's ``rfftn(x, s=, axes=, norm=)`` / ``irfftn`` signatures.
    """
    if is_numpy(xp):
        import scipy.fft

        return scipy.fft
    return xp.fft


# --------------------------------------------------------------------------- sparse


def sparse_module(xp):
    """``scipy.sparse`` for NumPy, ``cupyx.scipy.sparse`` for CuPy.

    Raises
    ------
    TypeError
        For backends without a sparse matrix library (Dask, array-api-strict, ...).
    """
    if is_numpy(xp):
        import scipy.sparse

        return scipy.sparse
    if is_cupy(xp):
        import cupyx.scipy.sparse

        return cupyx.scipy.sparse
    raise TypeError(f"numlab: sparse matrices are not supported for {xp.__name__} arrays")


def as_csr(x, *, xp=None):
    """``x`` as a CSR matrix of its library (sorted indices, no duplicates)."""
    xp = namespace(x, xp=xp)
    csr = sparse_module(xp).csr_matrix(x)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    return csr
