"""The two tomography tilt series: rapid (continuous tilt, 30 ms frames) and slow (stop-and-go).

Rapid series (paper: "Rapid tilt-series acquisition")
    Frame i starts at ``t_i = i * frame_interval``; row r is scanned at ``t_i + r * line_time``
    (``line_time = frame_time / rows``) at the goniometer's true angle and drift of that moment, so a
    frame sweeps ~0.86 deg (time lag). The clean frame is rendered undistorted on a canvas, then
    sampled on the rapid scan's distorted grid (plus per-row line jitter) and recorded through the
    low-dose detector chain. The microscope reports the nominal (linear) angles only.
Slow series
    Exact angles, specimen still during each 1.6 s frame (no lag), small drift between frames, no
    scan distortion, 53x the dose per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import TiltSeries
from ..progress import CancelToken, ProgressFn, no_progress
from ..workers import map_ordered
from .bending import BendContours
from .config import SimulationConfig
from .contrast import render_frame
from .detector import DetectorChain
from .distortion import ScanDistortion, warp_to_rapid
from .motion import AngleCurve, DriftPath, drift_path, goniometer_curve
from .projection import Canvas, LinePoints
from .seeding import component_rng
from .specimen import Specimen

#: canvas margin for the blur of lines just outside the frame, px
BLUR_MARGIN_PX = 8


@dataclass(frozen=True, eq=False)
class RapidTruth:
    """What really happened during the rapid series (all arrays float64 unless noted).

    Attributes
    ----------
    angles_deg : (n,) true angle at each frame's mid-time (row rows/2), deg.
    nominal_angles_deg : (n,) reported angles, deg.
    row_times_s : (n, rows) time each row was scanned, s from the first frame start.
    row_angles_deg : (n, rows) true angle of each row, deg.
    drift_px : (n, 2) image drift (dy, dx) at the frame mid-time, px.
    row_drift_px : (n, rows, 2) drift of each row, px.
    line_jitter_px : (n, rows) random x jitter of each row, px (added to the distortion).
    clean : (n, rows, cols) float32 expected frames / ``adu_per_unit`` (distorted, lagged, afterglow).
    clean_undistorted : (n, rows, cols) float32 clean intensity before distortion and afterglow.
    curve : AngleCurve, the angle against time.
    drift : DriftPath, the drift against time.
    adu_per_unit : float, ADU of clean intensity 1.
    """

    angles_deg: np.ndarray
    nominal_angles_deg: np.ndarray
    row_times_s: np.ndarray
    row_angles_deg: np.ndarray
    drift_px: np.ndarray
    row_drift_px: np.ndarray
    line_jitter_px: np.ndarray
    clean: np.ndarray
    clean_undistorted: np.ndarray
    curve: AngleCurve
    drift: DriftPath
    adu_per_unit: float


@dataclass(frozen=True, eq=False)
class SlowTruth:
    """The slow series' true geometry: angles (n,) deg, drift (n, 2) px, clean (n, rows, cols)."""

    angles_deg: np.ndarray
    drift_px: np.ndarray
    clean: np.ndarray
    adu_per_unit: float


def rapid_chain(config: SimulationConfig) -> DetectorChain:
    """The detector chain of a rapid frame."""
    return DetectorChain(
        dose_e_per_px=config.dose_e_per_px,
        gain_adu_per_e=config.detector.rapid_gain_adu_per_e,
        detector=config.detector,
        line_time_s=config.line_time_s,
        flyback=config.scan.flyback,
    )


def slow_chain(config: SimulationConfig, frame_time_s: float | None = None) -> DetectorChain:
    """The detector chain of a slow frame (dose and dwell larger by the frame-time ratio)."""
    ratio = config.slow_dwell_ratio if frame_time_s is None else frame_time_s / config.frame_time_s
    return DetectorChain(
        dose_e_per_px=config.dose_e_per_px * ratio,
        gain_adu_per_e=config.detector.slow_gain_adu_per_e,
        detector=config.detector,
        line_time_s=config.line_time_s * ratio,
        dwell_ratio=ratio,
        flyback=config.scan.flyback,
    )


def rapid_motion(config: SimulationConfig) -> tuple[AngleCurve, DriftPath]:
    """The goniometer curve and the drift path of the rapid series."""
    curve = goniometer_curve(
        component_rng(config.seed, "goniometer"),
        n_frames=config.n_frames,
        frame_interval_s=config.frame_interval_s,
        frame_time_s=config.frame_time_s,
        tilt_start_deg=config.tilt_start_deg,
        tilt_end_deg=config.tilt_end_deg,
        angle_error_deg=config.angle_error_deg,
    )
    rng = component_rng(config.seed, "rapid-drift")
    peak = config.drift_nm / config.pixel_size_nm * rng.uniform(0.6, 1.0)
    h = rng.uniform(-1, 1) * config.eucentric_error_nm / config.pixel_size_nm
    t = curve.times_s[::4]
    drift = drift_path(
        rng, t, peak_px=peak, correlation_s=0.8, eucentric_px=h, angles_deg=curve.angle_at(t)
    )
    return curve, drift


def simulate_rapid_series(
    config: SimulationConfig,
    specimen: Specimen,
    points: LinePoints,
    bend: BendContours | None,
    distortion: ScanDistortion,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> tuple[TiltSeries, RapidTruth]:
    """Simulate the rapid, continuously tilted tilt series.

    Parameters
    ----------
    config : SimulationConfig
    specimen, points, bend
        The specimen, its sampled lines and its bend contours.
    distortion : ScanDistortion
        The rapid scan's distortion field.
    progress, cancel, workers
        Progress callback, cancel token, worker threads.

    Returns
    -------
    series : TiltSeries
        Frames in ADU (integers), nominal angles, frame start times, line time and the
        acquisition metadata.
    truth : RapidTruth
    """
    progress = progress or no_progress
    n, rows, cols = config.n_frames, config.size, config.size
    curve, drift = rapid_motion(config)
    chain = rapid_chain(config)
    canvas = distortion.canvas(extra_px=4 * config.scan.line_jitter_px + BLUR_MARGIN_PX)
    starts = config.frame_start_times_s()
    line_time = config.line_time_s

    def one(i: int) -> tuple[np.ndarray, ...]:
        if cancel is not None:
            cancel.check()
        t_rows = starts[i] + canvas.frame_rows() * line_time
        image = render_frame(
            specimen,
            points,
            bend,
            canvas,
            pixel_size_nm=config.pixel_size_nm,
            row_angles_deg=curve.angle_at(t_rows),
            row_drift_px=drift.at(t_rows),
            contrast=config.contrast,
        )
        jitter = component_rng(config.seed, "rapid-jitter", i).normal(
            0, config.scan.line_jitter_px, rows
        )
        sampled = warp_to_rapid(image, canvas, distortion, shift_cols_px=jitter[None])[0]
        frame = chain.record(sampled, component_rng(config.seed, "rapid-noise", i))
        return frame, chain.expected(sampled), canvas.crop(image), jitter

    frames = np.empty((n, rows, cols), np.float32)
    clean = np.empty_like(frames)
    undistorted = np.empty_like(frames)
    jitter = np.empty((n, rows))
    for i, (f, c, u, j) in enumerate(map_ordered(one, range(n), workers)):
        frames[i], clean[i], undistorted[i], jitter[i] = f, c, u, j
        progress((i + 1) / n, f"rapid frame {i + 1}/{n}")

    row_times = starts[:, None] + np.arange(rows)[None, :] * line_time
    mids = starts + config.frame_time_s / 2
    nominal = config.nominal_angles_deg()
    truth = RapidTruth(
        angles_deg=curve.angle_at(mids),
        nominal_angles_deg=nominal,
        row_times_s=row_times,
        row_angles_deg=curve.angle_at(row_times),
        drift_px=drift.at(mids),
        row_drift_px=drift.at(row_times),
        line_jitter_px=jitter,
        clean=clean,
        clean_undistorted=undistorted,
        curve=curve,
        drift=drift,
        adu_per_unit=chain.adu_per_unit,
    )
    meta = {**config.acquisition_metadata(), "source": "synthetic", "seed": config.seed}
    series = TiltSeries(
        frames=frames,
        angles_deg=nominal,
        pixel_size_nm=config.pixel_size_nm,
        timestamps_s=starts,
        line_time_s=line_time,
        metadata=meta,
    )
    return series, truth


def simulate_slow_series(
    config: SimulationConfig,
    specimen: Specimen,
    points: LinePoints,
    bend: BendContours | None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> tuple[TiltSeries, SlowTruth]:
    """Simulate the conventional stop-and-go slow series (reference).

    Returns
    -------
    series : TiltSeries
        Frames in ADU, exact angles, frame start times, slow line time.
    truth : SlowTruth
    """
    progress = progress or no_progress
    n, rows, cols = config.n_frames, config.size, config.size
    angles = config.slow_angles_deg()
    chain = slow_chain(config)
    canvas = Canvas(rows, cols, BLUR_MARGIN_PX, BLUR_MARGIN_PX)
    period = config.slow_frame_time_s + config.slow_step_time_s
    starts = np.arange(n) * period
    rng = component_rng(config.seed, "slow-drift")
    peak = config.slow_drift_nm / config.pixel_size_nm * rng.uniform(0.6, 1.0)
    h = rng.uniform(-1, 1) * config.eucentric_error_nm / config.pixel_size_nm
    path = drift_path(
        rng, starts, peak_px=peak, correlation_s=3 * period, eucentric_px=h, angles_deg=angles
    )
    drift = path.drift_px

    def one(i: int) -> tuple[np.ndarray, np.ndarray]:
        if cancel is not None:
            cancel.check()
        image = render_frame(
            specimen,
            points,
            bend,
            canvas,
            pixel_size_nm=config.pixel_size_nm,
            row_angles_deg=float(angles[i]),
            row_drift_px=drift[i],
            contrast=config.contrast,
        )
        frame = canvas.crop(image)
        return chain.record(frame, component_rng(config.seed, "slow-noise", i)), chain.expected(
            frame
        )

    frames = np.empty((n, rows, cols), np.float32)
    clean = np.empty_like(frames)
    for i, (f, c) in enumerate(map_ordered(one, range(n), workers)):
        frames[i], clean[i] = f, c
        progress((i + 1) / n, f"slow frame {i + 1}/{n}")
    meta = {
        "source": "synthetic",
        "seed": config.seed,
        "pixel_size_nm": config.pixel_size_nm,
        "frame_time_s": config.slow_frame_time_s,
        "line_time_s": config.slow_frame_time_s / rows,
        "dwell_time_s": config.slow_frame_time_s / (rows * cols),
        "fast_scan_axis": "x",
        "acquisition": "stop-and-go",
    }
    series = TiltSeries(
        frames=frames,
        angles_deg=angles,
        pixel_size_nm=config.pixel_size_nm,
        timestamps_s=starts,
        line_time_s=config.slow_frame_time_s / rows,
        metadata=meta,
    )
    return series, SlowTruth(angles, drift, clean, chain.adu_per_unit)
