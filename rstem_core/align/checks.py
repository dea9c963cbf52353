"""Checks of a tilt series before refinement, the angle gauge, and residual outliers."""

from __future__ import annotations

import numpy as np


def check_series(frames: np.ndarray, angles_deg: np.ndarray) -> None:
    """Raise ``ValueError`` with a clear message for input no refinement can work on."""
    f = np.asarray(frames)
    a = np.asarray(angles_deg, dtype=np.float64)
    if f.ndim != 3:
        raise ValueError(f"frames must be a (frame, y, x) stack, got {f.ndim} dimensions")
    if f.shape[0] < 3:
        raise ValueError(f"tilt refinement needs at least 3 frames, got {f.shape[0]}")
    if min(f.shape[1:]) < 16:
        raise ValueError(f"frames of {f.shape[1]}x{f.shape[2]} px are too small to align (16 px at least)")
    if a.shape != (f.shape[0],):
        raise ValueError(f"{f.shape[0]} frames but {a.size} angles")
    if not np.all(np.isfinite(a)):
        raise ValueError("the tilt angles must be finite")
    d = np.diff(a)
    if not (np.all(d > 0) or np.all(d < 0)):
        i = int(np.flatnonzero((np.sign(d) != np.sign(d[0])) | (d == 0))[0])
        raise ValueError(
            f"the tilt angles must change monotonically from frame to frame; frame {i + 1} "
            f"({a[i + 1]:.2f} deg) does not continue from frame {i} ({a[i]:.2f} deg). Import the "
            "frames in acquisition order, one frame per angle"
        )
    if np.any(np.abs(a) >= 89):
        raise ValueError("tilt angles must lie strictly between -89 and +89 degrees")


def anchor_angles(angles_deg: np.ndarray, nominal_deg: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Angles offset so that the mean of the first and last usable frames equals the nominal one.

    A common rotation of all angles is invisible in the images (it turns the reconstruction);
    the goniometer's start and end angles are the most reliable absolute reference it gives.
    """
    idx = np.flatnonzero(usable)
    i0, i1 = idx[0], idx[-1]
    offset = 0.5 * (angles_deg[i0] + angles_deg[i1]) - 0.5 * (nominal_deg[i0] + nominal_deg[i1])
    return np.asarray(angles_deg, dtype=np.float64) - offset


def residual_outliers(residuals_px: np.ndarray, k: float = 4.0) -> np.ndarray:
    """Frames whose residual exceeds the median by more than ``k`` robust standard deviations."""
    r = np.asarray(residuals_px, dtype=np.float64)
    ok = np.isfinite(r)
    out = np.zeros(r.shape, dtype=bool)
    if ok.sum() < 3:
        return out
    med = float(np.median(r[ok]))
    mad = 1.4826 * float(np.median(np.abs(r[ok] - med)))
    out[ok] = r[ok] > med + k * max(mad, 0.05 * med, 1e-6)
    return out
