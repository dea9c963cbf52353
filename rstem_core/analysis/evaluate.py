"""The evaluation step: how trustworthy the volume is, in numbers, against a reference.

Against the slow tomogram (``reference="slow"``, the paper's proof, Fig. 6-7): the slow
stop-and-go series (``/raw/slow``) is aligned and reconstructed by the same engine with the same
parameters as the rapid volume (stored as ``/reconstruction/slow``, reused while up to date), and
dislocation centres found in both volumes are paired section by section. Against the truth
(``reference="truth"``, synthetic projects): centres found in the volume are paired with the true
lines' crossings of the same sections, and every earlier step is scored against its truth
(distortion map, curation, denoising, tilt angles and shifts).

Output: ``/evaluation/report`` (JSON: the keys of ``rstem evaluate --json``, see DESIGN.md) with
``attrs['params']``, and one ``/log`` entry.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from ..errors import RstemError
from ..model import Volume
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..project import Project
from .positions import (
    compare_centres,
    line_crossings,
    section_centres,
    smooth_along_lines,
    spot_threshold,
    typical_line_level,
)

OUTPUT = "evaluation/report"
SLOW_VOLUME = "reconstruction/slow"
REFERENCES = ("auto", "truth", "slow")


@dataclass(frozen=True)
class EvaluationParams:
    """Parameters of the evaluation step.

    Attributes
    ----------
    reference : {"auto", "truth", "slow"}
        What the volume is compared with; ``auto``: the truth for synthetic projects, else the
        slow tomogram when a slow series was imported.
    threshold : float
        Spots weaker than this fraction of a typical dislocation's brightness (the median over
        cross-sections of each section's brightest voxel, in the yz or the xz sections,
        whichever is higher; the same level for both) are not counted as dislocation centres
        (0..1). Lower it when weak dislocations are missed, raise it when noise is counted
        (about 0.3 for a volume of frames clipped with the reconstruction's ``saturate``).
    noise_floor : float
        The threshold is raised, where the volume's noise reaches it, to this many times the
        noise level (the 90th percentile of the volume in which the spots are looked for; lines
        fill well under a tenth of it); 0 keeps ``threshold`` alone. A noisy volume (one made
        from the frames before denoising) or a sparse specimen's few lines, whose typical
        brightness is low, would otherwise have the noise's peaks counted as dislocations. The
        threshold used is reported as ``threshold_used``. Default-size synthetic volumes of the
        frames before denoising, seeds 0 / 1 / 2 / 3 / 4, share of true centres found (of found
        centres true; centroids weighed with the volume itself): floor 3.5 88.6 / 78.2 / 83.6 /
        83.1 / 71.8 % (91.7 / 85.7 / 76.7 / 86.9 / 87.7 %), 4 87.2 / 77.7 / 81.6 / 80.4 / 69.9 %
        (94.0 / 92.0 / 88.0 / 92.3 / 93.1 %), 4.5 86.0 / 76.8 / 78.3 / 76.9 / 67.7 % (94.9 /
        93.9 / 91.8 / 93.6 / 94.8 %); at 3 seed 2 keeps 44.9 % true. Volumes of mostly denoised
        frames keep 0.2 (their noise stays under it). Turn it off for a small crop around a few
        lines, where lines fill a tenth of the volume or more.
    min_prominence : float
        A spot splits into two centres only where each part rises this far (as a fraction of the
        typical dislocation's brightness) above the pass between them (0..1); raise it when one
        dislocation gives several centres (e.g. 0.1 for a volume of binarised frames, whose
        spots are brighter at their rims), lower it when two close ones give one.
    smooth_px : float
        Gaussian smoothing (voxels) of each cross-section used to find the spots; the centres
        are the intensity-weighted centroids of the spots without it (paper eq. 1).
    line_smooth_nm : float
        Before the spots are looked for, every voxel is averaged with its neighbours along the
        local dislocation direction (Gaussian sigma in nm, about 3 voxels at 4.56 nm; 0 turns
        it off). The reconstruction's noise averages out along the lines while the gap between
        neighbouring lines is kept, so fewer noise spots count as dislocations and the lines of
        a pile-up split more reliably. See ``line_averaged_centroids`` for what the centroids
        weigh.
    line_averaged_centroids : bool
        Weigh each spot's centroid with the volume averaged along its lines (``line_smooth_nm``)
        instead of the volume itself: the noise that pulls a centroid off the line is averaged
        out along it. Default-size synthetic volumes of the frames before denoising, seeds 0 /
        1 / 2 / 3 / 4, mean errors x 3.60 / 4.32 / 3.15 / 4.35 / 4.81, y 2.30 / 3.73 / 4.25 /
        2.77 / 3.35, z 3.97 / 5.36 / 4.62 / 5.42 / 4.40 nm against x 3.72 / 4.31 / 3.26 / 4.50
        / 4.92, y 2.45 / 3.78 / 4.25 / 2.89 / 3.43, z 4.21 / 5.47 / 4.88 / 5.72 / 4.58 nm on the
        volume itself; the noise-free seed 0 3.51 / 2.09 / 3.56 against 3.45 / 2.08 / 3.49 nm
        (a curved line's average lies slightly inside the curve).
    split_pileups : float
        A spot is split into one centre per dislocation where it holds several lines of a
        pile-up: where its length along its major axis, discounted by how far it moves to the
        neighbouring sections (an oblique single line's spot moves about its own length, the
        steep lines of a pile-up hardly move), exceeds this many times the typical spot's; 0
        turns it off. Default-size synthetic volumes of the frames before denoising, seeds 0 /
        1 / 2 / 3 / 4 (line-averaged centroids): share of true centres found 87.8 / 79.9 / 82.3
        / 81.5 / 73.6 % (of found centres true 92.0 / 91.8 / 88.1 / 90.3 / 92.6 %), mean errors
        x 3.64 / 4.27 / 3.11 / 4.10 / 4.84, y 2.34 / 3.76 / 4.20 / 2.75 / 3.27, z 3.91 / 5.28 /
        4.50 / 5.26 / 4.14 nm; off 86.4 / 76.8 / 79.4 / 77.7 / 68.2 % (94.9 / 93.5 / 91.6 / 93.4
        / 94.7 %), z 3.97 / 5.36 / 4.62 / 5.42 / 4.40 nm. At 4 (measured before spots longer
        than 4.5^2 typical ones were kept whole): 87.2 / 78.6 / 80.8 / 80.3 / 71.8 % (92.2 /
        92.1 / 88.6 / 90.5 / 93.1 %). A lower noise floor buys less: floor 4 (off, centroids on
        the volume) 87.2 / 77.7 / 81.6 / 80.4 / 69.9 % at 94.0 / 92.0 / 88.0 / 92.3 / 93.1 %.
        Most of the false centres it adds come from lines lying within a section, whose spots
        in the sections beside it are long and do not move; turn it off for a small crop with a
        few lines, where there is no typical spot to compare with.
    border_px : int
        Centres this close to the volume's faces are not counted (reconstruction edge
        artefacts), voxels; true crossings there are left out too.
    max_distance_nm : float
        Largest distance between paired centres in one cross-section, nm.
    register : bool
        Remove the median offset between the volume and the reference before measuring (a
        translation of the whole specimen is not a positional error).
    denoise_scores : bool
        Score the denoising methods on held-out training areas (synthetic projects; BM3D makes
        this take a minute or more).
    align_slow : bool
        Refine the slow series' geometry before reconstructing it.
    """

    reference: str = "auto"
    threshold: float = 0.2
    noise_floor: float = 4.5
    min_prominence: float = 0.02
    smooth_px: float = 0.5
    line_smooth_nm: float = 14.0
    line_averaged_centroids: bool = True
    split_pileups: float = 3.0
    border_px: int = 2
    max_distance_nm: float = 30.0
    register: bool = True
    denoise_scores: bool = True
    align_slow: bool = True

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, got {self.reference!r}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}")
        if not self.noise_floor >= 0:
            raise ValueError(f"noise_floor must not be negative, got {self.noise_floor}")
        if not 0 < self.min_prominence < 1:
            raise ValueError(f"min_prominence must lie in (0, 1), got {self.min_prominence}")
        if self.smooth_px < 0:
            raise ValueError(f"smooth_px must not be negative, got {self.smooth_px}")
        if self.line_smooth_nm < 0:
            raise ValueError(f"line_smooth_nm must not be negative, got {self.line_smooth_nm}")
        if self.split_pileups < 0:
            raise ValueError(f"split_pileups must not be negative, got {self.split_pileups}")
        if not self.max_distance_nm > 0:
            raise ValueError(f"max_distance_nm must be positive, got {self.max_distance_nm}")


def is_synthetic(project: Project) -> bool:
    """Whether the project carries the truth of the synthetic experiment."""
    return "truth/lines" in project


def choose_reference(project: Project, reference: str) -> str:
    """Resolve ``auto`` and check the chosen reference is available."""
    if reference == "auto":
        reference = "truth" if is_synthetic(project) else "slow" if "raw/slow" in project else "none"
    if reference == "truth" and not is_synthetic(project):
        raise RstemError(f"{project.path.name} has no truth: --reference truth is for synthetic projects (rstem demo)")
    if reference == "slow" and "raw/slow" not in project:
        raise RstemError(f"{project.path.name} has no slow series: import one with `rstem import PROJECT slow FILE`")
    return reference


def step_timings(project: Project) -> dict[str, float]:
    """Duration (s) of the latest successful run of every step, from ``/log``."""
    out: dict[str, float] = {}
    for entry in project.log_entries():
        if entry.get("status") == "failed" or "duration_s" not in entry or "step" not in entry:
            continue
        out[str(entry["step"])] = float(entry["duration_s"])
    return out


def _centres(volume: np.ndarray, voxel_nm: float, params: EvaluationParams) -> dict[str, np.ndarray]:
    return centres_and_threshold(volume, voxel_nm, params)[0]


def centres_and_threshold(volume: np.ndarray, voxel_nm: float,
                          params: EvaluationParams) -> tuple[dict[str, np.ndarray], float]:
    """The centres (x, y, z nm) in the yz (key "x") and xz (key "y") sections, and the threshold
    used (a fraction of the typical line level: ``params.threshold`` or the noise floor)."""
    detect = line_smoothed(volume, voxel_nm, params)
    used = spot_threshold(volume if detect is None else detect, params.threshold, params.noise_floor,
                          params.border_px)
    kw = {"threshold": used, "min_prominence": params.min_prominence, "smooth_px": params.smooth_px,
          "border_px": params.border_px, "weigh_detect": params.line_averaged_centroids,
          "split_ratio": params.split_pileups}
    out = {axis: section_centres(volume, voxel_nm, axis=axis, detect=detect, **kw) for axis in ("x", "y")}
    # the sections next to the x and y faces hold edge artefacts, and no true crossings are
    # counted there (truth_centres): leave them out of both section families
    inside = {axis: pts[inside_faces(pts, np.shape(volume), voxel_nm, params.border_px)] for axis, pts in out.items()}
    return inside, used


def compare_with_reference(found: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                           shape: tuple[int, ...], voxel_nm: float, params: EvaluationParams) -> dict[str, Any]:
    """:func:`~.positions.compare_centres` of the centres found in a (z, y, x) volume of ``shape``
    with the reference centres, with the evaluation's pairing distance and registration and the
    volume's field for the bands of y and x."""
    field = (shape[1] * voxel_nm, shape[2] * voxel_nm)
    return compare_centres(found, reference, voxel_nm=voxel_nm, max_distance_nm=params.max_distance_nm,
                           register=params.register, field_nm=field)


def inside_faces(points_nm: np.ndarray, shape: tuple[int, ...], voxel_nm: float, border_px: int) -> np.ndarray:
    """Which points (x, y, z nm, origin at the centre of a (z, y, x) volume of ``shape``) lie at
    least ``border_px`` voxels inside its x and y faces, at any depth."""
    _, ny, nx = shape
    half = ((np.array([nx, ny], dtype=np.float64) - 1) / 2 - border_px) * voxel_nm + 1e-6  # + rounding
    return np.all(np.abs(np.asarray(points_nm)[:, :2]) <= half, axis=1)


def line_smoothed(volume: np.ndarray, voxel_nm: float, params: EvaluationParams) -> np.ndarray | None:
    """The volume averaged along its lines (``params.line_smooth_nm``) where it holds structure
    (its Gaussian-smoothed value above 2 % of a typical line's), in which the centres are looked
    for; None when that smoothing is off."""
    if params.line_smooth_nm <= 0:
        return None
    vol = np.asarray(volume, dtype=np.float32)
    typical = typical_line_level(vol, params.border_px)
    where = ndi.gaussian_filter(vol, 2.0) > 0.02 * typical
    return smooth_along_lines(vol, params.line_smooth_nm / voxel_nm, where=where)


def truth_centres(project: Project, shape: tuple[int, int, int], voxel_nm: float,
                  border_px: int = 0) -> dict[str, np.ndarray]:
    """The true lines' crossings with the volume's yz (key "x") and xz (key "y") sections, at
    least ``border_px`` voxels inside the volume's x and y faces, at every depth of the specimen
    (a volume made too thin to hold a dislocation has missed it)."""
    lines = [np.asarray(line, dtype=np.float64) for line in project.read_json("truth/lines")]
    _, ny, nx = shape
    out = {}
    for axis, n in (("x", nx), ("y", ny)):
        planes = (np.arange(n) - (n - 1) / 2) * voxel_nm
        pts = line_crossings(lines, planes, axis=axis)
        out[axis] = pts[inside_faces(pts, shape, voxel_nm, border_px)]  # inside the volume only
    return out


def slow_volume(project: Project, params: EvaluationParams, *, progress: ProgressFn,
                cancel: CancelToken | None) -> tuple[Volume, bool, list[str]]:
    """The slow tomogram reconstructed like the rapid volume: (volume, newly made, notes).

    A stored one (``/reconstruction/slow``) is reused while the slow series and the parameters
    it was made with are unchanged.
    """
    from ..pipeline import params_from_dict
    from ..recon.step import OUTPUT as RAPID_VOLUME
    from ..recon.step import ReconstructionParams, reconstruct_series

    rapid_params = json.loads(project.attrs(RAPID_VOLUME).get("params", "{}"))
    thickness = project.read_volume(RAPID_VOLUME).metadata.get("thickness_nm")
    recon_params = replace(params_from_dict(ReconstructionParams, rapid_params), thickness_nm=thickness)
    made_with = {"recon": rapid_params, "align_slow": params.align_slow}
    if SLOW_VOLUME in project and project.generation(SLOW_VOLUME) >= project.generation("raw/slow"):
        stored = json.loads(project.attrs(SLOW_VOLUME).get("made_with", "{}"))
        if stored == json.loads(json.dumps(made_with)):
            return project.read_volume(SLOW_VOLUME), False, ["slow tomogram reused"]
    series = project.read_series("raw/slow")
    angles, shifts, notes = series.angles_deg, None, []
    if params.align_slow:
        from ..align import refine_alignment

        progress(0.0, "aligning the slow series")
        try:
            result = refine_alignment(series.frames, series.angles_deg, timestamps_s=None, line_time_s=None,
                                      progress=sub_progress(progress, 0.0, 0.4), cancel=cancel)
            angles, shifts = result.angles_deg, result.shifts_px
            notes.append(f"slow series aligned by {result.method}")
        except (ValueError, RstemError) as exc:
            notes.append(f"slow series not aligned: {exc}")
    data, voxel_nm, _, more, _ = reconstruct_series(series, angles, shifts, recon_params,
                                                    progress=sub_progress(progress, 0.4, 1.0), cancel=cancel)
    meta = {"source": "/raw/slow", "notes": notes + more, "made_with": made_with}
    return Volume(data, voxel_nm, meta), True, notes + more


def truth_step_scores(project: Project, params: EvaluationParams, *, progress: ProgressFn,
                      cancel: CancelToken | None) -> tuple[dict[str, Any], list[str]]:
    """Scores of every earlier step against the truth, for the steps that ran."""
    from . import refine_scores, truth_scores

    out: dict[str, Any] = {}
    notes: list[str] = []
    if "calibration/distortion_map" in project:
        out["distortion_rms_px"] = truth_scores.distortion_rms_px(project)["distortion_rms_px"]
    if "training/decisions" in project:
        cur = truth_scores.curation_scores(project)
        out["curation_accept_matched"] = cur["curation_accept_matched"]
        out["curation_reject_mismatched"] = cur["curation_reject_mismatched"]
    if "processed/alignment/angles_deg" in project:
        out["angle_rms_deg"] = refine_scores.angle_rms_deg(project)
        out["shift_rms_px"] = refine_scores.shift_rms_px(project)
        out["nominal_angle_rms_deg"] = refine_scores.nominal_angle_rms_deg(project)
        if "processed/alignment/angle_sd_deg" in project:
            out["angle_sd_rms_deg"] = refine_scores.angle_sd_rms_deg(project)
    if params.denoise_scores and "truth/training" in project:
        try:
            from .denoise_scores import denoise_scores
        except ImportError as exc:  # the denoising package is optional at this level
            notes.append(f"denoise scores not available: {exc}")
        else:
            progress(0.0, "scoring the denoisers on held-out areas")
            scores = denoise_scores(project, progress=progress, cancel=cancel)
            out["denoise"] = scores["denoise"]
            out["denoise_areas"] = scores.get("denoise_areas")
            notes += list(scores.get("denoise_notes", []))
    if cancel is not None:
        cancel.check()
    return out, notes


def run_evaluation(
    project: Project,
    params: EvaluationParams | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Evaluate the project's volume (and, for synthetic projects, every step) and store the report.

    Returns
    -------
    dict
        The report (see the module notes and DESIGN.md for the keys).

    Raises
    ------
    RstemError
        No volume, or the chosen reference is not available.
    """
    params = params or EvaluationParams()
    progress = progress or no_progress
    started = time.perf_counter()
    reference = choose_reference(project, params.reference)
    if "reconstruction/volume" not in project and reference != "truth":
        raise RstemError(f"{project.path.name} has no volume to evaluate: run `rstem reconstruct` first")
    report: dict[str, Any] = {"reference": reference}
    slow: Volume | None = None
    new_slow = False
    notes: list[str] = []
    if reference == "truth":
        scores, more = truth_step_scores(project, params, progress=sub_progress(progress, 0.0, 0.6), cancel=cancel)
        report.update(scores)
        notes += more
    if "reconstruction/volume" in project and reference != "none":
        vol = project.read_volume("reconstruction/volume")
        progress(0.6, "finding dislocation centres")
        found, used = centres_and_threshold(vol.data, vol.voxel_size_nm, params)
        report["threshold_used"] = round(used, 4)
        if used > params.threshold + 1e-6:
            notes.append(f"spots weaker than {used:.2f} of a typical dislocation left out ({params.noise_floor:g} "
                         f"times the volume's noise level, above the threshold {params.threshold:g})")
        if reference == "truth":
            ref = truth_centres(project, vol.data.shape, vol.voxel_size_nm, params.border_px)
        else:
            slow, new_slow, more = slow_volume(project, params, progress=sub_progress(progress, 0.6, 0.9),
                                               cancel=cancel)
            data, voxel = slow.data, slow.voxel_size_nm
            notes += more
            if data.shape[1:] != vol.data.shape[1:] or not np.isclose(voxel, vol.voxel_size_nm):
                raise RstemError(f"the slow tomogram ({data.shape}) and the volume ({vol.data.shape}) differ in "
                                 "field or voxel size: reconstruct both from series of the same frame size")
            ref = _centres(data, voxel, params)
        positions = compare_with_reference(found, ref, vol.data.shape, vol.voxel_size_nm, params)
        report.update({k: v for k, v in positions.items() if k != "pairs_xyz_nm"})
        report["pairs_xyz_nm"] = positions["pairs_xyz_nm"]
        report["voxel_nm"] = vol.voxel_size_nm
    elif reference == "none":
        notes.append("no reference: import a slow series (or use a synthetic project) to measure positions")
    if cancel is not None:
        cancel.check()
    report["timings_s"] = step_timings(project)
    duration = time.perf_counter() - started
    report["timings_s"]["evaluate"] = round(duration, 3)
    report["notes"] = notes
    with project.edit() as w:
        if new_slow and slow is not None:
            w.write_volume(SLOW_VOLUME, slow)
            w.set_attrs(SLOW_VOLUME, {"made_with": json.dumps(slow.metadata["made_with"])})
        w.write_json(OUTPUT, report)
        w.set_attrs(OUTPUT, {"params": asdict(params)})
        w.append_log({"step": "evaluate", "params": asdict(params), "reference": reference,
                      "outputs": ["/" + OUTPUT], "duration_s": round(duration, 3), "notes": notes})
    progress(1.0, f"evaluated against {reference}")
    return report
