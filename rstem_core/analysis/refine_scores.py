"""Scores of the tilt refinement against the truth of a synthetic project.

``angle_rms_deg`` compares the refined frame angles (``/processed/alignment/angles_deg``) with the
true angles at the frames' mid-times (``/truth/rapid_angles_deg``) as they are: the refinement
fixes the common rotation of all angles from the nominal start and end angles (see
:mod:`rstem_core.refine_step`), so the comparison removes nothing.

``shift_rms_px`` compares the refined shifts with the true drift (``/truth/rapid_drift_px``,
both (dy, dx) at the frame mid-time) after removing the one thing no image can tell: where the
specimen sits relative to the volume centre. Moving the specimen by (x0, y0, z0) changes every
frame's shift by (y0 cos(theta) - z0 sin(theta), x0); the refinement chooses (x0, y0) from the
frame nearest zero tilt and z0 from the slab's middle, the simulation from where its drift
started. The three are fitted by least squares and removed; what is left is what blurs a
reconstruction. Excluded frames (flag bit 1) are not scored.
"""

from __future__ import annotations

import numpy as np

from ..errors import RstemError
from ..project import Project

ALIGNMENT = "processed/alignment"


def _require(project: Project, *keys: str) -> None:
    for key in keys:
        if key not in project:
            raise RstemError(f"{project.path.name} has no {key}: run `rstem refine` (and use a synthetic project)")


def _scored(project: Project, n: int) -> np.ndarray:
    if f"{ALIGNMENT}/flags" not in project:
        return np.ones(n, dtype=bool)
    return (project.read_array(f"{ALIGNMENT}/flags") & 1) == 0


def angle_rms_deg(project: Project) -> float:
    """RMS difference of the refined and the true frame angles, degrees (nothing removed).

    Raises
    ------
    RstemError
        The project has no refinement or no truth.
    """
    _require(project, f"{ALIGNMENT}/angles_deg", "truth/rapid_angles_deg")
    refined = project.read_array(f"{ALIGNMENT}/angles_deg")
    true = project.read_array("truth/rapid_angles_deg")
    if refined.shape != true.shape:
        raise RstemError(f"{refined.size} refined angles but {true.size} true ones")
    keep = _scored(project, true.size)
    return _rms(refined[keep] - true[keep])


def round_angle_rms_deg(project: Project) -> list[float]:
    """``angle_rms_deg`` of the angles after each feature round (``round_angles_deg``), in order;
    empty when the refinement followed no features."""
    _require(project, "truth/rapid_angles_deg")
    if f"{ALIGNMENT}/round_angles_deg" not in project:
        return []
    rounds = project.read_array(f"{ALIGNMENT}/round_angles_deg")
    true = project.read_array("truth/rapid_angles_deg")
    keep = _scored(project, true.size)
    return [_rms(a[keep] - true[keep]) for a in rounds]


def angle_errors_deg(project: Project) -> tuple[float, float]:
    """The refined angles' common offset from the truth and their RMS error without it, degrees.

    A rotation of all angles together with the specimen changes no image; the refinement fixes
    it from the nominal start and end angles, which the goniometer misses by a few tenths of a
    degree. The two numbers tell that gauge error apart from how well the images gave each
    frame's angle relative to the others.

    Returns
    -------
    offset_deg : float
        Mean of refined minus true angles over the scored frames.
    rms_deg : float
        RMS of refined minus true angles after removing ``offset_deg``.
    """
    _require(project, f"{ALIGNMENT}/angles_deg", "truth/rapid_angles_deg")
    refined = project.read_array(f"{ALIGNMENT}/angles_deg")
    true = project.read_array("truth/rapid_angles_deg")
    keep = _scored(project, true.size)
    e = refined[keep] - true[keep]
    return float(np.mean(e)), _rms(e - np.mean(e))


def angle_sd_rms_deg(project: Project) -> float:
    """RMS over the scored frames of the refinement's own standard deviation of each angle,
    degrees: what the refinement expects ``angle_rms_deg`` to be, the gauge error aside."""
    _require(project, f"{ALIGNMENT}/angle_sd_deg")
    sd = project.read_array(f"{ALIGNMENT}/angle_sd_deg")
    keep = _scored(project, sd.size) & np.isfinite(sd)
    return float(np.sqrt(np.mean(sd[keep] ** 2))) if keep.any() else float("nan")


def nominal_angle_rms_deg(project: Project) -> float:
    """RMS difference of the nominal (reported) and the true frame angles, degrees."""
    _require(project, "raw/rapid/angles_deg", "truth/rapid_angles_deg")
    nominal = project.read_array("raw/rapid/angles_deg")
    true = project.read_array("truth/rapid_angles_deg")
    return float(np.sqrt(np.mean((nominal - true) ** 2)))


def shift_errors_px(refined_px: np.ndarray, true_px: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Shift errors (n, 2) (dy, dx) with the best-fitting specimen translation removed.

    Parameters
    ----------
    refined_px, true_px : ndarray, shape (n, 2)
        (dy, dx) per frame, pixels.
    angles_deg : ndarray, shape (n,)
        True frame angles, degrees.
    """
    e = np.asarray(refined_px, dtype=np.float64) - np.asarray(true_px, dtype=np.float64)
    th = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    a = np.stack([np.cos(th), -np.sin(th)], axis=1)
    coef, *_ = np.linalg.lstsq(a, e[:, 0], rcond=None)
    out = e.copy()
    out[:, 0] -= a @ coef
    out[:, 1] -= e[:, 1].mean()
    return out


def shift_rms_px(project: Project) -> float:
    """RMS of the refined minus the true shifts, pixels, specimen translation removed.

    Raises
    ------
    RstemError
        The project has no refinement or no truth.
    """
    _require(project, f"{ALIGNMENT}/shifts_px", "truth/rapid_drift_px", "truth/rapid_angles_deg")
    refined = project.read_array(f"{ALIGNMENT}/shifts_px")
    true = project.read_array("truth/rapid_drift_px")
    angles = project.read_array("truth/rapid_angles_deg")
    if refined.shape != true.shape:
        raise RstemError(f"{refined.shape[0]} refined shifts but {true.shape[0]} true ones")
    keep = _scored(project, angles.size)
    return _rms(shift_errors_px(refined[keep], true[keep], angles[keep]))


def geometry_scores(project: Project, angles_deg: np.ndarray, shifts_px: np.ndarray,
                    excluded: np.ndarray | None = None) -> dict[str, float]:
    """Any refined geometry of the rapid series scored against the truth like the stored one.

    Parameters
    ----------
    project : Project
        A synthetic project.
    angles_deg : ndarray, shape (n,)
        Refined frame angles, degrees.
    shifts_px : ndarray, shape (n, 2)
        Refined (dy, dx) shifts, pixels.
    excluded : ndarray of bool, shape (n,), optional
        Frames left out of the scores (excluded from the refinement).

    Returns
    -------
    dict
        ``angle_rms_deg`` (nothing removed), ``angle_offset_deg`` (the common offset),
        ``angle_rms_about_offset_deg`` and ``shift_rms_px`` (specimen translation removed).

    Raises
    ------
    RstemError
        No truth, or arrays that do not fit the series.
    """
    _require(project, "truth/rapid_angles_deg", "truth/rapid_drift_px")
    true = project.read_array("truth/rapid_angles_deg")
    drift = project.read_array("truth/rapid_drift_px")
    angles, shifts = np.asarray(angles_deg, dtype=np.float64), np.asarray(shifts_px, dtype=np.float64)
    if angles.shape != true.shape or shifts.shape != drift.shape:
        raise RstemError(f"{angles.size} angles and {shifts.shape[0]} shifts for a series of {true.size} frames")
    keep = np.ones(true.size, dtype=bool) if excluded is None else ~np.asarray(excluded, dtype=bool)
    e = angles[keep] - true[keep]
    return {
        "angle_rms_deg": _rms(e),
        "angle_offset_deg": float(np.mean(e)),
        "angle_rms_about_offset_deg": _rms(e - np.mean(e)),
        "shift_rms_px": _rms(shift_errors_px(shifts[keep], drift[keep], true[keep])),
    }


def stored_geometry_scores(project: Project) -> dict[str, float]:
    """:func:`geometry_scores` of the stored refinement (its excluded frames left out).

    Raises
    ------
    RstemError
        The project has no refinement or no truth.
    """
    _require(project, f"{ALIGNMENT}/angles_deg", f"{ALIGNMENT}/shifts_px")
    angles = project.read_array(f"{ALIGNMENT}/angles_deg")
    return geometry_scores(project, angles, project.read_array(f"{ALIGNMENT}/shifts_px"),
                           ~_scored(project, angles.size))


def _rms(errors: np.ndarray) -> float:
    """Root mean square of an (n,) array, or of the vector lengths of an (n, 2) one."""
    e = np.asarray(errors, dtype=np.float64)
    return float(np.sqrt(np.mean(e**2 if e.ndim == 1 else np.sum(e**2, axis=1))))
