"""Progress bars for long computations: one switch, ``progress=``, and a tqdm bar.

The functions of numlab that can run long take ``progress=False`` (default) or
``progress=True``, like the generators of :mod:`numlab.pde` and
:class:`numlab.cca.StochasticCCA`: True shows a ``tqdm.auto`` bar on stderr (a widget
in a notebook) where the work is long enough for one to help; each function documents
its threshold. A bar only watches: it draws no random number and changes no order of
work, so results are the same bit for bit with and without it.

:class:`Progress` is that bar, or nothing at all when it is off (no tqdm object is
made, so a switched-off bar costs one attribute test per update).
"""

from __future__ import annotations

from ._validation import check_bool

__all__ = ["Progress", "check_progress"]


def check_progress(progress, name="progress"):
    """``progress`` as a bool: True or False only (a TypeError naming it otherwise)."""
    return check_bool(progress, name)


class Progress:
    """A tqdm bar on stderr when ``show``, else a bar that does nothing.

    Parameters
    ----------
    show : bool
        Whether to draw the bar (the caller's ``progress`` and its size threshold).
    desc : str
        The label on the left, e.g. ``"nl.ot.sinkhorn"``.
    total : int, optional
        Expected number of steps (None: a counter). When the work ends early (an
        adaptive stop before an upper bound), the bar is closed at the steps done.
    unit : str
        The unit of a step ("it", "pass", "draw", "probe", ...).

    Use it as a context manager; ``update``, ``advance_to`` and ``note`` are no-ops
    when the bar is off.
    """

    def __init__(self, show, desc, *, total=None, unit="it"):
        self._bar = None
        if show:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=True)

    @property
    def shown(self):
        return self._bar is not None

    def update(self, n=1):
        """``n`` more steps done."""
        if self._bar is not None:
            self._bar.update(n)

    def advance_to(self, n):
        """``n`` steps done in all (a solver's own iteration counter)."""
        if self._bar is not None and n > self._bar.n:
            self._bar.update(n - self._bar.n)

    def set_total(self, total):
        """The expected number of steps, once known."""
        if self._bar is not None:
            self._bar.total = total

    def note(self, text):
        """Text on the right of the bar (the current error, the rate tried, ...); drawn
        at the next refresh of the bar, never forcing one."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self, finished=True):
        bar, self._bar = self._bar, None
        if bar is None:
            return
        if finished and bar.total is not None and bar.n < bar.total:
            bar.total = bar.n  # an adaptive stop before the upper bound: the work is done
        bar.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(finished=exc_type is None)
        return False
