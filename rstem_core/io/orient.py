"""Rotate imported frames so that the tilt axis lies along +x (image columns), DESIGN.md convention."""

from __future__ import annotations

import numpy as np

_EXACT_TOLERANCE_DEG = 1e-6


def normalise_angle(angle_deg: float) -> float:
    """The same direction as ``angle_deg``, expressed in (-180, 180] degrees."""
    wrapped = (float(angle_deg) + 180.0) % 360.0 - 180.0
    return 180.0 if wrapped == -180.0 else wrapped


def rotate_to_x(frames: np.ndarray, tilt_axis_deg: float) -> np.ndarray:
    """Rotate every frame so that a tilt axis at ``tilt_axis_deg`` ends up along +x.

    Parameters
    ----------
    frames : ndarray, shape (n, rows, cols)
        The frames as stored in the file.
    tilt_axis_deg : float
        Direction of the tilt axis in those frames, degrees from +x (columns) towards +y (rows).

    Returns
    -------
    ndarray, shape (n, rows', cols')
        Rotated frames. Multiples of 90 degrees are exact ``np.rot90`` (+90: ``k=1``, so new
        column = old row; -90: ``k=-1``; 180: ``k=2``) and swap rows and columns for odd
        multiples; any other angle is a bilinear ``scipy.ndimage.rotate`` on the same grid
        (corners filled with the nearest edge value). 0 returns the input unchanged.

    Examples
    --------
    >>> a = np.arange(6.0).reshape(1, 2, 3)
    >>> rotate_to_x(a, 90.0).shape
    (1, 3, 2)
    """
    angle = normalise_angle(tilt_axis_deg)
    quarter = angle / 90.0
    if abs(quarter - round(quarter)) * 90.0 < _EXACT_TOLERANCE_DEG:
        k = int(round(quarter)) % 4
        return frames if k == 0 else np.rot90(frames, k=k, axes=(1, 2))
    from scipy import ndimage  # imported on use: ~0.4 s, only oblique axes need it

    work = frames if frames.dtype.kind == "f" else frames.astype(np.float32)
    return ndimage.rotate(work, angle, axes=(1, 2), reshape=False, order=1, mode="nearest")
