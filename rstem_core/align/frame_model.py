"""The projection of 3D feature points into the frames, with each scan row at its own angle.

A feature at (x, y, z) pixels from the volume centre is seen in frame i at column ``x + dx_i``
and row coordinate ``v = y cos(theta) - z sin(theta) + dy_i`` (both from the frame centre; DESIGN.md),
after a rotation by the tilt-axis direction when the axis is not exactly along x. With the
frames' timestamps and line time, ``theta`` is the angle at the moment the feature's row was
scanned, interpolated linearly between the frame angles at the frames' mid-times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class FrameTiming:
    """When each frame's rows were scanned.

    Attributes
    ----------
    timestamps_s : ndarray, shape (n,)
        Frame start times, seconds.
    line_time_s : float
        Time per scan row, seconds.
    n_rows : int
        Rows per frame (full resolution).
    """

    timestamps_s: np.ndarray
    line_time_s: float
    n_rows: int

    @property
    def mid_times_s(self) -> np.ndarray:
        """Mid-time of every frame (the moment the frame angle refers to), seconds."""
        return np.asarray(self.timestamps_s, float) + 0.5 * self.n_rows * self.line_time_s

    def row_time_s(self, frame: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Scan time of (possibly fractional) ``row`` of ``frame``, seconds."""
        return np.asarray(self.timestamps_s, float)[frame] + (np.asarray(row, float) + 0.5) * self.line_time_s


def interpolation_weights(
    timing: FrameTiming | None, frame: np.ndarray, row: np.ndarray, n: int, usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each observation the frame k and weight w with theta = (1 - w) theta_k + w theta_k2.

    ``k2`` is the next usable frame after ``k`` in time. Without timing: ``k = frame``, ``w = 0``.
    """
    frame = np.asarray(frame, dtype=np.int64)
    if timing is None or usable.sum() < 2:
        return frame, np.zeros(frame.shape)
    order = np.flatnonzero(usable)
    mids = timing.mid_times_s[order]
    t = timing.row_time_s(frame, row)
    pos = np.clip(np.searchsorted(mids, t, side="right") - 1, 0, order.size - 2)
    w = (t - mids[pos]) / (mids[pos + 1] - mids[pos])
    return order[pos], w


def next_usable(usable: np.ndarray) -> np.ndarray:
    """Index of the next usable frame after each frame, shape (n,) (the last usable one maps to itself)."""
    order = np.flatnonzero(usable)
    nxt = np.zeros(usable.size, dtype=np.int64)
    nxt[order[:-1]] = order[1:]
    nxt[order[-1]] = order[-1]
    return nxt


def predict_positions(
    points_px: np.ndarray,
    angles_deg: np.ndarray,
    shifts_px: np.ndarray,
    shape: tuple[int, int],
    *,
    tilt_axis_deg: float = 0.0,
    row_angles_deg: np.ndarray | None = None,
) -> np.ndarray:
    """Where each feature appears in each frame: (n, m, 2) (row, col) in frame pixels.

    Parameters
    ----------
    points_px : ndarray, shape (m, 3)
        (x, y, z) from the volume centre, pixels.
    angles_deg : ndarray, shape (n,)
    shifts_px : ndarray, shape (n, 2)
        (dy, dx).
    shape : (rows, cols)
    tilt_axis_deg : float
    row_angles_deg : ndarray, shape (n, m), optional
        The angle each feature is seen at (time lag); default the frame angles.
    """
    rows, cols = shape
    n, m = len(angles_deg), points_px.shape[0]
    th = np.deg2rad(np.broadcast_to(angles_deg[:, None] if row_angles_deg is None else row_angles_deg, (n, m)))
    x, y, z = (points_px[None, :, k] for k in range(3))
    u = np.broadcast_to(x, th.shape)
    v = y * np.cos(th) - z * np.sin(th)
    phi = np.deg2rad(tilt_axis_deg)
    col = u * np.cos(phi) - v * np.sin(phi) + shifts_px[:, 1:2] + (cols - 1) / 2
    row = u * np.sin(phi) + v * np.cos(phi) + shifts_px[:, 0:1] + (rows - 1) / 2
    return np.stack([row, col], axis=-1)
