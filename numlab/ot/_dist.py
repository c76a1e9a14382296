"""Ground cost matrices between point clouds."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _backend
from .._validation import check_array, check_option

__all__ = ["dist"]

METRICS = ("sqeuclidean", "euclidean", "cityblock")


def dist(x1, x2=None, metric="sqeuclidean"):
    """Cost matrix between the rows of ``x1`` and ``x2`` (POT's ``ot.dist``).

    Parameters
    ----------
    x1 : array of shape (n, d)
        First point cloud.
    x2 : array of shape (m, d), optional
        Second point cloud; ``x1`` when omitted.
    metric : {"sqeuclidean", "euclidean", "cityblock"}
        Squared Euclidean distance (POT's default), Euclidean distance, or the L1 distance.

    Returns
    -------
    array of shape (n, m)
        The cost matrix ``M``: ``M[i, j]`` is the distance between ``x1[i]`` and
        ``x2[j]``, in the namespace, device and floating dtype of the inputs. Memory:
        ``M`` itself plus, for ``cityblock``, one ``n x m`` buffer (the sum runs over
        the ``d`` coordinates).

    Examples
    --------
    >>> import numpy as np
    >>> import numlab as nl
    >>> nl.ot.dist(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), metric="euclidean")
    array([[5.]])
    """
    metric = check_option(metric, "metric", METRICS)
    x1 = check_array(x1, "x1", ndim=2, allow_lazy=True)
    x2 = x1 if x2 is None else check_array(x2, "x2", ndim=2, allow_lazy=True)
    xp = _backend.namespace(x1=x1, x2=x2)
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(
            f"`x2` must have as many columns as `x1` ({x1.shape[1]}); got shape {tuple(x2.shape)}"
        )
    dtype = _backend.float_dtype(xp, x1, x2)
    x1, x2 = xp.astype(x1, dtype), xp.astype(x2, dtype)
    if metric == "cityblock":
        M = xp.zeros((x1.shape[0], x2.shape[0]), dtype=dtype, device=_backend.device(x1))
        for k in range(x1.shape[1]):
            M = M + xp.abs(x1[:, k][:, None] - x2[:, k][None, :])
        return M
    # Squares of entries beyond about sqrt(max) overflow (and below sqrt(tiny) underflow)
    # although the distances may be representable: such clouds are scaled by a power of
    # two (exact) first; ordinary magnitudes are left as they are (bit-identical).
    scale = 1.0
    if not _backend.is_lazy(x1) and not _backend.is_lazy(x2):
        big = max(float(xp.max(xp.abs(x1))), float(xp.max(xp.abs(x2))))
        finfo = xp.finfo(dtype)
        if big > float(finfo.max) ** 0.25 or 0 < big < float(finfo.smallest_normal) ** 0.25:
            scale = 2.0 ** math.frexp(big)[1]
            x1, x2 = x1 / scale, x2 / scale
    n1 = xp.sum(x1 * x1, axis=1)
    n2 = xp.sum(x2 * x2, axis=1)
    M = n1[:, None] + n2[None, :] - 2.0 * (x1 @ x2.T)
    M = xp.maximum(M, xp.zeros((), dtype=dtype, device=_backend.device(x1)))
    if metric == "euclidean":
        M = xp.sqrt(M)
    if scale != 1.0:
        with np.errstate(over="ignore"):  # reported below, once and in words
            M = M * scale if metric == "euclidean" else (M * scale) * scale
        if not bool(xp.all(xp.isfinite(M))):
            warnings.warn(
                f"dist: the {metric} distances of points of magnitude up to {big:.3g} "
                f"overflow {dtype} (inf entries in the cost matrix); scale the points down",
                RuntimeWarning,
                stacklevel=2,
            )
    return M
