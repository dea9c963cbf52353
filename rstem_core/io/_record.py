"""What one format reader found in one file, before side files and user overrides are applied.

Each reader returns a :class:`FileRecord`; :mod:`rstem_core.io.series` merges side files
(``.rawtlt``, ``.mdoc``, acquisition log), the caller's overrides and several records into one
:class:`~rstem_core.model.TiltSeries`.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError, RstemError

#: Length units as written by the formats we read, with their size in nanometres.
_NM_PER_UNIT = {
    "m": 1e9,
    "meter": 1e9,
    "mm": 1e6,
    "um": 1e3,
    "µm": 1e3,  # micro sign U+00B5
    "μm": 1e3,  # greek mu U+03BC
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "nm": 1.0,
    "nanometer": 1.0,
    "a": 0.1,
    "å": 0.1,  # lower case of both U+00C5 and the angstrom sign U+212B
    "angstrom": 0.1,
    "pm": 1e-3,
}


@dataclass
class FileRecord:
    """Frames and metadata read from one file by one format reader.

    Attributes
    ----------
    path : Path
        The file read.
    format : str
        Human-readable format name ("MRC", "TIFF", "DM3", "DM4", "Velox EMD", ...).
    frames : ndarray, shape (n, rows, cols)
        Frames in the file's own dtype and orientation (not yet rotated).
    angles_deg, angles_source
        Tilt angle of each frame in degrees found inside the file, and where it came from.
    pixel_size_nm, pixel_size_source
        Pixel size in nanometres found inside the file, and where it came from.
    tilt_axis_deg, tilt_axis_source
        Tilt-axis direction in the image (degrees from +x towards +y) found inside the file.
    times_s : ndarray, shape (n,), optional
        Frame start times in seconds; POSIX-like seconds when ``times_absolute`` is true
        (comparable between files), otherwise relative to the file's first frame.
    dwell_time_s : float, optional
        Time the probe spends on one pixel, seconds (scanned images only).
    line_time_s : float, optional
        Time to scan one row of the file (including fly-back where the file says so), seconds.
    metadata : dict
        JSON-serialisable acquisition details.
    warnings : list of str
        Quirks met while reading, shown to the user through the series metadata.
    """

    path: Path
    format: str
    frames: np.ndarray
    angles_deg: np.ndarray | None = None
    angles_source: str | None = None
    pixel_size_nm: float | None = None
    pixel_size_source: str | None = None
    tilt_axis_deg: float | None = None
    tilt_axis_source: str | None = None
    times_s: np.ndarray | None = None
    times_absolute: bool = False
    dwell_time_s: float | None = None
    line_time_s: float | None = None
    metadata: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


def length_to_nm(value: float | str, unit: str | None) -> float | None:
    """Convert a length in ``unit`` to nanometres; ``None`` if the unit is unknown or empty.

    Parameters
    ----------
    value : float or str
        The length in ``unit`` (strings as stored in XML/JSON metadata are accepted).
    unit : str or None
        A unit name as written by microscope software: "m", "µm", "um", "micron", "nm",
        "Å", "A", "pm", ...

    Returns
    -------
    float or None
        The length in nanometres, or ``None`` when the unit is not a length unit we know or the
        value is not a positive finite number.
    """
    if unit is None:
        return None
    key = str(unit).strip()
    factor = _NM_PER_UNIT.get(key, _NM_PER_UNIT.get(key.lower()))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if factor is None or not math.isfinite(v) or v <= 0:
        return None
    return v * factor


def float32_value(value: Any) -> float:
    """The shortest decimal that round-trips a float32 value, as a Python float.

    Values stored as float32 (``3.36e-9`` becomes ``3.3600001e-09``) come back as the number the
    instrument meant, without inventing precision float32 does not have.
    """
    return float(np.format_float_scientific(np.float32(value), unique=True))


def positive_or_none(value: Any) -> float | None:
    """``float(value)`` when it is a positive finite number (strings accepted), else ``None``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def seconds_since_epoch(moment: datetime) -> float:
    """Seconds from 1970-01-01 to a naive (local, time-zone-free) ``datetime``."""
    return (moment - datetime(1970, 1, 1)).total_seconds()


def iso_time(seconds: float) -> str:
    """ISO 8601 text of seconds since 1970 (the inverse of :func:`seconds_since_epoch`)."""
    return (datetime(1970, 1, 1) + timedelta(seconds=float(seconds))).isoformat()


def plain(obj: Any) -> Any:
    """A JSON-serialisable copy of ``obj``: numpy scalars and arrays, paths and bytes made plain."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, bytes):
        return obj.decode("latin-1").rstrip("\x00 ")
    return str(obj)


def first_line(exc: BaseException) -> str:
    """``"ExceptionType: first line of its message"`` for a one-line user message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@contextlib.contextmanager
def library_errors(path: Path, what: str) -> Iterator[None]:
    """Turn any exception raised by a format library into a one-line :class:`FileFormatError`.

    Our own :class:`~rstem_core.errors.RstemError` passes through unchanged. The original
    exception stays chained for debugging; the message names the file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except RstemError:
        raise
    except Exception as exc:  # libraries raise anything from KeyError to struct.error
        raise FileFormatError(
            f"{path}: cannot be read as {what}; the file may be truncated or corrupt "
            f"({first_line(exc)})"
        ) from exc
