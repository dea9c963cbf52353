"""TIFF stacks and images through tifffile, with ImageJ and OME pixel-size metadata."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import tifffile

from ..errors import FileFormatError
from ._record import FileRecord, length_to_nm

_FRAME_AXES = "QIZTR"
_OME_PIXELS = re.compile(r"<(?:\w+:)?Pixels\b([^>]*)>", re.IGNORECASE)
# Plausible STEM/TEM pixel sizes; values outside are screen resolutions (72 dpi), not pixels.
_MIN_PIXEL_NM, _MAX_PIXEL_NM = 1e-4, 1e5
_RESUNIT_NM = {3: 1e7, 4: 1e6, 5: 1e3}  # CENTIMETER, MILLIMETER, MICROMETER


def _plausible(pixel_nm: float | None) -> float | None:
    if pixel_nm is None or not (_MIN_PIXEL_NM < pixel_nm < _MAX_PIXEL_NM):
        return None
    return pixel_nm


def _x_resolution(page: tifffile.TiffPage) -> float | None:
    """Pixels per resolution unit along x, or ``None`` if the tag is absent or zero."""
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    numerator, denominator = tag.value
    if numerator <= 0 or denominator <= 0:
        return None
    return numerator / denominator


def _imagej_pixel_nm(tif: tifffile.TiffFile) -> float | None:
    meta = tif.imagej_metadata or {}
    unit = str(meta.get("unit", "")).replace("\\u00B5", "µ").replace("\\u00b5", "µ")
    per_unit = _x_resolution(tif.pages[0])
    if not unit or per_unit is None:
        return None
    return _plausible(length_to_nm(1.0 / per_unit, unit))


def _ome_pixel_nm(tif: tifffile.TiffFile) -> float | None:
    match = _OME_PIXELS.search(tif.ome_metadata or "")
    if not match:
        return None
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
    if "PhysicalSizeX" not in attrs:
        return None
    return _plausible(length_to_nm(attrs["PhysicalSizeX"], attrs.get("PhysicalSizeXUnit", "µm")))


def _resolution_pixel_nm(page: tifffile.TiffPage) -> float | None:
    nm_per_unit = _RESUNIT_NM.get(int(page.tags.valueof(296, default=2)))
    per_unit = _x_resolution(page)
    if nm_per_unit is None or per_unit is None:
        return None
    return _plausible(nm_per_unit / per_unit)


def _as_frames(data: np.ndarray, axes: str, path: Path) -> np.ndarray:
    """Reshape a tifffile series to (n, rows, cols), refusing colour and hyperstacks."""
    keep = [
        i
        for i, (ax, size) in enumerate(zip(axes, data.shape, strict=True))
        if size > 1 or ax in "YX"
    ]
    data = data.reshape([data.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if any(ax in "CS" for ax in axes):
        raise FileFormatError(
            f"{path}: holds colour or multi-channel images (axes {axes}); save one grey channel"
        )
    frame_axes = [ax for ax in axes if ax not in "YX"]
    if axes[-2:] != "YX" or len(frame_axes) > 1 or any(ax not in _FRAME_AXES for ax in frame_axes):
        raise FileFormatError(
            f"{path}: axes {axes} are not a stack of 2D frames; save it as one (frame, y, x) stack"
        )
    return data if data.ndim == 3 else data[None]


def read_tiff(path: Path) -> FileRecord:
    """Read a TIFF image or stack with its pixel size.

    Parameters
    ----------
    path : Path
        A TIFF file; its first series is read (ImageJ hyperstacks with one frame axis, OME-TIFF,
        multi-page TIFF, single image).

    Returns
    -------
    FileRecord
        Frames ``(n, rows, cols)`` in the file's dtype; pixel size in nm from ImageJ metadata
        (resolution and unit), OME ``PhysicalSizeX``, or resolution tags in cm/mm/µm. TIFF holds
        no tilt angles: they come from a side file or the caller.

    Raises
    ------
    FileFormatError
        For colour, multi-channel, complex or more-than-3D data.
    """
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise FileFormatError(f"{path}: holds no images")
        series = tif.series[0]
        data = series.asarray()
        frames = _as_frames(data, series.axes, path)
        if np.iscomplexobj(frames) or frames.dtype.kind not in "uif":
            raise FileFormatError(f"{path}: holds {frames.dtype} values; expected grey intensities")
        record = FileRecord(path=path, format="TIFF", frames=frames)
        for source, finder in (
            ("ImageJ metadata", _imagej_pixel_nm),
            ("OME metadata", _ome_pixel_nm),
            ("TIFF resolution tags", lambda t: _resolution_pixel_nm(t.pages[0])),
        ):
            pixel = finder(tif)
            if pixel is not None and math.isfinite(pixel):
                record.pixel_size_nm, record.pixel_size_source = pixel, source
                break
        record.metadata.update({"original_dtype": str(frames.dtype), "tiff_axes": series.axes})
        if len(tif.series) > 1:
            record.warnings.append(
                f"{path.name}: holds {len(tif.series)} image series; only the first was read"
            )
    return record


def write_tiff(path: Path, data: np.ndarray, voxel_size_nm: float) -> None:
    """Write a float32 (z, y, x) array as an ImageJ TIFF that Fiji opens with the right scale.

    Parameters
    ----------
    path : Path
        Destination (normally a temporary name that the caller renames).
    data : ndarray, shape (z, y, x)
        Written as float32.
    voxel_size_nm : float
        Voxel edge in nanometres: resolution is ``1 / voxel_size_nm`` pixels per nm, with
        ImageJ ``unit='nm'`` and ``spacing=voxel_size_nm``.
    """
    pixels_per_nm = 1.0 / float(voxel_size_nm)
    tifffile.imwrite(
        path,
        np.ascontiguousarray(data, dtype=np.float32),
        imagej=True,
        resolution=(pixels_per_nm, pixels_per_nm),
        metadata={"unit": "nm", "spacing": float(voxel_size_nm), "axes": "ZYX"},
    )
