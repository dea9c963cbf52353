"""What limits the dislocation centres of a synthetic project: one source of error left out at a time.

The evaluation (:func:`~rstem_core.analysis.evaluate.centres_and_threshold` against the true
crossings) is run on volumes that differ from the step's own in one respect each:

``density``
    The true line density (``/truth/density``, Gaussian tubes of 12 nm FWHM): what the centre
    finder itself reaches on a perfect volume.
``noise_free``
    The noise-free, undistorted frames (``/truth/rapid_clean_undistorted``) reconstructed with the
    true angles and drift: the limit of the reconstruction (missing wedge, SIRT's resolution,
    lines of a pile-up that merge) without noise and without alignment errors.
``true_geometry``
    The frames the reconstruction step used (the frames before denoising when it used them)
    with the true angles and drift in place of the refined ones: what the refinement's errors
    cost.
``volume``
    The step's own volume (``/reconstruction/volume``).

Every reconstruction uses the step's stored parameters and the stored volume's thickness, so the
volumes share the step's grid (the true density shares its x-y grid and holds the slab in z).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import RstemError
from ..model import Volume
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..project import Project
from .evaluate import (
    EvaluationParams,
    centres_and_threshold,
    compare_with_reference,
    is_synthetic,
    truth_centres,
)

if TYPE_CHECKING:
    from ..recon.step import ReconstructionParams

LIMITS = ("density", "noise_free", "true_geometry", "volume")
VOLUME = "reconstruction/volume"


def score_volume(project: Project, volume: np.ndarray, voxel_nm: float, params: EvaluationParams) -> dict[str, Any]:
    """The evaluation's scores of ``volume`` (z, y, x; voxel ``voxel_nm`` nm, centred like the
    step's volumes) against the true crossings: completeness, precision, mean |dG| per axis (nm),
    the threshold used (fraction of a typical line) and the centre counts."""
    found, used = centres_and_threshold(volume, voxel_nm, params)
    ref = truth_centres(project, np.shape(volume), voxel_nm, params.border_px)
    out = compare_with_reference(found, ref, np.shape(volume), voxel_nm, params)
    return {
        "completeness": out["completeness"],
        "precision": out["precision"],
        "position_error_nm": {k: round(float(v), 3) for k, v in out["position_error_nm"].items()},
        "threshold_used": round(float(used), 4),
        "found_centres": out["found_centres"],
        "reference_centres": out["reference_centres"],
    }


def check_request(project: Project, which: tuple[str, ...], known: tuple[str, ...]) -> None:
    """Raise :class:`RstemError` for a name of ``which`` not in ``known`` or a project without truth."""
    unknown = sorted(set(which) - set(known))
    if unknown:
        raise RstemError(f"unknown limit {', '.join(unknown)}; choose from {', '.join(known)}")
    if not is_synthetic(project):
        raise RstemError(f"{project.path.name} holds no truth: the limits need a synthetic project (rstem demo)")


def _stored_params(project: Project) -> ReconstructionParams:
    """The reconstruction step's stored parameters (imported late: the step module imports much)."""
    from ..pipeline import params_from_dict
    from ..recon.step import ReconstructionParams

    return params_from_dict(ReconstructionParams, json.loads(project.attrs(VOLUME).get("params", "{}")))


def _step_frames(project: Project, stored: Volume, params: ReconstructionParams) -> tuple[np.ndarray, bool, str]:
    """The frames the reconstruction step started from, before any alignment (the truth's drift
    applies to those), whether they are the frames before denoising that it reconstructed in place
    of the denoised ones (the step's own rule, :func:`~rstem_core.recon.step.noisy_companion`),
    and their project key."""
    from ..recon.step import noisy_companion

    key = str(stored.metadata.get("source", "/raw/rapid")).lstrip("/")
    if key == "processed/aligned":
        key = str(project.read_series(key).metadata.get("aligned_from", "/processed/denoised")).lstrip("/")
    series = project.read_series(key)
    if params.noisy_share >= 1 and params.preprocessing.mode == "normalize":
        noisy = noisy_companion(project, key, series)
        if noisy is not None:
            return noisy[0], True, noisy[1]
    return series.frames, False, key


def _true_geometry_volume(project: Project, frames: np.ndarray, noisy: bool, stored: Volume,
                          params: ReconstructionParams, *, progress: ProgressFn,
                          cancel: CancelToken | None) -> tuple[np.ndarray, float]:
    """``frames`` (the rapid series' shape) reconstructed like the step made ``stored`` with
    ``params``, with the true angles and drift; ``noisy``: pre-processed as the step pre-processes
    the frames before denoising."""
    from ..recon.step import reconstruct_series

    smooth = params.noisy_smooth_px if noisy and params.noisy_share >= 1 else params.preprocessing.smooth_px
    params = replace(params, thickness_nm=stored.metadata.get("thickness_nm"), noisy_share=0.0, binning=1,
                     preprocessing=replace(params.preprocessing, smooth_px=smooth))
    series = replace(project.read_series("raw/rapid"), frames=frames)
    data, voxel_nm, *_ = reconstruct_series(series, project.read_array("truth/rapid_angles_deg"),
                                            project.read_array("truth/rapid_drift_px"), params,
                                            progress=progress, cancel=cancel)
    if data.shape != stored.data.shape:
        raise RstemError(f"the true-geometry volume {data.shape} differs from the step's {stored.data.shape}")
    return data, voxel_nm


def completeness_limits(
    project: Project,
    params: EvaluationParams | None = None,
    *,
    which: tuple[str, ...] = LIMITS,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, dict[str, Any]]:
    """Scores of the volumes of :data:`LIMITS` named in ``which`` (see the module docstring).

    Returns
    -------
    dict
        ``{name: score_volume(...)}``, plus ``seconds`` per reconstruction made.

    Raises
    ------
    RstemError
        Not a synthetic project, no reconstructed volume yet, or an unknown name.
    """
    params = params or EvaluationParams(reference="truth")
    progress = progress or no_progress
    check_request(project, which, LIMITS)
    if VOLUME not in project:
        raise RstemError(f"{project.path.name} has no volume yet: run `rstem reconstruct` first")
    out: dict[str, dict[str, Any]] = {}
    stored = project.read_volume(VOLUME)
    recon_params = _stored_params(project)
    for i, name in enumerate(which):
        part = sub_progress(progress, i / len(which), (i + 1) / len(which))
        started = time.perf_counter()
        if name == "density":
            data, voxel = project.read_array("truth/density"), float(project.attrs("truth/density")["voxel_size_nm"])
        elif name == "volume":
            data, voxel = stored.data, stored.voxel_size_nm
        elif name == "noise_free":
            part(0.0, "reconstructing the noise-free frames with the true geometry")
            data, voxel = _true_geometry_volume(project, project.read_array("truth/rapid_clean_undistorted"),
                                                False, stored, recon_params, progress=part, cancel=cancel)
        else:
            frames, noisy, key = _step_frames(project, stored, recon_params)
            part(0.0, f"reconstructing /{key} with the true geometry")
            data, voxel = _true_geometry_volume(project, frames, noisy, stored, recon_params,
                                                progress=part, cancel=cancel)
        made_s = time.perf_counter() - started
        if cancel is not None:
            cancel.check()
        part(0.9, f"scoring the {name.replace('_', ' ')} volume")
        out[name] = score_volume(project, np.asarray(data, np.float32), voxel, params)
        if name in ("noise_free", "true_geometry"):
            out[name]["seconds"] = round(made_s, 1)
    progress(1.0, "limits scored")
    return out
