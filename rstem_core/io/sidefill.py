"""Complete one file's record from the side files beside it (angle list, SerialEM mdoc, log).

Priorities (first found wins), per DESIGN.md and the importer contract:

- angles: ``<stem>.rawtlt`` / ``<stem>.tlt``, then the ``.mdoc``, then the file's own headers;
- pixel size: the ``.mdoc``, then the file's own headers, then the acquisition log ``<stem>.txt``;
- tilt axis: the ``.mdoc``, then the acquisition log, then the file's own headers.

Values the caller passes to :func:`rstem_core.io.read_series` override all of these later.
"""

from __future__ import annotations

import numpy as np

from ..errors import FileFormatError
from ._record import FileRecord
from .angles import find_angle_file, read_angle_file
from .sidecars import find_acquisition_log, find_mdoc, read_acquisition_log, read_mdoc


def _count_check(source: str, count: int, record: FileRecord) -> None:
    if count != record.n_frames:
        raise FileFormatError(
            f"{source}: holds {count} tilt angles but {record.path.name} has {record.n_frames} frames"
        )


def fill_from_side_files(record: FileRecord, *, use_angle_file: bool = True) -> None:
    """Fill missing or lower-priority fields of ``record`` in place from its side files.

    Parameters
    ----------
    record : FileRecord
        What the format reader found in the file.
    use_angle_file : bool
        Look for a ``<stem>.rawtlt`` / ``<stem>.tlt`` (False when the caller gives angles).

    Raises
    ------
    FileFormatError
        If a side file's angle count differs from the file's frame count, or it is unreadable.
    """
    used: list[str] = []
    angle_file = find_angle_file(record.path) if use_angle_file else None
    if angle_file is not None:
        angles = read_angle_file(angle_file)
        _count_check(str(angle_file), angles.size, record)
        record.angles_deg, record.angles_source = angles, f"angle file {angle_file.name}"
        used.append(angle_file.name)

    axis_from_mdoc = False
    mdoc_path = find_mdoc(record.path)
    if mdoc_path is not None:
        mdoc = read_mdoc(mdoc_path)
        used.append(mdoc_path.name)
        if mdoc.angles_deg is not None and angle_file is None and use_angle_file:
            _count_check(str(mdoc_path), mdoc.angles_deg.size, record)
            record.angles_deg, record.angles_source = mdoc.angles_deg, f"SerialEM {mdoc_path.name}"
        if mdoc.pixel_size_nm is not None:
            record.pixel_size_nm = mdoc.pixel_size_nm
            record.pixel_size_source = f"SerialEM {mdoc_path.name} PixelSpacing"
        if mdoc.tilt_axis_deg is not None:
            record.tilt_axis_deg = mdoc.tilt_axis_deg
            record.tilt_axis_source = f"SerialEM {mdoc_path.name}"
            axis_from_mdoc = True
        if (
            mdoc.times_s is not None
            and mdoc.times_s.size == record.n_frames
            and record.times_s is None
        ):
            record.times_s, record.times_absolute = mdoc.times_s, True
        if mdoc.exposure_time_s:
            exposures = np.asarray(mdoc.exposure_time_s)
            same = np.allclose(exposures, exposures[0])
            record.metadata["exposure_time_s"] = float(exposures[0]) if same else exposures.tolist()
        if mdoc.channels:
            record.metadata.setdefault("channel", mdoc.channels[0])

    log_path = find_acquisition_log(record.path)
    if log_path is not None:
        log = read_acquisition_log(log_path)
        if any(v is not None for v in (log.pixel_size_nm, log.tilt_axis_deg, log.exposure_time_s)):
            used.append(log_path.name)
        if record.pixel_size_nm is None and log.pixel_size_nm is not None:
            record.pixel_size_nm = log.pixel_size_nm
            record.pixel_size_source = f"acquisition log {log_path.name}"
        elif record.pixel_size_nm is not None and log.pixel_size_nm is not None:
            if not np.isclose(record.pixel_size_nm, log.pixel_size_nm, rtol=1e-3):
                record.warnings.append(
                    f"{log_path.name} says pixel size {log.pixel_size_nm:g} nm; using "
                    f"{record.pixel_size_nm:g} nm from the {record.pixel_size_source}"
                )
        if log.tilt_axis_deg is not None and not axis_from_mdoc:
            record.tilt_axis_deg = log.tilt_axis_deg
            record.tilt_axis_source = f"acquisition log {log_path.name}"
        if log.exposure_time_s is not None:
            record.metadata.setdefault("exposure_time_s", log.exposure_time_s)
    if used:
        record.metadata["side_files"] = used
