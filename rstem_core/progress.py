"""Progress reporting and cancellation shared by every long-running core function.

Every long function accepts ``progress: ProgressFn | None`` and ``cancel: CancelToken | None``.
``progress(fraction, message)`` is called with a fraction in [0, 1]; the cancel token is polled
often and raises :class:`~rstem_core.errors.Cancelled` through :meth:`CancelToken.check`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import Cancelled

ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:  # noqa: ARG001
    """A progress callback that ignores everything."""


class CancelToken:
    """A thread-safe flag that a worker polls; set by the GUI's Cancel button or Ctrl+C."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user; the project is unchanged")


def sub_progress(progress: ProgressFn | None, start: float, stop: float) -> ProgressFn:
    """Map a sub-task's [0, 1] progress onto ``[start, stop]`` of the parent's.

    Examples
    --------
    >>> seen = []
    >>> p = sub_progress(lambda f, m: seen.append(round(f, 2)), 0.5, 1.0)
    >>> p(0.5, "half")
    >>> seen
    [0.75]
    """
    parent = progress or no_progress

    def _p(fraction: float, message: str) -> None:
        parent(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return _p
