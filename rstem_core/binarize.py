"""Contrast normalisation and binarisation of a bright-field tilt series before reconstruction.

Bright-field dislocation images are not projections: the background falls with the effective
thickness t/cos(theta), bend contours sweep across the field and the dislocation contrast changes
with tilt. The paper therefore binarised the series (Zhao et al., Methods and Supp. G). Here each
frame is (1) divided by its smooth background (a wide median/Gaussian estimate), (2) turned into a
positive dislocation signal ``1 - I / background`` (dark lines become bright), and (3) optionally
(the paper's binarisation) thresholded per frame at ``median + k * noise`` of that signal, where
the noise is estimated per frame, so the threshold follows the tilt-dependent signal-to-noise
ratio. HAADF-like data, where
intensity already grows with projected mass, use ``mode="none"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from .progress import CancelToken, ProgressFn, no_progress
from .workers import map_ordered

MODES = ("none", "normalize", "binarize")


@dataclass(frozen=True)
class BinarizeParams:
    """Pre-processing of a tilt series before reconstruction.

    Attributes
    ----------
    mode : {"none", "normalize", "binarize"}
        ``none`` for HAADF-like data; ``normalize`` (the default) gives the flattened positive
        signal; ``binarize`` (the paper's choice) thresholds it per frame into 0/1. On the
        synthetic experiment at 512 px the normalised signal places dislocation centres better
        (mean error 4.0 / 3.8 / 4.4 nm in x / y / z against 5.2 / 4.3 / 5.9 nm binarised, same
        frames and geometry): a binarised line is a flat-topped band whose reconstruction
        overshoots at its rim, and the threshold drops the faint parts of weak lines.
    background_px : float
        Width (Gaussian sigma, pixels) of the background estimate; several times the dislocation
        contrast width, well below the bend-contour spacing.
    threshold_sigma : float
        Threshold above the frame's median signal, in units of that frame's noise.
    smooth_px : float
        Gaussian smoothing of the signal before thresholding (pixels), against shot noise.
    dark_lines : bool
        True for bright-field (dislocations darker than background), False for dark-field.
    """

    mode: str = "normalize"
    background_px: float = 12.0
    threshold_sigma: float = 2.0
    smooth_px: float = 1.0
    dark_lines: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.background_px <= 0:
            raise ValueError(f"background_px must be positive, got {self.background_px}")
        if self.smooth_px < 0:
            raise ValueError(f"smooth_px must be >= 0, got {self.smooth_px}")


def median_background(frame: np.ndarray, median_px: float, sigma_px: float, bin_px: int = 1) -> np.ndarray:
    """Smooth background under thin dark structure: a median ``median_px`` wide (thin lines do not
    pull it down), then a Gaussian of sigma ``sigma_px``, computed on the frame averaged
    ``bin_px`` x ``bin_px`` and brought back by linear interpolation.

    Binning makes the median many times faster (2 x 2: 0.05 s instead of 0.5 s for 512 x 512 with
    a 13 px window) and changes little, since the result is smooth on that scale anyway (denoised
    frames: within 0.1 %; noisy frames, where the mean of four pixels tempers the shot noise's
    skew: 1-3 %).

    Returns
    -------
    ndarray, shape of ``frame``, float32, floored at 1e-6 of its maximum (safe to divide by)
    """
    f = np.asarray(frame, dtype=np.float32)
    rows, cols = f.shape
    b = max(1, int(bin_px))
    r, c = -(-rows // b) * b, -(-cols // b) * b
    padded = np.pad(f, ((0, r - rows), (0, c - cols)), mode="edge")
    small = padded.reshape(r // b, b, c // b, b).mean(axis=(1, 3))
    size = max(3, int(round(median_px / b)) | 1)
    small = ndi.gaussian_filter(ndi.median_filter(small, size=size, mode="reflect"), sigma_px / b)
    full = small if b == 1 else ndi.zoom(small, b, order=1, mode="nearest", grid_mode=True)[:rows, :cols]
    floor = 1e-6 * max(float(np.abs(full).max()), 1e-12)
    return np.maximum(full, floor).astype(np.float32)


def dislocation_signal(frame: np.ndarray, params: BinarizeParams) -> np.ndarray:
    """Flattened positive dislocation signal of one frame: ``1 - I/background`` (bright field).

    The background is a Gaussian of a median-filtered frame, so thin dark lines do not pull it
    down. Returns float32 of the frame's shape.
    """
    f = np.asarray(frame, dtype=np.float32)
    size = max(3, int(round(params.background_px)) | 1)
    background = median_background(f, size, params.background_px / 2, bin_px=2 if size >= 7 else 1)
    ratio = f / background
    signal = (1.0 - ratio) if params.dark_lines else (ratio - 1.0)
    if params.smooth_px > 0:
        signal = ndi.gaussian_filter(signal, params.smooth_px)
    return signal.astype(np.float32)


def smoothing_gain(shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """How much more the frame's smoothing lets noise through at each pixel than in the middle.

    The Gaussian smoothing of :func:`dislocation_signal` reflects the frame at its edges, so an
    edge pixel enters its own average twice and white noise keeps a larger spread there (about
    1.5 x in the edge rows and columns for a 1 px smoothing). Without this map the binarisation
    turns that extra spread into false dislocations along the frame's border, and the
    reconstruction into bright box edges. Returns (rows, cols) float32 std ratios, 1 inside.
    """
    rows, cols = shape
    if sigma_px <= 0:
        return np.ones(shape, np.float32)

    def gain_1d(n: int) -> np.ndarray:
        m = ndi.gaussian_filter1d(np.eye(n, dtype=np.float64), sigma_px, axis=0, mode="reflect")
        power = (m**2).sum(axis=1)  # variance of each smoothed pixel for unit white noise
        return np.sqrt(power / np.median(power))

    return np.outer(gain_1d(rows), gain_1d(cols)).astype(np.float32)


def _noise_level(signal: np.ndarray) -> float:
    """Robust spread of the background signal: 1.4826 * median absolute deviation.

    Dislocations cover a small share of the pixels, so the median statistics describe the
    background (noise plus residual bend contours) of this frame at its own tilt.
    """
    mad = float(np.median(np.abs(signal - np.median(signal))))
    return max(1.4826 * mad, 1e-6)


def saturate(signal: np.ndarray, fraction: float, *, floor_sigma: float = 4.0) -> np.ndarray:
    """Clip every frame's normalised signal at ``fraction`` of its 99.5th percentile.

    Strong and weak dislocations then reach a similar height, so faint lines (low visibility,
    near the surfaces) are not swamped by the strong ones in the reconstruction; the noise and
    the shape of the weak lines stay as they were. The clip never goes below ``floor_sigma``
    times the frame's noise, so a frame the noise dominates (few lines, no denoising) is not
    flattened into a binary image: the noise is estimated from the positive values of the
    clipped-at-zero signal, whose median is 0.674 sigma for noise alone.

    Parameters
    ----------
    signal : ndarray, shape (frames, rows, cols)
        Output of :func:`preprocess` in ``normalize`` mode (non-negative).
    fraction : float
        0 < fraction; 1 clips only the brightest 0.5 % of each frame.

    Returns
    -------
    ndarray, float32, the shape of ``signal`` (a new array)
    """
    s = np.asarray(signal, dtype=np.float32)
    out = np.empty_like(s)
    for i in range(s.shape[0]):
        frame = s[i]
        positive = frame[frame > 0]
        if positive.size == 0:
            out[i] = frame
            continue
        sigma = float(np.median(positive)) / 0.674
        cap = max(fraction * float(np.percentile(frame, 99.5)), floor_sigma * sigma)
        np.minimum(frame, cap, out=out[i])
    return out


def preprocess(
    frames: np.ndarray,
    params: BinarizeParams | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Normalise or binarise every frame of a (frames, rows, cols) series.

    Returns
    -------
    ndarray, float32, same shape
        ``mode="none"``: the frames unchanged (as float32); ``"normalize"``: the positive signal
        clipped at 0; ``"binarize"``: 1 where the signal exceeds the frame's threshold, else 0.
    """
    params = params or BinarizeParams()
    frames = np.asarray(frames, dtype=np.float32)
    if params.mode == "none":
        return frames.copy()
    progress = progress or no_progress
    out = np.empty_like(frames)
    n = frames.shape[0]
    gain = smoothing_gain(frames.shape[1:], params.smooth_px)  # equal noise up to the frame's edges

    def one(i: int) -> None:
        if cancel is not None:
            cancel.check()
        signal = dislocation_signal(frames[i], params)
        excess = (signal - np.median(signal)) / gain
        if params.mode == "normalize":
            out[i] = np.clip(excess, 0, None)
        else:
            out[i] = (excess > params.threshold_sigma * _noise_level(signal)).astype(np.float32)

    for done, _ in enumerate(map_ordered(one, range(n)), start=1):  # frames on threads: the filters free the GIL
        progress(done / n, f"{params.mode}: frame {done}/{n}")
    return out
