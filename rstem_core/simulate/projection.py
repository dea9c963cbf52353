"""Projected dislocation darkness of one frame, each scan row at its own tilt angle and drift.

Frames are rendered on a :class:`Canvas`: the frame grid (rows x cols) plus margins, so that the
distortion warp and the drift can sample outside the frame. Canvas index ``(i, j)`` is frame row
``i - margin_rows`` and column ``j - margin_cols``; the frame centre is ``((rows-1)/2, (cols-1)/2)``.

A specimen point (x, y, z) nm seen at tilt theta with image drift (dy, dx) px lies at

    column = x / pixel + (cols - 1) / 2 + dx
    row    = (y cos(theta) - z sin(theta)) / pixel + (rows - 1) / 2 + dy       (DESIGN.md)

For a continuously tilted, row-by-row scanned frame, theta and the drift belong to the row, i.e. to
the time the row was scanned, while the row depends on theta: each line point's row is found by a
fixed-point iteration ``row <- project(theta(row), drift(row))`` (a real frame turns by < 1 deg,
so two steps reach 1e-4 px; slower test scans take more). Line points are then splatted bilinearly with a weight
``visibility x depth contrast x high-tilt fade x length`` and blurred to the line width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .params import ContrastParams
from .specimen import Specimen

#: FWHM / sigma of a Gaussian
_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: most fixed-point steps for the row of each line point (a real frame needs two)
_MAX_ITER = 30


@dataclass(frozen=True)
class Canvas:
    """A frame grid with margins.

    Attributes
    ----------
    rows, cols : int
        Frame size in pixels.
    margin_rows, margin_cols : int
        Extra pixels rendered above/below and left/right of the frame.
    """

    rows: int
    cols: int
    margin_rows: int = 0
    margin_cols: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows + 2 * self.margin_rows, self.cols + 2 * self.margin_cols)

    def frame_rows(self) -> np.ndarray:
        """Frame row coordinate of every canvas row (negative in the top margin)."""
        return np.arange(self.shape[0], dtype=np.float64) - self.margin_rows

    def frame_cols(self) -> np.ndarray:
        """Frame column coordinate of every canvas column."""
        return np.arange(self.shape[1], dtype=np.float64) - self.margin_cols

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The frame part of a canvas image (last two axes)."""
        r, c = self.margin_rows, self.margin_cols
        return image[..., r : r + self.rows, c : c + self.cols]


@dataclass(frozen=True, eq=False)
class LinePoints:
    """All dislocation lines resampled densely for rendering.

    Attributes
    ----------
    xyz : ndarray, shape (m, 3)
        Point positions in nm.
    tangent : ndarray, shape (m, 3)
        Unit tangents.
    length : ndarray, shape (m,)
        Length of line each point stands for, nm.
    weight : ndarray, shape (m,)
        That length times the line's visibility.
    side : ndarray, shape (m,)
        Image side (+1 / -1) of the point's line.
    """

    xyz: np.ndarray
    tangent: np.ndarray
    length: np.ndarray
    weight: np.ndarray
    side: np.ndarray


def sample_lines(specimen: Specimen, step_nm: float) -> LinePoints:
    """Resample every dislocation polyline to points at most ``step_nm`` apart.

    Parameters
    ----------
    specimen : Specimen
    step_nm : float
        Largest point spacing in nm (use <= pixel / 3 for smooth splatting).
    """
    xyz, tan, lng, wgt, side = [], [], [], [], []
    for d in specimen.dislocations:
        p = d.points_nm
        seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        n = max(2, int(math.ceil(arc[-1] / step_nm)) + 1)
        s = (np.arange(n) + 0.5) * (arc[-1] / n)
        q = np.stack([np.interp(s, arc, p[:, k]) for k in range(3)], axis=1)
        t = np.gradient(q, axis=0)
        t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
        xyz.append(q)
        tan.append(t)
        lng.append(np.full(n, arc[-1] / n))
        wgt.append(lng[-1] * d.visibility)
        side.append(np.full(n, float(d.image_side)))
    if not xyz:
        empty = np.zeros((0, 3))
        return LinePoints(empty, empty, np.zeros(0), np.zeros(0), np.zeros(0))
    return LinePoints(
        np.concatenate(xyz),
        np.concatenate(tan),
        np.concatenate(lng),
        np.concatenate(wgt),
        np.concatenate(side),
    )


def line_sigma_nm(contrast: ContrastParams, thickness_nm: float, angle_deg: float) -> float:
    """Gaussian sigma (nm) of a dislocation line image: core width plus beam broadening.

    Broadening grows as ``(t_eff / 300 nm) ** 1.5`` with ``t_eff = thickness / cos(theta)``.
    """
    t_eff = thickness_nm / math.cos(math.radians(angle_deg))
    core = contrast.line_fwhm_nm / _FWHM
    return math.hypot(core, contrast.broadening_nm * (t_eff / 300.0) ** 1.5)


def splat(
    shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Accumulate point weights bilinearly on a grid; points off the grid are dropped."""
    h, w = shape
    r0 = np.floor(rows)
    c0 = np.floor(cols)
    fr = rows - r0
    fc = cols - c0
    ok = (r0 >= 0) & (r0 < h - 1) & (c0 >= 0) & (c0 < w - 1)
    r0, c0, fr, fc, wt = (
        r0[ok].astype(np.int64),
        c0[ok].astype(np.int64),
        fr[ok],
        fc[ok],
        weights[ok],
    )
    base = r0 * w + c0
    idx = np.concatenate([base, base + 1, base + w, base + w + 1])
    val = np.concatenate(
        [wt * (1 - fr) * (1 - fc), wt * (1 - fr) * fc, wt * fr * (1 - fc), wt * fr * fc]
    )
    return np.bincount(idx, weights=val, minlength=h * w).reshape(h, w)


def project_lines(
    points: LinePoints,
    canvas: Canvas,
    *,
    pixel_size_nm: float,
    thickness_nm: float,
    row_angles_deg: np.ndarray,
    row_drift_px: np.ndarray,
    contrast: ContrastParams,
) -> np.ndarray:
    """Projected dislocation darkness ``P`` of one frame on the canvas.

    Parameters
    ----------
    points : LinePoints
        Densely sampled lines.
    canvas : Canvas
        Output grid.
    pixel_size_nm : float
        Pixel size.
    thickness_nm : float
        Slab thickness (depth contrast and fading).
    row_angles_deg : ndarray, shape (canvas rows,)
        Tilt angle at the time each canvas row is scanned, degrees.
    row_drift_px : ndarray, shape (canvas rows, 2)
        Image drift (dy, dx) in px at the time each canvas row is scanned.
    contrast : ContrastParams

    Returns
    -------
    ndarray, shape canvas.shape, float32
        Dimensionless darkness: 1 at the centre of a full-visibility line perpendicular to the beam
        imaged at the core width; proportional to the line integral of strain contrast.
    """
    shape = canvas.shape
    if len(points.weight) == 0:
        return np.zeros(shape, np.float32)
    px = pixel_size_nm
    rc, cc = (canvas.rows - 1) / 2, (canvas.cols - 1) / 2
    grid_rows = canvas.frame_rows()
    x, y, z = points.xyz.T
    mid = float(np.interp((canvas.rows - 1) / 2, grid_rows, row_angles_deg))
    rows = (y * math.cos(math.radians(mid)) - z * math.sin(math.radians(mid))) / px + rc
    for _ in range(_MAX_ITER):
        theta = np.radians(np.interp(rows, grid_rows, row_angles_deg))
        dy = np.interp(rows, grid_rows, row_drift_px[:, 0])
        new = (y * np.cos(theta) - z * np.sin(theta)) / px + rc + dy
        done = np.max(np.abs(new - rows)) < 1e-4
        rows = new
        if done:
            break
    theta = np.radians(np.interp(rows, grid_rows, row_angles_deg))
    dx = np.interp(rows, grid_rows, row_drift_px[:, 1])
    cols = x / px + cc + dx
    cos_t = np.cos(theta)

    # depth-dependent two-beam contrast, weaker near both surfaces, fading at high tilt
    half = thickness_nm / 2
    depth = np.clip(half - z, 0.0, None)
    height = np.clip(half + z, 0.0, None)
    surface = (1 - np.exp(-depth / contrast.surface_layer_nm)) * (
        1 - np.exp(-height / contrast.surface_layer_nm)
    )
    oscill = 1 + contrast.oscillation * np.cos(2 * np.pi * depth / (contrast.extinction_nm * cos_t))
    fade = np.exp(-(thickness_nm / cos_t - thickness_nm) / contrast.fade_length_nm)
    weight = points.weight * surface * oscill * fade

    # the dark image lies to one side of the core (perpendicular to the projected line)
    tx, ty, tz = points.tangent.T
    tr = ty * cos_t - tz * np.sin(theta)
    norm = np.hypot(tx, tr)
    nc = np.where(norm > 1e-3, tr / np.maximum(norm, 1e-12), 1.0)
    nr = np.where(norm > 1e-3, -tx / np.maximum(norm, 1e-12), 0.0)
    flip = np.where(nc < 0, -1.0, 1.0)
    shift = points.side * flip * contrast.image_side_nm / px
    rows = rows + shift * nr
    cols = cols + shift * nc

    acc = splat(shape, rows + canvas.margin_rows, cols + canvas.margin_cols, weight)
    sigma_nm = line_sigma_nm(contrast, thickness_nm, mid)
    blurred = ndimage.gaussian_filter(acc, sigma_nm / px, mode="constant", truncate=3.5)
    core_sigma = contrast.line_fwhm_nm / _FWHM
    return (blurred * (math.sqrt(2 * math.pi) * core_sigma / px**2)).astype(np.float32)
