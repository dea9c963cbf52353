"""Apply a refined alignment to the frames, and write the angles for other programs."""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi

from ..progress import CancelToken, ProgressFn, no_progress


def apply_alignment(
    frames: np.ndarray,
    shifts_px: np.ndarray,
    tilt_axis_deg: float = 0.0,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Frames with the shifts removed and the tilt axis turned onto x, in one interpolation.

    The aligned frame at (r, c) takes the frame's value at ``R(tilt_axis) (r, c) + (dy, dx)``
    (coordinates from the frame centre), which is where the refinement found the specimen point
    that belongs at (r, c): with the axis along x simply ``frame(r + dy, c + dx)``.

    Parameters
    ----------
    frames : ndarray, shape (n, rows, cols)
    shifts_px : ndarray, shape (n, 2)
        (dy, dx) of every frame, pixels.
    tilt_axis_deg : float
        Direction of the tilt axis in the frames, degrees from +x towards +y.

    Returns
    -------
    ndarray, shape (n, rows, cols), float32
        Cubic-spline interpolation; outside the frame the nearest edge value.
    """
    f = np.asarray(frames, dtype=np.float32)
    n, rows, cols = f.shape
    shifts = np.asarray(shifts_px, dtype=np.float64)
    if shifts.shape != (n, 2):
        raise ValueError(f"shifts_px must be ({n}, 2), got {shifts.shape}")
    progress = progress or no_progress
    a = math.radians(tilt_axis_deg)
    # (row, col) of the frame = m @ (row, col) of the aligned frame, about the centre
    m = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    centre = np.array([(rows - 1) / 2, (cols - 1) / 2])
    out = np.empty_like(f)
    for i in range(n):
        if cancel is not None:
            cancel.check()
        offset = centre - m @ centre + shifts[i]
        if tilt_axis_deg == 0.0:
            out[i] = ndi.shift(f[i], -shifts[i], order=3, mode="nearest")
        else:
            out[i] = ndi.affine_transform(f[i], m, offset=offset, order=3, mode="nearest")
        progress((i + 1) / n, f"aligned frame {i + 1}/{n}")
    return out


def tlt_text(angles_deg: np.ndarray) -> str:
    """The angles as an IMOD ``.tlt`` file: one angle per line, degrees, two decimals."""
    return "".join(f"{float(a):.2f}\n" for a in np.asarray(angles_deg, dtype=np.float64))
