"""Drift-corrected frame integration (DCFI): one clean reference from a stack of noisy frames.

1. Pre-filter for registration: remove the rapid detector's row streaks (each row's median), smooth
   the shot noise lightly and remove broad intensity changes (a band-pass); single frames are so
   noisy that correlating them raw locks onto noise.
2. Coarse pass: averages of a few consecutive frames, strongly smoothed, are registered one after
   the other to a running reference (each first moved by the previous drift, so only the small
   increment is searched).
3. Refinement passes: every frame, moved by its current drift, is registered with scikit-image's
   upsampled cross-correlation (plain, not whitened: phase correlation amplifies the shot noise)
   to the leave-one-out mean of all other moved frames, so a frame never matches its own noise;
   the drift path is then smoothed lightly over the frame index (drift is slow, registration
   noise is not).
4. The raw frames are shifted once (cubic spline) and averaged with per-pixel sigma clipping.

Registration frames are moved into the reference geometry *before* the edge taper is applied, so
the fixed frame edges never pull the drift towards zero. An optional non-rigid refinement corrects
drift *within* a frame: horizontal bands of rows are registered to the reference and every row is
shifted by a straight-line fit of the band shifts.

Drift convention (as the synthetic truth): ``drift_px[k] = (dy, dx)`` means a feature at (r, c) of
the reference is seen at (r + dy, c + dx) in frame k. The reference is in the geometry of the first
frame (``drift_px[0]`` is zero before the refinement; the mean drift is not removed).

References
----------
Zhao et al., Sci. Rep.: 50-frame DCFI references for supervised denoising (Fig. 2a, Supp. B).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage
from skimage.registration import phase_cross_correlation

from .progress import CancelToken, ProgressFn, no_progress


@dataclass(frozen=True, eq=False)
class DcfiResult:
    """A drift-corrected average.

    Attributes
    ----------
    reference : ndarray, shape (rows, cols), float32
        The integrated image, in the input's intensity units, in the first frame's geometry.
    drift_px : ndarray, shape (n, 2)
        (dy, dx) drift of each frame relative to the reference, px (see the module docstring).
    row_drift_px : ndarray, shape (n, rows, 2) or None
        Per-row drift after the non-rigid refinement (None when it was off).
    frames_used : ndarray, shape (rows, cols), int
        How many frames contributed to each pixel after clipping and edge masking.
    registration_error : ndarray, shape (n,)
        scikit-image's registration error of each frame (0 = perfect match, 1 = none).
    """

    reference: np.ndarray
    drift_px: np.ndarray
    row_drift_px: np.ndarray | None
    frames_used: np.ndarray
    registration_error: np.ndarray


def check_stack(frames: np.ndarray, name: str = "frames") -> np.ndarray:
    """Validate a frame stack for integration; returns it as float32 (n, rows, cols).

    Raises
    ------
    ValueError
        Not a (n, rows, cols) stack, fewer than two frames, too small, or NaN / infinite values.
    """
    stack = np.asarray(frames)
    if stack.ndim != 3:
        raise ValueError(f"{name} must be a (frame, rows, cols) stack, got {stack.ndim} dimensions")
    if stack.shape[0] < 2:
        raise ValueError(f"{name} has {stack.shape[0]} frame; drift-corrected integration needs at least 2")
    if min(stack.shape[1:]) < 16:
        raise ValueError(f"{name} frames are {stack.shape[1]}x{stack.shape[2]} px; need at least 16x16")
    stack = stack.astype(np.float32, copy=False)
    bad = ~np.isfinite(stack)
    if bad.any():
        frame = int(np.flatnonzero(bad.any(axis=(1, 2)))[0])
        raise ValueError(f"{name} hold {int(bad.sum())} NaN or infinite values (first in frame {frame})")
    return stack


def prefilter_frame(frame: np.ndarray, sigma_px: tuple[float, float], highpass_px: float) -> np.ndarray:
    """Frame prepared for registration: row streaks removed, band-passed, zero mean (float32).

    Parameters
    ----------
    frame : ndarray, shape (rows, cols)
    sigma_px : (sigma_y, sigma_x)
        Gaussian smoothing against shot noise, px.
    highpass_px : float
        Sigma of the broad Gaussian subtracted (bend contours and thickness ramps register
        poorly), px; 0 keeps everything.
    """
    a = np.asarray(frame, np.float32)
    a = a - np.median(a, axis=1, keepdims=True)
    a = ndimage.gaussian_filter(a, sigma_px, mode="reflect")
    if highpass_px > 0:  # broad smoothing by three box filters (a near-Gaussian at any width)
        size = max(3, int(round(2 * highpass_px)) | 1)
        broad = a
        for _ in range(3):
            broad = ndimage.uniform_filter(broad, size, mode="reflect")
        a = a - broad
    return a - a.mean()


def edge_taper(shape: tuple[int, int], fraction: float = 0.1) -> np.ndarray:
    """Cosine roll-off over ``fraction`` of each side of a frame (1 inside), float32."""
    out = np.ones(shape, np.float32)
    for axis, n in enumerate(shape):
        m = max(1, int(fraction * n))
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
        w = np.ones(n, np.float32)
        w[:m] = ramp
        w[n - m :] = ramp[::-1]
        out *= w[:, None] if axis == 0 else w[None, :]
    return out


def _register(
    reference: np.ndarray, moving: np.ndarray, upsample: int, radius: float
) -> tuple[np.ndarray, float]:
    """Drift (dy, dx) of ``moving`` relative to ``reference``, searched within ``radius`` px.

    The integer peak of the cross-correlation is found inside the search disc (a frame's noise can
    beat the true peak farther out); scikit-image's upsampled cross-correlation of the frame moved
    by that integer shift then gives the sub-pixel part.
    """
    rows, cols = reference.shape
    corr = fft.irfft2(fft.rfft2(reference) * np.conj(fft.rfft2(moving)), s=reference.shape)
    ly = np.fft.fftfreq(rows, 1.0 / rows)[:, None]
    lx = np.fft.fftfreq(cols, 1.0 / cols)[None, :]
    # corr[m] = sum reference(p + m) moving(p) peaks at m = -drift
    inside = ly**2 + lx**2 <= max(radius, 1.0) ** 2
    i, j = np.unravel_index(int(np.argmax(np.where(inside, corr, -np.inf))), corr.shape)
    m = np.array([ly[i, 0], lx[0, j]])
    rolled = np.roll(moving, (int(m[0]), int(m[1])), axis=(0, 1))
    sub, error, _ = phase_cross_correlation(reference, rolled, upsample_factor=upsample, normalization=None)
    if np.all(np.abs(sub) <= 1.0):
        m = m + np.asarray(sub, np.float64)
    return -m, float(error)


def _move(frame: np.ndarray, drift: np.ndarray, order: int = 1) -> np.ndarray:
    """Move a frame back by its drift (into the reference geometry); edges repeat."""
    return ndimage.shift(frame, -np.asarray(drift), order=order, mode="nearest")


def _shift(frame: np.ndarray, drift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move a raw frame back by its drift (cubic); also return where it had data."""
    moved = _move(frame, drift, order=3)
    rows, cols = frame.shape
    r = np.arange(rows)[:, None] + drift[0]
    c = np.arange(cols)[None, :] + drift[1]
    valid = (r >= 0) & (r <= rows - 1) & (c >= 0) & (c <= cols - 1)
    return moved, valid


def _shift_rows(frame: np.ndarray, row_drift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move every row back by its own drift (rows, 2)."""
    rows, cols = frame.shape
    r = np.broadcast_to(np.arange(rows)[:, None] + row_drift[:, :1], (rows, cols))
    c = np.arange(cols)[None, :] + row_drift[:, 1:]
    moved = ndimage.map_coordinates(frame, [r, c], order=3, mode="nearest")
    valid = (r >= 0) & (r <= rows - 1) & (c >= 0) & (c <= cols - 1)
    return moved, valid


def sigma_clipped_mean(stack: np.ndarray, valid: np.ndarray, clip_sigma: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean over frames, ignoring invalid samples and those beyond ``clip_sigma``.

    The spread is the median absolute deviation from the per-pixel median (scaled to a standard
    deviation, averaged over 5 x 5 pixels), so bright or dark outliers (a streak, a flash) do not
    widen their own limit.

    Returns
    -------
    mean : ndarray, shape (rows, cols), float32
    count : ndarray, shape (rows, cols), int
        Samples used per pixel.
    """
    data = np.where(valid, stack, np.float32(np.nan))
    n_valid = valid.sum(axis=0)
    med = _nan_median(data, n_valid)
    mad = _nan_median(np.abs(data - med), n_valid) * 1.4826
    # a median absolute deviation of a few dozen samples is itself noisy; the noise level changes
    # slowly across the image, so pool it over 5 x 5 pixels
    mad = ndimage.uniform_filter(np.nan_to_num(mad), 5, mode="nearest")
    spread = np.maximum(mad, 1e-6 * (np.abs(med) + 1.0))
    keep = valid & (np.abs(stack - med) <= clip_sigma * spread)
    count = keep.sum(axis=0)
    total = np.where(keep, stack, 0.0).sum(axis=0, dtype=np.float64)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan_to_num(med))
    return mean.astype(np.float32), count


def _nan_median(data: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    """Median over axis 0 of an array whose invalid entries are NaN (sorted to the end)."""
    ordered = np.sort(data, axis=0)
    lo = np.clip((n_valid - 1) // 2, 0, None)[None]
    hi = np.clip(n_valid // 2, 0, data.shape[0] - 1)[None]
    med = 0.5 * (np.take_along_axis(ordered, lo, 0)[0] + np.take_along_axis(ordered, hi, 0)[0])
    return np.where(n_valid > 0, med, np.nan)


def dcfi(
    frames: np.ndarray,
    *,
    upsample: int = 10,
    smooth_sigma_px: tuple[float, float] = (0.7, 0.7),
    highpass_px: float = 8.0,
    passes: int = 3,
    max_shift_px: float | None = None,
    group_frames: int | None = None,
    smooth_drift: bool = True,
    nonrigid_bands: int = 0,
    clip_sigma: float = 5.0,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DcfiResult:
    """Drift-corrected frame integration of a stack of repeated frames of one area.

    Parameters
    ----------
    frames : ndarray, shape (n, rows, cols)
        n >= 2 frames of the same area (any intensity units).
    upsample : int
        Sub-pixel precision of the registration: 1 / upsample px.
    smooth_sigma_px : (sigma_y, sigma_x)
        Gaussian smoothing of the frames used for registration only, px. Correlating against a
        reference is itself a matched filter, so little smoothing is needed; more smoothing
        blurs the thin dislocation lines that carry the registration.
    highpass_px : float
        Broad Gaussian removed before registration, px (0: none).
    passes : int
        1: the coarse running-reference pass only; 2 or more: then per-frame registration against
        the leave-one-out mean of all other frames, within 2 px of the current drift.
    max_shift_px : float, optional
        Largest drift increment between consecutive frame groups searched in the coarse pass, px.
        Default: 15 % of the frame.
    group_frames : int, optional
        Consecutive frames averaged for the coarse pass; default n // 10 (1 to 5).
    smooth_drift : bool
        After each refinement pass, replace the measured drift path by the smoother of the frame
        index that predicts it best (generalised cross-validation among a constant, polynomials up
        to the third degree and Gaussian smoothing over 1, 2 or 4 frames). Specimen
        drift changes slowly from frame to frame while single noisy frames register with errors of
        a few tenths of a pixel, up to a pixel in dark, thick areas: there the path ends up
        nearly constant instead of following the noise. Turn it off for a stage that jumps.
    nonrigid_bands : int
        0 for rigid registration only; otherwise register this many horizontal bands per frame
        and shift every row by a straight-line fit of the band shifts (drift during the scan).
    clip_sigma : float
        Sigma-clipping limit of the robust average. Shot noise is skewed (few electrons per
        pixel): a tight limit around the median cuts its upper tail and darkens the reference,
        so the default only removes gross outliers (flashes, bad rows).
    progress, cancel
        Progress callback and cancel token (checked before every frame).

    Returns
    -------
    DcfiResult

    Raises
    ------
    ValueError
        Fewer than two frames, NaNs, or a parameter out of range.

    Examples
    --------
    >>> result = dcfi(area.frames)                     # doctest: +SKIP
    >>> result.reference.shape, result.drift_px.shape  # doctest: +SKIP
    ((512, 512), (50, 2))
    """
    progress = progress or no_progress
    stack = check_stack(frames)
    if upsample < 1:
        raise ValueError(f"upsample must be at least 1, got {upsample}")
    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    if group_frames is not None and group_frames < 1:
        raise ValueError(f"group_frames must be at least 1, got {group_frames}")
    if nonrigid_bands < 0 or nonrigid_bands == 1:
        raise ValueError(f"nonrigid_bands must be 0 (off) or at least 2, got {nonrigid_bands}")
    if clip_sigma <= 0:
        raise ValueError(f"clip_sigma must be positive, got {clip_sigma}")
    n, rows, cols = stack.shape
    limit = float(max_shift_px) if max_shift_px is not None else 0.15 * min(rows, cols)
    sigma = (float(smooth_sigma_px[0]), float(smooth_sigma_px[1]))
    taper = edge_taper((rows, cols))
    error = np.zeros(n)

    # coarse pass: running reference of strongly smoothed group averages
    group = int(group_frames) if group_frames is not None else int(np.clip(n // 10, 1, 5))
    starts = np.arange(0, n, group)
    coarse_sigma = (max(2.0, 3 * sigma[0]), max(2.0, 3 * sigma[1]))
    coarse = [prefilter_frame(stack[i : i + group].mean(axis=0), coarse_sigma, 4 * highpass_px) for i in starts]
    group_drift = np.zeros((len(starts), 2))
    acc = coarse[0] * taper
    for g in range(1, len(starts)):
        _check(cancel)
        step, _ = _register(acc, _move(coarse[g], group_drift[g - 1]) * taper, upsample, limit)
        group_drift[g] = group_drift[g - 1] + step
        acc += _move(coarse[g], group_drift[g]) * taper
        progress(0.3 * g / len(starts), f"registering frames {starts[g] + 1}-{min(starts[g] + group, n)}/{n}")
    del coarse
    centres = np.array([0.5 * (i + min(i + group, n) - 1) for i in starts])
    drift = np.stack([np.interp(np.arange(n), centres, group_drift[:, a]) for a in range(2)], axis=1)

    # refinement passes: each frame against the leave-one-out mean of all the others
    filtered = np.stack([prefilter_frame(f, sigma, highpass_px) for f in stack])
    for p in range(1, passes):
        aligned = np.stack([_move(filtered[k], drift[k]) * taper for k in range(n)])
        total = aligned.sum(axis=0)
        new = drift.copy()
        for k in range(n):
            _check(cancel)
            step, error[k] = _register((total - aligned[k]) / (n - 1), aligned[k], upsample, 2.0)
            new[k] = drift[k] + step
            progress(0.3 + 0.6 * ((p - 1) * n + k + 1) / ((passes - 1) * n), f"refining frame {k + 1}/{n}")
        drift = _smooth_path(new) if smooth_drift else new
        drift -= drift[0]  # keep the first frame's geometry

    row_drift = None
    moved = np.empty_like(stack)
    valid = np.zeros(stack.shape, bool)
    for k in range(n):
        moved[k], valid[k] = _shift(stack[k], drift[k])
    if nonrigid_bands:
        _check(cancel)
        ref_f = prefilter_frame(sigma_clipped_mean(moved, valid, clip_sigma)[0], sigma, highpass_px)
        row_drift = np.empty((n, rows, 2))
        for k in range(n):
            _check(cancel)
            row_drift[k] = drift[k] + _band_drift(ref_f, filtered[k], drift[k], nonrigid_bands, upsample)
            moved[k], valid[k] = _shift_rows(stack[k], row_drift[k])
    progress(0.95, "robust averaging")
    reference, used = sigma_clipped_mean(moved, valid, clip_sigma)
    progress(1.0, f"integrated {n} frames")
    return DcfiResult(reference, drift, row_drift, used, error)


def _smoothers(n: int) -> list[np.ndarray]:
    """Candidate linear smoothers (n x n matrices) of a drift path over the frame index."""
    t = np.linspace(-1.0, 1.0, n)
    out = []
    for degree in range(min(3, n - 2) + 1):
        basis = np.polynomial.legendre.legvander(t, degree)
        out.append(basis @ np.linalg.pinv(basis))
    eye = np.eye(n)
    for sigma in (4.0, 2.0, 1.0):
        if n > 2 * sigma:
            out.append(ndimage.gaussian_filter1d(eye, sigma, axis=0, mode="nearest"))
    return out


def _smooth_path(drift: np.ndarray) -> np.ndarray:
    """Smooth each axis of a (n, 2) drift path with the candidate of least GCV score."""
    n = len(drift)
    if n < 4:
        return drift.copy()
    smoothers = _smoothers(n)
    out = np.empty_like(drift)
    for axis in range(drift.shape[1]):
        y = drift[:, axis]
        best, best_score = y, np.inf
        for s in smoothers:
            fitted = s @ y
            dof = n - float(np.trace(s))
            if dof < 0.5:
                continue
            score = n * float(np.sum((y - fitted) ** 2)) / dof**2
            if score < best_score:
                best, best_score = fitted, score
        out[:, axis] = best
    return out


def _band_drift(reference: np.ndarray, filtered: np.ndarray, drift: np.ndarray, bands: int, upsample: int) -> np.ndarray:
    """Residual drift of every row from the registration of horizontal bands (linear in the row)."""
    rows, cols = reference.shape
    aligned = _move(filtered, drift)
    edges = np.linspace(0, rows, bands + 1).astype(int)
    centres, shifts = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b - a < 8:
            continue
        t = edge_taper((b - a, cols))
        d, _ = _register(reference[a:b] * t, aligned[a:b] * t, upsample, 2.0)
        centres.append(0.5 * (a + b - 1))
        shifts.append(d)
    out = np.zeros((rows, 2))
    if len(centres) >= 2:
        coef = np.polyfit(np.asarray(centres), np.asarray(shifts), 1)
        out = np.arange(rows)[:, None] * coef[0][None, :] + coef[1][None, :]
    return out


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.check()
