"""The calibration step on a project: distortion map from the grating pair, corrected rapid frames.

Inputs: ``/raw/grating-slow`` and ``/raw/grating-rapid`` (a stack is averaged), or a map file
(``load_map``) from an earlier calibration of the same scan settings. Outputs, in one transaction:

``/calibration/distortion_map`` (group)
    ``dx_px``, ``dy_px`` (rows, cols) float64 with ``rapid(r, c) = undistorted(r + dy, c + dx)``;
    the window table (``window_centres_px`` (n, 2) row/col, ``window_displacement_px`` (n, 2)
    dy/dx, ``window_std_px``, ``window_quality``, ``window_valid``, ``window_residual_px``);
    attrs ``pixel_size_nm``, ``kind = "distortion_map"``, ``definition``, ``model`` / ``quality`` /
    ``metadata`` (JSON) and the quality numbers (``residual_rms_px``, ``n_valid_windows`` ...),
    ``params`` (JSON) and ``source`` ("grating pair" or the map file).
``/processed/corrected``
    The rapid series resampled onto the undistorted grid (one resampling per frame), with the raw
    series' angles, timestamps, line time and metadata plus ``distortion_corrected: true``.

plus one ``/log`` entry. A map file is written after the project only when asked (``save_map``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import RstemError
from ..model import TiltSeries
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..project import Project
from .distortion_map import DistortionMap
from .estimate import estimate_distortion

MAP_KEY = "calibration/distortion_map"
CORRECTED_KEY = "processed/corrected"
GRATING_SLOW = "raw/grating-slow"
GRATING_RAPID = "raw/grating-rapid"
RAPID = "raw/rapid"
#: relative pixel-size difference above which a loaded map does not fit the project
PIXEL_TOLERANCE = 0.01


@dataclass(frozen=True)
class CalibrationParams:
    """Parameters of the calibration step.

    Attributes
    ----------
    window_px : int or None
        Edge of the square correlation windows in px; None: 1.5 grating periods (>= 16 px).
        Larger windows are less noisy but smooth the field more.
    step_px : int or None
        Distance between window origins in px; None: a quarter window.
    prefilter_sigma_px : float
        Gaussian smoothing of both images before matching, px (against shot noise).
    iterations : int
        Refinement passes (warp the slow image by the fit, re-measure, refit).
    min_window_quality : float
        Correlation coefficient (0..1) a window needs to count as valid.
    min_valid_fraction : float
        Reject the calibration when fewer windows than this share are valid.
    max_residual_px : float
        Reject the calibration when the windows deviate from the smooth fit by more (RMS, px).
    interpolation_order : int
        Spline order of the correction's resampling: 1 (linear) or 3 (cubic).
    load_map : str or None
        Use this map file (from ``save_map`` of an earlier calibration) instead of the gratings.
    save_map : str or None
        Also write the map to this standalone file (a calibration library entry).
    """

    window_px: int | None = None
    step_px: int | None = None
    prefilter_sigma_px: float = 0.5
    iterations: int = 5
    min_window_quality: float = 0.25
    min_valid_fraction: float = 0.5
    max_residual_px: float = 1.0
    interpolation_order: int = 3
    load_map: str | None = None
    save_map: str | None = None

    def __post_init__(self) -> None:
        if self.window_px is not None and self.window_px < 8:
            raise ValueError(f"window_px must be at least 8 px, got {self.window_px}")
        if self.step_px is not None and self.step_px < 1:
            raise ValueError(f"step_px must be at least 1 px, got {self.step_px}")
        if self.window_px is not None and self.step_px is not None and self.step_px > self.window_px:
            raise ValueError(f"step_px ({self.step_px}) must not exceed window_px ({self.window_px}): windows would leave gaps")
        if not 0 <= self.prefilter_sigma_px <= 5:
            raise ValueError(f"prefilter_sigma_px must be within 0..5 px, got {self.prefilter_sigma_px}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if not 0 <= self.min_window_quality < 1:
            raise ValueError(f"min_window_quality must be within [0, 1), got {self.min_window_quality}")
        if not 0 < self.min_valid_fraction <= 1:
            raise ValueError(f"min_valid_fraction must be within (0, 1], got {self.min_valid_fraction}")
        if self.max_residual_px <= 0:
            raise ValueError(f"max_residual_px must be positive, got {self.max_residual_px}")
        if self.interpolation_order not in (1, 3):
            raise ValueError(f"interpolation_order must be 1 or 3, got {self.interpolation_order}")


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """What :func:`run_calibration` stored.

    Attributes
    ----------
    distortion_map : DistortionMap
    corrected : TiltSeries or None
        The corrected rapid series (None when the project has no rapid series).
    notes : list of str
    """

    distortion_map: DistortionMap
    corrected: TiltSeries | None
    notes: list[str]


def run_calibration(
    project: Project,
    params: CalibrationParams | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> CalibrationResult:
    """Calibrate the rapid scan's distortion and correct the rapid series (one transaction).

    Raises
    ------
    RstemError
        Missing inputs, a map that does not fit the project's frames, or a rejected calibration
        (see :func:`~rstem_core.calib.estimate.estimate_distortion`); the project is unchanged.
    """
    params = params or CalibrationParams()
    progress = progress or no_progress
    started = time.perf_counter()
    notes: list[str] = []
    if params.save_map and not Path(params.save_map).absolute().parent.is_dir():
        raise RstemError(f"{Path(params.save_map).parent}: no such folder for the distortion map file")
    rapid = project.read_series(RAPID) if RAPID in project else None
    if params.load_map:
        dmap = DistortionMap.load(params.load_map)
        source = str(Path(params.load_map).absolute())
        _check_map_fits(dmap, project, rapid)
        notes.append(f"map loaded from {Path(params.load_map).name}")
    else:
        for key, role in ((GRATING_SLOW, "grating-slow"), (GRATING_RAPID, "grating-rapid")):
            if key not in project:
                raise RstemError(
                    f"{project.path.name} has no {role} image: import it with `rstem import PROJECT {role} FILE`, "
                    "or load a saved map with --load-map"
                )
        slow_series = project.read_series(GRATING_SLOW)
        rapid_series = project.read_series(GRATING_RAPID)
        _check_pixel_sizes(slow_series.pixel_size_nm, rapid_series.pixel_size_nm, "slow grating", "rapid grating")
        dmap = estimate_distortion(
            slow_series.frames, rapid_series.frames,
            window_px=params.window_px, step_px=params.step_px,
            prefilter_sigma_px=params.prefilter_sigma_px, iterations=params.iterations,
            min_window_quality=params.min_window_quality, min_valid_fraction=params.min_valid_fraction,
            max_residual_px=params.max_residual_px, pixel_size_nm=rapid_series.pixel_size_nm,
            progress=sub_progress(progress, 0.0, 0.6), cancel=cancel,
        )
        meta = rapid_series.metadata
        scan = {k: meta[k] for k in ("dwell_time_s", "line_time_s", "frame_time_s") if k in meta}
        dmap = replace(dmap, metadata={**dmap.metadata, **scan})
        source = "grating pair"
        if rapid is not None:
            _check_map_fits(dmap, project, rapid)
    corrected = None
    if rapid is None:
        notes.append("no rapid series to correct yet: import one and run calibrate again (or with --load-map)")
    else:
        frames = dmap.correct(
            rapid.frames, order=params.interpolation_order,
            progress=sub_progress(progress, 0.6, 0.95), cancel=cancel,
        )
        corrected = TiltSeries(
            frames, rapid.angles_deg, rapid.pixel_size_nm,
            measured_angles_deg=rapid.measured_angles_deg, timestamps_s=rapid.timestamps_s,
            line_time_s=rapid.line_time_s, tilt_axis_deg=rapid.tilt_axis_deg,
            metadata={**rapid.metadata, "distortion_corrected": True, "interpolation_order": params.interpolation_order},
        )
    if cancel is not None:
        cancel.check()
    duration = time.perf_counter() - started
    outputs = [MAP_KEY] + ([CORRECTED_KEY] if corrected is not None else [])
    with project.edit() as w:
        w.delete(MAP_KEY)
        dmap.write_group(w.require_group(MAP_KEY))
        w.set_attrs(MAP_KEY, {"source": source})
        w.set_params(MAP_KEY, asdict(params))
        if corrected is not None:
            w.write_series(CORRECTED_KEY, corrected)
            w.set_params(CORRECTED_KEY, asdict(params))
        w.append_log({"step": "calibrate", "params": asdict(params), "outputs": outputs,
                      "duration_s": round(duration, 3), "quality": dmap.quality, "notes": notes})
    if params.save_map:
        dmap.save(params.save_map)
        notes.append(f"map saved to {params.save_map}")
    progress(1.0, "calibration stored")
    return CalibrationResult(dmap, corrected, notes)


def _check_pixel_sizes(a: float | None, b: float | None, name_a: str, name_b: str) -> None:
    if a and b and abs(a - b) > PIXEL_TOLERANCE * max(a, b):
        raise RstemError(
            f"the {name_a} has {a:.4g} nm pixels but the {name_b} {b:.4g} nm: the distortion depends on the "
            "magnification; use images taken at the same magnification"
        )


def _check_map_fits(dmap: DistortionMap, project: Project, rapid: TiltSeries | None) -> None:
    if rapid is None:
        return
    if dmap.shape != rapid.frames.shape[1:]:
        raise RstemError(
            f"the distortion map is {dmap.shape[0]}x{dmap.shape[1]} px but the rapid frames of "
            f"{project.path.name} are {rapid.frames.shape[1]}x{rapid.frames.shape[2]} px: calibrate with the same frame size"
        )
    _check_pixel_sizes(dmap.pixel_size_nm, rapid.pixel_size_nm, "distortion map", "rapid series")
