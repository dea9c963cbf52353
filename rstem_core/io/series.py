"""Import a tilt series from one stack file or several single-image files."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError
from ..model import TiltSeries
from ..progress import ProgressFn, no_progress
from ._record import FileRecord, library_errors, plain
from .angles import read_angle_file
from .dm import read_dm
from .emd import read_emd
from .formats import reader_for
from .mrc import read_mrc
from .orient import normalise_angle, rotate_to_x
from .sidefill import fill_from_side_files
from .tiff import read_tiff

_READERS: dict[str, tuple[str, Callable[[Path, str | None], FileRecord]]] = {
    "mrc": ("MRC", lambda path, channel: read_mrc(path)),
    "tiff": ("TIFF", lambda path, channel: read_tiff(path)),
    "dm": ("Gatan DigitalMicrograph", read_dm),
    "emd": ("EMD (HDF5)", read_emd),
}
_CHANNEL_FORMATS = ("dm", "emd")


def _as_paths(paths: Sequence[str | Path] | str | Path) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    result = [Path(p) for p in paths]
    if not result:
        raise FileFormatError("no image files given")
    return result


def _read_file(path: Path, channel: str | None, use_angle_file: bool) -> FileRecord:
    kind = reader_for(path)
    what, reader = _READERS[kind]
    with library_errors(path, what):
        record = reader(path, channel)
    if channel is not None and kind not in _CHANNEL_FORMATS:
        record.warnings.append(
            f"{path.name}: channel {channel!r} ignored; the file holds one image series"
        )
    fill_from_side_files(record, use_angle_file=use_angle_file)
    return record


def _single(values: list[Any], rtol: float = 1e-6) -> Any:
    """The common value of ``values`` if all are equal (numbers within ``rtol``), else ``None``."""
    first = values[0]
    for value in values[1:]:
        if isinstance(first, float) and isinstance(value, float):
            if not math.isclose(first, value, rel_tol=rtol):
                return None
        elif value != first:
            return None
    return first


def _merge_metadata(records: list[FileRecord]) -> dict[str, Any]:
    """Keys equal in every file keep one value; keys that differ go to ``per_file`` lists."""
    merged: dict[str, Any] = {}
    per_file: dict[str, list[Any]] = {}
    keys = dict.fromkeys(k for r in records for k in r.metadata)
    for key in keys:
        values = [plain(r.metadata.get(key)) for r in records]
        common = _single(values)
        if common is not None:
            merged[key] = common
        elif any(v is not None for v in values):
            per_file[key] = values
    if per_file:
        merged["per_file"] = per_file
    return merged


def _angles(
    records: list[FileRecord],
    angles_file: str | Path | None,
    n: int,
    given: float | Sequence[float] | None = None,
) -> tuple[np.ndarray, str]:
    if given is not None:
        angles = (
            np.broadcast_to(np.asarray(given, dtype=np.float64), (n,)).copy()
            if np.ndim(given) == 0
            else np.asarray(given, dtype=np.float64)
        )
        if angles.shape != (n,):
            raise FileFormatError(f"{angles.size} tilt angles given but the series has {n} frames")
        return angles, "given"
    if angles_file is not None:
        angles = read_angle_file(angles_file)
        if angles.size != n:
            raise FileFormatError(
                f"{angles_file}: holds {angles.size} tilt angles but the series has {n} frames"
            )
        return angles, f"angle file {Path(angles_file).name} (given)"
    for record in records:
        if record.angles_deg is None:
            raise FileFormatError(
                f"{record.path}: no tilt angles found; give them with --angles FILE.rawtlt"
            )
    sources = dict.fromkeys(str(r.angles_source) for r in records)
    return np.concatenate([r.angles_deg for r in records]), "; ".join(sources)


def _pixel_size(records: list[FileRecord], given: float | None) -> tuple[float, str]:
    if given is not None:
        return float(given), "given"
    for record in records:
        if record.pixel_size_nm is None:
            raise FileFormatError(
                f"{record.path}: no pixel size found in the file or beside it; "
                "give it in nm with --pixel-size"
            )
    sizes = [float(r.pixel_size_nm) for r in records]
    if not np.allclose(sizes, sizes[0], rtol=1e-3):
        listed = ", ".join(f"{r.path.name} {s:g} nm" for r, s in zip(records, sizes, strict=True))
        raise FileFormatError(
            f"the files disagree on the pixel size ({listed}); give one with --pixel-size"
        )
    sources = dict.fromkeys(str(r.pixel_size_source) for r in records)
    return sizes[0], "; ".join(sources)


def _tilt_axis(records: list[FileRecord], given: float | None) -> tuple[float, str]:
    if given is not None:
        return float(given), "given"
    found = {(r.tilt_axis_deg, r.tilt_axis_source) for r in records if r.tilt_axis_deg is not None}
    axes = {normalise_angle(a) for a, _ in found}
    if len(axes) > 1:
        listed = ", ".join(f"{a:g}" for a in sorted(axes))
        raise FileFormatError(
            f"the files disagree on the tilt axis angle ({listed} degrees); give it explicitly"
        )
    if not found:
        return 0.0, "none found; assumed along x"
    axis, source = sorted(found, key=str)[0]
    return float(axis), str(source)


def _fast_scan_axis(rotation_deg: float) -> str:
    quarter = rotation_deg / 90.0
    if abs(quarter - round(quarter)) > 1e-6:
        return "oblique"
    return "y" if int(round(quarter)) % 2 else "x"


def _frame_times(records: list[FileRecord]) -> np.ndarray | None:
    if any(r.times_s is None for r in records):
        return None
    if len(records) > 1 and not all(r.times_absolute for r in records):
        return None
    return np.concatenate([np.asarray(r.times_s, dtype=np.float64) for r in records])


def _timing(
    records: list[FileRecord],
    order: np.ndarray,
    rotation: float,
    meta: dict[str, Any],
    notes: list[str],
) -> tuple[np.ndarray | None, float | None]:
    """Frame start times (s, from the first frame) and row time (s) of the assembled series.

    Times that do not increase in frame order, and a row time that no longer describes image
    rows after a rotation, go to ``meta`` instead, with a note.
    """
    timestamps = None
    times = _frame_times(records)
    if times is not None:
        times = times[order]
        if np.all(np.diff(times) >= 0):
            timestamps = np.round(times - times[0], 6)
        else:
            meta["frame_times_s"] = np.round(times - times.min(), 6).tolist()
            notes.append(
                "frame acquisition times do not increase in frame order; kept in "
                "metadata['frame_times_s'], timestamps_s left empty"
            )
    line_time = _single([r.line_time_s for r in records])
    if line_time is not None and rotation != 0.0:
        meta["scan_line_time_s"] = line_time
        notes.append(
            f"frames rotated by {rotation:g} degrees, so image rows are no longer scan lines in "
            "acquisition order; line_time_s left empty (the file's value is in scan_line_time_s)"
        )
        line_time = None
    return timestamps, line_time


def read_series(
    paths: Sequence[str | Path],
    *,
    angles_file: str | Path | None = None,
    angles_deg: float | Sequence[float] | None = None,
    pixel_size_nm: float | None = None,
    tilt_axis_deg: float | None = None,
    channel: str | None = None,
    progress: ProgressFn | None = None,
) -> TiltSeries:
    """Read a tilt series from one stack file or from one image file per tilt.

    Supported: MRC family (``.mrc .st .ali .mrcs .rec .map``), TIFF (``.tif .tiff``), Gatan
    (``.dm3 .dm4``), EMD (``.emd``, Velox and NCEM); unknown suffixes are recognised by content.

    Parameters
    ----------
    paths : sequence of str or Path
        One stack file, or several files (one frame or stack each) assembled in the given order.
        Files not in tilt-angle order are sorted by angle (noted in ``metadata['warnings']``).
    angles_file : str or Path, optional
        IMOD ``.rawtlt``/``.tlt`` angle list (degrees, one per line, one per frame of the whole
        series). Overrides every other angle source.
    angles_deg : float or sequence of float, optional
        The tilt angles themselves (one per frame, or one for all frames, e.g. a training area's
        stage tilt); overrides every other source, ``angles_file`` included.
    pixel_size_nm : float, optional
        Pixel size in nanometres; overrides every other source.
    tilt_axis_deg : float, optional
        Direction of the tilt axis in the files, degrees from +x (columns) towards +y (rows);
        overrides the ``.mdoc`` or log. Frames are rotated so the axis lies along +x.
    channel : str, optional
        Image title to read from files holding several (Velox EMD, DM), e.g. ``"HAADF"``.
    progress : callable, optional
        ``progress(fraction, message)``, called per file.

    Returns
    -------
    TiltSeries
        Frames float32 ``(n, rows, cols)`` with the tilt axis along x (``tilt_axis_deg == 0``),
        angles in degrees, pixel size in nm, frame times and row time in seconds where known.
        ``metadata`` records the source files, format, original dtype, where angles, pixel size
        and tilt axis came from, ``import_rotation_deg`` and ``tilt_axis_in_file_deg``.

    Raises
    ------
    FileFormatError
        For a missing, unknown, truncated or non-image file; when no tilt angles or no pixel size
        can be found; when an angle list and the frames disagree in number; when several files
        disagree in frame shape, pixel size or tilt axis.

    Notes
    -----
    Angle sources in priority: ``angles_file``; ``<stem>.rawtlt``/``.tlt`` beside the file;
    SerialEM ``.mdoc``; FEI/SerialEM MRC extended header; DM ``Stage Alpha``; Velox
    ``Stage/AlphaTilt`` (radians, converted). Pixel size: argument; ``.mdoc`` ``PixelSpacing``;
    FEI extended header when the MRC voxel size is missing or 1 Angstrom; MRC voxel size;
    DM/EMD/TIFF calibration; acquisition log ``<stem>.txt``. Tilt axis: argument; ``.mdoc``;
    ``<stem>.txt``; MRC label; otherwise assumed along x.

    Examples
    --------
    >>> series = read_series(["HAADF.mrc"])  # doctest: +SKIP
    >>> series.frames.shape, series.pixel_size_nm  # doctest: +SKIP
    ((77, 256, 256), 3.36)
    """
    files = _as_paths(paths)
    if pixel_size_nm is not None and not (
        math.isfinite(float(pixel_size_nm)) and pixel_size_nm > 0
    ):
        raise FileFormatError(
            f"pixel_size_nm must be a positive number of nanometres, got {pixel_size_nm!r}"
        )
    if tilt_axis_deg is not None and not math.isfinite(float(tilt_axis_deg)):
        raise FileFormatError(
            f"tilt_axis_deg must be a finite angle in degrees, got {tilt_axis_deg!r}"
        )
    report = progress or no_progress
    records = []
    for i, path in enumerate(files):
        report(0.9 * i / len(files), f"reading {path.name}")
        records.append(
            _read_file(path, channel, use_angle_file=angles_file is None and angles_deg is None)
        )
    report(0.9, "assembling the series")
    series = _assemble(records, angles_file, pixel_size_nm, tilt_axis_deg, angles_deg)
    report(1.0, f"read {series.n_frames} frames")
    return series


def _assemble(
    records: list[FileRecord],
    angles_file: str | Path | None,
    pixel_size_nm: float | None,
    tilt_axis_deg: float | None,
    angles_deg: float | Sequence[float] | None = None,
) -> TiltSeries:
    first = records[0]
    for record in records[1:]:
        if record.frames.shape[1:] != first.frames.shape[1:]:
            raise FileFormatError(
                f"{record.path}: frames of {record.frames.shape[1]}x{record.frames.shape[2]} pixels "
                f"do not match {first.path.name} ({first.frames.shape[1]}x{first.frames.shape[2]})"
            )
    frames = np.concatenate([r.frames for r in records]) if len(records) > 1 else first.frames
    n = frames.shape[0]
    angles, angles_source = _angles(records, angles_file, n, angles_deg)
    pixel, pixel_source = _pixel_size(records, pixel_size_nm)
    axis_in_file, axis_source = _tilt_axis(records, tilt_axis_deg)
    rotation = normalise_angle(axis_in_file)
    frames = rotate_to_x(frames, rotation)

    notes = [w for r in records for w in r.warnings]
    frame_files = [r.path.name for r in records for _ in range(r.n_frames)]
    order = np.arange(n)
    d = np.diff(angles)
    if not (np.all(d >= 0) or np.all(d <= 0)):
        order = np.argsort(angles, kind="stable")
        frames, angles = frames[order], angles[order]
        what = "files were" if len(records) > 1 else "frames were"
        notes.append(f"{what} not in tilt-angle order; sorted by angle")
    meta: dict[str, Any] = _merge_metadata(records)
    timestamps, line_time = _timing(records, order, rotation, meta, notes)
    meta.update(
        {
            "source_files": [str(r.path) for r in records],
            "format": "; ".join(dict.fromkeys(r.format for r in records)),
            "angles_source": angles_source,
            "pixel_size_source": pixel_source,
            "tilt_axis_source": axis_source,
            "tilt_axis_in_file_deg": axis_in_file,
            "import_rotation_deg": rotation,
            "fast_scan_axis": _fast_scan_axis(rotation),
            "dwell_time_s": _single([r.dwell_time_s for r in records]),
        }
    )
    if len(records) > 1:
        meta["frame_files"] = [frame_files[i] for i in order]
    if notes:
        meta["warnings"] = notes
    meta = {k: v for k, v in plain(meta).items() if v is not None}
    try:
        return TiltSeries(
            frames=frames,
            angles_deg=angles,
            pixel_size_nm=pixel,
            timestamps_s=timestamps,
            line_time_s=line_time,
            tilt_axis_deg=0.0,
            metadata=meta,
        )
    except ValueError as exc:
        raise FileFormatError(f"{first.path}: {exc}") from None
