"""Goniometer motion during the continuous tilt, and specimen drift.

Times are seconds from the start of the first rapid frame. The microscope reports *nominal* angles,
linear in time: frame i gets ``tilt_start + i * (tilt_end - tilt_start) / (n - 1)``, which is the
line ``nominal(t) = tilt_start + rate * (t - frame_time / 2)`` at the frame mid-times. The *true*
angle follows the goniometer: it accelerates at the start, decelerates at the end, runs slightly
faster in between and wobbles (a few % speed ripple at 0.4-3 Hz, a slow speed trend); the deviation
``true - nominal`` is scaled so that its largest value over the frame mid-times is a drawn number
in ``angle_error_deg`` (1.1-1.6 deg by default), never reached by rescaling to a non-monotone curve.

Drift is the image displacement (dy, dx) in pixels of the specimen content: a feature expected at
(row, col) is seen at (row + dy, col + dx). It is a smooth random walk plus, while tilting, the
shift ``-h sin(theta)`` of a specimen centre lying ``h`` above the tilt axis (eucentric error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_DT = 0.0005  # s, grid of the angle curve


@dataclass(frozen=True, eq=False)
class AngleCurve:
    """True tilt angle against time, sampled finely; linear interpolation between samples.

    Attributes
    ----------
    times_s : ndarray, shape (m,)
    angles_deg : ndarray, shape (m,)
    """

    times_s: np.ndarray
    angles_deg: np.ndarray

    def angle_at(self, t_s: np.ndarray | float) -> np.ndarray:
        """True angle (deg) at times ``t_s`` (s), any shape."""
        return np.interp(t_s, self.times_s, self.angles_deg)


@dataclass(frozen=True, eq=False)
class DriftPath:
    """Image drift (dy, dx) in px against time.

    Attributes
    ----------
    times_s : ndarray, shape (m,)
    drift_px : ndarray, shape (m, 2)
    """

    times_s: np.ndarray
    drift_px: np.ndarray

    def at(self, t_s: np.ndarray | float) -> np.ndarray:
        """Drift at times ``t_s``: shape ``t_s.shape + (2,)``, (dy, dx) px."""
        t = np.asarray(t_s, np.float64)
        return np.stack(
            [np.interp(t, self.times_s, self.drift_px[:, k]) for k in range(2)], axis=-1
        )


def goniometer_curve(
    rng: np.random.Generator,
    *,
    n_frames: int,
    frame_interval_s: float,
    frame_time_s: float,
    tilt_start_deg: float,
    tilt_end_deg: float,
    angle_error_deg: tuple[float, float] = (1.1, 1.6),
) -> AngleCurve:
    """A realistic angle-vs-time curve of the continuously turning goniometer.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_frames : int
        Rapid frames in the series.
    frame_interval_s, frame_time_s : float
        Frame start-to-start time and scan time.
    tilt_start_deg, tilt_end_deg : float
        Nominal range.
    angle_error_deg : tuple of float
        Range of the largest |true - nominal| over the frame mid-times.

    Returns
    -------
    AngleCurve
        Sampled every 0.5 ms from 0.2 s before the first frame to 0.2 s after the last.
    """
    t_first = frame_time_s / 2
    t_last = (n_frames - 1) * frame_interval_s + frame_time_s / 2
    rate = (tilt_end_deg - tilt_start_deg) / max(t_last - t_first, 1e-9)
    t = np.arange(-0.2, t_last + frame_time_s / 2 + 0.2 + _DT, _DT)
    duration = max(t_last - t_first, 1e-3)

    t_on = -rng.uniform(0.01, 0.05)
    t_off = t_last + rng.uniform(0.02, 0.06)
    tau_a, tau_d = rng.uniform(0.08, 0.2, 2) * min(1.0, duration / 4.9)
    speed = np.clip(1 - np.exp(-(t - t_on) / tau_a), 0, None) * np.clip(
        1 - np.exp(-(t_off - t) / tau_d), 0, None
    )
    ripple = sum(
        rng.uniform(0.02, 0.05)
        * np.sin(2 * np.pi * rng.uniform(0.4, 3.0) * t + rng.uniform(0, 2 * np.pi))
        for _ in range(3)
    )
    trend = rng.uniform(-0.04, 0.04) * (t / duration - 0.5)
    speed = speed * (1 + ripple + trend)
    raw = np.cumsum(speed) * _DT
    # map the raw path onto the range, then scale its deviation from the nominal line
    r0, r1 = np.interp([t_first, t_last], t, raw)
    end_err = rng.uniform(-0.3, 0.3, 2)
    a0, a1 = tilt_start_deg + end_err[0], tilt_end_deg + end_err[1]
    true = a0 + (raw - r0) * (a1 - a0) / (r1 - r0)
    nominal = tilt_start_deg + rate * (t - t_first)
    deviation = true - nominal
    mids = np.arange(n_frames) * frame_interval_s + frame_time_s / 2
    peak = float(np.max(np.abs(np.interp(mids, t, deviation))))
    target = rng.uniform(*angle_error_deg)
    scale = target / max(peak, 1e-9)
    # never let the rescaled curve run backwards
    during = (t >= 0) & (t <= t_last + frame_time_s / 2)
    slope_true = np.gradient(true, t)[during]
    worst = np.min(rate + scale * (slope_true - rate))
    if worst < 0.05 * rate:
        scale = min(scale, 1.0)
    return AngleCurve(t, nominal + scale * deviation)


def random_walk(
    rng: np.random.Generator, times_s: np.ndarray, peak: float, correlation_s: float
) -> np.ndarray:
    """A smooth 2-D random walk sampled at ``times_s``, starting at 0.

    Parameters
    ----------
    rng : numpy.random.Generator
    times_s : ndarray, shape (m,)
        Increasing sample times.
    peak : float
        Largest displacement reached (any unit); the walk is scaled to it.
    correlation_s : float
        Smoothing time of the velocity.

    Returns
    -------
    ndarray, shape (m, 2)
    """
    m = len(times_s)
    if m < 2 or peak == 0:
        return np.zeros((m, 2))
    dt = np.diff(times_s, prepend=times_s[0])
    steps = rng.normal(0, 1, (m, 2)) * np.sqrt(np.maximum(dt, 0))[:, None]
    sigma = correlation_s / max(np.median(np.diff(times_s)), 1e-12)
    if sigma > 0.3:
        steps = ndimage.gaussian_filter1d(steps, sigma, axis=0, mode="nearest")
    walk = np.cumsum(steps, axis=0)
    walk -= walk[0]
    reach = float(np.max(np.linalg.norm(walk, axis=1)))
    return walk * (peak / reach) if reach > 0 else walk


def drift_path(
    rng: np.random.Generator,
    times_s: np.ndarray,
    *,
    peak_px: float,
    correlation_s: float,
    eucentric_px: float = 0.0,
    angles_deg: np.ndarray | None = None,
) -> DriftPath:
    """Random drift plus the eucentric-height shift ``-h sin(theta)`` along y.

    Parameters
    ----------
    rng : numpy.random.Generator
    times_s : ndarray, shape (m,)
        Sample times.
    peak_px : float
        Largest random drift, px.
    correlation_s : float
        Smoothing time of the random drift.
    eucentric_px : float
        Height ``h`` of the specimen centre above the tilt axis in px (signed).
    angles_deg : ndarray, shape (m,), optional
        True angle at each sample time (needed when ``eucentric_px`` != 0).
    """
    walk = random_walk(rng, times_s, peak_px, correlation_s)
    if eucentric_px and angles_deg is not None:
        walk[:, 0] += -eucentric_px * np.sin(np.radians(angles_deg))
    return DriftPath(np.asarray(times_s, np.float64), walk)
