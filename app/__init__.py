"""rstem_app: the PySide6 desktop application on top of :mod:`rstem_core`."""

from rstem_core import __version__

__all__ = ["__version__"]
