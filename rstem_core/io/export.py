"""Export volumes and tilt stacks to MRC, ImageJ TIFF and OME-Zarr, atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..model import TiltSeries, Volume
from ..progress import ProgressFn, no_progress
from ._record import plain
from .angles import format_angles
from .atomic import atomic_files, atomic_folder
from .formats import writer_for
from .mrc import write_mrc
from .omezarr import write_ome_zarr
from .tiff import write_tiff


def _write_text(path: Path, text: str) -> None:
    with open(path, "x", encoding="ascii", newline="\n") as fh:
        fh.write(text)


def _write(
    path: Path,
    data: np.ndarray,
    voxel_size_nm: float,
    *,
    stack: bool,
    angles_deg: np.ndarray | None,
    extra: dict[str, Any],
    progress: ProgressFn,
) -> Path:
    kind = writer_for(path)
    what = "tilt stack" if stack else "volume"
    progress(0.0, f"writing {path.name}")
    if kind == "zarr":
        with atomic_folder(path) as temp:
            write_ome_zarr(temp, data, voxel_size_nm, name=path.stem, extra=extra)
    else:
        targets = [path]
        if angles_deg is not None:
            targets.append(path.with_suffix(".rawtlt"))
        with atomic_files(*targets) as temps:
            if kind == "mrc":
                write_mrc(temps[0], data, voxel_size_nm, stack=stack, label=f"rstem {what}")
            else:
                write_tiff(temps[0], data, voxel_size_nm)
            if angles_deg is not None:
                _write_text(temps[1], format_angles(angles_deg))
    progress(1.0, f"wrote {path.name}")
    return path


def write_volume(volume: Volume, path: str | Path, *, progress: ProgressFn | None = None) -> Path:
    """Write a reconstructed volume for other viewers; the format follows the suffix.

    Parameters
    ----------
    volume : Volume
        Data ``(z, y, x)`` and the voxel edge in nanometres.
    path : str or Path
        ``.mrc`` (mode 2 float32, voxel size in Angstrom in the header, origin 0, ``ispg`` 1),
        ``.tif``/``.tiff`` (ImageJ float32 with resolution in pixels per nm, ``unit='nm'``,
        ``spacing`` = voxel size) or ``.zarr`` (OME-Zarr NGFF 0.4, axes z, y, x in nanometres).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    Path
        The written path. The file appears only once complete (temporary name, then rename).

    Raises
    ------
    FileFormatError
        For an unsupported suffix.
    RstemError
        When the folder is missing or the disk refuses the write.
    """
    return _write(
        Path(path),
        volume.data,
        volume.voxel_size_nm,
        stack=False,
        angles_deg=None,
        extra={
            "kind": "volume",
            "voxel_size_nm": volume.voxel_size_nm,
            "metadata": plain(volume.metadata),
        },
        progress=progress or no_progress,
    )


def write_stack(
    series: TiltSeries, path: str | Path, *, progress: ProgressFn | None = None
) -> Path:
    """Write a tilt series' frames ``(n, y, x)`` for other programs; the format follows the suffix.

    Parameters
    ----------
    series : TiltSeries
        Frames, angles in degrees and pixel size in nanometres.
    path : str or Path
        ``.mrc`` (IMOD image stack, ``ispg`` 0), ``.tif``/``.tiff`` (ImageJ) or ``.zarr``
        (OME-Zarr; the angles are in the root attribute ``rstem.angles_deg``). For ``.mrc`` and
        TIFF the angles also go to ``<stem>.rawtlt`` beside it (IMOD style, ``"%.2f"`` per line),
        which :func:`rstem_core.io.read_series` picks up again.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    Path
        The written stack path.

    Raises
    ------
    FileFormatError
        For an unsupported suffix.
    RstemError
        When the folder is missing or the disk refuses the write.
    """
    path = Path(path)
    return _write(
        path,
        series.frames,
        series.pixel_size_nm,
        stack=True,
        angles_deg=series.angles_deg,
        extra={
            "kind": "tilt_stack",
            "pixel_size_nm": series.pixel_size_nm,
            "angles_deg": series.angles_deg.tolist(),
            "metadata": plain(series.metadata),
        },
        progress=progress or no_progress,
    )
