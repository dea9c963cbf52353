"""Training areas: repeated rapid frames of many specimen areas at fixed stage tilts (paper Fig. 2a).

Each area is its own random dislocation field in a slab of its own thickness, with its own bend
contours, imaged ``frames_per_area`` times at one stage tilt with the rapid scan (same distortion
field and detector chain as the tomography series; the stage is still, so there is no time lag).
The specimen drifts slowly during the area's frames (a smooth random walk of up to
``area_drift_nm``, also within frames), so a drift-corrected average is a good but imperfect
reference, and every frame has independent noise.

Thickness plan: per stage tilt, ``matched_fraction`` of the areas lie within +-0.9
``matched_tolerance`` of the tomography specimen's thickness ("matched"); the others lie at least
``mismatch_min`` below or above it within ``training_thickness_nm`` (half below, half above), so
histogram-based curation has real work to do. At least one area per tilt is mismatched when there
are two or more areas, and at least two when there are three or more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..model import TiltSeries
from ..progress import CancelToken, ProgressFn, no_progress
from ..workers import map_ordered
from .bending import generate_bend_contours
from .config import SimulationConfig
from .contrast import render_frame
from .detector import DetectorChain
from .distortion import ScanDistortion, warp_to_rapid
from .motion import drift_path
from .projection import sample_lines
from .seeding import component_rng
from .series import BLUR_MARGIN_PX, rapid_chain
from .specimen import generate_specimen


@dataclass(frozen=True)
class AreaPlan:
    """Where and what a training area is: index, stage tilt (deg), thickness (nm), matched."""

    index: int
    stage_tilt_deg: float
    thickness_nm: float
    matched: bool


@dataclass(frozen=True, eq=False)
class TrainingArea:
    """One simulated training area.

    Attributes
    ----------
    plan : AreaPlan
    series : TiltSeries
        ``frames_per_area`` rapid frames in ADU, all at the stage tilt; metadata
        ``{"stage_tilt_deg", "area"}``.
    clean : ndarray, shape (rows, cols), float32
        The area's noise-free image in the rapid frames' geometry (distorted, with afterglow) at
        zero drift (the drift of the first frame's first row); expected ADU = ``adu_per_unit * clean``.
    drift_px : ndarray, shape (frames, 2)
        Image drift (dy, dx) of each frame at its mid-time, px.
    adu_per_unit : float
    """

    plan: AreaPlan
    series: TiltSeries
    clean: np.ndarray
    drift_px: np.ndarray
    adu_per_unit: float


def training_plan(config: SimulationConfig) -> list[AreaPlan]:
    """Stage tilt and thickness of every training area (deterministic for the seed).

    Areas are numbered tilt by tilt: ``areas_per_tilt`` areas at the first tilt, then the next.
    """
    rng = component_rng(config.seed, "training-plan")
    t0, tol = config.thickness_nm, config.matched_tolerance
    lo, hi = config.training_thickness_nm
    plans: list[AreaPlan] = []
    n = config.areas_per_tilt
    for k, tilt in enumerate(config.training_tilts_deg):
        n_match = round(config.matched_fraction * n)
        if n >= 3:
            n_match = min(n_match, n - 2)
        elif n == 2:
            n_match = min(n_match, 1)
        n_mis = n - n_match
        n_below = (n_mis + (k % 2)) // 2
        kinds = ["match"] * n_match + ["below"] * n_below + ["above"] * (n_mis - n_below)
        rng.shuffle(kinds)
        for kind in kinds:
            if kind == "match":
                t = t0 * rng.uniform(1 - 0.9 * tol, 1 + 0.9 * tol)
            elif kind == "below":
                t = rng.uniform(lo, min(t0 * (1 - config.mismatch_min), t0))
            else:
                t = rng.uniform(max(t0 * (1 + config.mismatch_min), t0), hi)
            plans.append(AreaPlan(len(plans), float(tilt), float(t), kind == "match"))
    return plans


def simulate_training_area(
    config: SimulationConfig,
    plan: AreaPlan,
    distortion: ScanDistortion,
    *,
    chain: DetectorChain | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> TrainingArea:
    """Simulate one training area's frames.

    Parameters
    ----------
    config : SimulationConfig
    plan : AreaPlan
    distortion : ScanDistortion
        The rapid scan's distortion field.
    chain : DetectorChain, optional
        The rapid detector chain (built from the config if not given).
    cancel, workers
        Cancel token and worker threads.

    Returns
    -------
    TrainingArea
    """
    chain = chain or rapid_chain(config)
    px, rows = config.pixel_size_nm, config.size
    rng = component_rng(config.seed, "training-area", plan.index)
    specimen = generate_specimen(
        rng,
        thickness_nm=plan.thickness_nm,
        field_nm=config.field_nm,
        n_dislocations=config.n_dislocations,
        max_tilt_deg=max(abs(plan.stage_tilt_deg), 1.0),
        step_nm=min(2.0, px / 3),
        visibility=config.contrast.visibility,
        wedge=config.contrast.wedge,
    )
    points = sample_lines(specimen, min(2.0, px / 3))
    bend = generate_bend_contours(
        component_rng(config.seed, "training-bend", plan.index), config.contrast, config.field_nm
    )

    k = config.frames_per_area
    starts = np.arange(k) * config.frame_interval_s
    t = np.linspace(0.0, starts[-1] + config.frame_time_s, max(64, 8 * k))
    drift_rng = component_rng(config.seed, "training-drift", plan.index)
    peak = config.area_drift_nm / px * drift_rng.uniform(0.5, 1.0)
    path = drift_path(drift_rng, t, peak_px=peak, correlation_s=1.0)
    canvas = distortion.canvas(extra_px=peak + 4 * config.scan.line_jitter_px + BLUR_MARGIN_PX)
    image = render_frame(
        specimen,
        points,
        bend,
        canvas,
        pixel_size_nm=px,
        row_angles_deg=plan.stage_tilt_deg,
        contrast=config.contrast,
    )
    clean = chain.expected(warp_to_rapid(image, canvas, distortion)[0])

    def one(j: int) -> np.ndarray:
        if cancel is not None:
            cancel.check()
        row_drift = path.at(starts[j] + np.arange(rows) * config.line_time_s)
        jitter = component_rng(config.seed, "training-jitter", plan.index, j).normal(
            0, config.scan.line_jitter_px, rows
        )
        sampled = warp_to_rapid(
            image,
            canvas,
            distortion,
            shift_rows_px=-row_drift[None, :, 0],
            shift_cols_px=(jitter - row_drift[:, 1])[None],
        )[0]
        return chain.record(sampled, component_rng(config.seed, "training-noise", plan.index, j))

    frames = np.empty((k, rows, rows), np.float32)
    for j, frame in enumerate(map_ordered(one, range(k), workers)):
        frames[j] = frame
    series = TiltSeries(
        frames=frames,
        angles_deg=np.full(k, plan.stage_tilt_deg),
        pixel_size_nm=px,
        timestamps_s=starts,
        line_time_s=config.line_time_s,
        metadata={"stage_tilt_deg": plan.stage_tilt_deg, "area": plan.index},
    )
    return TrainingArea(
        plan, series, clean, path.at(starts + config.frame_time_s / 2), chain.adu_per_unit
    )


def iter_training_areas(
    config: SimulationConfig,
    distortion: ScanDistortion,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> Iterator[TrainingArea]:
    """Simulate the training areas one after the other (only one area's frames in memory).

    Yields
    ------
    TrainingArea
        In plan order (area 0, 1, ...).
    """
    progress = progress or no_progress
    plans = training_plan(config)
    chain = rapid_chain(config)
    for i, plan in enumerate(plans):
        if cancel is not None:
            cancel.check()
        yield simulate_training_area(
            config, plan, distortion, chain=chain, cancel=cancel, workers=workers
        )
        progress(
            (i + 1) / max(len(plans), 1),
            f"training area {i + 1}/{len(plans)} (tilt {plan.stage_tilt_deg:g} deg)",
        )
