"""Errors in plain words: one line and what to do next in a dialog, the full trace in a log file.

The user never sees a traceback. :func:`show_error` writes the whole trace to :func:`log_path`
and shows a short dialog through :func:`present_dialog` (tests replace that function to read
the text). When the application runs unattended (``--screenshot``), the dialog is skipped and
the line goes to stderr.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QStandardPaths, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from rstem_core.errors import (
    Cancelled,
    FileFormatError,
    ProjectError,
    ProjectLockedError,
    RstemError,
    SchemaVersionError,
)

LOGGER_NAME = "rstem_app"
UNATTENDED_PROPERTY = "rstem_unattended"


def user_data_dir() -> Path:
    """rstem's folder in the user's data location (created when missing): the log, demo projects."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    folder = Path(base or Path.home() / ".local" / "share") / "rstem"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_dir() -> Path:
    """The folder of the application's log file (created when missing)."""
    return user_data_dir()


def open_log_folder() -> None:
    """Show the log folder in the desktop's file manager."""
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir())))


def log_path() -> Path:
    """The application's log file: every error's full trace goes here."""
    return log_dir() / "rstem-gui.log"


def logger() -> logging.Logger:
    """The application logger, writing to :func:`log_path` (set up on first use)."""
    log = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, logging.FileHandler) for h in log.handlers):
        handler = logging.FileHandler(log_path(), encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def explain(exc: BaseException) -> tuple[str, str]:
    """``(what happened, what to do next)`` for an exception, both one plain sentence."""
    line = _first_line(exc)
    if isinstance(exc, ProjectLockedError):
        return line, ("Another rstem window or command has this project open for writing. Close it "
                      "there first, or open the project from a copy.")
    if isinstance(exc, SchemaVersionError):
        return line, "This project was written by a newer rstem: update rstem to open it."
    if isinstance(exc, FileFormatError):
        return line, ("Check that the file is a supported microscope or image format (DM3/DM4, EMD, "
                      "MRC, TIFF) and that it is complete.")
    if isinstance(exc, ProjectError):
        return line, "Check that the file exists, is an rstem project and that its folder is writable."
    if isinstance(exc, Cancelled):
        return line, "Nothing was changed. Press Run to start again."
    if isinstance(exc, RstemError):
        return line, "Check this step's inputs and parameters, then press Run again."
    if isinstance(exc, ValueError):
        return line, "Change the parameter named above to an allowed value and run the step again."
    if isinstance(exc, MemoryError):
        return ("The computer ran out of memory.",
                "Increase the binning, close other programs, or work on a smaller series.")
    if isinstance(exc, OSError):
        return line, "Check that the file or folder exists, is not in use, and that the disk is not full."
    return (f"An unexpected problem occurred ({type(exc).__name__}: {line}).",
            f"Please send the log file {log_path()} to the developers; the project was not changed "
            "by the failed step.")


def present_dialog(parent: QWidget | None, title: str, line: str, advice: str) -> None:
    """Show the error dialog (replaced in tests to capture the text)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(line)
    box.setInformativeText(advice)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    open_log = box.addButton("Open log folder", QMessageBox.ButtonRole.HelpRole)
    box.exec()
    if box.clickedButton() is open_log:
        open_log_folder()


def _unattended() -> bool:
    app = QApplication.instance()
    return bool(app is not None and app.property(UNATTENDED_PROPERTY))


def show_error(parent: QWidget | None, exc: BaseException, title: str = "rstem") -> None:
    """Log ``exc`` with its trace and tell the user in plain words what happened and what to do."""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logger().error("%s\n%s", title, trace)
    line, advice = explain(exc)
    if _unattended():
        print(f"rstem-gui: {title}: {line}", file=sys.stderr)
        return
    present_dialog(parent, title, line, advice)


def install_excepthook() -> None:
    """Route exceptions that escape a Qt slot to :func:`show_error` instead of the terminal."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        exc.__traceback__ = tb
        show_error(QApplication.activeWindow(), exc, "Unexpected error")

    sys.excepthook = hook
