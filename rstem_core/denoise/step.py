"""The denoise steps on a project: train the network, denoise the tomography series.

Training (:func:`run_training`) reads the curated training set (``/training/accepted``,
``/training/references``, ``/training/drift``, ``/raw/training``) and writes, in one transaction,
``/models/denoiser`` (weights as float32 datasets and a JSON ``description`` with the training
history and metrics; ``attrs['params']``) and one ``/log`` entry.

Denoising (:func:`run_denoise`) reads ``/processed/corrected`` when the calibration step made it,
else ``/raw/rapid``, and writes ``/processed/denoised``: a tilt series with the source's angles,
timestamps, line time and metadata, plus ``denoise_method``, ``denoise_source`` and
``denoise_model`` in its metadata; ``attrs['params']`` and one ``/log`` entry. On a synthetic
project ``attrs['scores']`` holds the method's (and the raw frames') PSNR, SSIM, relative line
width and intensity per tilt against the truth on the held-out training areas (JSON, as in
``rstem evaluate``). Method ``unet``
uses ``/models/denoiser`` or, when the project has none, the shipped starter model. A cancelled or
failed step leaves the project unchanged.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import Cancelled, RstemError
from ..model import TiltSeries
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..project import Project, pick_series
from .training import TrainParams, train_denoiser
from .weights import (
    MODEL_KEY,
    DenoiserModel,
    load_from_project,
    save_to_project,
    starter_model,
    starter_pixel_size_nm,
)

METHODS = ("unet", "bm3d", "gaussian", "median", "nlm")
SOURCES = {"corrected": "processed/corrected", "raw": "raw/rapid"}
OUTPUT = "processed/denoised"


@dataclass(frozen=True)
class DenoiseParams:
    """Parameters of the denoising step.

    Attributes
    ----------
    method : {"unet", "bm3d", "gaussian", "median", "nlm"}
        The trained U-Net (default) or a non-learning baseline.
    source : {"auto", "corrected", "raw"}
        Frames to denoise: "auto" takes the distortion-corrected series when it exists.
    tile_px, overlap_px : int
        U-Net tiling: largest tile edge and least overlap, px (a 512 px frame with its mirrored
        border is one tile).
    batch_size : int
        U-Net tiles per network call.
    device : str
        "auto" (CUDA when available), "cpu" or "cuda".
    restore_width : bool
        U-Net: apply the model's calibrated line-width restoration (its gain at each frame's
        angle), when the model has one.
    average_flips : bool
        U-Net: also denoise each frame flipped top to bottom and left to right and keep the mean
        of the three results, for 3x the time (default-size synthetic series, the 4.56 nm starter,
        held-out areas at 0/20/40/60/70 deg: PSNR +0.3 to +0.7 dB, line widths unchanged).
    baseline_options : dict
        Extra parameters of the baseline method (see ``denoise_baseline``), e.g. ``{"sigma_px": 2}``.
    """

    method: str = "unet"
    source: str = "auto"
    tile_px: int = 576
    overlap_px: int = 32
    batch_size: int = 4
    device: str = "auto"
    restore_width: bool = True
    average_flips: bool = False
    baseline_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.source != "auto" and self.source not in SOURCES:
            raise ValueError(f"source must be auto or one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.tile_px < 16:
            raise ValueError(f"tile_px must be at least 16 px, got {self.tile_px}")
        if not 0 <= self.overlap_px <= self.tile_px // 2:
            raise ValueError(f"overlap_px must be within [0, tile_px / 2], got {self.overlap_px}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclass(frozen=True, eq=False)
class DenoiseResult:
    """What :func:`run_denoise` stored: the series, its source key, the model used and notes."""

    series: TiltSeries
    source: str
    model: str
    notes: list[str]


def run_training(
    project: Project,
    params: TrainParams | None = None,
    *,
    resume: bool = False,
    keep_cancelled: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DenoiserModel:
    """Train the denoiser on the project's curated training set and store it (one transaction).

    Parameters
    ----------
    project : Project
        Open for writing, with a curated training set.
    params : TrainParams
    resume : bool
        Continue from the stored ``/models/denoiser`` (its architecture) instead of new weights.
    keep_cancelled : bool
        On cancel, store the best weights so far (marked cancelled) instead of leaving the project
        unchanged.

    Raises
    ------
    RstemError
        No curated or no accepted training areas, nothing to resume from.
    Cancelled
        Cancelled (and ``keep_cancelled`` is False); the project is unchanged.
    """
    params = params or TrainParams()
    progress = progress or no_progress
    started = time.perf_counter()
    params, notes = _keep_test_areas_out(project, params)
    initial = load_from_project(project, MODEL_KEY) if resume else None
    model = train_denoiser(project, params, initial=initial, progress=sub_progress(progress, 0.0, 0.98), cancel=cancel)
    training = model.description["training"]
    metrics = model.description["metrics"]
    if training["cancelled"] and not keep_cancelled:
        raise Cancelled(f"training cancelled by the user (best validation PSNR so far {metrics['validation_psnr_db']:.2f} dB "
                        f"at epoch {metrics['best_epoch']}); the project is unchanged")
    duration = time.perf_counter() - started
    with project.edit() as w:
        save_to_project(w, MODEL_KEY, model)
        w.set_params(MODEL_KEY, asdict(params))
        w.append_log({"step": "train", "params": asdict(params), "duration_s": round(duration, 3), "outputs": [MODEL_KEY],
                      "resumed": resume, "cancelled": training["cancelled"], "metrics": metrics,
                      "data_hash": training["data_hash"], "notes": notes})
    progress(1.0, f"denoiser stored: validation PSNR {metrics['validation_psnr_db']:.2f} dB "
                  f"(from {metrics['validation_psnr_initial_db']:.2f} dB) at epoch {metrics['best_epoch']}")
    return model


def _keep_test_areas_out(project: Project, params: TrainParams) -> tuple[TrainParams, list[str]]:
    """On a synthetic project, keep the areas that `rstem evaluate` scores out of training."""
    if params.exclude_areas or "truth/training/matched" not in project:
        return params, []
    from ..analysis.denoise_scores import heldout_areas

    test = sorted(a for names in heldout_areas(project).values() for a in names)
    accepted = set(project.read_json("training/accepted")) if "training/accepted" in project else set()
    if not accepted - set(test):
        return params, []
    return replace(params, exclude_areas=tuple(test)), [
        f"synthetic project: the {len(test)} test areas of `rstem evaluate` are kept out of training"]


def choose_source(project: Project, source: str = "auto") -> str:
    """The project key of the frames to denoise."""
    return pick_series(project, SOURCES, source, "to denoise")


def project_denoiser(project: Project, pixel_size_nm: float | None = None) -> tuple[DenoiserModel, str, list[str]]:
    """The network the denoise step uses: the project's trained model, else the shipped starter
    for ``pixel_size_nm``; with its name (``/models/denoiser`` or ``starter``) and notes."""
    if f"{MODEL_KEY}/description" in project:
        return load_from_project(project, MODEL_KEY), f"/{MODEL_KEY}", []
    model = starter_model(pixel_size_nm)
    trained_at = starter_pixel_size_nm(model)
    at = f", trained at {trained_at:.3g} nm pixels" if trained_at else ""
    return model, "starter", [
        f"no trained denoiser in the project: used the shipped starter model (synthetic experiment{at}); "
        "train one on your own data with `rstem train` for best results"]


def run_denoise(
    project: Project,
    params: DenoiseParams | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DenoiseResult:
    """Denoise the tomography series and store it as ``/processed/denoised`` (one transaction).

    Raises
    ------
    RstemError
        No series, a bad stored model, frames with NaN.
    Cancelled
        The project is unchanged.
    """
    params = params or DenoiseParams()
    progress = progress or no_progress
    started = time.perf_counter()
    key = choose_source(project, params.source)
    series = project.read_series(key)
    notes: list[str] = []
    part = sub_progress(progress, 0.02, 0.97)
    model = None
    if params.method == "unet":
        from .inference import denoise_frames

        model, model_name, notes = project_denoiser(project, series.pixel_size_nm)
        frames = denoise_frames(series.frames, model, tile_px=params.tile_px, overlap_px=params.overlap_px,
                                batch_size=params.batch_size, device=params.device, tilts_deg=series.angles_deg,
                                restore_width=params.restore_width, average_flips=params.average_flips,
                                progress=part, cancel=cancel)
    else:
        from .baselines import denoise_baseline
        from .inference import check_frames

        model_name = "none"
        check_frames(series.frames, key)
        try:
            frames = denoise_baseline(series.frames, params.method, progress=part, cancel=cancel,
                                      **params.baseline_options)
        except ValueError as exc:
            raise RstemError(f"{params.method}: {exc}") from None
    if cancel is not None:
        cancel.check()
    meta = {**series.metadata, "denoise_method": params.method, "denoise_source": "/" + key,
            "denoise_model": model_name}
    meta.pop("width_restoration", None)
    restoration = model.width_restoration if model is not None and params.restore_width else None
    if restoration is not None:  # what was applied, so that a step can see the plain network output
        meta["width_restoration"] = {"sigma_px": restoration.sigma_px,
                                     "gains": [round(restoration.gain_at(t), 4) for t in series.angles_deg]}
    out = TiltSeries(np.asarray(frames, np.float32), series.angles_deg, series.pixel_size_nm,
                     measured_angles_deg=series.measured_angles_deg, timestamps_s=series.timestamps_s,
                     line_time_s=series.line_time_s, tilt_axis_deg=series.tilt_axis_deg, metadata=meta)
    scores = None
    if "truth/training/matched" in project:  # synthetic: score the method on the held-out areas
        from ..analysis.denoise_scores import denoise_scores

        progress(0.97, "scoring against the truth on held-out training areas")
        scores = denoise_scores(project, methods=[params.method], unet_model=model, cancel=cancel)
    duration = time.perf_counter() - started
    with project.edit() as w:
        w.write_series(OUTPUT, out)
        w.set_params(OUTPUT, asdict(params))
        if scores is not None:
            w.set_attrs(OUTPUT, {"scores": json.dumps(scores["denoise"], allow_nan=True)})
        w.append_log({"step": "denoise", "params": asdict(params), "duration_s": round(duration, 3),
                      "outputs": [OUTPUT], "source": "/" + key, "model": model_name, "notes": notes})
    progress(1.0, f"{series.n_frames} frames denoised with {params.method} from /{key}")
    return DenoiseResult(out, "/" + key, model_name, notes)
