"""EMD files (Thermo Fisher Velox, NCEM) through rosettasciio.

Velox metadata are JSON strings: ``Stage/AlphaTilt`` is in RADIANS, ``Scan/DwellTime``,
``LineTime`` and ``FrameTime`` in seconds, ``BinaryResult/PixelSize`` in metres. A Velox image
stack has a navigation axis ``Time`` (seconds): frames of one area at one tilt.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import FileFormatError
from ._record import FileRecord, length_to_nm, positive_or_none
from ._rsciio import navigation_axes, pick_image, pixel_size_nm, title


def _velox_content(path: Path) -> str | None:
    """``"velox"`` for a Velox image file; raise for spectra; ``None`` for other EMD flavours."""
    with h5py.File(path, "r") as f:
        data = f.get("Data")
        if not isinstance(data, h5py.Group):
            return None

        def holds(name: str) -> bool:
            group = data.get(name)
            return isinstance(group, h5py.Group) and len(group) > 0

        if holds("SpectrumImage") or holds("SpectrumStream"):
            raise FileFormatError(f"{path}: not an image series (it holds a spectrum image)")
        if not holds("Image"):
            what = "spectra" if holds("Spectrum") else "no images"
            raise FileFormatError(f"{path}: not an image series (it holds {what})")
        return "velox"


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _exposure_s(meta: dict) -> float | None:
    """Exposure time of the detector that recorded the image (cameras), seconds."""
    detector = _get(meta, "BinaryResult", "Detector")
    for entry in (_get(meta, "Detectors") or {}).values():
        if isinstance(entry, dict) and entry.get("DetectorName") == detector:
            return positive_or_none(entry.get("ExposureTime"))
    return None


def read_emd(path: Path, channel: str | None = None) -> FileRecord:
    """Read one image channel of an EMD file with its stage tilt, pixel size and timing.

    Parameters
    ----------
    path : Path
        A Velox (or NCEM) EMD file.
    channel : str, optional
        Title of the image to take (Velox: "HAADF", "iDPC", "DF4-A" ...). ``None`` takes the
        first real-valued image and records the others in metadata.

    Returns
    -------
    FileRecord
        Frames ``(n, rows, cols)``: one image, or the frames of a Velox stack (all at the same
        tilt). Angles in degrees (converted from Velox radians), pixel size in nm, frame times
        in seconds from the stack's time axis.

    Raises
    ------
    FileFormatError
        For spectra and spectrum images, unknown or complex channels.
    """
    from rsciio import emd  # imported on use: rosettasciio loads dask (~0.7 s)

    velox = _velox_content(path) == "velox"
    signals = emd.file_reader(path, select_type="images") if velox else emd.file_reader(path)
    signal, others = pick_image(signals, channel, path)
    data = np.asarray(signal["data"])
    frames = data if data.ndim == 3 else data[None]
    n = frames.shape[0]
    meta = signal.get("original_metadata") or {}
    record = FileRecord(path=path, format="Velox EMD" if velox else "EMD", frames=frames)
    alpha_rad = _number(_get(meta, "Stage", "AlphaTilt"))
    if alpha_rad is not None:
        record.angles_deg = np.full(n, math.degrees(alpha_rad))
        record.angles_source = "Velox Stage/AlphaTilt (radians)"
    pixel = pixel_size_nm(signal)
    if pixel is None:
        pixel = length_to_nm(
            _get(meta, "BinaryResult", "PixelSize", "width") or 0,
            _get(meta, "BinaryResult", "PixelUnitX"),
        )
    if pixel is not None:
        record.pixel_size_nm, record.pixel_size_source = pixel, "EMD calibration"
    nav = navigation_axes(signal)
    offsets = np.zeros(n)
    if nav and str(nav[0].get("units", "")).strip() == "s":
        offsets = np.arange(n) * float(nav[0].get("scale", 0.0))
    start = _number(_get(meta, "Acquisition", "AcquisitionStartDatetime", "DateTime"))
    start = (
        start
        if start is not None
        else _number(_get(meta, "Acquisition", "AcquisitionDatetime", "DateTime"))
    )
    if start is not None:
        record.times_s, record.times_absolute = start + offsets, True
    elif n > 1 and np.any(offsets > 0):
        record.times_s = offsets
    record.dwell_time_s = positive_or_none(_get(meta, "Scan", "DwellTime"))
    record.line_time_s = positive_or_none(_get(meta, "Scan", "LineTime"))
    if record.line_time_s is None and record.dwell_time_s is not None:
        record.line_time_s = record.dwell_time_s * frames.shape[2]
    beta_rad = _number(_get(meta, "Stage", "BetaTilt"))
    record.metadata.update(
        {
            "original_dtype": str(data.dtype),
            "channel": title(signal),
            "other_channels": others or None,
            "detector": _get(meta, "BinaryResult", "Detector"),
            "frame_time_s": positive_or_none(_get(meta, "Scan", "FrameTime")),
            "exposure_time_s": _exposure_s(meta),
            "beta_tilt_deg": None if beta_rad is None else math.degrees(beta_rad),
        }
    )
    if others and channel is None:
        record.warnings.append(
            f"{path.name}: took channel {title(signal)!r}; the file also holds "
            f"{', '.join(map(repr, others))} (choose with channel=...)"
        )
    return record
