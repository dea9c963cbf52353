"""Estimate the slab thickness (the volume's z extent) from the tilt series itself."""

from __future__ import annotations

import numpy as np

from ..progress import CancelToken, ProgressFn
from .geometry import Geometry


def bin_frames(frames: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` pixel blocks of every frame (edges that do not fit are cut)."""
    if factor == 1:
        return np.asarray(frames, dtype=np.float32)
    n, rows, cols = frames.shape
    r, c = rows // factor * factor, cols // factor * factor
    if r == 0 or c == 0:
        raise ValueError(f"binning by {factor} leaves no pixels of a {rows}x{cols} frame")
    f = np.asarray(frames[:, :r, :c], dtype=np.float32)
    return f.reshape(n, r // factor, factor, c // factor, factor).mean(axis=(2, 4))


def extent_of_signal(profile: np.ndarray, fraction: float = 0.9) -> tuple[int, int]:
    """The shortest index window [start, stop) holding ``fraction`` of a non-negative profile."""
    p = np.clip(np.asarray(profile, dtype=np.float64), 0, None)
    total = p.sum()
    if total <= 0:
        return 0, p.size
    cum = np.concatenate([[0.0], np.cumsum(p)])
    best = (0, p.size)
    for start in range(p.size):
        stop = int(np.searchsorted(cum, cum[start] + fraction * total, side="left"))
        if stop <= p.size and stop - start < best[1] - best[0]:
            best = (start, stop)
    return best


def estimate_thickness_px(
    signal_frames: np.ndarray,
    angles_deg: np.ndarray,
    *,
    binning: int = 4,
    fraction: float = 0.9,
    iterations: int = 50,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[float, np.ndarray]:
    """Thickness of the layer that holds the signal, in (unbinned) pixels, and its z profile.

    A quick SIRT of the binned, pre-processed series into a tall volume (as tall as the frame is
    high) gives the signal against depth; the shortest depth window holding ``fraction`` of it is
    the slab. Limited tilt range elongates features along z, so this errs on the thick side.
    """
    from . import reconstruct  # local: the package imports this module

    small = bin_frames(signal_frames, binning)
    n, rows, cols = small.shape
    geometry = Geometry(np.asarray(angles_deg, dtype=np.float64), rows, cols, nz=rows)
    vol = reconstruct(small, geometry, algorithm="sirt", iterations=iterations, device=device,
                      progress=progress, cancel=cancel)
    profile = np.clip(vol, 0, None).sum(axis=(1, 2))
    start, stop = extent_of_signal(profile, fraction)
    return float((stop - start) * binning), profile
