"""Export project results for other viewers (MRC, TIFF, OME-Zarr), see :mod:`rstem_core.io`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import RstemError
from .io import write_stack, write_volume
from .model import TiltSeries
from .progress import ProgressFn
from .project import Project

#: what can be exported, where it lives in the project, and which step makes it
EXPORTABLE = {
    "volume": ("reconstruction/volume", "rstem reconstruct"),
    "aligned": ("processed/aligned", "rstem refine"),
    "denoised": ("processed/denoised", "rstem denoise"),
    "distortion": ("calibration/distortion_map", "rstem calibrate"),
}


def export(
    project: Project,
    out: str | Path,
    *,
    what: str = "volume",
    role: str = "rapid",
    progress: ProgressFn | None = None,
) -> Path:
    """Write ``what`` from ``project`` to ``out`` (format from its suffix); returns the path.

    The aligned series also gets its refined angles as an IMOD ``.tlt`` file beside the stack
    (``OUT.tlt``: one angle per line, degrees).

    Raises
    ------
    RstemError
        If ``what`` is unknown or has not been computed yet, or the suffix is not supported.
    """
    out = Path(out)
    if what == "raw":
        key, producer = f"raw/{role}", f"rstem import PROJECT {role} FILE"
    elif what in EXPORTABLE:
        key, producer = EXPORTABLE[what]
    else:
        raise RstemError(f"cannot export {what!r}; choose one of: raw, {', '.join(EXPORTABLE)}")
    if key not in project:
        raise RstemError(f"{project.path.name} has no {what} yet: run `{producer}` first")
    kind = project.h5[key].attrs.get("kind", "")
    if kind == "volume":
        return write_volume(project.read_volume(key), out, progress=progress)
    if kind == "tilt_series":
        series = project.read_series(key)
        path = write_stack(series, out, progress=progress)
        if what == "aligned":
            from .align.apply import tlt_text

            out.with_suffix(".tlt").write_text(tlt_text(series.angles_deg), encoding="ascii")
        return path
    if what == "distortion":
        grp = project.h5[key]
        maps = np.stack([grp["dx_px"][()], grp["dy_px"][()]]).astype(np.float32)
        pixel = float(grp.attrs.get("pixel_size_nm", 1.0))
        series = TiltSeries(maps, [0.0, 0.0], pixel, metadata={"channels": ["dx_px", "dy_px"]})
        return write_stack(series, out, progress=progress)
    raise RstemError(f"{key} in {project.path.name} is not a volume or a stack")  # pragma: no cover
