"""Projection matching: reconstruct, re-project, re-register every frame; repeat.

The fallback for series with too few trackable features. Frames are split into interleaved
folds; each fold is compared with the re-projection of a volume reconstructed from the other
folds, so a frame is never matched against its own noise (which would hold every frame where it
is). Each frame's shift (and, optionally, angle) is updated by a Gauss-Newton step of the fit
``frame ~ gain * model(theta + d_theta, shifted by (dy, dx)) + offset``; the volume lives on a tall
grid (:mod:`._tall`) so that tilted frames are modelled over their whole height.

What it cannot see: a smooth error of all angles together can be absorbed by a slightly deformed
volume, so projection matching corrects frame-to-frame errors (jumps of the stage, uneven steps)
far better than slow drifts of the angles; the feature refinement handles those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from ..progress import CancelToken, ProgressFn, no_progress
from ._tall import (
    frame_row_angles,
    masked_sirt,
    project_tall,
    rays_with_data,
    shift_columns,
    tall_pad_rows,
)
from .smooth import ramp_tolerance, smooth_in_time


@dataclass(frozen=True, eq=False)
class MatchResult:
    """Result of :func:`projection_matching`.

    Attributes
    ----------
    angles_deg : ndarray, shape (n,)
    shifts_px : ndarray, shape (n, 2)
        (dy, dx) in the frames' pixels.
    correlation : ndarray, shape (n,)
        Correlation of each frame with its model at the end (NaN for frames not used).
    iterations : int
    """

    angles_deg: np.ndarray
    shifts_px: np.ndarray
    correlation: np.ndarray
    iterations: int


def remove_translation(shifts_px: np.ndarray, angles_deg: np.ndarray, reference: int) -> np.ndarray:
    """Shifts with the specimen moved so that frame ``reference`` has shift (0, 0).

    Moving the specimen by (x0, y0) changes every frame's shift by (y0 cos(theta), x0), which no
    image can tell from a drift; this is that gauge, chosen to zero the reference frame.
    """
    out = np.asarray(shifts_px, dtype=np.float64).copy()
    c = np.cos(np.deg2rad(np.asarray(angles_deg, dtype=np.float64)))
    y0 = out[reference, 0] / c[reference]
    out[:, 0] -= y0 * c
    out[:, 1] -= out[reference, 1]
    return out


def fold_models(
    signal: np.ndarray,
    angles_deg: np.ndarray,
    shifts_px: np.ndarray,
    nz: int,
    *,
    usable: np.ndarray,
    timestamps_s: np.ndarray | None = None,
    line_time_s: float | None = None,
    folds: int = 2,
    sirt_iterations: int = 15,
    angle_step_deg: float | None = None,
    device: str = "cpu",
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Every usable frame's model (re-projection of the other folds' volume), in frame pixels.

    Parameters
    ----------
    signal : ndarray, shape (n, rows, cols)
    angles_deg, shifts_px : ndarray
        Current geometry, (n,) degrees and (n, 2) (dy, dx) pixels.
    nz : int
        Volume thickness, pixels.
    usable : ndarray, shape (n,), bool
    timestamps_s, line_time_s : optional
        Row scan times (each row at its own angle).
    folds : int
        Interleaved folds (>= 2); 1 matches every frame against the volume of all frames.
    angle_step_deg : float, optional
        Also return the derivative of every model with respect to its frame angle (per degree),
        by a finite difference of this size.

    Returns
    -------
    models : ndarray, shape (n, rows, cols), float32
        Zero for frames not usable.
    derivative : ndarray, shape (n, rows, cols) or None
    """
    s = np.asarray(signal, dtype=np.float32)
    n, rows, cols = s.shape
    pad = tall_pad_rows(rows, nz, float(np.max(np.abs(angles_deg))) + 2.0)
    ra = frame_row_angles(angles_deg, rows, timestamps_s=timestamps_s, line_time_s=line_time_s)
    moved, valid = shift_columns(s, shifts_px[:, 1])
    mask = rays_with_data(valid, usable, moved.shape[1])
    idx = np.flatnonzero(usable)
    groups = [idx[g :: max(1, folds)] for g in range(max(1, folds))] if folds > 1 else [idx]
    models = np.zeros((n, rows, cols), dtype=np.float32)
    deriv = np.zeros_like(models) if angle_step_deg else None
    for group in groups:
        train = np.setdiff1d(idx, group) if folds > 1 else idx
        if train.size < 2:
            continue
        vol = masked_sirt(ra[train], moved[train], mask[train], nz, pad, dy_px=shifts_px[train, 0],
                          iterations=sirt_iterations, device=device, cancel=cancel)
        p0 = project_tall(vol, ra[group], dy_px=shifts_px[group, 0], device=device)
        p1 = None
        if angle_step_deg:
            p1 = project_tall(vol, ra[group] + angle_step_deg, dy_px=shifts_px[group, 0], device=device)
        for k, i in enumerate(group):
            models[i] = ndi.shift(p0[k], (0.0, shifts_px[i, 1]), order=1, mode="nearest")
            if deriv is not None and p1 is not None:
                deriv[i] = ndi.shift((p1[k] - p0[k]) / angle_step_deg, (0.0, shifts_px[i, 1]), order=1, mode="nearest")
    return models, deriv


def match_frame(
    frame: np.ndarray, model: np.ndarray, derivative: np.ndarray | None, margin_px: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One Gauss-Newton step of ``frame ~ gain * model(shifted, turned) + offset``.

    Returns
    -------
    step : ndarray, shape (3,)
        (d_angle_deg, d_dy_px, d_dx_px); the angle step is 0 without a derivative.
    variance : ndarray, shape (3,)
        Variance of each step from the fit's residual (inf for the angle without a
        derivative, and for every entry when the model does not match the frame).
    correlation : float
        Correlation of frame and model inside the margin.
    """
    sl = (slice(margin_px, frame.shape[0] - margin_px), slice(margin_px, frame.shape[1] - margin_px))
    gy, gx = np.gradient(model)
    cols = [-gy[sl].ravel(), -gx[sl].ravel(), model[sl].ravel(), np.ones(gy[sl].size)]
    if derivative is not None:
        cols.insert(0, derivative[sl].ravel())
    a = np.stack(cols, axis=1).astype(np.float64)
    y = frame[sl].ravel().astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    gain = coef[-2]
    corr = float(np.corrcoef(model[sl].ravel(), y)[0, 1]) if np.std(model[sl]) > 0 else 0.0
    if not gain > 0:
        return np.zeros(3), np.full(3, np.inf), corr
    resid = y - a @ coef
    cov = np.linalg.pinv(a.T @ a) * float(resid.var())
    k = len(cols) - 2
    step = coef[:k] / gain
    var = np.diag(cov)[:k] / gain**2
    if derivative is None:
        step = np.concatenate([[0.0], step])
        var = np.concatenate([[np.inf], var])
    return step, var, corr


def _shrink(step: np.ndarray, var: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Each step shrunk by its uncertainty, ``step p^2 / (p^2 + var)`` (a noisy frame stays put)."""
    p2 = priors**2
    return np.where(np.isfinite(var), step * p2 / (p2 + np.where(np.isfinite(var), var, 0.0)), 0.0)


def projection_matching(
    signal: np.ndarray,
    angles_deg: np.ndarray,
    shifts_px: np.ndarray,
    nz: int,
    *,
    usable: np.ndarray | None = None,
    timestamps_s: np.ndarray | None = None,
    line_time_s: float | None = None,
    fit_angles: bool = True,
    smooth_deg_s2: float | None = None,
    smooth_px_s2: float | None = None,
    iterations: int = 4,
    folds: int = 2,
    sirt_iterations: int = 15,
    max_step_deg: float = 1.0,
    max_step_px: float = 3.0,
    reference: int | None = None,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> MatchResult:
    """Refine shifts (and angles) by matching every frame with a re-projection.

    Parameters
    ----------
    signal : ndarray, shape (n, rows, cols)
        Alignment signal, tilt axis along x.
    angles_deg : ndarray, shape (n,)
        Starting angles, degrees.
    shifts_px : ndarray, shape (n, 2)
        Starting (dy, dx), pixels.
    nz : int
        Volume thickness, pixels.
    usable : ndarray, shape (n,), bool, optional
    timestamps_s, line_time_s : optional
        Row scan times, so that each row has its own angle; the smooth models work in time
        (frame mid-times) when given, else in frame numbers.
    fit_angles : bool
        Also update the angles.
    smooth_deg_s2 : float, optional
        Expected angular acceleration of the goniometer, deg/s^2 (deg per frame^2 without
        timestamps): every round's angle estimates are replaced by the smooth curve through
        them (:func:`~.smooth.smooth_in_time`), weighted by their uncertainties. None leaves
        every frame free (each step shrunk by its uncertainty).
    smooth_px_s2 : float, optional
        Expected acceleration of the drift, px/s^2 (px per frame^2 without timestamps); the
        same for the shifts.
    iterations : int
        Reconstruct / re-register rounds.
    folds : int
        Interleaved folds (see :func:`fold_models`).
    sirt_iterations : int
    max_step_deg, max_step_px : float
        Largest change of an angle or shift in one round.
    reference : int, optional
        Frame whose shift is kept at zero afterwards (default: the usable frame nearest 0 deg).
    device : str

    Returns
    -------
    MatchResult
    """
    progress = progress or no_progress
    s = np.asarray(signal, dtype=np.float32)
    n, rows, cols = s.shape
    ok = np.ones(n, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    angles = np.asarray(angles_deg, dtype=np.float64).copy()
    shifts = np.asarray(shifts_px, dtype=np.float64).copy()
    start = angles.copy()
    ref = int(np.argmin(np.where(ok, np.abs(angles), np.inf))) if reference is None else int(reference)
    corr = np.full(n, np.nan)
    margin = max(2, int(0.05 * min(rows, cols)))
    idx = np.flatnonzero(ok)
    if timestamps_s is not None:
        times = np.asarray(timestamps_s, dtype=np.float64) + 0.5 * rows * (line_time_s or 0.0)
    else:
        times = np.arange(n, dtype=np.float64)
    for it in range(iterations):
        if cancel is not None:
            cancel.check()
        models, deriv = fold_models(
            s, angles, shifts, nz, usable=ok, timestamps_s=timestamps_s, line_time_s=line_time_s,
            folds=folds, sirt_iterations=sirt_iterations, angle_step_deg=0.25 if fit_angles else None,
            device=device, cancel=cancel,
        )
        steps = np.zeros((n, 3))
        var = np.full((n, 3), np.inf)
        for i in idx:
            steps[i], var[i], corr[i] = match_frame(s[i], models[i], None if deriv is None else deriv[i], margin)
        steps[:, 0] = np.clip(steps[:, 0], -max_step_deg, max_step_deg)
        steps[:, 1:] = np.clip(steps[:, 1:], -max_step_px, max_step_px)
        if fit_angles:
            ramp = 0.2 if timestamps_s is not None else 2.0
            tolerance = None if smooth_deg_s2 is None else ramp_tolerance(times[ok], smooth_deg_s2, ramp)
            angles = _update(angles, steps[:, 0], var[:, 0], ok, times[ok], tolerance, 0.5)
            # a common rotation is invisible: keep the first and last frames' mean angle
            angles -= 0.5 * (angles[idx[0]] + angles[idx[-1]]) - 0.5 * (start[idx[0]] + start[idx[-1]])
        for k in (0, 1):
            shifts[:, k] = _update(shifts[:, k], steps[:, k + 1], var[:, k + 1], ok, times[ok], smooth_px_s2, 1.0)
        shifts[ok] = remove_translation(shifts[ok], angles[ok], int(np.flatnonzero(idx == ref)[0]))
        progress((it + 1) / iterations, f"projection matching: round {it + 1}/{iterations}")
    return MatchResult(angles, shifts, corr, iterations)


def _update(current: np.ndarray, step: np.ndarray, var: np.ndarray, ok: np.ndarray, times: np.ndarray,
            acceleration: float | np.ndarray | None, prior: float) -> np.ndarray:
    """Current values moved by the steps: along a smooth curve in time, or each shrunk alone."""
    out = current.copy()
    if acceleration is None:
        out[ok] += _shrink(step[ok], var[ok], np.full(int(ok.sum()), prior))
        return out
    curve, _ = smooth_in_time(current[ok] + step[ok], var[ok], times, acceleration)
    out[ok] = curve
    return out
