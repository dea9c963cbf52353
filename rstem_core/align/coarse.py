"""Coarse alignment: neighbour cross-correlation with cosine stretching, and the tilt-axis direction.

As IMOD's ``tiltxcorr`` does, each frame is cross-correlated with its neighbour nearer to zero
tilt after that neighbour has been stretched perpendicular to the tilt axis (along y) by
``cos(theta_far) / cos(theta_near)``, so that both show the specimen equally foreshortened. The
relative shifts are chained outward from the frame nearest zero tilt, which keeps shift (0, 0).
Frames are band-passed, tapered and normalised first, so the dark high-tilt frames of a bright-
field series count as much as the bright ones; a pair whose correlation peak does not stand out
of its correlation map is not trusted (its relative shift is taken as zero and reported).

The tilt-axis direction is measured from how local patches move between frames some ten degrees
apart: specimen features move perpendicular to the axis (parallax of depth, foreshortening), so
the axis lies perpendicular to the main direction of the local displacements.

References
----------
Mastronarde & Held, "Automated tilt series alignment and tomographic reconstruction in IMOD",
J. Struct. Biol. 197 (2017) 102.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from ..progress import CancelToken, ProgressFn, no_progress


@dataclass(frozen=True, eq=False)
class CoarseAlignment:
    """Result of :func:`coarse_align`.

    Attributes
    ----------
    shifts_px : ndarray, shape (n, 2)
        (dy, dx) of every frame in pixels: a feature expected at (r, c) is seen at
        (r + dy, c + dx); (0, 0) for the reference frame; frames left out get the shift
        interpolated between their aligned neighbours.
    significance : ndarray, shape (n,)
        How far each frame's correlation peak stands above its correlation map (robust z-score);
        NaN for the reference and excluded frames.
    trusted : ndarray, shape (n,), bool
        False where the peak was too weak and the relative shift was set to zero.
    reference : int
        Index of the frame nearest zero tilt.
    """

    shifts_px: np.ndarray
    significance: np.ndarray
    trusted: np.ndarray
    reference: int


def default_band_px(shape: tuple[int, int], contrast: str = "bright") -> tuple[float, float]:
    """Band-pass Gaussian widths (low, high) in pixels for a frame of ``shape``.

    Bright field (``"dark"``) keeps only the scale of dislocation lines: the broad bend contours
    sweep across the specimen as it tilts and would pull the correlation with them. HAADF-like
    data (``"bright"``) keep shapes up to a sixteenth of the frame.
    """
    size = min(shape)
    if contrast == "dark":
        scale = max(1.0, size / 256)
        return scale, 4.0 * scale
    return max(1.0, size / 256), max(4.0, size / 16)


def band_pass(image: np.ndarray, low_px: float, high_px: float) -> np.ndarray:
    """Difference of Gaussians: keeps structure between ``low_px`` and ``high_px`` (sigma, px)."""
    g = np.asarray(image, dtype=np.float32)
    return ndi.gaussian_filter(g, low_px) - ndi.gaussian_filter(g, high_px)


def edge_taper(shape: tuple[int, int], fraction: float = 0.1) -> np.ndarray:
    """A window that is 1 inside and falls to 0 at the frame edge over ``fraction`` of each side."""
    out = np.ones(shape, dtype=np.float32)
    for axis, n in enumerate(shape):
        w = max(1, int(round(n * fraction)))
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(w) + 0.5) / w)
        prof = np.ones(n, dtype=np.float32)
        prof[:w] = ramp
        prof[n - w :] = ramp[::-1]
        out *= prof[:, None] if axis == 0 else prof[None, :]
    return out


def prepare_image(image: np.ndarray, band: tuple[float, float], window: np.ndarray) -> np.ndarray:
    """Band-passed, mean-free, tapered image with unit standard deviation (for correlation)."""
    g = band_pass(image, *band)
    g = (g - float(g.mean())) * window
    sd = float(g.std())
    return g / sd if sd > 0 else g


def cross_correlation_shift(
    reference: np.ndarray, moving: np.ndarray, max_shift_px: float
) -> tuple[float, float, float]:
    """Where ``moving``'s content lies relative to ``reference``'s, within a search radius.

    Own implementation rather than ``skimage.registration.phase_cross_correlation`` because a
    noisy high-tilt pair needs the peak search limited to ``max_shift_px``.

    Parameters
    ----------
    reference, moving : ndarray, shape (rows, cols)
        Prepared (band-passed, tapered, normalised) images.
    max_shift_px : float
        Largest shift searched, pixels.

    Returns
    -------
    dy, dx : float
        Displacement of ``moving`` relative to ``reference`` (sub-pixel, parabolic peak fit).
    significance : float
        (peak - median) / (1.4826 MAD) of the correlation map inside the search radius.
    """
    rows, cols = reference.shape
    cc = np.real(np.fft.ifft2(np.fft.fft2(moving) * np.conj(np.fft.fft2(reference))))
    cc = np.fft.fftshift(cc)
    cy, cx = rows // 2, cols // 2
    r = int(min(max(1, math.ceil(max_shift_px)), cy - 1, cx - 1))
    win = cc[cy - r : cy + r + 1, cx - r : cx + r + 1]
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = yy**2 + xx**2 <= r * r
    masked = np.where(inside, win, -np.inf)
    k = int(np.argmax(masked))
    py, px = np.unravel_index(k, win.shape)
    vals = win[inside]
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med))) * 1.4826
    significance = (float(win[py, px]) - med) / mad if mad > 0 else 0.0

    def vertex(a: float, b: float, c: float) -> float:
        d = a - 2 * b + c
        return 0.0 if d >= 0 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))

    oy = vertex(win[py - 1, px], win[py, px], win[py + 1, px]) if 0 < py < 2 * r else 0.0
    ox = vertex(win[py, px - 1], win[py, px], win[py, px + 1]) if 0 < px < 2 * r else 0.0
    return float(py - r + oy), float(px - r + ox), significance


def pair_shift(reference: np.ndarray, moving: np.ndarray, max_shift_px: float) -> tuple[float, float, float]:
    """Shift of ``moving`` relative to ``reference`` with the tilt axis along x.

    ``dx`` comes from the column profiles (each frame summed over its rows): specimen features
    do not move along the tilt axis, so the profiles match whatever the depths, whereas a 2D
    correlation of inclined lines that move along y by parallax would also report a spurious
    x shift (the aperture problem). ``dy`` is then the peak of the 2D correlation along y at
    that ``dx``. Where the 2D correlation's own peak is clearer than that and lies elsewhere
    (lines along x give the profiles nothing to match), the 2D peak is taken.

    Returns
    -------
    dy, dx, significance : float
        As :func:`cross_correlation_shift` (the significance from the 2D correlation map).
    """
    rows, cols = reference.shape
    pr, pm = reference.sum(axis=0), moving.sum(axis=0)
    cc1 = np.fft.fftshift(np.real(np.fft.ifft(np.fft.fft(pm) * np.conj(np.fft.fft(pr)))))
    c0 = cols // 2
    r = int(min(max(1, math.ceil(max_shift_px)), c0 - 1))
    dx, _ = _peak_1d(cc1[c0 - r : c0 + r + 1], r)
    shifted = ndi.shift(moving, (0.0, -dx), order=1, mode="constant")
    cc2 = np.fft.fftshift(np.real(np.fft.ifft2(np.fft.fft2(shifted) * np.conj(np.fft.fft2(reference)))))
    y0 = rows // 2
    ry = int(min(max(1, math.ceil(max_shift_px)), y0 - 1, c0 - 1))
    dy, _ = _peak_1d(cc2[y0 - ry : y0 + ry + 1, c0], ry)
    # how far the peak stands out of the whole 2D correlation map within the search radius
    win = cc2[y0 - ry : y0 + ry + 1, c0 - ry : c0 + ry + 1]
    med = float(np.median(win))
    mad = 1.4826 * float(np.median(np.abs(win - med)))
    peak = float(cc2[y0 + int(round(dy)), c0])
    significance = (peak - med) / mad if mad > 0 else 0.0
    # lines running along x leave the column profiles without hold (their correlation then peaks
    # anywhere), while the 2D correlation still finds the shift clearly: the clearer one wins
    dy2, dx2, sig2 = cross_correlation_shift(reference, moving, max_shift_px)
    if sig2 > significance and math.hypot(dy2 - dy, dx2 - dx) > 1.0:
        return dy2, dx2, sig2
    return dy, dx, significance


def _peak_1d(values: np.ndarray, r: int) -> tuple[float, float]:
    """Sub-pixel peak position (from -r) and robust z-score of a 1D correlation."""
    k = int(np.argmax(values))
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * 1.4826
    significance = (float(values[k]) - med) / mad if mad > 0 else 0.0
    off = 0.0
    if 0 < k < values.size - 1:
        a, b, c = values[k - 1], values[k], values[k + 1]
        d = a - 2 * b + c
        off = 0.0 if d >= 0 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))
    return float(k - r + off), significance


def stretch_rows(image: np.ndarray, factor: float) -> np.ndarray:
    """Stretch an image along y (rows) about its centre row by ``factor`` (< 1 compresses)."""
    rows = image.shape[0]
    c = (rows - 1) / 2
    return ndi.affine_transform(
        image, np.array([1.0 / factor, 1.0]), offset=(c - c / factor, 0.0), order=1, mode="constant"
    )


def reference_frame(angles_deg: np.ndarray, usable: np.ndarray) -> int:
    """The usable frame nearest zero tilt."""
    a = np.where(usable, np.abs(np.asarray(angles_deg, dtype=np.float64)), np.inf)
    return int(np.argmin(a))


def coarse_align(
    signal: np.ndarray,
    angles_deg: np.ndarray,
    *,
    usable: np.ndarray | None = None,
    max_shift_fraction: float = 0.25,
    min_significance: float = 5.0,
    band_px: tuple[float, float] | None = None,
    contrast: str = "bright",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> CoarseAlignment:
    """Neighbour cross-correlation with cosine stretching, chained from the zero-tilt frame.

    Parameters
    ----------
    signal : ndarray, shape (n, rows, cols)
        Alignment signal (:func:`~rstem_core.align.signal.alignment_signal`); x is the tilt axis.
    angles_deg : ndarray, shape (n,)
        Tilt angles (nominal are fine), degrees, monotone.
    usable : ndarray, shape (n,), bool, optional
        Frames to align; the others (blank frames) are skipped and get their neighbour's shift.
    max_shift_fraction : float
        Largest shift between neighbours, as a fraction of the smaller frame side.
    min_significance : float
        Correlation peaks below this robust z-score are not trusted.
    band_px : (float, float), optional
        Band-pass Gaussian widths in pixels (default from the frame size and contrast).
    contrast : {"dark", "bright"}
        The signal's kind (see :func:`default_band_px`).

    Returns
    -------
    CoarseAlignment
    """
    progress = progress or no_progress
    s = np.asarray(signal, dtype=np.float32)
    n, rows, cols = s.shape
    angles = np.asarray(angles_deg, dtype=np.float64)
    ok = np.ones(n, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    if ok.sum() < 1:
        raise ValueError("no usable frame to align")
    band = band_px or default_band_px((rows, cols), contrast)
    window = edge_taper((rows, cols))
    max_shift = max_shift_fraction * min(rows, cols)
    ref = reference_frame(angles, ok)
    shifts = np.zeros((n, 2))
    significance = np.full(n, np.nan)
    trusted = np.ones(n, dtype=bool)
    order = [i for i in range(ref + 1, n) if ok[i]], [i for i in range(ref - 1, -1, -1) if ok[i]]
    done = 0
    total = max(1, int(ok.sum()) - 1)
    for chain in order:
        prev = ref
        for i in chain:
            if cancel is not None:
                cancel.check()
            factor = math.cos(math.radians(angles[i])) / max(math.cos(math.radians(angles[prev])), 1e-6)
            near = stretch_rows(s[prev], factor) if abs(factor - 1) > 1e-4 else s[prev]
            dy, dx, sig = pair_shift(
                prepare_image(near, band, window), prepare_image(s[i], band, window), max_shift
            )
            significance[i] = sig
            if sig < min_significance:
                trusted[i], dy, dx = False, 0.0, 0.0
            shifts[i, 0] = factor * shifts[prev, 0] + dy
            shifts[i, 1] = shifts[prev, 1] + dx
            prev = i
            done += 1
            progress(done / total, f"coarse alignment: frame {i + 1}/{n}")
    good = np.flatnonzero(ok)
    for k in range(2):  # frames left out: interpolated between their aligned neighbours
        shifts[~ok, k] = np.interp(np.flatnonzero(~ok), good, shifts[good, k])
    return CoarseAlignment(shifts, significance, trusted, ref)


