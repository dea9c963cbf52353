"""What limits the refined tilt angles of a synthetic project: one source of error left out at a time.

The refinement (:func:`~rstem_core.refine_step.refine_frames`, the step's stored parameters, from
the nominal angles) is run on versions of the rapid series that differ in one respect each, and
every result is scored against the truth like the stored refinement
(:func:`~rstem_core.analysis.refine_scores.geometry_scores`):

``noise_free``
    ``/truth/rapid_clean_undistorted``: noise-free frames without the scan distortion, row jitter
    and detector afterglow (still with the continuous tilt's time lag and the drift): the
    refinement's own limit.
``noise_free_corrected``
    ``/truth/rapid_clean`` (the noise-free frames as the rapid scan records them) corrected with
    the project's distortion map: what the scan's geometry and its calibration leave.
``before_denoising``
    The frames the denoiser read (``/processed/corrected``, else ``/raw/rapid``): the noise
    without the denoiser.
``refined``
    The step's own stored result (not run again).

A difference between two rows is what that source of error costs the angles. Each refinement
takes as long as the step's (about two minutes at the default size on two cores).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from ..align.refine import FLAG_EXCLUDED
from ..errors import RstemError
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..project import Project
from .limits import check_request
from .refine_scores import geometry_scores, stored_geometry_scores

ANGLE_LIMITS = ("noise_free", "noise_free_corrected", "before_denoising", "refined")
ALIGNMENT = "processed/alignment"
DENOISED = "processed/denoised"


def _frames(project: Project, name: str) -> tuple[np.ndarray | None, str]:
    """The frames of limit ``name`` and what they are (or None and why they cannot be made)."""
    if name == "noise_free":
        return project.read_array("truth/rapid_clean_undistorted"), "/truth/rapid_clean_undistorted"
    if name == "noise_free_corrected":
        if "calibration/distortion_map" not in project:
            return None, "no distortion map: run `rstem calibrate` first"
        from ..calib.distortion_map import DistortionMap

        dmap = DistortionMap.read_group(project.h5["calibration/distortion_map"])
        return dmap.correct(project.read_array("truth/rapid_clean")), "/truth/rapid_clean, distortion-corrected"
    from ..recon.step import noisy_companion

    if DENOISED in project:
        noisy = noisy_companion(project, DENOISED, project.read_series(DENOISED))
        if noisy is not None:
            return noisy[0], "/" + noisy[1]
    key = "processed/corrected" if "processed/corrected" in project else "raw/rapid"
    return project.read_series(key).frames, "/" + key


def angle_limits(
    project: Project,
    *,
    which: tuple[str, ...] = ANGLE_LIMITS,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, dict[str, Any]]:
    """Angle and shift errors of the refinements of :data:`ANGLE_LIMITS` named in ``which``.

    Returns
    -------
    dict
        ``{name: {**geometry_scores(...), "frames", "method", "features", "seconds"}}``; the
        ``refined`` entry holds the scores and the stored source; a limit that cannot be made
        holds ``{"skipped": reason}``.

    Raises
    ------
    RstemError
        Not a synthetic project, no refinement yet (the step's parameters are its), an unknown
        name, or frames the refinement cannot use.
    """
    from ..pipeline import params_from_dict
    from ..refine_step import RefineParams, refine_frames

    progress = progress or no_progress
    check_request(project, which, ANGLE_LIMITS)
    if f"{ALIGNMENT}/angles_deg" not in project:
        raise RstemError(f"{project.path.name} has no refinement yet: run `rstem refine` first")
    attrs = project.attrs(ALIGNMENT)
    params = params_from_dict(RefineParams, json.loads(attrs.get("params", "{}")))
    series = project.read_series("raw/rapid")
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(which):
        part = sub_progress(progress, i / len(which), (i + 1) / len(which))
        if name == "refined":
            out[name] = {**stored_geometry_scores(project), "frames": str(attrs.get("source", "")),
                         "method": str(attrs.get("method", ""))}
            continue
        frames, what = _frames(project, name)
        if frames is None:
            out[name] = {"skipped": what}
            continue
        part(0.0, f"refining {what}")
        started = time.perf_counter()
        try:
            result = refine_frames(np.asarray(frames, np.float32), series, params, progress=part, cancel=cancel)
        except ValueError as exc:
            raise RstemError(f"{project.path.name} {what}: {exc}") from None
        out[name] = {**geometry_scores(project, result.angles_deg, result.shifts_px,
                                       (result.flags & FLAG_EXCLUDED) > 0),
                     "frames": what, "method": result.method, "features": int(result.n_features),
                     "seconds": round(time.perf_counter() - started, 1)}
    progress(1.0, "angle limits scored")
    return out
