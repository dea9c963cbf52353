"""A reconstruction box as tall as every tilted view needs, and SIRT with a mask of valid rays.

A tilted slab shows specimen far above and below the frame's own box (at 70 deg about three frame
heights). Projection matching compares each frame with a re-projection, so the volume must hold
everything any frame row sees: it is reconstructed on a grid ``pad`` rows taller than the frame
above and below. Only the frames' own rows are rays (rays for the padding would carry no data
and, at 70 deg, triple the work); masked rays (columns moved out of the frame by a shift)
neither feed the volume nor count in the SIRT weights. The recon package's
:class:`~rstem_core.recon.Projector` does the projections; only the masking is new here, which is
why this is not :func:`rstem_core.recon.reconstruct`.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi
import torch

from ..progress import CancelToken
from ..recon import Geometry, Projector, row_angles_from_curve


def tall_pad_rows(n_rows: int, nz: int, max_abs_angle_deg: float) -> int:
    """Rows to add above and below a frame so that every ray of every tilt stays in the box.

    A frame row ``v`` (pixels from the centre) at tilt ``theta`` crosses the slab ``|z| <= nz/2``
    at ``|y| <= (|v| + nz/2 |sin theta|) / cos theta``.
    """
    c = math.cos(math.radians(min(abs(max_abs_angle_deg), 85.0)))
    s = math.sin(math.radians(min(abs(max_abs_angle_deg), 85.0)))
    half = (n_rows / 2 + nz / 2 * s) / c
    return max(0, int(math.ceil(half - n_rows / 2)) + 2)


def frame_row_angles(
    angles_deg: np.ndarray,
    n_rows: int,
    *,
    timestamps_s: np.ndarray | None = None,
    line_time_s: float | None = None,
) -> np.ndarray:
    """Angle of every frame row, shape (n, n_rows), degrees.

    With timestamps and a line time each row gets the angle of its scan time, interpolated from
    the frames' angle-against-time curve (frame angles at frame mid-times, as the reconstruction
    step does). Without them every row has its frame's angle.
    """
    angles = np.asarray(angles_deg, dtype=np.float64)
    n = angles.shape[0]
    if timestamps_s is None or line_time_s is None or n < 2:
        return np.repeat(angles[:, None], n_rows, axis=1)
    t0 = np.asarray(timestamps_s, dtype=np.float64)
    mid = t0 + 0.5 * n_rows * line_time_s
    if np.any(np.diff(mid) <= 0):
        return np.repeat(angles[:, None], n_rows, axis=1)
    times = t0[:, None] + (np.arange(n_rows)[None, :] + 0.5) * line_time_s
    out = row_angles_from_curve(mid, angles, times)
    return np.clip(out, -89.0, 89.0)


def shift_columns(frames: np.ndarray, dx_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move every frame back by its x shift; also the mask of columns that still hold data.

    Returns
    -------
    moved : ndarray, (n, rows, cols) float32
    valid : ndarray, (n, cols) bool
        False for columns that came from outside the frame.
    """
    n, _, cols = frames.shape
    moved = np.empty_like(frames, dtype=np.float32)
    valid = np.ones((n, cols), dtype=bool)
    c = np.arange(cols)
    for i in range(n):
        dx = float(dx_px[i])
        moved[i] = ndi.shift(frames[i], (0.0, -dx), order=1, mode="nearest") if dx else frames[i]
        src = c + dx
        valid[i] = (src >= 0) & (src <= cols - 1)
    return moved, valid


def rays_with_data(valid: np.ndarray, usable: np.ndarray, rows: int) -> np.ndarray:
    """The rays that carry data, (n, rows, cols) float32: 1 in the columns :func:`shift_columns`
    kept (``valid``, (n, cols)) of the usable frames (``usable``, (n,)), 0 elsewhere."""
    keep = np.asarray(valid, dtype=bool) & np.asarray(usable, dtype=bool)[:, None]
    return np.repeat(keep[:, None, :], rows, axis=1).astype(np.float32)


def tall_projector(row_angles_deg: np.ndarray, cols: int, nz: int, pad: int, *,
                   dy_px: np.ndarray | None = None, device: str = "cpu") -> Projector:
    """The projector of a tall grid: the frames' rays (row angles (n, rows)) through a volume of
    ``cols`` x-slices, ``nz`` voxels deep and ``rows + 2 pad`` rows tall, the frames' y shifts
    ``dy_px`` (n,) applied."""
    n, rows = row_angles_deg.shape
    shifts = None if dy_px is None else np.stack([np.asarray(dy_px, float), np.zeros(n)], axis=1)
    return Projector(Geometry(row_angles_deg, rows, cols, nz, shifts, pad_rows=pad), device=device)


def masked_sirt(
    row_angles_deg: np.ndarray,
    frames: np.ndarray,
    ray_mask: np.ndarray,
    nz: int,
    pad: int,
    *,
    dy_px: np.ndarray | None = None,
    iterations: int = 20,
    start: np.ndarray | None = None,
    device: str = "cpu",
    cancel: CancelToken | None = None,
    projector: Projector | None = None,
) -> np.ndarray:
    """SIRT on a tall grid, ignoring masked rays.

    Parameters
    ----------
    row_angles_deg : ndarray, shape (n, rows)
        Angle of every frame row, degrees (:func:`frame_row_angles`).
    frames : ndarray, shape (n, rows, cols)
        Frames, x shifts already removed.
    ray_mask : ndarray, shape (n, rows, cols)
        1 where a ray carries data, 0 elsewhere.
    nz : int
        Volume thickness in pixels.
    pad : int
        Volume rows above and below the frame's rows (:func:`tall_pad_rows`).
    dy_px : ndarray, shape (n,), optional
        y shift of every frame (where the specimen centre appears), pixels.
    iterations : int
        SIRT iterations.
    start : ndarray, shape (nz, rows + 2 pad, cols), optional
        Starting volume (e.g. the previous round's, when the geometry changed a little).
    projector : Projector, optional
        :func:`tall_projector` of this geometry, when the caller has it already.

    Returns
    -------
    ndarray, shape (nz, rows + 2 pad, cols), float32
    """
    n, rows, cols = frames.shape
    if projector is None:
        projector = tall_projector(row_angles_deg, cols, nz, pad, dy_px=dy_px, device=device)
    tall = projector.geometry.volume_rows
    dev = projector.device
    b = torch.as_tensor(np.ascontiguousarray(frames.reshape(n * rows, cols), dtype=np.float32), device=dev)
    m = torch.as_tensor(np.ascontiguousarray(ray_mask.reshape(n * rows, cols), dtype=np.float32), device=dev)
    row_w = projector.row_sums[:, None]
    r = torch.where(row_w > 1e-8, 1.0 / row_w.clamp_min(1e-8), torch.zeros_like(row_w)) * m
    col_w = projector.adjoint(m)
    c = torch.where(col_w > 1e-8, 1.0 / col_w.clamp_min(1e-8), torch.zeros_like(col_w))
    if start is not None:
        x = torch.as_tensor(np.ascontiguousarray(start, dtype=np.float32).reshape(nz * tall, cols), device=dev).clone()
    else:
        x = torch.zeros((nz * tall, cols), dtype=torch.float32, device=dev)
    for _ in range(iterations):
        if cancel is not None:
            cancel.check()
        x.addcmul_(projector.adjoint((b - projector.forward(x)) * r), c)
    return x.reshape(nz, tall, cols).cpu().numpy()


def project_tall(
    volume: np.ndarray,
    row_angles_deg: np.ndarray,
    *,
    dy_px: np.ndarray | None = None,
    device: str = "cpu",
    projector: Projector | None = None,
) -> np.ndarray:
    """Re-project a tall (nz, rows + 2 pad, cols) volume into the frames' rows: (n, rows, cols)
    float32, y shifts applied (``row_angles_deg`` (n, rows); ``projector``: :func:`tall_projector`
    of this geometry, when the caller has it already)."""
    nz, tall, cols = volume.shape
    if projector is None:
        rows = row_angles_deg.shape[1]
        projector = tall_projector(row_angles_deg, cols, nz, (tall - rows) // 2, dy_px=dy_px, device=device)
    return projector.project(volume)
