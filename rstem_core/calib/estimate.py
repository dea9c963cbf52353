"""Estimate the rapid scan's distortion map from a slow- and a rapid-scan image of a cross-grating.

Steps (paper Methods "Image distortion correction", Supp. A; each a function of
:mod:`.measure` or :mod:`.model`):

1. Check the pair (same size, finite values) and find the grating period in the slow image; the
   period sets the default window (1.5 periods) and the search radius (below half a period).
2. Band-pass both images (a light Gaussian against noise, minus a period-wide Gaussian against slow
   intensity changes) and find the best global x scale and translation (FFT cross-correlation over
   a range of scales). A weak best match means the two images do not show the same field.
3. A search pass: windowed cross-correlation of windows twice the final size, against the slow
   image warped by the global model, and a first smooth fit.
4. Refinement passes: warp the slow image by the current fit, measure every window's residual
   displacement to sub-pixel precision with its standard error and correlation coefficient, refit
   (model selection and outlier rejection in :func:`.model.fit_smooth_field`), until the update is
   negligible.

The rapid detector's afterglow delays features along +x, so an image-based map measures the scan
displacement minus that delay (a fraction of a pixel): this is what aligns rapid frames, which
carry the same afterglow, with slow ones.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import RstemError
from ..progress import CancelToken, ProgressFn, no_progress
from .distortion_map import DistortionMap
from .measure import (
    MIN_PERIOD_STRENGTH,
    aperiodic_part,
    find_grating_period,
    global_alignment,
    measure_windows_gradient,
    measure_windows_xcorr,
    prefilter,
    warp,
    window_grid,
)
from .model import FitResult, fit_smooth_field

#: trial x scales of the global alignment (rapid scans shrink the image by a few to ~20 %)
SCALES = np.arange(0.80, 1.2501, 0.025)


def check_pair(slow: np.ndarray, rapid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a grating pair; returns both as float64 (rows, cols) images.

    Raises
    ------
    RstemError
        Different sizes, not 2-D, too small, or NaN / infinite values.
    """
    out = []
    for name, image in (("slow", slow), ("rapid", rapid)):
        a = np.asarray(image, np.float64)
        if a.ndim == 3 and a.shape[0] >= 1:
            a = a.mean(axis=0)
        if a.ndim != 2:
            raise RstemError(f"the {name} grating image must be one (rows, cols) image, got shape {a.shape}")
        bad = ~np.isfinite(a)
        if bad.any():
            raise RstemError(f"the {name} grating image holds {int(bad.sum())} NaN or infinite values; re-import it")
        if min(a.shape) < 32:
            raise RstemError(f"the {name} grating image is only {a.shape[0]}x{a.shape[1]} px; need at least 32x32")
        out.append(a)
    if out[0].shape != out[1].shape:
        raise RstemError(
            f"the slow grating image is {out[0].shape[0]}x{out[0].shape[1]} px but the rapid one "
            f"{out[1].shape[0]}x{out[1].shape[1]} px: image the same field with the same frame size"
        )
    return out[0], out[1]


def estimate_distortion(
    slow: np.ndarray,
    rapid: np.ndarray,
    *,
    window_px: int | None = None,
    step_px: int | None = None,
    prefilter_sigma_px: float = 0.5,
    iterations: int = 5,
    min_window_quality: float = 0.25,
    min_valid_fraction: float = 0.5,
    min_global_correlation: float = 0.25,
    min_particle_correlation: float = 0.15,
    max_residual_px: float = 1.0,
    pixel_size_nm: float | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DistortionMap:
    """Distortion map of the rapid scan from a grating imaged with the slow and the rapid scan.

    Parameters
    ----------
    slow, rapid : ndarray, shape (rows, cols)
        The grating's slow-scan (taken as undistorted) and rapid-scan image of the same field,
        any intensity units (a stack is averaged over its frames).
    window_px : int, optional
        Window edge in px; default 1.5 grating periods (at least 16 px).
    step_px : int, optional
        Distance between window origins in px; default a quarter window.
    prefilter_sigma_px : float
        Gaussian noise smoothing before matching, px.
    iterations : int
        Refinement passes (warp, measure, refit).
    min_window_quality : float
        A window counts as valid when its correlation coefficient reaches this (0..1).
    min_valid_fraction : float
        Reject the calibration when fewer windows than this share are valid in the final fit.
    min_global_correlation : float
        Reject the pair as two different fields when the best global match correlates less.
    min_particle_correlation : float
        Reject the pair as two different fields when, after the correction, the images without
        their periodic grating (the gold particles) correlate less: two gratings of one period line
        up at a wrong match too, only the particles tell them apart.
    max_residual_px : float
        Reject the calibration when the RMS fit residual of the valid windows exceeds this, px.
    pixel_size_nm : float, optional
        Recorded with the map.
    progress, cancel
        Progress callback and cancel token.

    Returns
    -------
    DistortionMap

    Raises
    ------
    RstemError
        The images differ in size or hold NaNs, the slow image shows no grating period, the two
        images do not show the same field, or too few windows are valid / the fit residual is poor.
    ValueError
        A parameter is out of range.

    References
    ----------
    Zhao et al., Sci. Rep., Methods "Image distortion correction" and Supplementary information A.
    """
    progress = progress or no_progress
    if window_px is not None and window_px < 8:
        raise ValueError(f"window_px must be at least 8, got {window_px}")
    if step_px is not None and step_px < 1:
        raise ValueError(f"step_px must be at least 1, got {step_px}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    slow, rapid = check_pair(slow, rapid)
    rows, cols = slow.shape
    _check(cancel)

    period = find_grating_period(slow)
    if period.strength < MIN_PERIOD_STRENGTH:
        raise RstemError(
            f"grating period not found in the slow grating image: its strongest periodicity is only "
            f"{period.strength:.0f} times the background (a cross-grating gives hundreds); image a "
            "cross-grating replica for the calibration"
        )
    p = period.period_px
    window = int(window_px) if window_px is not None else max(16, int(round(1.5 * p)))
    window = min(window, rows // 2, cols // 2)
    step = int(step_px) if step_px is not None else max(4, window // 4)
    progress(0.05, f"grating period {p:.1f} px; global alignment")

    s_img = prefilter(slow, prefilter_sigma_px, p)
    r_img = prefilter(rapid, prefilter_sigma_px, p)
    scale, shift_y, shift_x, ncc = global_alignment(s_img, r_img, SCALES)
    if ncc < min_global_correlation:
        raise RstemError(
            f"the slow and rapid grating images do not show the same field: their best global match "
            f"correlates only {ncc:.2f} (need {min_global_correlation:g}); image one field with both scans"
        )
    _check(cancel)
    c_idx = np.arange(cols, dtype=np.float64)
    dx = np.broadcast_to((scale - 1.0) * (c_idx - (cols - 1) / 2) + shift_x, (rows, cols)).copy()
    dy = np.full((rows, cols), shift_y)
    grad_y, grad_x = np.gradient(s_img)

    # search pass: large windows, peak within less than half a period
    coarse = window_grid((rows, cols), min(2 * window, rows // 2, cols // 2), max(window // 2, 4))
    warped, inside = warp(s_img, dy, dx)
    meas = measure_windows_xcorr(r_img, warped, inside, coarse, radius_px=0.45 * p)
    centres = coarse.centres
    base = np.stack([_sample(dy, centres), _sample(dx, centres)], axis=1)
    usable = (meas.ncc >= min_window_quality) & (meas.coverage >= 0.5)
    fit = _fit(centres, base + meas.shift_px, meas.std_px, usable, (rows, cols), (coarse.size / max(window // 2, 4)) ** 2)
    progress(0.2, f"search pass: {int(fit.inliers.sum())}/{coarse.n} windows")

    grid = window_grid((rows, cols), window, step)
    centres = grid.centres
    overlap = (window / step) ** 2
    noise_area = max(4 * math.pi * prefilter_sigma_px**2, 1.0)
    for it in range(iterations):
        _check(cancel)
        dy, dx = fit.field.evaluate()
        warped, inside = warp(s_img, dy, dx)
        gradient = (warp(grad_y, dy, dx)[0], warp(grad_x, dy, dx)[0])
        meas = measure_windows_gradient(r_img, warped, gradient, inside, grid, noise_correlation_px2=noise_area)
        base = np.stack(fit.field.at(centres[:, 0], centres[:, 1]), axis=1)
        usable = (meas.ncc >= min_window_quality) & (meas.coverage >= 0.5) & np.all(np.abs(meas.shift_px) < 0.25 * p, axis=1)
        fit = _fit(centres, base + meas.shift_px, meas.std_px, usable, (rows, cols), overlap)
        update = float(np.max(np.abs(meas.shift_px[fit.inliers]))) if fit.inliers.any() else float("inf")
        progress(0.2 + 0.75 * (it + 1) / iterations, f"refinement {it + 1}: residual {fit.rms_px:.3f} px")
        if update < 0.01:
            break
    dy, dx = fit.field.evaluate()

    n_valid = int(fit.inliers.sum())
    if n_valid < min_valid_fraction * grid.n:
        raise RstemError(
            f"too few valid windows: {n_valid} of {grid.n} ({100 * n_valid / grid.n:.0f} %, need "
            f"{100 * min_valid_fraction:.0f} %); the rapid grating image is too noisy or not of the same field"
        )
    if fit.rms_px > max_residual_px:
        raise RstemError(
            f"poor calibration: the windows deviate from the smooth fit by {fit.rms_px:.2f} px RMS (limit "
            f"{max_residual_px:g} px); the images may not show the same field, or the specimen moved"
        )
    particles = _particle_correlation(s_img, r_img, dy, dx)
    if particles < min_particle_correlation:
        raise RstemError(
            f"the slow and rapid grating images do not show the same field: the grating lines up but its gold "
            f"particles do not (correlation {particles:.2f}, need {min_particle_correlation:g}); image one field "
            "with both scans"
        )
    f = fit.field
    quality = {
        "residual_rms_px": round(fit.rms_px, 4),
        "n_windows": grid.n,
        "n_valid_windows": n_valid,
        "window_px": window,
        "step_px": step,
        "median_window_quality": round(float(np.median(meas.ncc[fit.inliers])), 4),
        "median_window_std_px": round(float(np.median(meas.std_px[fit.inliers, 1])), 4),
        "grating_period_px": round(p, 3),
        "grating_angle_deg": round(period.angle_deg, 3),
        "grating_strength": round(period.strength, 1),
        "global_scale_x": round(scale, 5),
        "global_correlation": round(ncc, 4),
        "particle_correlation": round(particles, 4),
        "y_dependence": f.y_degree > 0,
        "y_component": f.dy_form is not None,
        "dx_range_px": [round(float(dx.min()), 3), round(float(dx.max()), 3)],
        "dy_range_px": [round(float(dy.min()), 3), round(float(dy.max()), 3)],
        "prefilter_sigma_px": prefilter_sigma_px,
        "prefilter_highpass_px": round(p, 3),
    }
    windows = {
        "window_centres_px": centres,
        "window_displacement_px": base + meas.shift_px,
        "window_std_px": np.where(np.isfinite(meas.std_px), meas.std_px, -1.0),
        "window_quality": meas.ncc,
        "window_valid": fit.inliers.astype(np.uint8),
        "window_residual_px": fit.residual_px,
    }
    progress(1.0, f"distortion map: {n_valid}/{grid.n} windows, residual {fit.rms_px:.3f} px RMS")
    return DistortionMap(
        dy, dx, pixel_size_nm, windows=windows, model=f.describe(), quality=quality,
        metadata={"shape": [rows, cols]},
    )


def _fit(
    centres: np.ndarray,
    displacement: np.ndarray,
    std: np.ndarray,
    usable: np.ndarray,
    shape: tuple[int, int],
    overlap: float,
) -> FitResult:
    try:
        return fit_smooth_field(centres, displacement, std, usable, shape, overlap=overlap)
    except ValueError as exc:
        raise RstemError(
            f"too few valid windows to fit the distortion ({exc}); the rapid grating image is too "
            "noisy or not of the same field"
        ) from None


def _particle_correlation(slow: np.ndarray, rapid: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> float:
    """Correlation of the two images' aperiodic parts after warping the slow one by the map."""
    warped, inside = warp(aperiodic_part(slow), dy, dx)
    r = aperiodic_part(rapid)[inside]
    s = warped[inside]
    r = r - r.mean()
    s = s - s.mean()
    denom = float(np.sqrt(np.sum(r * r) * np.sum(s * s)))
    return float(np.sum(r * s) / denom) if denom > 0 else 0.0


def _sample(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    r = np.clip(np.round(points[:, 0]).astype(np.intp), 0, field.shape[0] - 1)
    c = np.clip(np.round(points[:, 1]).astype(np.intp), 0, field.shape[1] - 1)
    return field[r, c]


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.check()
