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


def _inner_background(profile: np.ndarray, edge_fraction: float) -> tuple[np.ndarray, int, int, float | None]:
    """The profile as float, the inner run ``lo:hi`` (``edge_fraction`` left out at each end) and
    its background (25th percentile; None when the inner run is shorter than 3)."""
    p = np.asarray(profile, dtype=np.float64)
    n = p.size
    lo, hi = int(n * edge_fraction), n - int(n * edge_fraction)
    return p, lo, hi, float(np.percentile(p[lo:hi], 25)) if hi - lo >= 3 else None


def slab_extent(profile: np.ndarray, edge_fraction: float = 0.2, level: float = 0.15) -> tuple[int, int]:
    """The contiguous run of a depth profile that stands above its background, around its peak.

    The background is the profile's 25th percentile; the outer ``edge_fraction`` at each end is
    ignored (SIRT piles up artefacts at the top and bottom of a tall volume); the run extends from
    the peak while the excess stays above ``level`` times the peak's excess.
    """
    p, lo, hi, floor = _inner_background(profile, edge_fraction)
    if floor is None:
        return 0, p.size
    excess = p - floor
    peak = lo + int(np.argmax(excess[lo:hi]))
    if excess[peak] <= 0:
        return 0, p.size
    cut = level * excess[peak]
    start, stop = peak, peak + 1
    while start > lo and excess[start - 1] > cut:
        start -= 1
    while stop < hi and excess[stop] > cut:
        stop += 1
    return start, stop


def slab_clarity(profile: np.ndarray, edge_fraction: float = 0.2) -> float:
    """How clearly a depth profile shows a layer: its peak over its background (25th percentile),
    the outer ``edge_fraction`` at each end left out. Noise-free and well denoised series give
    tens (default-size synthetic series: about 65); frames too noisy to hold 3D structure about
    2 (128 px synthetic series at the rapid dose: 2.0-2.5), where the "layer" is a noise bump."""
    p, lo, hi, floor = _inner_background(profile, edge_fraction)
    if floor is None:
        return 0.0
    return float(p[lo:hi].max() / floor) if floor > 0 else float("inf")


def slab_offset_px(profile: np.ndarray, binning: int) -> float:
    """Depth of the middle of the layer that :func:`slab_extent` finds in the profile of
    :func:`estimate_thickness_px` made with ``binning``, relative to the tilt axis (the tall
    volume's middle), in unbinned pixels (positive: towards +z)."""
    start, stop = slab_extent(profile)
    n = np.asarray(profile).size
    return float(((start + stop - 1) / 2 - (n - 1) / 2) * binning)


def estimate_thickness_px(
    frames: np.ndarray,
    angles_deg: np.ndarray,
    *,
    binning: int = 4,
    iterations: int = 30,
    dark_lines: bool | None = True,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[float, np.ndarray]:
    """Thickness of the layer that holds the structure, in (unbinned) pixels, and its depth profile.

    The frames are binned (which averages the noise down), flattened into a positive signal
    (``dark_lines``: bright field; False: dark field; None: use as they are), and reconstructed
    into a tall volume as high as the frame. Fine structure (dislocations) lives only inside the
    slab, so the energy of the volume's high-pass part against depth rises there above the noise
    floor; :func:`slab_extent` finds that layer. The limited tilt range stretches structure along
    z a little, so the estimate errs on the thick side; the user can always set the thickness.
    """
    import scipy.ndimage as ndi

    from ..binarize import BinarizeParams, preprocess
    from . import reconstruct  # local: the package imports this module

    small = bin_frames(frames, binning)
    if dark_lines is not None:
        small = preprocess(small, BinarizeParams(mode="normalize", background_px=max(24.0 / binning, 3.0),
                                                 smooth_px=0.0, dark_lines=dark_lines))
    n, rows, cols = small.shape
    geometry = Geometry(np.asarray(angles_deg, dtype=np.float64), rows, cols, nz=rows)
    vol = reconstruct(small, geometry, algorithm="sirt", iterations=iterations, device=device,
                      progress=progress, cancel=cancel)
    fine = vol - ndi.uniform_filter(vol, size=(1, 5, 5))
    profile = (fine.astype(np.float64) ** 2).sum(axis=(1, 2))
    start, stop = slab_extent(profile)
    return float((stop - start) * binning), profile
