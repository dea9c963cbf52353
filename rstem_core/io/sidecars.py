"""Side files that microscope software writes beside an image file.

- SerialEM ``.mdoc`` (``<file>.mrc.mdoc`` or ``<stem>.mdoc``): one ``[ZValue = k]`` section per
  frame with ``TiltAngle`` (degrees), ``PixelSpacing`` (Angstrom), ``ExposureTime`` (s) and
  ``DateTime``; the header's title lines hold ``Tilt axis angle = -90.0``.
- An acquisition log ``<stem>.txt`` (e.g. FEI/Thermo tomography software) with lines such as
  ``Image pixel size [nm]: 3.36`` and ``Tilt Axis Angle [°]:90.00``, often in cp1252.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from ._record import length_to_nm, positive_or_none, seconds_since_epoch

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_TILT_AXIS = re.compile(r"tilt\s*axis\s*angle\s*(?:\[[^\]]*\])?\s*[=:]\s*" + _NUMBER, re.IGNORECASE)
_LOG_PIXEL = re.compile(r"pixel\s*size\s*\[([^\]]+)\]\s*[=:]\s*" + _NUMBER, re.IGNORECASE)
_LOG_EXPOSURE = re.compile(r"exposure\s*time\s*\[s\]\s*[=:]\s*" + _NUMBER, re.IGNORECASE)
_MDOC_SECTION = re.compile(r"^\[\s*ZValue\s*=\s*(\d+)\s*\]", re.IGNORECASE)
_MDOC_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*)$")


def decode_text(raw: bytes) -> str:
    """Decode a side file whatever its encoding: UTF-8, else cp1252, else latin-1 (never fails)."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _read_text(path: Path) -> str:
    try:
        return decode_text(path.read_bytes())
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read ({exc.strerror})") from None


@dataclass
class Mdoc:
    """What a SerialEM ``.mdoc`` says about a stack, one entry per frame in Z order.

    Attributes
    ----------
    path : Path
    angles_deg : ndarray or None
        ``TiltAngle`` of each section, degrees.
    pixel_size_nm : float or None
        ``PixelSpacing`` (Angstrom in the file) converted to nanometres.
    tilt_axis_deg : float or None
        From the title line ``Tilt axis angle = ...``.
    exposure_time_s : list of float
        ``ExposureTime`` of each section that has one.
    times_s : ndarray or None
        ``DateTime`` of each section as seconds since 1970 (local time), when every section has one.
    channels : list of str
        ``ChannelName`` of the sections that have one.
    n_sections : int
    """

    path: Path
    angles_deg: np.ndarray | None = None
    pixel_size_nm: float | None = None
    tilt_axis_deg: float | None = None
    exposure_time_s: list[float] = field(default_factory=list)
    times_s: np.ndarray | None = None
    channels: list[str] = field(default_factory=list)
    n_sections: int = 0


def _parse_mdoc_time(text: str) -> float | None:
    value = " ".join(text.split())
    for fmt in ("%d-%b-%y %H:%M:%S", "%d-%b-%Y %H:%M:%S"):
        try:
            return seconds_since_epoch(datetime.strptime(value, fmt))
        except ValueError:
            continue
    return None


def read_mdoc(path: Path) -> Mdoc:
    """Parse a SerialEM ``.mdoc`` file.

    Parameters
    ----------
    path : Path
        The ``.mdoc`` file.

    Returns
    -------
    Mdoc
        Per-frame angles, pixel size in nm, tilt axis in degrees and times found in it.

    Raises
    ------
    FileFormatError
        If the file cannot be read or a ``TiltAngle`` is not a number.
    """
    text = _read_text(path)
    header: dict[str, str] = {}
    sections: dict[int, dict[str, str]] = {}
    current: dict[str, str] = header
    for line in text.splitlines():
        line = line.strip()
        section = _MDOC_SECTION.match(line)
        if section:
            current = sections.setdefault(int(section.group(1)), {})
            continue
        pair = _MDOC_KEY.match(line)
        if pair:
            current[pair.group(1)] = pair.group(2).strip()
    result = Mdoc(path=path, n_sections=len(sections))
    axis = _TILT_AXIS.search(text)
    if axis:
        result.tilt_axis_deg = float(axis.group(1))
    ordered = [sections[k] for k in sorted(sections)]
    if ordered and all("TiltAngle" in s for s in ordered):
        try:
            result.angles_deg = np.array([float(s["TiltAngle"].split()[0]) for s in ordered])
        except (ValueError, IndexError):
            raise FileFormatError(f"{path}: a TiltAngle entry is not a number") from None
    spacing = ordered[0].get("PixelSpacing") if ordered else None
    spacing = spacing or header.get("PixelSpacing")
    if spacing:
        result.pixel_size_nm = length_to_nm(spacing.split()[0], "Å")
    result.exposure_time_s = [
        t for t in (positive_or_none(s.get("ExposureTime")) for s in ordered) if t is not None
    ]
    times = [_parse_mdoc_time(s.get("DateTime", "")) for s in ordered]
    if ordered and all(t is not None for t in times):
        result.times_s = np.array(times, dtype=np.float64)
    result.channels = [s["ChannelName"] for s in ordered if s.get("ChannelName")]
    return result


def find_mdoc(image_path: Path) -> Path | None:
    """The SerialEM ``<file>.mdoc`` or ``<stem>.mdoc`` beside an image file, if any."""
    for candidate in (
        image_path.with_name(image_path.name + ".mdoc"),
        image_path.with_suffix(".mdoc"),
    ):
        if candidate.is_file():
            return candidate
    return None


@dataclass
class AcquisitionLog:
    """Values found in a free-text acquisition log beside an image file.

    Attributes
    ----------
    path : Path
    pixel_size_nm : float or None
        From ``Image pixel size [nm]: 3.36`` (other length units converted).
    tilt_axis_deg : float or None
        From ``Tilt Axis Angle [°]:90.00``.
    exposure_time_s : float or None
        From ``Exposure Time [s]: 10.00``.
    """

    path: Path
    pixel_size_nm: float | None = None
    tilt_axis_deg: float | None = None
    exposure_time_s: float | None = None


def read_acquisition_log(path: Path) -> AcquisitionLog:
    """Parse pixel size, tilt-axis angle and exposure time out of a text acquisition log.

    Parameters
    ----------
    path : Path
        The log; any encoding (UTF-8, cp1252, latin-1), any line prefix (timestamps).

    Returns
    -------
    AcquisitionLog
        Fields left ``None`` where the log does not say.
    """
    text = _read_text(path)
    log = AcquisitionLog(path=path)
    pixel = _LOG_PIXEL.search(text)
    if pixel:
        log.pixel_size_nm = length_to_nm(float(pixel.group(2)), pixel.group(1))
    axis = _TILT_AXIS.search(text)
    if axis:
        log.tilt_axis_deg = float(axis.group(1))
    exposure = _LOG_EXPOSURE.search(text)
    if exposure:
        log.exposure_time_s = positive_or_none(exposure.group(1))
    return log


def find_acquisition_log(image_path: Path) -> Path | None:
    """The ``<stem>.txt`` beside an image file, if any."""
    candidate = image_path.with_suffix(".txt")
    return candidate if candidate.is_file() else None
