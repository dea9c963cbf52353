"""Write a complete synthetic project: raw data as a microscope would give it, plus the truth.

Project layout (one transaction; other steps and outside checks rely on it)
---------------------------------------------------------------------------
Raw data (tilt-series groups, see docs/project-file.md; frames stored as uint16 ADU, gzip level 1):

``/raw/rapid``
    ``n_frames`` rapid frames; ``angles_deg`` = nominal (linear) angles, ``timestamps_s`` = frame
    start times, ``line_time_s``; metadata = the acquisition dict (pixel_size_nm, dwell_time_s,
    line_time_s, frame_time_s, frame_interval_s, tilt_start_deg, tilt_end_deg,
    nominal_tilt_rate_deg_s, fast_scan_axis) plus ``source = "synthetic"`` and ``seed``.
``/raw/slow``
    Stop-and-go slow series at the exact angles.
``/raw/grating-rapid``, ``/raw/grating-slow``
    One frame each of the cross-grating replica at 0 deg.
``/raw/training/area_NNN``
    ``frames_per_area`` rapid frames of one area, all angles = the stage tilt; metadata
    ``{"stage_tilt_deg", "area"}``. Areas are numbered tilt by tilt.

Truth (``/truth``; lengths nm, angles deg, times s, image positions px)

attrs
    thickness_nm, pixel_size_nm, voxel_size_nm, field_nm, seed, config (JSON), params,
    rapid_adu_per_unit / slow_adu_per_unit / grating_*_adu_per_unit (expected ADU of clean
    intensity 1: ``frame ~ adu_per_unit * clean``), rapid_noise_variance_factor (shot-noise ADU
    variance per ADU of mean), afterglow_delay_px, matched_tolerance, distortion_definition,
    drift_definition, crystal_rotation_deg, wedge.
``lines``
    JSON list of polylines ``[[x, y, z], ...]`` (nm, origin at the volume centre, x = tilt axis) of
    every dislocation passing through the truth volume; ``line_info`` (JSON, same order): slip-plane
    normal, visibility, image side, pile-up index, anchored inside.
``surrounding_lines``
    JSON polylines of the dislocations outside the volume that tilted views still see.
``density``
    (z, y, x) float32 on the reconstruction grid (voxel = pixel size, ``nz`` covers the slab plus
    10 % margins), ~1 on a line axis, Gaussian tubes of 12 nm FWHM; attr voxel_size_nm.
``rapid_angles_deg`` (n,)
    True angle at each frame's mid-time. ``rapid_nominal_angles_deg`` (n,): the reported ones.
``rapid_row_angles_deg``, ``rapid_row_times_s`` (n, rows)
    True angle and scan time of every row (row r of frame i at ``t_i + r * line_time_s``).
``rapid_angle_curve`` (m, 2)
    The goniometer's angle against time: columns time_s, angle_deg (0.5 ms steps).
``rapid_drift_px`` (n, 2), ``rapid_row_drift_px`` (n, rows, 2)
    Image drift (dy, dx) px at the frame mid-time / of each row (random drift + eucentric shift).
``rapid_line_jitter_px`` (n, rows)
    Random x jitter of each row (px, adds to distortion_x_px for that frame).
``rapid_clean`` (n, rows, cols) float32
    Noise-free rapid frames in the raw frames' geometry (distorted, time-lagged, drifted, with
    afterglow), intensity units: ``raw ~ rapid_adu_per_unit * rapid_clean``.
``rapid_clean_undistorted`` (n, rows, cols) float32
    The same scene before the scan distortion, jitter and afterglow (slow-scan geometry).
``slow_angles_deg`` (n,), ``slow_drift_px`` (n, 2), ``slow_clean`` (n, rows, cols) float32
    The slow series' exact angles, drift and noise-free frames.
``distortion_x_px``, ``distortion_y_px`` (rows, cols)
    The rapid scan's distortion: ``rapid(r, c) = undistorted(r + dy[r, c], c + dx[r, c])``.
``afterglow_kernel`` (m,)
    The rapid detector's causal response along +x (``y[c] = sum_m h[m] x[c - m]``); its centroid
    ``afterglow_delay_px`` (~1 px) delays image features, so an image-based calibration measures
    about ``distortion_x_px - afterglow_delay_px`` (less for sharp features).
``grating_clean``, ``grating_rapid_clean`` (rows, cols)
    Noise-free slow (undistorted) and rapid (distorted) grating images; ``grating`` JSON: period_nm,
    angle_deg, duty, n_particles.
``training/thickness_nm``, ``training/stage_tilt_deg`` (areas,), ``training/matched`` (areas,) uint8
    Summary of all areas (matched = within ``matched_tolerance`` of the specimen thickness).
``training/area_NNN/clean`` (rows, cols) float32, ``thickness_nm`` (scalar), ``drift_px`` (frames, 2)
    Each area's noise-free image in its frames' geometry at zero drift, its thickness and the drift
    of each frame; attrs stage_tilt_deg, thickness_nm, matched, adu_per_unit.

``/log/entries`` gets ``{"step": "demo", "params": config, "duration_s": ...}``.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

import numpy as np

from ..errors import ProjectError, ProjectLockedError
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..project import Project
from .config import SimulationConfig
from .experiment import Experiment, simulate_experiment
from .training import AreaPlan, simulate_training_area
from .truth import write_training_truth, write_truth

#: stored type of raw frames (integer ADU)
RAW_DTYPE = "uint16"
#: gzip level 1 for the raw frames (h5py reads an integer as the gzip level): 40 % of the raw size
#: at ~100 MB/s, against 55 % for lzf; the full default project stays near 2.3 GB
RAW_COMPRESSION = 1


def write_demo_project(
    path: str | os.PathLike,
    config: SimulationConfig,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    previews_dir: str | os.PathLike | None = None,
    overwrite: bool = True,
    workers: int | None = None,
) -> Path:
    """Simulate the experiment and write it as a new project.

    Everything is written into a hidden temporary project beside ``path`` in one transaction and
    renamed over ``path`` at the end: a cancel or an error leaves no new file and an existing
    ``path`` unchanged. Training areas are streamed into the file one by one.

    Parameters
    ----------
    path : path-like
        Project file to create.
    config : SimulationConfig
        The experiment (see :meth:`SimulationConfig.scaled`).
    progress : callable, optional
        ``progress(fraction, message)``.
    cancel : CancelToken, optional
        Checked before every frame and area.
    previews_dir : path-like, optional
        Also write PNG previews (paper Fig. 1c-g style) there, named ``demo_*.png``.
    overwrite : bool
        Replace an existing file at ``path``.
    workers : int, optional
        Threads for per-frame work (results do not depend on it).

    Returns
    -------
    Path
        The absolute project path.

    Raises
    ------
    ProjectError
        ``path`` exists and ``overwrite`` is False, or its folder does not exist.
    ProjectLockedError
        Another process has ``path`` open for writing.
    Cancelled
        The cancel token was set; nothing was written.
    """
    progress = progress or no_progress
    path = Path(path).absolute()
    if path.exists() and not overwrite:
        raise ProjectError(f"{path} already exists; choose another name or allow overwriting")
    if not path.parent.is_dir():
        raise ProjectError(f"{path.parent}: no such folder")
    guard = _hold_target(path)
    tmp = path.with_name(f".{path.name}.demo-{os.getpid()}-{uuid.uuid4().hex[:8]}.h5")
    start = time.perf_counter()
    try:
        exp = simulate_experiment(
            config, progress=sub_progress(progress, 0.0, 0.12), cancel=cancel, workers=workers
        )
        with Project.create(tmp, overwrite=True) as proj:
            with proj.edit() as w:
                _write_raw(w, exp)
                write_truth(w, exp)
                progress(0.15, "raw data and truth written")
                area0 = _write_training(w, exp, sub_progress(progress, 0.15, 0.98), cancel, workers)
                w.append_log(
                    {
                        "step": "demo",
                        "params": config,
                        "duration_s": round(time.perf_counter() - start, 3),
                    }
                )
                if cancel is not None:
                    cancel.check()
        if guard is not None:
            guard.h5.close()  # Windows cannot replace an open file; the writer lock stays held
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.with_name(tmp.name + ".lock").unlink()
        if guard is not None:
            guard.close()
    if previews_dir is not None:
        progress(0.99, "previews")
        write_demo_previews(previews_dir, exp, area0)
    progress(1.0, f"wrote {path.name}")
    return path


def _hold_target(path: Path) -> Project | None:
    """Hold the writer lock of an existing project at ``path`` while the new one is built."""
    if not path.exists():
        return None
    try:
        return Project.open(path, "a")
    except ProjectLockedError:
        raise
    except ProjectError:
        return None  # not a readable project: nobody can hold it open; it is simply replaced


def _write_raw(w, exp: Experiment) -> None:
    for key, series in (
        ("rapid", exp.rapid),
        ("slow", exp.slow),
        ("grating-rapid", exp.grating_rapid),
        ("grating-slow", exp.grating_slow),
    ):
        w.write_series(f"raw/{key}", series, store_dtype=RAW_DTYPE, compression=RAW_COMPRESSION)  # type: ignore[arg-type]


def _write_training(
    w, exp: Experiment, progress: ProgressFn, cancel: CancelToken | None, workers: int | None
) -> np.ndarray | None:
    """Stream every training area into the project; return frames of one matched 0 deg area."""
    keep: np.ndarray | None = None
    fallback: np.ndarray | None = None
    thickness, tilts, matched = [], [], []
    for area in exp.training_areas(progress=progress, cancel=cancel, workers=workers):
        i = area.plan.index
        w.write_series(
            f"raw/training/area_{i:03d}",
            area.series,
            store_dtype=RAW_DTYPE,
            compression=RAW_COMPRESSION,
        )  # type: ignore[arg-type]
        write_training_truth(w, area)
        thickness.append(area.plan.thickness_nm)
        tilts.append(area.plan.stage_tilt_deg)
        matched.append(area.plan.matched)
        if area.plan.stage_tilt_deg == 0.0:
            if keep is None and area.plan.matched:
                keep = area.series.frames.copy()
            elif fallback is None:
                fallback = area.series.frames.copy()
    w.write_array(
        "truth/training/thickness_nm", np.asarray(thickness, np.float64), attrs={"unit": "nm"}
    )
    w.write_array(
        "truth/training/stage_tilt_deg", np.asarray(tilts, np.float64), attrs={"unit": "deg"}
    )
    w.write_array("truth/training/matched", np.asarray(matched, np.uint8))
    return keep if keep is not None else fallback


def write_demo_previews(
    directory: str | os.PathLike, exp: Experiment, area_frames: np.ndarray | None = None
) -> list[Path]:
    """PNG previews of an experiment (see :func:`.previews.write_previews`).

    ``area_frames`` are repeated rapid frames of one area at 0 deg (for the noise image); if not
    given, a matched area at 0 deg is simulated.
    """
    from .previews import write_previews  # matplotlib only when previews are asked for

    cfg = exp.config
    if area_frames is None:
        plan = AreaPlan(0, 0.0, cfg.thickness_nm, True)
        area_frames = simulate_training_area(cfg, plan, exp.distortion).series.frames
    i = int(np.argmin(np.abs(exp.rapid_truth.angles_deg)))
    j = int(np.argmin(np.abs(exp.slow_truth.angles_deg)))
    return write_previews(
        directory,
        rapid_frame=exp.rapid.frames[i],
        rapid_clean=exp.rapid_truth.clean[i],
        slow_frame=exp.slow.frames[j],
        area_frames=area_frames,
        grating_slow=exp.grating_slow.frames[0],
        grating_rapid=exp.grating_rapid.frames[0],
        pixel_size_nm=cfg.pixel_size_nm,
        rapid_angle_deg=float(exp.rapid_truth.angles_deg[i]),
    )
