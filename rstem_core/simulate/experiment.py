"""The whole synthetic experiment in memory: specimen, truth volume, both series, grating pair.

Training areas are produced lazily (:meth:`Experiment.training_areas`) because the full default set
(8750 frames of 512 x 512) does not belong in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..model import TiltSeries
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from .bending import BendContours, generate_bend_contours
from .config import SimulationConfig
from .density import render_density
from .distortion import ScanDistortion, generate_scan_distortion, warp_to_rapid
from .grating import Grating, generate_grating, render_grating
from .projection import LinePoints, sample_lines
from .seeding import component_rng
from .series import (
    RapidTruth,
    SlowTruth,
    rapid_chain,
    simulate_rapid_series,
    simulate_slow_series,
    slow_chain,
)
from .specimen import Specimen, generate_specimen
from .training import TrainingArea, iter_training_areas


@dataclass(frozen=True, eq=False)
class GratingTruth:
    """The calibration pair's truth: the grating, its clean slow and rapid images (intensity units)."""

    grating: Grating
    clean: np.ndarray
    rapid_clean: np.ndarray
    slow_adu_per_unit: float
    rapid_adu_per_unit: float


@dataclass(frozen=True, eq=False)
class Experiment:
    """One simulated experiment (see :func:`simulate_experiment`)."""

    config: SimulationConfig
    specimen: Specimen
    points: LinePoints
    bend: BendContours
    density: np.ndarray
    distortion: ScanDistortion
    rapid: TiltSeries
    rapid_truth: RapidTruth
    slow: TiltSeries
    slow_truth: SlowTruth
    grating_slow: TiltSeries
    grating_rapid: TiltSeries
    grating_truth: GratingTruth

    def training_areas(
        self,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        workers: int | None = None,
    ) -> Iterator[TrainingArea]:
        """Simulate the training areas one by one (see :mod:`.training`)."""
        return iter_training_areas(
            self.config, self.distortion, progress=progress, cancel=cancel, workers=workers
        )

    def lines_in_volume(self) -> list[bool]:
        """For each dislocation: whether it passes through the truth volume."""
        return self.specimen.in_box(self.config.nz * self.config.pixel_size_nm / 2)


def simulate_grating_pair(
    config: SimulationConfig, distortion: ScanDistortion
) -> tuple[TiltSeries, TiltSeries, GratingTruth]:
    """The cross-grating imaged with the slow scan and with the rapid scan, at 0 deg.

    Returns
    -------
    slow, rapid : TiltSeries
        One frame each, ADU.
    truth : GratingTruth
    """
    rows = config.size
    canvas = distortion.canvas(extra_px=4 * config.scan.line_jitter_px + 2)
    margin_nm = (max(canvas.margin_rows, canvas.margin_cols) + 4) * config.pixel_size_nm
    grating = generate_grating(
        component_rng(config.seed, "grating"), config.field_nm, config.grating_periods, margin_nm
    )
    image = render_grating(grating, canvas, config.pixel_size_nm)
    grating_time = 2 * config.slow_frame_time_s
    slow = slow_chain(config, grating_time)
    rapid = rapid_chain(config)
    clean_slow = slow.expected(canvas.crop(image)[None])[0]
    jitter = component_rng(config.seed, "grating-jitter").normal(
        0, config.scan.line_jitter_px, rows
    )
    sampled = warp_to_rapid(image, canvas, distortion, shift_cols_px=jitter[None])[0]
    frame_slow = slow.record(canvas.crop(image), component_rng(config.seed, "grating-slow-noise"))
    frame_rapid = rapid.record(sampled, component_rng(config.seed, "grating-rapid-noise"))
    meta = {
        "source": "synthetic",
        "seed": config.seed,
        "specimen": "cross-grating replica with gold particles",
        "grating_period_nm": grating.period_nm,
    }
    slow_series = TiltSeries(
        frames=frame_slow[None],
        angles_deg=[0.0],
        pixel_size_nm=config.pixel_size_nm,
        line_time_s=grating_time / rows,
        metadata={**meta, "frame_time_s": grating_time, "fast_scan_axis": "x"},
    )
    rapid_series = TiltSeries(
        frames=frame_rapid[None],
        angles_deg=[0.0],
        pixel_size_nm=config.pixel_size_nm,
        line_time_s=config.line_time_s,
        metadata={**meta, **config.acquisition_metadata()},
    )
    truth = GratingTruth(
        grating, clean_slow, rapid.expected(sampled), slow.adu_per_unit, rapid.adu_per_unit
    )
    return slow_series, rapid_series, truth


def simulate_experiment(
    config: SimulationConfig,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> Experiment:
    """Simulate everything but the training areas.

    Parameters
    ----------
    config : SimulationConfig
    progress : callable, optional
        ``progress(fraction, message)``.
    cancel : CancelToken, optional
        Checked before every frame.
    workers : int, optional
        Threads for per-frame work (results do not depend on it).

    Returns
    -------
    Experiment

    Examples
    --------
    >>> exp = simulate_experiment(SimulationConfig.scaled(size=64, frames=5))   # doctest: +SKIP
    >>> exp.rapid.frames.shape                                                     # doctest: +SKIP
    (5, 64, 64)
    """
    progress = progress or no_progress
    px = config.pixel_size_nm
    progress(0.0, "specimen")
    specimen = generate_specimen(
        component_rng(config.seed, "specimen"),
        thickness_nm=config.thickness_nm,
        field_nm=config.field_nm,
        n_dislocations=config.n_dislocations,
        max_tilt_deg=max(abs(config.tilt_start_deg), abs(config.tilt_end_deg)),
        step_nm=min(2.0, px / 2),
        visibility=config.contrast.visibility,
        wedge=config.contrast.wedge,
    )
    points = sample_lines(specimen, min(2.0, px / 3))
    bend = generate_bend_contours(
        component_rng(config.seed, "bend"), config.contrast, config.field_nm
    )
    distortion = generate_scan_distortion(
        component_rng(config.seed, "distortion"), config.size, config.size, config.scan
    )
    if cancel is not None:
        cancel.check()
    progress(0.02, "truth volume")
    density = render_density(points, config.volume_shape, px, config.contrast.line_fwhm_nm)
    rapid, rapid_truth = simulate_rapid_series(
        config,
        specimen,
        points,
        bend,
        distortion,
        progress=sub_progress(progress, 0.05, 0.55),
        cancel=cancel,
        workers=workers,
    )
    slow, slow_truth = simulate_slow_series(
        config,
        specimen,
        points,
        bend,
        progress=sub_progress(progress, 0.55, 0.95),
        cancel=cancel,
        workers=workers,
    )
    if cancel is not None:
        cancel.check()
    progress(0.95, "calibration grating")
    grating_slow, grating_rapid, grating_truth = simulate_grating_pair(config, distortion)
    progress(1.0, "experiment simulated")
    return Experiment(
        config,
        specimen,
        points,
        bend,
        density,
        distortion,
        rapid,
        rapid_truth,
        slow,
        slow_truth,
        grating_slow,
        grating_rapid,
        grating_truth,
    )
