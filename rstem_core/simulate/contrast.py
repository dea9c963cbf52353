"""Bright-field two-beam image formation: noise-free intensity of one frame.

The clean intensity (fraction of the incident beam reaching the bright-field detector) is

    I = exp(-t_eff / absorption_length) * bend(X, Y, theta) * (1 - C (1 - exp(-k P)))

with ``t_eff = t(X, Y) / cos(theta)`` (slightly wedge-shaped foil), ``bend`` the moving bend
contours (:mod:`.bending`) and ``P`` the projected dislocation darkness (:mod:`.projection`), whose
line contrast oscillates with depth, vanishes at the surfaces, fades at high tilt and broadens with
effective thickness. The saturating response ``1 - C (1 - exp(-k P))`` (C = ``max_line_contrast``,
k = ``line_strength``) keeps crossings and lines seen end-on from going black. Frames are therefore
*not* projections of the dislocation density: background, contrast and line width all change with
the tilt, which is why the reconstruction step binarises or normalises them first.
"""

from __future__ import annotations

import numpy as np

from .bending import BendContours
from .params import ContrastParams
from .projection import Canvas, LinePoints, project_lines
from .specimen import Specimen


def background(
    canvas: Canvas,
    specimen: Specimen,
    bend: BendContours | None,
    *,
    pixel_size_nm: float,
    row_angles_deg: np.ndarray,
    row_drift_px: np.ndarray,
    contrast: ContrastParams,
) -> np.ndarray:
    """Dislocation-free intensity on the canvas (absorption, wedge and bend contours).

    Parameters
    ----------
    canvas : Canvas
    specimen : Specimen
        Supplies thickness, wedge and field width.
    bend : BendContours or None
    pixel_size_nm : float
    row_angles_deg : ndarray, shape (canvas rows,)
        Tilt at the time each canvas row is scanned, degrees.
    row_drift_px : ndarray, shape (canvas rows, 2)
        Image drift (dy, dx) at that time, px.
    contrast : ContrastParams

    Returns
    -------
    ndarray, shape canvas.shape, float32
    """
    px = pixel_size_nm
    theta = np.radians(row_angles_deg)[:, None]
    cos_t = np.cos(theta)
    v = (canvas.frame_rows()[:, None] - (canvas.rows - 1) / 2 - row_drift_px[:, :1]) * px
    x = (canvas.frame_cols()[None, :] - (canvas.cols - 1) / 2 - row_drift_px[:, 1:]) * px
    y = v / cos_t  # mid-plane point seen at row coordinate v
    wx, wy = specimen.wedge
    t_local = specimen.thickness_nm * (1 + (wx * x + wy * y) / specimen.field_nm)
    out = np.exp(-t_local / (cos_t * contrast.absorption_length_nm)).astype(np.float32)
    if bend is not None:
        out *= bend.factor(x, y, np.degrees(theta))
    return out


def line_response(darkness: np.ndarray, contrast: ContrastParams) -> np.ndarray:
    """Saturating transmission factor of dislocation strain contrast: ``1 - C (1 - exp(-k P))``."""
    return (
        1.0 - contrast.max_line_contrast * (1.0 - np.exp(-contrast.line_strength * darkness))
    ).astype(np.float32)


def render_frame(
    specimen: Specimen,
    points: LinePoints,
    bend: BendContours | None,
    canvas: Canvas,
    *,
    pixel_size_nm: float,
    row_angles_deg: np.ndarray | float,
    row_drift_px: np.ndarray | None = None,
    contrast: ContrastParams,
) -> np.ndarray:
    """Clean, undistorted bright-field frame on the canvas.

    Parameters
    ----------
    specimen : Specimen
    points : LinePoints
        ``sample_lines(specimen, ...)``.
    bend : BendContours or None
    canvas : Canvas
    pixel_size_nm : float
    row_angles_deg : float or ndarray, shape (canvas rows,)
        One angle for a still specimen, or each canvas row's angle for a continuously tilted one.
    row_drift_px : ndarray, shape (canvas rows, 2) or (2,), optional
        Image drift (dy, dx) px per canvas row, or one for the whole frame; default none.
    contrast : ContrastParams

    Returns
    -------
    ndarray, shape canvas.shape, float32
        Intensity as a fraction of the incident beam (0..1).
    """
    h = canvas.shape[0]
    angles = np.broadcast_to(np.asarray(row_angles_deg, np.float64), (h,))
    if np.any(np.abs(angles) >= 89.0):
        raise ValueError("row_angles_deg must stay within +-89 deg")
    drift = (
        np.zeros((h, 2))
        if row_drift_px is None
        else np.broadcast_to(np.asarray(row_drift_px, np.float64), (h, 2))
    )
    bg = background(
        canvas,
        specimen,
        bend,
        pixel_size_nm=pixel_size_nm,
        row_angles_deg=angles,
        row_drift_px=drift,
        contrast=contrast,
    )
    dark = project_lines(
        points,
        canvas,
        pixel_size_nm=pixel_size_nm,
        thickness_nm=specimen.thickness_nm,
        row_angles_deg=angles,
        row_drift_px=drift,
        contrast=contrast,
    )
    return bg * line_response(dark, contrast)
