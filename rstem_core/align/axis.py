"""Direction of the tilt axis in the image, when it may not lie along x.

Importers rotate a series so that the tilt axis lies along x when the file says where it is;
files that say nothing, or say it wrongly, need the images to tell. For each candidate direction
the frames (binned small) are turned so that the candidate lies along x, aligned coarsely and
reconstructed; only near the true direction can one volume explain all frames, so the re-projection
misfit is smallest there. A coarse sweep over all directions (every 10 degrees) is followed by a
finer one around the best; the least-squares refinement can then refine a small remainder.
The direction is defined modulo 180 degrees (turning the axis by 180 degrees only mirrors the
volume), reported in (-90, 90].
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from ..progress import CancelToken, ProgressFn, no_progress
from ..recon import Geometry, Projector, reconstruct
from ..recon.thickness import bin_frames
from .coarse import band_pass, cross_correlation_shift, default_band_px, edge_taper, prepare_image


def rotate_frames(frames: np.ndarray, angle_deg: float, order: int = 1) -> np.ndarray:
    """Turn every frame about its centre so that a direction at ``angle_deg`` (from +x towards
    +y) comes to lie along +x; the frame size is kept and the corners take the edge values."""
    if angle_deg == 0:
        return np.asarray(frames, dtype=np.float32)
    return ndi.rotate(np.asarray(frames, dtype=np.float32), angle_deg, axes=(2, 1), reshape=False,
                      order=order, mode="nearest")


def translation_chain(signal: np.ndarray, usable: np.ndarray, max_shift_fraction: float = 0.25) -> np.ndarray:
    """Shifts (n, 2) from chained 2D cross-correlation of neighbours, nothing assumed of the axis.

    Each frame is registered on its previous usable neighbour (band-passed, tapered); the
    relative shifts are summed from the frame in the middle of the series.
    """
    n, rows, cols = signal.shape
    band = default_band_px((rows, cols))
    window = edge_taper((rows, cols))
    idx = np.flatnonzero(usable)
    shifts = np.zeros((n, 2))
    prepared = {int(i): prepare_image(signal[i], band, window) for i in idx}
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        dy, dx, _ = cross_correlation_shift(prepared[int(a)], prepared[int(b)], max_shift_fraction * min(rows, cols))
        shifts[b] = shifts[a] + (dy, dx)
    mid = idx[idx.size // 2]
    return shifts - shifts[mid]


def axis_misfit(
    signal: np.ndarray,
    angles_deg: np.ndarray,
    axis_deg: float,
    *,
    usable: np.ndarray,
    iterations: int = 10,
) -> float:
    """Relative re-projection misfit of a quick reconstruction with the axis at ``axis_deg``.

    Parameters
    ----------
    signal : ndarray, shape (n, rows, cols)
        Small (binned), translation-aligned alignment signal.
    angles_deg : ndarray, shape (n,)
    axis_deg : float
        Candidate axis direction, degrees from +x towards +y.
    usable : ndarray, shape (n,), bool

    Returns
    -------
    float
        sum((frame - reprojection)^2) / sum(frame^2) over the inner part of the usable frames.
    """
    # the same blur for every candidate, so that the interpolation of a rotation does not make
    # some candidates look smoother (and fit better) than others
    rotated = ndi.gaussian_filter(rotate_frames(signal[usable], axis_deg), (0, 1.0, 1.0))
    angles = np.asarray(angles_deg, float)[usable]
    n, rows, cols = rotated.shape
    geometry = Geometry(angles, rows, cols, max(4, rows // 2))
    volume = reconstruct(rotated, geometry, algorithm="sirt", iterations=iterations, nonnegative=False,
                         device="cpu")
    model = Projector(geometry, "cpu").project(volume)
    r0, c0 = rows // 6, cols // 6
    inner = (slice(None), slice(r0, rows - r0), slice(c0, cols - c0))
    d, m = rotated[inner], model[inner]
    return float(((d - m) ** 2).sum() / max(float((d * d).sum()), 1e-30))


def estimate_tilt_axis(
    signal: np.ndarray,
    angles_deg: np.ndarray,
    *,
    usable: np.ndarray | None = None,
    size_px: int = 128,
    coarse_step_deg: float = 10.0,
    fine_step_deg: float = 2.0,
    max_abs_deg: float = 90.0,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[float, dict[float, float]]:
    """Find the tilt-axis direction by the re-projection misfit of quick reconstructions.

    Parameters
    ----------
    signal : ndarray, shape (n, rows, cols)
        Alignment signal.
    angles_deg : ndarray, shape (n,)
        Tilt angles, degrees.
    usable : ndarray, shape (n,), bool, optional
    size_px : int
        Frames are binned to about this size first.
    coarse_step_deg, fine_step_deg : float
        Step of the sweep over all directions, and of the finer sweep around the best.
    max_abs_deg : float
        Only directions within this many degrees of x are tried (90: every direction).

    Returns
    -------
    axis_deg : float
        Direction in degrees from +x towards +y, in (-90, 90], from a parabola through the
        finer sweep's best three values.
    misfit : dict
        The misfit of every candidate tried.
    """
    progress = progress or no_progress
    s = np.asarray(signal, dtype=np.float32)
    ok = np.ones(s.shape[0], dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    b = max(1, int(round(min(s.shape[1:]) / size_px)))
    small = bin_frames(s, b)
    shifts = translation_chain(small, ok)
    small = np.stack([ndi.shift(small[i], -shifts[i], order=1, mode="nearest") for i in range(small.shape[0])])
    # fine structure only: the smooth mass of a compact object looks alike about any axis
    small = np.stack([band_pass(x, 0.7, 3.0) for x in small])
    tried: dict[float, float] = {}

    def misfit(a: float) -> float:
        key = float(round(((a + 90.0) % 180.0) - 90.0, 6))
        if key not in tried:
            if cancel is not None:
                cancel.check()
            tried[key] = axis_misfit(small, angles_deg, key, usable=ok)
        return tried[key]

    limit = float(np.clip(max_abs_deg, 0.0, 90.0))
    sweep = np.arange(-90.0, 90.0, coarse_step_deg)
    sweep = sweep[np.abs(sweep) <= limit + 1e-9] if limit < 90.0 else sweep
    for k, a in enumerate(sweep):
        misfit(a)
        progress(0.7 * (k + 1) / sweep.size, f"tilt axis: trying {a:.0f} deg")
    best = min(tried, key=tried.get)
    fine = best + np.arange(-coarse_step_deg, coarse_step_deg + 0.5 * fine_step_deg, fine_step_deg)
    fine = fine[np.abs(fine) <= limit + 1e-9] if limit < 90.0 else fine
    for k, a in enumerate(fine):
        misfit(a)
        progress(0.7 + 0.3 * (k + 1) / fine.size, f"tilt axis: trying {a:.1f} deg")
    a0 = min((a for a in fine), key=lambda a: misfit(a))
    ym, y0, yp = misfit(a0 - fine_step_deg), misfit(a0), misfit(a0 + fine_step_deg)
    d = ym - 2 * y0 + yp
    offset = 0.0 if d <= 0 else float(np.clip(0.5 * (ym - yp) / d, -0.5, 0.5)) * fine_step_deg
    axis = ((a0 + offset + 90.0) % 180.0) - 90.0
    return (90.0 if axis == -90.0 else float(axis)), tried
