"""Exceptions that carry a message meant for the user.

The CLI prints ``str(error)`` on one line and exits with status 2; the GUI shows it in a dialog.
Messages say what is wrong and, where possible, what to do about it.
"""


class RstemError(Exception):
    """A user-facing error: bad input, wrong file, missing data. Never a bug."""


class FileFormatError(RstemError, ValueError):
    """A file cannot be read as what it claims to be (unknown format, truncated, not an image)."""


class ProjectError(RstemError):
    """The project file cannot be opened, locked or written."""


class ProjectLockedError(ProjectError):
    """Another process has the project open for writing."""


class SchemaVersionError(ProjectError):
    """The project was written by a newer schema than this software understands."""


class Cancelled(RstemError):
    """Long work was cancelled by the user; nothing was written."""
