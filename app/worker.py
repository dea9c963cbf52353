"""The one worker every panel uses to run core work off the GUI thread.

A :class:`Worker` runs ``function(*args, progress=..., cancel=..., **kwargs)`` in a ``QThread``.
The core calls ``progress(fraction, message)`` from the worker thread; the worker forwards it as
a queued Qt signal, so the GUI thread only ever touches widgets. ``cancel()`` sets the
:class:`~rstem_core.progress.CancelToken` the core polls; the core then raises
:class:`~rstem_core.errors.Cancelled` and leaves the project unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from rstem_core.errors import Cancelled
from rstem_core.progress import CancelToken


class _Runner(QThread):
    """The thread that calls the function once (signals are emitted from this thread)."""

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, function: Callable[..., Any], args: tuple, kwargs: dict, token: CancelToken,
                 min_interval_s: float) -> None:
        super().__init__()
        self._function = function
        self._args = args
        self._kwargs = kwargs
        self._token = token
        self._min_interval_s = min_interval_s
        self._last_emit = 0.0

    def _progress(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        # throttle: the GUI needs a few updates a second, not thousands
        if fraction < 1.0 and now - self._last_emit < self._min_interval_s:
            return
        self._last_emit = now
        self.progressed.emit(float(min(max(fraction, 0.0), 1.0)), str(message))

    def run(self) -> None:  # noqa: D401 - Qt override
        try:
            result = self._function(*self._args, progress=self._progress, cancel=self._token,
                                    **self._kwargs)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure is reported to the GUI
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)


class Worker(QObject):
    """Run one core function in a thread with a progress callback and a cancel token.

    Signals (all delivered in the GUI thread)
    -----------------------------------------
    progress(float, str)
        Fraction done in [0, 1] and a message from the core.
    finished(object)
        The function returned this result.
    failed(object)
        The function raised this exception (not a cancel).
    cancelled()
        The user cancelled; the core guarantees nothing was written.
    done()
        Emitted last, whatever happened.

    Examples
    --------
    >>> w = Worker(pipeline.run_step, project, "calibrate")      # doctest: +SKIP
    >>> w.progress.connect(bar.set_progress); w.start()          # doctest: +SKIP
    """

    progress = Signal(float, str)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    done = Signal()

    def __init__(self, function: Callable[..., Any], *args: Any, min_interval_s: float = 0.05,
                 **kwargs: Any) -> None:
        super().__init__()
        self.token = CancelToken()
        self._thread = _Runner(function, args, kwargs, self.token, min_interval_s)
        self._thread.progressed.connect(self.progress)
        self._thread.succeeded.connect(self._on_success)
        self._thread.failed.connect(self._on_failure)
        self._thread.cancelled.connect(self._on_cancel)
        self._running = False

    @property
    def running(self) -> bool:
        """True from :meth:`start` until ``done`` is emitted."""
        return self._running

    def start(self) -> None:
        """Start the work (returns at once)."""
        self._running = True
        self._thread.start()

    def cancel(self) -> None:
        """Ask the work to stop at the core's next check."""
        self.token.cancel()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Block until the thread has ended (for shutdown); True when it has."""
        return self._thread.wait() if timeout_ms < 0 else self._thread.wait(timeout_ms)

    def _finish(self) -> None:
        self._thread.wait()
        self._running = False
        self.done.emit()

    def _on_success(self, result: object) -> None:
        self.finished.emit(result)
        self._finish()

    def _on_failure(self, exc: object) -> None:
        self.failed.emit(exc)
        self._finish()

    def _on_cancel(self) -> None:
        self.cancelled.emit()
        self._finish()
