"""Parallel-beam, single-axis geometry in which every ray may have its own angle.

The tilt axis is x (image columns), so each x-slice of the volume is an independent 2D problem in
(z, y) and all slices share one geometry. A ray is one scan row ``r`` of one frame ``i``: it sees
the specimen at angle ``theta[i, r]`` (the frame's angle, or the row's own angle when the specimen
turns during the scan: the time lag) and at detector coordinate

    v = y cos(theta) - z sin(theta) + shift_y[i]        (DESIGN.md convention, pixel units)

with (y, z) measured from the volume centre, which lies on the tilt axis, and v from the frame's
centre row. Shifts along x (``shift_x``) are applied to the frames before reconstruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi


@dataclass(frozen=True, eq=False)
class Geometry:
    """Where each ray of a tilt series goes through the volume.

    Parameters
    ----------
    angles_deg : ndarray, shape (n,) or (n, rows)
        Tilt angle of each frame, or of each scan row of each frame (time-lag model), degrees.
    n_rows, n_cols : int
        Frame size in pixels (rows along y, columns along x = the tilt axis).
    nz : int
        Number of voxels along z (the volume's thickness in pixels).
    shifts_px : ndarray, shape (n, 2), optional
        Per-frame image shift (dy, dx) in pixels: where the specimen centre appears relative to
        the frame centre. Zero if omitted.
    pad_rows : int
        Volume rows added above and below the frame's rows (pixels, each side). A tilted slab
        shows specimen beyond the frame's y extent; without room for it the rays that leave the
        box through its top or bottom pile that material into the edge rows. See
        :func:`slab_pad_rows`.
    """

    angles_deg: np.ndarray
    n_rows: int
    n_cols: int
    nz: int
    shifts_px: np.ndarray | None = None
    pad_rows: int = 0

    def __post_init__(self) -> None:
        angles = np.asarray(self.angles_deg, dtype=np.float64)
        if angles.ndim not in (1, 2) or angles.shape[0] == 0:
            raise ValueError(f"angles_deg must be (frames,) or (frames, rows), got shape {angles.shape}")
        if angles.ndim == 2 and angles.shape[1] != self.n_rows:
            raise ValueError(
                f"per-row angles must have one column per frame row ({self.n_rows}), got {angles.shape[1]}"
            )
        if not np.all(np.isfinite(angles)):
            raise ValueError("angles_deg must be finite")
        if np.any(np.abs(angles) >= 90):
            raise ValueError("tilt angles must lie strictly between -90 and +90 degrees")
        for name in ("n_rows", "n_cols", "nz"):
            value = int(getattr(self, name))
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value} (empty volume extent)")
            object.__setattr__(self, name, value)
        if int(self.pad_rows) < 0:
            raise ValueError(f"pad_rows must be at least 0, got {self.pad_rows}")
        object.__setattr__(self, "pad_rows", int(self.pad_rows))
        object.__setattr__(self, "angles_deg", angles)
        if self.shifts_px is not None:
            shifts = np.asarray(self.shifts_px, dtype=np.float64)
            if shifts.shape != (angles.shape[0], 2):
                raise ValueError(f"shifts_px must be (frames, 2) = ({angles.shape[0]}, 2), got {shifts.shape}")
            if not np.all(np.isfinite(shifts)):
                raise ValueError("shifts_px must be finite")
            object.__setattr__(self, "shifts_px", shifts)

    @property
    def n_frames(self) -> int:
        return int(self.angles_deg.shape[0])

    @property
    def per_row(self) -> bool:
        """True when rows carry their own angles (time-lag-aware geometry)."""
        return self.angles_deg.ndim == 2

    def row_angles_deg(self) -> np.ndarray:
        """The angle of every ray, shape (frames, rows), degrees."""
        if self.per_row:
            return self.angles_deg
        return np.repeat(self.angles_deg[:, None], self.n_rows, axis=1)

    @property
    def volume_rows(self) -> int:
        """Rows (y) of the volume the projector works on: the frame's rows plus the padding."""
        return self.n_rows + 2 * self.pad_rows

    def volume_shape(self) -> tuple[int, int, int]:
        """(z, y, x) of the volume the projector works on (padding included)."""
        return (self.nz, self.volume_rows, self.n_cols)


def slab_pad_rows(nz: int, angles_deg: np.ndarray) -> int:
    """Rows to add above and below the frame so that no ray that meets the frame's box leaves the slab
    through the box's top or bottom.

    A ray at tilt ``theta`` crosses the slab ``|z| <= nz/2`` over ``nz |tan theta|`` rows of y, so a
    ray that touches the frame's box stays inside a box padded by that much.
    """
    theta = np.deg2rad(np.max(np.abs(np.asarray(angles_deg, dtype=np.float64))))
    return int(np.ceil(nz * np.tan(min(theta, np.deg2rad(85.0))))) + 1


def row_times_s(timestamps_s: np.ndarray, n_rows: int, line_time_s: float) -> np.ndarray:
    """Scan time of every row, shape (frames, rows): frame start + (row + 0.5) * line time, seconds."""
    t0 = np.asarray(timestamps_s, dtype=np.float64)
    return t0[:, None] + (np.arange(n_rows)[None, :] + 0.5) * float(line_time_s)


def row_angles_from_curve(
    curve_t_s: np.ndarray, curve_angle_deg: np.ndarray, times_s: np.ndarray
) -> np.ndarray:
    """Angles at arbitrary times from an angle-against-time curve, by linear interpolation.

    Parameters
    ----------
    curve_t_s, curve_angle_deg : ndarray, shape (m,)
        The goniometer's angle against time (e.g. refined frame angles at frame mid-times).
    times_s : ndarray
        Times to evaluate, e.g. :func:`row_times_s`; outside the curve it is extended linearly.
    """
    t = np.asarray(curve_t_s, dtype=np.float64)
    a = np.asarray(curve_angle_deg, dtype=np.float64)
    if t.ndim != 1 or t.shape != a.shape or t.size < 2:
        raise ValueError("the angle curve needs at least two (time, angle) points of equal length")
    order = np.argsort(t)
    t, a = t[order], a[order]
    times = np.asarray(times_s, dtype=np.float64)
    out = np.interp(times, t, a)
    lo, hi = times < t[0], times > t[-1]
    out[lo] = a[0] + (times[lo] - t[0]) * (a[1] - a[0]) / (t[1] - t[0])
    out[hi] = a[-1] + (times[hi] - t[-1]) * (a[-1] - a[-2]) / (t[-1] - t[-2])
    return out


def undo_shifts(frames: np.ndarray, shifts_px: np.ndarray | None, axis: str) -> np.ndarray:
    """Move every frame back by its shift along ``axis`` ("y" or "x"), linear interpolation.

    ``shifts_px`` (frames, 2) holds (dy, dx): where the specimen content appears relative to
    where it is expected. Returns the frames unchanged when there is nothing to undo.
    """
    column = {"y": 0, "x": 1}[axis]
    if shifts_px is None or not np.any(shifts_px[:, column]):
        return frames
    out = np.empty_like(frames)
    for i, shift in enumerate(shifts_px[:, column]):
        offset = [0.0, 0.0]
        offset[column] = -float(shift)
        out[i] = ndi.shift(frames[i], offset, order=1, mode="nearest")
    return out
