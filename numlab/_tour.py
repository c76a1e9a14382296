"""The pieces of ``numlab tour`` that algorithm families share.

Each family ships ``numlab/<family>/_tour.py`` with a list ``DEMOS`` of functions
``demo(quick: bool) -> Demo``. A demo builds its data itself (generated or shipped with
numlab's dependencies), runs numlab, checks the answer against an independent reference,
and describes both in a few words. ``numlab tour`` times each demo and prints a table.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Demo"]


@dataclasses.dataclass(frozen=True)
class Demo:
    """What one tour demonstration did.

    Attributes
    ----------
    problem : str
        The problem solved, with its size ("rank-50 SVD of a 20000 x 2000 matrix").
    result : str
        What numlab computed ("spectral error 1.0003 x optimal").
    check : str
        The reference it was compared with and how ("vs numpy.linalg.svd: 2e-12").
    ok : bool
        Whether the check passed.
    """

    problem: str
    result: str
    check: str
    ok: bool
