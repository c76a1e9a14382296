"""Shared input checks. Every message has one shape::

    `name` must be <expectation>; got <what was received>.

so that a user reading it knows which argument, what was expected and what arrived.
Checks that need the data (finiteness, sums) force a device sync on GPU arrays; they
run once at the entry of a public function, never inside an iteration. Lazy (Dask)
arrays are refused unless the caller says it takes them (``allow_lazy``); on those the
data checks are skipped: computing the whole array only to check it would double the
work.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

from . import _backend

__all__ = [
    "check_array",
    "check_row_chunked",
    "check_probability_vector",
    "check_scalar",
    "check_int",
    "check_option",
    "check_rng",
    "check_like",
    "check_real_values",
    "check_sparse_structure",
    "check_bool",
]

#: Sparse formats whose index arrays :func:`check_sparse_structure` reads directly; the
#: others (DOK, LIL, DIA) are converted to CSR by :func:`check_array` and checked as such.
_CHECKED_SPARSE_FORMATS = ("csr", "csc", "bsr", "coo")


def _shape_text(shape) -> str:
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def _is_float16(dtype, xp) -> bool:
    # not ``dtype == getattr(xp, "float16", None)``: NumPy reads None as float64
    half = getattr(xp, "float16", None)
    return half is not None and dtype == half


def check_array(
    x,
    name,
    *,
    xp=None,
    ndim=None,
    shape=None,
    dtype="real floating",
    finite=True,
    allow_empty=False,
    allow_sparse=False,
    allow_lazy=False,
):
    """Check an array argument and return it (a floating copy if it held integers).

    Parameters
    ----------
    x : array
        The argument; it must already be an array of some backend (or a sparse matrix
        when ``allow_sparse``). Python lists are converted with NumPy.
    name : str
        The argument's name, used in messages.
    xp : namespace, optional
        Namespace of ``x`` when already known.
    ndim : int or tuple of int, optional
        Accepted numbers of dimensions.
    shape : tuple, optional
        Expected shape; ``None`` entries match any length.
    dtype : {"real floating", "numeric", None}
        ``"real floating"`` accepts float32/float64, converts integers and booleans to
        the default float and float16 to float32; ``"numeric"`` accepts any real number
        dtype; ``None`` anything.
    finite : bool
        Refuse NaN and infinity.
    allow_empty : bool
        Accept arrays with a zero-length axis.
    allow_sparse : bool
        Accept ``scipy.sparse`` / ``cupyx.scipy.sparse`` matrices.
    allow_lazy : bool
        Accept lazy (Dask) arrays. Off by default: code that was not written for them
        fails deep inside, or builds task graphs 1000x slower than NumPy.

    Returns
    -------
    array or sparse matrix
        ``x``, converted to floating point when ``dtype="real floating"`` asks for it.
    """
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    sparse = _backend.is_sparse(x)
    if sparse and not allow_sparse:
        raise TypeError(f"`{name}` must be a dense array; got a sparse {type(x).__name__}")
    if not sparse and not _backend.is_array(x):
        raise TypeError(f"`{name}` must be an array; got {type(x).__name__}")
    if not allow_lazy and _backend.is_lazy(x):
        raise TypeError(
            f"`{name}` must be an in-memory array (NumPy, CuPy, ...); got a lazy "
            f"{type(x).__module__.split('.')[0]} array, which this function does not take: "
            "compute it first"
        )
    if sparse:
        if getattr(x, "format", None) == "dia":
            offsets, data = x.offsets, x.data
            if offsets.ndim != 1 or data.ndim != 2 or data.shape[0] != offsets.shape[0]:
                raise ValueError(
                    f"`{name}` must be a well-formed sparse DIA matrix; got {offsets.shape[0]} "
                    f"offsets for data of shape {tuple(data.shape)}"
                )
        if getattr(x, "format", None) not in _CHECKED_SPARSE_FORMATS:
            # DOK/LIL/DIA hold no index arrays a kernel could read (nor a flat ``data``):
            # their CSR form is what the caller's kernels see, so check that.
            x = x.tocsr()
        check_sparse_structure(x, name)
    if xp is None:
        xp = _backend.namespace(**{name: x})
    elif not (type(x) is np.ndarray and _backend.is_numpy(xp)):
        # the caller's namespace comes from the other arguments: an array of another
        # library would fail later with an error that names nothing
        xp = _backend.namespace(xp=xp)
        own = _backend.namespace(**{name: x})
        if own is not xp:
            raise TypeError(
                f"`{name}` must be an array of the same library as the other arguments "
                f"({xp.__name__}); got {_backend.library_name(x)}"
            )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            expected = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"`{name}` must be a {expected} array; got {x.ndim}-D with shape {tuple(x.shape)}")
    if shape is not None:
        if len(shape) != x.ndim or any(e is not None and e != s for e, s in zip(shape, x.shape)):
            raise ValueError(f"`{name}` must have shape {_shape_text(shape)}; got {tuple(x.shape)}")
    if not allow_empty and any(s == 0 for s in x.shape):
        raise ValueError(f"`{name}` must not be empty; got shape {tuple(x.shape)}")
    if dtype is not None:
        if xp.isdtype(x.dtype, "complex floating"):
            raise TypeError(f"`{name}` must be real; got complex dtype {x.dtype}")
        if not xp.isdtype(x.dtype, ("real floating", "integral", "bool")):
            raise TypeError(f"`{name}` must have a real numeric dtype; got {x.dtype}")
        if dtype == "real floating" and not xp.isdtype(x.dtype, "real floating"):
            x = x.astype(np.float64) if sparse else xp.astype(x, _backend.float_dtype(xp, x))
        elif dtype == "real floating" and _is_float16(x.dtype, xp):
            # no LAPACK routine nor Numba kernel takes half precision
            x = x.astype(np.float32) if sparse else xp.astype(x, xp.float32)
    if finite and not _backend.is_lazy(x):
        values = x.data if sparse else x
        if xp.isdtype(values.dtype, "real floating") and not bool(xp.all(xp.isfinite(values))):
            raise ValueError(f"`{name}` must contain only finite values; got NaN or infinity")
    return x


def check_row_chunked(x, name, *, allow_sparse=True):
    """A 2-D Dask array chunked by rows only, with NumPy (or scipy.sparse) blocks.

    No data is read. The number of columns must be known; row chunk sizes may be
    unknown (NaN). A block must hold whole rows because the kernels that run on it
    (projections, products with a small matrix) work row by row: column chunks would
    need a reduction that changes the summation order, so they are refused rather
    than silently rechunked (which can exceed a worker's memory).
    """
    import math

    x = check_array(x, name, ndim=2, dtype="numeric", allow_lazy=True)
    meta = getattr(x, "_meta", None)
    sparse = type(meta).__module__.startswith("scipy.sparse")
    if not (isinstance(meta, np.ndarray) or (allow_sparse and sparse)):
        kinds = "NumPy or scipy.sparse" if allow_sparse else "NumPy"
        raise TypeError(
            f"`{name}` must be a Dask array of {kinds} blocks; got {type(meta).__name__} blocks"
        )
    n = x.shape[1]
    if n is None or (isinstance(n, float) and math.isnan(n)):
        raise ValueError(
            f"`{name}` must have a known number of columns; got shape {x.shape} "
            f"(call `{name}.compute_chunk_sizes()` first)"
        )
    if x.numblocks[1] != 1:
        raise ValueError(
            f"`{name}` must be chunked by rows only (one chunk across its {n} columns); got "
            f"{x.numblocks[1]} column chunks: pass `{name}.rechunk({{1: -1}})`"
        )
    return x


def check_probability_vector(a, name, n, *, xp=None, dtype=None, device=None, rtol=1e-6):
    """A probability vector of length ``n``; empty or None means uniform.

    Returns the vector as an ``xp`` array (of ``dtype`` on ``device`` when given).
    Entries must be non-negative and sum to 1 within ``rtol``.
    """
    if a is None or (a.shape if hasattr(a, "shape") else np.shape(a)) == (0,):
        xp = _backend.namespace(xp=xp)
        return xp.full((n,), 1.0 / n, dtype=dtype or xp.float64, device=device)
    a = check_array(a, name, xp=xp, ndim=1, shape=(n,))
    xp = _backend.namespace(a, xp=xp)
    if dtype is not None:
        a = xp.astype(a, dtype)
    if bool(xp.any(a < 0)):
        raise ValueError(f"`{name}` must be non-negative; got a minimum of {float(xp.min(a))!r}")
    total = float(xp.sum(a))
    tol = max(rtol, 100 * float(xp.finfo(a.dtype).eps))
    if abs(total - 1.0) > tol:
        raise ValueError(f"`{name}` must sum to 1 (a probability vector); got a sum of {total!r}")
    return a


def check_scalar(value, name, *, low=None, high=None, low_inclusive=False, high_inclusive=True):
    """A real scalar in the interval given by ``low`` / ``high``; returned as float.

    By default ``low`` is exclusive and ``high`` inclusive: ``check_scalar(reg, "reg",
    low=0)`` means ``reg > 0``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value!r}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"`{name}` must be {op} {low}; got {value!r}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise ValueError(f"`{name}` must be {op} {high}; got {value!r}")
    return value


def check_int(value, name, *, low=None, high=None):
    """An integer with ``low <= value <= high``; returned as int."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an integer; got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"`{name}` must be an integer; got {value!r} of type {type(value).__name__}"
        ) from None
    if low is not None and value < low:
        raise ValueError(f"`{name}` must be >= {low}; got {value}")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be <= {high}; got {value}")
    return value


def check_bool(value, name):
    """``True`` or ``False`` (NumPy booleans too); returned as bool. Strings such as
    ``"yes"`` and numbers are refused: they are truthy whatever they say."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"`{name}` must be True or False; got {value!r} of type {type(value).__name__}")


def check_option(value, name, options):
    """One of ``options`` (compared with ``==``); returned unchanged."""
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"`{name}` must be one of {listed}; got {value!r}")
    return value


def check_rng(rng, name="rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` from None, an int seed or a Generator (SPEC 7).

    The legacy ``numpy.random.RandomState`` is refused: its streams differ from the
    Generator's and mixing them makes results irreproducible.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        if rng is not None and rng < 0:
            raise ValueError(f"`{name}` must be a non-negative integer seed; got {rng}")
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.SeedSequence | np.random.BitGenerator):
        return np.random.default_rng(rng)
    raise TypeError(
        f"`{name}` must be None, an integer seed or a numpy.random.Generator; "
        f"got {type(rng).__name__}"
        + (" (use numpy.random.default_rng instead of RandomState)"
           if isinstance(rng, np.random.RandomState) else "")
    )


def check_like(like, name="like"):
    """None or an array whose library, device and dtype a result should take; returned as is.

    Only the kind of array matters (no data is read), so lazy arrays pass.
    """
    if _backend.is_array(like) and not _backend.is_sparse(like):
        xp = _backend.namespace(like)
        if xp.isdtype(like.dtype, "complex floating"):
            raise TypeError(
                f"`{name}` must be None or a real array whose library and device the result "
                f"takes; got complex dtype {like.dtype}"
            )
        if not xp.isdtype(like.dtype, ("bool", "numeric")):
            raise TypeError(
                f"`{name}` must be None or an array of numbers (NumPy, CuPy, ...) whose library "
                f"and device the result takes; got an array of dtype {like.dtype}"
            )
        return like
    if like is None:
        return like
    raise TypeError(
        f"`{name}` must be None or an array (NumPy, CuPy, ...) whose library and device the "
        f"result takes; got {type(like).__name__}"
    )


def check_real_values(x, name, expectation="an array_like of real numbers", *, finite=False):
    """A small host-side argument (a number or array_like of them, any backend) as a float64
    NumPy array of its shape: batch sizes, Ritz values, grids. Bool, str and None are refused.
    """
    arr = None
    if x is not None and not isinstance(x, (str, bytes)):
        arr = np.asarray(_backend.to_numpy(x) if _backend.is_array(x) else x)
    if arr is None or arr.dtype.kind not in "iuf":
        got = f"dtype {arr.dtype}" if arr is not None else type(x).__name__
        raise TypeError(f"`{name}` must be {expectation}; got {got}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite; got {x!r}")
    return arr.astype(np.float64)


def _index_range(idx, xp):
    """``(min, max)`` of a non-empty integer index array, as Python ints (one sync)."""
    bounds = xp.stack([xp.min(idx), xp.max(idx)])
    lo, hi = (int(v) for v in _backend.to_numpy(bounds).tolist())
    return lo, hi


def check_sparse_structure(x, name):
    """Check the index arrays of a CSR / CSC / BSR / COO matrix; returns ``x``.

    SciPy and CuPy do not check index bounds when a matrix is built from arrays (nor
    when its ``indices`` / ``indptr`` are changed afterwards), and the compiled code
    that reads them (SciPy's own products and conversions, numlab's Numba and CUDA
    kernels) does not either: an out-of-range index kills the interpreter. This check
    costs ``O(nnz + n_rows)`` vectorised operations (a min/max of the indices, a
    difference of ``indptr``) and one device sync on GPU matrices; it runs before
    any kernel or conversion reads the matrix.

    Raises
    ------
    ValueError
        If ``indptr`` is not an array of ``n_major + 1`` non-decreasing integers from 0 to
        at most ``len(indices)``, if ``indices`` / ``data`` lengths differ, or if an index
        is negative or not below its dimension.
    """
    fmt = getattr(x, "format", None)
    if fmt not in _CHECKED_SPARSE_FORMATS:
        return x
    xp = _backend.namespace(x.data)
    what = f"a well-formed sparse {fmt.upper()} matrix of shape {tuple(x.shape)}"

    def bad(detail):
        return ValueError(f"`{name}` must be {what}; got {detail}")

    def index_array(arr, label):
        if not _backend.is_array(arr) or arr.ndim != 1 or not xp.isdtype(arr.dtype, "integral"):
            got = type(arr).__name__
            if hasattr(arr, "dtype"):
                got = f"dtype {arr.dtype}, shape {tuple(arr.shape)}"
            raise bad(f"`{label}` that is not a 1-D integer array ({got})")

    def in_range(idx, size, label):
        if idx.shape[0] == 0:
            return
        lo, hi = _index_range(idx, xp)
        if lo < 0:
            raise bad(f"a negative {label} ({lo})")
        if hi >= size:
            raise bad(f"a {label} of {hi}, out of range for size {size}")

    if fmt == "coo":
        coords = getattr(x, "coords", None)
        if coords is None:
            coords = (x.row, x.col)
        if len(coords) != len(x.shape):
            raise bad(f"{len(coords)} coordinate arrays for {len(x.shape)} dimensions")
        n = x.data.shape[0] if x.data.ndim == 1 else -1
        for axis, (idx, size) in enumerate(zip(coords, x.shape, strict=True)):
            label = f"axis-{axis} index"
            if len(x.shape) == 2:
                label = ("row index", "column index")[axis]
            index_array(idx, label)
            if idx.shape[0] != n:
                raise bad(f"{idx.shape[0]} {label.split()[0]} indices for {x.data.shape[0]} values")
            in_range(idx, size, label)
        return x

    indptr, indices = x.indptr, x.indices
    index_array(indptr, "indptr")
    index_array(indices, "indices")
    if fmt == "bsr":
        r, c = x.blocksize
        n_major, n_minor = x.shape[0] // r, x.shape[1] // c
        if x.data.ndim != 3 or tuple(x.data.shape[1:]) != (r, c):
            raise bad(f"blocks of shape {tuple(x.data.shape[1:])} for blocksize {(r, c)}")
    else:
        n_major, n_minor = (x.shape[0], x.shape[1]) if fmt == "csr" else (x.shape[1], x.shape[0])
    minor = "column" if fmt in ("csr", "bsr") else "row"
    if indptr.shape[0] != n_major + 1:
        raise bad(f"`indptr` of length {indptr.shape[0]} (expected {n_major + 1})")
    if indices.shape[0] != x.data.shape[0]:
        raise bad(f"{indices.shape[0]} indices for {x.data.shape[0]} values")
    first, last = int(indptr[0]), int(indptr[-1])
    if first != 0:
        raise bad(f"`indptr[0]` = {first} (expected 0)")
    if last > indices.shape[0]:
        raise bad(f"`indptr[-1]` = {last}, more than the {indices.shape[0]} stored indices")
    if n_major and bool(xp.any(indptr[1:] < indptr[:-1])):
        raise bad("an `indptr` that decreases (it must be non-decreasing)")
    in_range(indices[:last], n_minor, f"{minor} index")
    return x
