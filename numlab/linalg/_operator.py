"""The input matrix seen as block products ``A @ X`` and ``A.T @ Y``.

Randomized SVD touches ``A`` only through products with tall, thin blocks, so dense
arrays, sparse matrices and SciPy ``LinearOperator`` objects all reduce to one small
record: the two products, the shape, the namespace of the blocks and, when it is cheap,
the squared Frobenius norm. A record can also be *cast*: the same matrix held in
float32, so that the memory-bound passes of the range finder move half the bytes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from .. import _backend
from .._validation import check_array


def _wide_dtype(xp, device):
    """float64 where the device has it: the precision of the final orthonormalisation."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        try:
            if "float64" not in info().dtypes(device=device, kind="real floating"):
                return xp.float32
        except TypeError:
            pass
    return xp.float64


def squared_norm(X, xp) -> float:
    """``||X||_F**2`` of a dense matrix as a Python float.

    Row dot products in X's dtype, summed in float64 where the device has it: one
    BLAS-speed pass with no temporary the size of X (NumPy 2's ``vector_norm`` of a whole
    matrix takes ~100x longer), and float32 input loses no more than a row's rounding.
    """
    rows = xp.vecdot(X, X)
    return float(xp.sum(xp.astype(rows, _wide_dtype(xp, _backend.device(X)))))


@dataclasses.dataclass(frozen=True)
class Operator:
    """``A`` as the products ``matmat(X) = A @ X`` and ``rmatmat(Y) = A.T @ Y``.

    Attributes
    ----------
    matmat, rmatmat : callable
        Block products; a block of dtype ``dtype`` gives a block of dtype ``dtype``.
    shape : (int, int)
    xp : namespace
        Namespace of the blocks (and of the results).
    device : device
        Where the blocks live.
    dtype : dtype
        The dtype the products compute in.
    kind : {"dense", "sparse", "operator"}
    cast : callable or None
        ``cast(dtype)`` gives the same matrix computing in ``dtype`` (None when the
        input cannot be cast, e.g. a LinearOperator).
    frobenius2 : callable or None
        ``frobenius2()`` gives ``||A||_F**2`` as a Python float (None when unknown).
    nnz : int or None
        Stored entries (``m * n`` for dense input, None for a LinearOperator).
    scale : float
        The products are those of ``scale * A`` (a power of two, exact): entries of
        magnitude beyond ``max**0.25`` or below ``smallest_normal**0.25`` are brought
        near 1 first, so that Gram matrices neither overflow nor underflow. Singular
        values are divided by it at the end.
    """

    matmat: Callable
    rmatmat: Callable
    shape: tuple[int, int]
    xp: object
    device: object
    dtype: object
    kind: str
    cast: Callable | None = None
    frobenius2: Callable | None = None
    nnz: int | None = None
    scale: float = 1.0

    @property
    def T(self) -> Operator:
        """The transposed matrix (products swapped)."""
        cast = self.cast
        return dataclasses.replace(
            self,
            matmat=self.rmatmat,
            rmatmat=self.matmat,
            shape=self.shape[::-1],
            cast=None if cast is None else (lambda dtype: cast(dtype).T),
        )


def _is_linear_operator(A) -> bool:
    # scipy.sparse.linalg.LinearOperator and cupyx's copy of it, without importing either.
    module = type(A).__module__
    return module.startswith(("scipy.sparse.linalg", "cupyx.scipy.sparse.linalg")) and hasattr(
        A, "matmat"
    )


def _dense(A, xp) -> Operator:
    def cast(dtype):
        if dtype == A.dtype:
            return op
        return _dense(xp.astype(A, dtype), xp)

    def frobenius2():
        return squared_norm(A, xp)

    op = Operator(
        matmat=lambda X: A @ X,
        rmatmat=lambda Y: A.T @ Y,
        shape=tuple(A.shape),
        xp=xp,
        device=_backend.device(A),
        dtype=A.dtype,
        kind="dense",
        cast=cast,
        frobenius2=frobenius2,
        nnz=int(A.shape[0] * A.shape[1]),
    )
    return op


def _sparse(A, xp) -> Operator:
    # CSR (rows contiguous) serves A @ X; its transpose view (CSC) serves A.T @ Y.
    A = _backend.as_csr(A, xp=xp) if A.format not in ("csr", "csc") else A
    At = A.T

    def cast(dtype):
        if dtype == A.dtype:
            return op
        return _sparse(A.astype(dtype), xp)

    def frobenius2():
        return float(xp.sum(A.data * A.data))

    op = Operator(
        matmat=lambda X: A @ X,
        rmatmat=lambda Y: At @ Y,
        shape=tuple(A.shape),
        xp=xp,
        device=_backend.device(A),
        dtype=xp.asarray(A.data[:0]).dtype,
        kind="sparse",
        cast=cast,
        frobenius2=frobenius2,
        nnz=int(A.nnz),
    )
    return op


def _linear_operator(A) -> Operator:
    import numpy as np

    if type(A).__module__.startswith("cupyx"):
        import cupy

        xp = _backend.namespace(cupy.empty(0))
    else:
        xp = _backend.namespace(np.empty(0))
    dtype = np.dtype(A.dtype if A.dtype is not None else np.float64)
    if dtype.kind == "c":
        raise TypeError(f"`A` must be real; got a LinearOperator of complex dtype {dtype}")
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    dtype = getattr(xp, dtype.name)

    m, n = A.shape

    def product(method, X, rows):
        # The caller's operator is the one piece of input seen only through its products:
        # check what they return (shape always; values on the host, where it costs no sync).
        what = f"`A.{method}` (A a LinearOperator of shape {(m, n)})"
        try:
            Y = getattr(A, method)(X)
        except ValueError as exc:
            raise ValueError(
                f"{what} must return an array of shape ({rows}, {X.shape[1]}); it raised: {exc}"
            ) from exc
        Y = xp.asarray(Y, dtype=dtype)
        if tuple(Y.shape) != (rows, X.shape[1]):
            raise ValueError(
                f"{what} must return an array of shape ({rows}, {X.shape[1]}); got {tuple(Y.shape)}"
            )
        if _backend.is_numpy(xp) and not bool(xp.all(xp.isfinite(Y))):
            raise ValueError(f"{what} must return only finite values; got NaN or infinity")
        return Y

    def matmat(X):
        return product("matmat", X, m)

    def rmatmat(Y):
        return product("rmatmat", Y, n)

    return Operator(
        matmat=matmat,
        rmatmat=rmatmat,
        shape=tuple(A.shape),
        xp=xp,
        device=None if xp is None else _backend.device(xp.empty(0)),
        dtype=dtype,
        kind="operator",
    )


def as_operator(A, name="A") -> Operator:
    """Validate ``A`` (2-D, real, finite, not empty) and wrap it as an :class:`Operator`.

    Integer input computes in the default float; float32 stays float32.
    """
    if _is_linear_operator(A):
        if len(A.shape) != 2 or 0 in A.shape:
            raise ValueError(f"`{name}` must be a non-empty 2-D operator; got shape {A.shape}")
        return _linear_operator(A)
    A = check_array(A, name, ndim=2, allow_sparse=True)
    xp = _backend.namespace(A)
    sparse = _backend.is_sparse(A)
    A, scale = _scaled(A, xp, sparse)
    op = _sparse(A, xp) if sparse else _dense(A, xp)
    return op if scale == 1.0 else dataclasses.replace(op, scale=scale)


def _scaled(A, xp, sparse):
    """``(scale * A, scale)`` with a power-of-two scale that keeps squares representable.

    1e300-sized entries gave an inf Gram matrix ("Eigenvalues did not converge"), and
    1e-300-sized ones a zero one; singular values scale exactly, bases not at all.
    """
    values = A.data if sparse else A
    if values.shape[0] == 0 or (sparse and A.nnz == 0):
        return A, 1.0
    # two reductions and no temporary of A's size (as abs would make)
    amax = max(float(xp.max(values)), -float(xp.min(values)))
    info = xp.finfo(values.dtype)
    if amax == 0 or float(info.smallest_normal) ** 0.25 <= amax <= float(info.max) ** 0.25:
        return A, 1.0
    scale = 2.0 ** -math.frexp(amax)[1]
    return A * scale, scale
