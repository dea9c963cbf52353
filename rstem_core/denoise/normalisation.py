"""Per-frame intensity normalisation before the network and its inverse after it.

The paper subtracts each image's minimum and divides by its maximum. On single rapid-scan frames
the extremes are single noise pixels (a Poisson outlier, a clipped zero), so the scale would follow
the noise rather than the specimen. Here the range is set by low and high *percentiles* of the
whole frame (default 0.5 % and 99.5 %): the same idea, robust to outliers. The mapping is affine,
``(frame - low) / (high - low)``, computed once per frame (never per tile or patch, so tiles of one
frame share it) and undone exactly on the network's output, which therefore comes back in the
input's intensity units. A training target is mapped with its *input* frame's range, so input and
target stay in the same units.
"""

from __future__ import annotations

import numpy as np

#: default percentiles (low, high) of a frame that map to 0 and 1
DEFAULT_PERCENTILES = (0.5, 99.5)


def frame_range(frames: np.ndarray, percentiles: tuple[float, float] = DEFAULT_PERCENTILES) -> np.ndarray:
    """Low and high intensity of each frame used for normalisation.

    Parameters
    ----------
    frames : ndarray, shape (n, rows, cols)
        Intensities in any unit (ADU).
    percentiles : (float, float)
        Percentiles (0..100) of each frame's intensities mapped to 0 and 1.

    Returns
    -------
    ndarray, shape (n, 2), float64
        ``low, high`` per frame, in the input's unit; ``high > low`` always (a flat frame gets
        a width of 1).
    """
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    flat = np.asarray(frames, dtype=np.float64).reshape(len(frames), -1)
    lo, hi = np.percentile(flat, [lo_p, hi_p], axis=1)
    width = hi - lo
    hi = np.where(width > 0, hi, lo + 1.0)
    return np.stack([lo, hi], axis=1)


def normalise(frames: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Map ``frames`` (n, rows, cols) with per-frame ``ranges`` (n, 2) to about [0, 1] (float32)."""
    lo = ranges[:, 0, None, None]
    return ((frames - lo) / (ranges[:, 1, None, None] - lo)).astype(np.float32)


def denormalise(frames: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Undo :func:`normalise`: back to the input units (float32)."""
    lo = ranges[:, 0, None, None]
    return (frames * (ranges[:, 1, None, None] - lo) + lo).astype(np.float32)
