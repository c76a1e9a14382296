"""A compact ``__repr__`` for result objects: shapes, dtypes and scalars, never whole arrays.

Result dataclasses declare ``@dataclasses.dataclass(frozen=True, repr=False)`` and inherit
:class:`CompactRepr`::

    OTResult(plan=array(shape=(500, 500), dtype=float64), cost=0.1234, converged=True, ...)

Arrays of any library print as ``array(shape=..., dtype=...)`` (with the library's name
when it is not NumPy: ``cupy.ndarray(shape=(500, 500), dtype=float32)``), floats with six
significant digits, sequences longer than four items as their length, strings and other
scalars as themselves.
"""

from __future__ import annotations

import dataclasses
import numbers

__all__ = ["CompactRepr", "summarize"]


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, numbers.Number)


def summarize(value) -> str:
    """A short description of ``value`` for a repr (shape and dtype of an array)."""
    if _is_array(value):
        shape = tuple(int(s) if s is not None else None for s in value.shape)
        if shape == ():
            try:
                return summarize(value.item())
            except Exception:  # noqa: BLE001 - lazy or device scalars without a cheap item()
                pass
        dtype = getattr(value.dtype, "name", None) or str(value.dtype)
        module = type(value).__module__.split(".")[0]
        kind = "array" if module == "numpy" else f"{module}.{type(value).__name__}"
        return f"{kind}(shape={shape}, dtype={dtype})"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.6g}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        if len(value) <= 4 and not any(isinstance(v, (list, tuple)) for v in value):
            inner = ", ".join(summarize(v) for v in value)
            if isinstance(value, list):
                return f"[{inner}]"
            return f"({inner}{',' if len(value) == 1 else ''})"
        return f"{type(value).__name__}(len={len(value)})"
    if isinstance(value, dict):
        return f"dict(keys={sorted(map(str, value))})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__ + "(...)"
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    text = repr(value)
    return text if len(text) <= 60 else type(value).__name__ + "(...)"


class CompactRepr:
    """Mixin: ``__repr__`` of a dataclass listing each field through :func:`summarize`."""

    __slots__ = ()

    def __repr__(self) -> str:
        if dataclasses.is_dataclass(self):
            names = [f.name for f in dataclasses.fields(self) if f.repr]
        else:  # pragma: no cover - a NamedTuple or plain class
            names = list(getattr(self, "_fields", vars(self)))
        body = ", ".join(f"{n}={summarize(getattr(self, n))}" for n in names)
        return f"{type(self).__name__}({body})"
