"""Gatan DigitalMicrograph images and stacks (``.dm3``, ``.dm4``) through rosettasciio.

The stage tilt is ``Microscope Info/Stage Position/Stage Alpha`` (degrees) and the probe dwell
``DigiScan/Sample Time`` (microseconds) in the image tags; a StackBuilder stack keeps the tags
of its first image under ``source/Tags at creation``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ._record import FileRecord, iso_time, positive_or_none, seconds_since_epoch
from ._rsciio import is_image, pick_image, pixel_size_nm, title


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _timestamp(tags: dict) -> float | None:
    """Acquisition time (seconds since 1970, local) from DigiScan or DataBar tags."""
    stamp = _get(tags, "DigiScan", "TimeStamp")
    if isinstance(stamp, str):
        try:
            return seconds_since_epoch(
                datetime.strptime(" ".join(stamp.split()), "%a %b %d %H:%M:%S %Y")
            )
        except ValueError:
            pass
    date, time = (
        _get(tags, "DataBar", "Acquisition Date"),
        _get(tags, "DataBar", "Acquisition Time"),
    )
    if isinstance(date, str) and isinstance(time, str):
        for fmt in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S"):
            try:
                return seconds_since_epoch(datetime.strptime(f"{date.strip()} {time.strip()}", fmt))
            except ValueError:
                continue
    return None


def read_dm(path: Path, channel: str | None = None) -> FileRecord:
    """Read a DM3/DM4 image or image stack with its stage tilt and pixel size.

    Parameters
    ----------
    path : Path
        The DM file.
    channel : str, optional
        Title of the image to take when the file holds several (ignored, with a note, when it
        holds one: DM titles are image names, not detector channels).

    Returns
    -------
    FileRecord
        Frames ``(n, rows, cols)``; pixel size in nm from the calibrated x axis; the stage alpha
        in degrees as the angle of every frame (for a stack, only when its own tags hold it).

    Raises
    ------
    FileFormatError
        If the file holds no image (e.g. a spectrum) or the channel is unknown.
    """
    from rsciio import digitalmicrograph  # imported on use: rosettasciio loads dask (~0.7 s)

    signals = digitalmicrograph.file_reader(path)
    ignored = channel is not None and sum(is_image(s) for s in signals) == 1
    signal, others = pick_image(signals, None if ignored else channel, path)
    data = np.asarray(signal["data"])
    frames = data if data.ndim == 3 else data[None]
    image_tags = _get(signal["original_metadata"], "ImageList", "TagGroup0", "ImageTags") or {}
    own_tags = "Microscope Info" in image_tags or "DigiScan" in image_tags
    tags = image_tags if own_tags else (_get(image_tags, "source", "Tags at creation") or {})
    fmt = "DM4" if path.suffix.lower() == ".dm4" else "DM3"
    record = FileRecord(path=path, format=fmt, frames=frames)
    n = record.n_frames
    if ignored:
        record.warnings.append(
            f"{path.name}: channel {channel!r} ignored; the file holds one image"
        )
    alpha = _get(tags, "Microscope Info", "Stage Position", "Stage Alpha")
    if isinstance(alpha, (int, float)) and np.isfinite(alpha) and (n == 1 or own_tags):
        record.angles_deg = np.full(n, float(alpha))
        record.angles_source = "DM Stage Alpha"
        if n > 1:
            record.warnings.append(
                f"{path.name}: one stage alpha for {n} frames; they are taken as frames at one tilt"
            )
    pixel = pixel_size_nm(signal)
    if pixel is not None:
        record.pixel_size_nm, record.pixel_size_source = pixel, "DM calibration"
    dwell_us = positive_or_none(_get(tags, "DigiScan", "Sample Time"))
    if dwell_us is not None:
        record.dwell_time_s = dwell_us * 1e-6
        record.line_time_s = record.dwell_time_s * frames.shape[2]
    flyback_us = positive_or_none(_get(tags, "DigiScan", "Flyback"))
    stamp = _timestamp(tags)
    if stamp is not None and n == 1:
        record.times_s, record.times_absolute = np.array([stamp]), True
    record.metadata.update(
        {
            "original_dtype": str(data.dtype),
            "title": title(signal),
            "microscope": _get(tags, "Microscope Info", "Name"),
            "detector": _get(tags, "DataBar", "Device Name"),
            "operation_mode": _get(tags, "Microscope Info", "Operation Mode"),
            "flyback_time_s": None if flyback_us is None else flyback_us * 1e-6,
            "acquired_at": None if stamp is None else iso_time(stamp),
            "other_images": others or None,
        }
    )
    return record
