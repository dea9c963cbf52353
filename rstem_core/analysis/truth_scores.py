"""Scores of a synthetic project's calibration, DCFI and curation against its ``/truth``.

Every function takes an open project and returns a plain dict (numbers, lists, strings) whose main
key is the function's name, as ``rstem evaluate --reference truth --json`` reports them.

Conventions
-----------
* The afterglow of the rapid detector delays image features along +x by a fraction of a pixel, so
  an image-based calibration measures ``distortion_x_px - delay`` and that is the map that aligns
  rapid frames (which carry the same afterglow) with slow ones. The delay a correlation sees depends
  on the features and the matcher's pre-filter, so it is measured the way the calibration measures:
  the clean slow grating against the same image passed through the detector's afterglow kernel,
  with the calibration's pre-filter and least-squares matcher. The delay is in rapid pixels; in the
  undistorted pixels of the map it is ``delay * (1 + d distortion_x / dx)``. The score without the
  delay correction and the shape error after removing any constant offset are reported too.
* "Over the frame" means over the rapid pixels whose specimen position lies inside the frame:
  those are the pixels the correction uses (the shrunk rapid scan sees beyond the field, where no
  slow image exists to calibrate against).
* Thickness classes follow the issue's specification: matched within +-10 % of the specimen
  thickness, mismatched beyond +-25 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from ..errors import RstemError
from ..project import Project

MATCHED = 0.10
MISMATCHED = 0.25


def _require(project: Project, *keys: str) -> None:
    for key in keys:
        if key not in project:
            raise RstemError(f"{project.path.name} has no {key}: not a synthetic project or the step has not run")


def measured_afterglow_delay_px(
    clean_grating: np.ndarray, kernel: np.ndarray, sigma_px: float, highpass_px: float
) -> float:
    """Feature delay (rapid px) the calibration's matcher sees from a detector afterglow kernel:
    the clean slow grating against itself passed through the kernel, same pre-filter."""
    from ..calib.measure import prefilter
    from ..simulate.detector import apply_afterglow

    clean = np.asarray(clean_grating, np.float64)
    a = prefilter(clean, sigma_px, highpass_px)
    b = prefilter(apply_afterglow(clean, kernel).astype(np.float64), sigma_px, highpass_px)
    gy, gx = np.gradient(a)
    design = np.stack([gx.ravel(), gy.ravel(), a.ravel(), np.ones(a.size)], axis=1)
    sol = np.linalg.lstsq(design, b.ravel(), rcond=None)[0]
    return float(-sol[0] / sol[2])


def field_errors(
    dx: np.ndarray, dy: np.ndarray, true_dx: np.ndarray, true_dy: np.ndarray, delay_px: float
) -> dict[str, float]:
    """Errors of a displacement map against the true field (see the module conventions)."""
    rows, cols = true_dx.shape
    c = np.arange(cols)[None, :]
    r = np.arange(rows)[:, None]
    inside = (c + true_dx >= 0) & (c + true_dx <= cols - 1) & (r + true_dy >= 0) & (r + true_dy <= rows - 1)
    ex = dx - (true_dx - delay_px * (1 + np.gradient(true_dx, axis=1)))
    ey = dy - true_dy
    offset = float(ex[inside].mean())
    e0 = dx - true_dx
    return {
        "distortion_rms_px": _rms(ex[inside], ey[inside]),
        "distortion_rms_x_px": _rms(ex[inside]),
        "distortion_rms_y_px": _rms(ey[inside]),
        "distortion_offset_px": offset,
        "distortion_shape_rms_px": _rms(ex[inside] - offset, ey[inside]),
        "distortion_rms_no_delay_px": _rms(e0[inside], ey[inside]),
        "distortion_rms_full_frame_px": _rms(ex.ravel(), ey.ravel()),
    }


def distortion_rms_px(project: Project) -> dict[str, Any]:
    """RMS error of the calibration's distortion map against the true field, over the frame.

    Returns
    -------
    dict
        ``distortion_rms_px`` (both components, true x field minus the measured afterglow delay),
        ``distortion_rms_x_px``, ``distortion_rms_y_px``, ``distortion_offset_px`` (mean x error),
        ``distortion_shape_rms_px`` (after removing that offset), ``distortion_rms_no_delay_px``
        (against the bare true field), ``distortion_rms_full_frame_px`` (every rapid pixel),
        ``afterglow_delay_px`` and ``afterglow_centroid_px``.
    """
    _require(project, "calibration/distortion_map", "truth/distortion_x_px", "truth/distortion_y_px",
             "truth/grating_clean", "truth/afterglow_kernel")
    grp = project.h5["calibration/distortion_map"]
    dx, dy = grp["dx_px"][()], grp["dy_px"][()]
    tx = project.read_array("truth/distortion_x_px")
    ty = project.read_array("truth/distortion_y_px")
    if dx.shape != tx.shape:
        raise RstemError(f"the distortion map is {dx.shape} but the true field {tx.shape}")
    quality = project.attrs("calibration/distortion_map")
    sigma = float(quality.get("prefilter_sigma_px", 0.5))
    highpass = float(quality.get("prefilter_highpass_px", 0.0)) or tx.shape[1] / 12
    delay = measured_afterglow_delay_px(
        project.read_array("truth/grating_clean"), project.read_array("truth/afterglow_kernel"), sigma, highpass
    )
    return {
        **field_errors(dx, dy, tx, ty, delay),
        "afterglow_delay_px": delay,
        "afterglow_centroid_px": float(project.attrs("truth").get("afterglow_delay_px", np.nan)),
    }


def corrected_grating_rms_px(project: Project) -> dict[str, Any]:
    """How well the corrected rapid grating lines up with the slow one.

    The noise-free rapid grating (``/truth/grating_rapid_clean``, with the detector's afterglow)
    is corrected with the project's map and matched window by window against the noise-free slow
    grating with the calibration's own matcher; the score is the RMS length of the window
    displacements (zero for a perfect correction). The same on the recorded, noisy pair is
    reported as ``corrected_grating_noisy_rms_px``: it adds each window's measurement noise.
    """
    from ..calib.distortion_map import DistortionMap

    _require(project, "calibration/distortion_map", "truth/grating_clean", "truth/grating_rapid_clean")
    dmap = DistortionMap.read_group(project.h5["calibration/distortion_map"])
    out = {"corrected_grating_rms_px": alignment_residual_rms_px(
        dmap, project.read_array("truth/grating_clean"), project.read_array("truth/grating_rapid_clean"))}
    if "raw/grating-slow" in project and "raw/grating-rapid" in project:
        out["corrected_grating_noisy_rms_px"] = alignment_residual_rms_px(
            dmap, project.read_series("raw/grating-slow").frames.mean(axis=0),
            project.read_series("raw/grating-rapid").frames.mean(axis=0))
    return out


def alignment_residual_rms_px(dmap, slow: np.ndarray, rapid: np.ndarray, window_px: int | None = None) -> float:
    """RMS residual displacement (px) between a slow image and a rapid one corrected with ``dmap``.

    Measured on non-overlapping windows (default: the calibration's window) with the calibration's
    pre-filter and least-squares matcher; windows the correction does not fully cover are skipped.
    Sparse images (dislocations) need windows large enough to hold features.
    """
    from ..calib.measure import measure_windows_gradient, prefilter, window_grid

    q = dmap.quality
    sigma = float(q.get("prefilter_sigma_px", 0.5))
    highpass = float(q.get("prefilter_highpass_px", slow.shape[1] / 12))
    window = int(window_px or q.get("window_px", 32))
    corrected = dmap.correct(np.asarray(rapid, np.float32), order=3)
    s = prefilter(np.asarray(slow, np.float64), sigma, highpass)
    r = prefilter(corrected.astype(np.float64), sigma, highpass)
    inside = dmap.coverage()
    inside = ndimage.binary_erosion(inside, iterations=2)
    gy, gx = np.gradient(s)
    grid = window_grid(s.shape, window, window)
    meas = measure_windows_gradient(r, s, (gy, gx), inside, grid, noise_correlation_px2=1.0)
    ok = (meas.coverage > 0.99) & np.all(np.isfinite(meas.std_px), axis=1)
    return _rms(meas.shift_px[ok, 0], meas.shift_px[ok, 1])


def curation_scores(project: Project) -> dict[str, Any]:
    """Share of matched training areas accepted and of mismatched ones rejected.

    Returns
    -------
    dict
        ``curation_accept_matched`` and ``curation_reject_mismatched`` (fractions, None when a
        class is empty), the class sizes and the names of the wrongly decided areas.
    """
    _require(project, "training/decisions", "truth/training/thickness_nm")
    decisions = {d["area"]: d for d in project.read_json("training/decisions")}
    thickness = project.read_array("truth/training/thickness_nm")
    t0 = float(project.attrs("truth")["thickness_nm"])
    matched, mismatched, wrong = [], [], []
    for name, d in decisions.items():
        index = int(name.rsplit("_", 1)[1])
        rel = thickness[index] / t0 - 1
        if abs(rel) <= MATCHED:
            matched.append(d["accepted"])
            if not d["accepted"]:
                wrong.append(name)
        elif abs(rel) >= MISMATCHED:
            mismatched.append(not d["accepted"])
            if d["accepted"]:
                wrong.append(name)
    return {
        "curation_accept_matched": float(np.mean(matched)) if matched else None,
        "curation_reject_mismatched": float(np.mean(mismatched)) if mismatched else None,
        "curation_matched_areas": len(matched),
        "curation_mismatched_areas": len(mismatched),
        "curation_wrong": wrong,
    }


def curation_accept_matched(project: Project) -> dict[str, Any]:
    """Share of areas within +-10 % of the specimen thickness that curation accepted."""
    s = curation_scores(project)
    return {"curation_accept_matched": s["curation_accept_matched"], "curation_matched_areas": s["curation_matched_areas"]}


def curation_reject_mismatched(project: Project) -> dict[str, Any]:
    """Share of areas beyond +-25 % of the specimen thickness that curation rejected."""
    s = curation_scores(project)
    return {"curation_reject_mismatched": s["curation_reject_mismatched"],
            "curation_mismatched_areas": s["curation_mismatched_areas"]}


def psnr_db(estimate: np.ndarray, clean: np.ndarray, margin_px: int = 0, align: bool = True) -> float:
    """PSNR (dB) of an estimate against a clean image, peak = the clean image's range.

    With ``align`` the clean image is first moved onto the estimate (sub-pixel shift found by
    cross-correlation), so an average that is merely offset is not penalised; the estimate itself is
    never resampled, since interpolating a noisy image smooths its noise and would flatter it.
    ``margin_px`` excludes a border (where drifted frames had no data).
    """
    est = np.asarray(estimate, np.float64)
    ref = np.asarray(clean, np.float64)
    if align:
        shift, _, _ = phase_cross_correlation(est - est.mean(), ref - ref.mean(), upsample_factor=20, normalization=None)
        ref = ndimage.shift(ref, shift, order=3, mode="nearest")
    if margin_px > 0:
        est = est[margin_px:-margin_px, margin_px:-margin_px]
        ref = ref[margin_px:-margin_px, margin_px:-margin_px]
    mse = float(np.mean((est - ref) ** 2))
    peak = float(ref.max() - ref.min())
    return float(10 * np.log10(peak**2 / max(mse, 1e-30)))


def dcfi_psnr_gain_db(project: Project) -> dict[str, Any]:
    """PSNR of every stored DCFI reference against the area's clean image, minus that of the plain
    (unregistered) average of the same frames; both aligned to the clean image first.

    Returns
    -------
    dict
        ``dcfi_psnr_gain_db`` (mean over areas), ``dcfi_psnr_db`` and ``average_psnr_db`` (means),
        ``dcfi_drift_rms_px`` (mean RMS error of the measured drift, after removing a constant) and
        per-area lists.
    """
    _require(project, "training/references")
    names = sorted(project.h5["training/references"].keys())
    gains, ours, plain, drift_err, per_area = [], [], [], [], []
    for name in names:
        truth = f"truth/training/{name}"
        if f"{truth}/clean" not in project:
            continue
        clean = project.read_array(f"{truth}/clean") * float(project.attrs(truth).get("adu_per_unit", 1.0))
        frames = project.read_series(f"raw/training/{name}").frames
        true_drift = project.read_array(f"{truth}/drift_px")
        margin = int(np.ceil(np.abs(true_drift - true_drift[0]).max())) + 3
        p_ref = psnr_db(project.read_array(f"training/references/{name}"), clean, margin)
        p_avg = psnr_db(frames.mean(axis=0), clean, margin)
        ours.append(p_ref)
        plain.append(p_avg)
        gains.append(p_ref - p_avg)
        if f"training/drift/{name}" in project:
            err = project.read_array(f"training/drift/{name}") - (true_drift - true_drift[0])
            err -= err.mean(axis=0)
            drift_err.append(float(np.sqrt(np.mean(np.sum(err**2, axis=1)))))
        per_area.append({"area": name, "dcfi_psnr_db": p_ref, "average_psnr_db": p_avg, "gain_db": p_ref - p_avg})
    if not gains:
        raise RstemError(f"{project.path.name} has no DCFI references with a clean truth image")
    return {
        "dcfi_psnr_gain_db": float(np.mean(gains)),
        "dcfi_psnr_db": float(np.mean(ours)),
        "average_psnr_db": float(np.mean(plain)),
        "dcfi_drift_rms_px": float(np.mean(drift_err)) if drift_err else None,
        "dcfi_areas": per_area,
    }


def _rms(*parts: np.ndarray) -> float:
    total = sum(np.asarray(p, np.float64) ** 2 for p in parts)
    return float(np.sqrt(np.mean(total)))
