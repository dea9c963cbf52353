"""The training-set step on a project: DCFI references, thickness matching, accepted areas.

Inputs: ``/raw/training/area_NNN`` (repeated rapid frames of one area at one stage tilt, metadata
``stage_tilt_deg``) and the tomography series ``/raw/rapid`` (its raw frames: the same detector
processing as the training frames; interpolated, distortion-corrected frames would have a smoothed
noise). Angles: the refined ones (``/processed/alignment/angles_deg``) when tilt refinement ran.

Outputs, in one transaction:

``/training/references/area_NNN`` (rows, cols) float32
    DCFI reference of the area (attrs ``stage_tilt_deg``, ``n_frames``, ``source``, ``params``).
``/training/drift/area_NNN`` (n, 2)
    Each frame's drift (dy, dx) px relative to the reference (a feature at (r, c) of the reference
    is seen at (r + dy, c + dx) in the frame).
``/training/decisions`` JSON
    One record per area: ``area``, ``stage_tilt_deg``, ``n_frames``, ``relative_thickness``
    (estimated ``t_area / t_series - 1``), ``log_statistic``, ``series_log_statistic``,
    ``wasserstein_normalised`` (distance of the min-max normalised histograms to the series'
    frames nearest in tilt, for information), ``automatic`` and final ``accepted``, ``override``
    and ``reason``.
``/training/accepted`` JSON
    The names of the accepted areas (this key marks the step done).
``/training/overrides`` JSON
    ``{area: "accept" | "reject"}``: the user's decisions, kept on later runs.
``/training/patches`` JSON
    Per stage tilt: areas accepted, frames, and the number of non-overlapping ``patch_px`` patches
    (single frame, reference) the accepted set yields.
``/training`` attrs ``params`` and ``beer_lambert`` (the series' fit); one ``/log`` entry.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..dcfi import dcfi
from ..errors import RstemError
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..project import Project
from .stats import (
    STATISTICS,
    BeerLambertFit,
    fit_beer_lambert,
    log_statistic,
    normalised_histogram,
    wasserstein,
)

TRAINING = "raw/training"
RAPID = "raw/rapid"
REFINED_ANGLES = "processed/alignment/angles_deg"
ACCEPTED_KEY = "training/accepted"
OVERRIDES_KEY = "training/overrides"


@dataclass(frozen=True)
class CurationParams:
    """Parameters of the training-set step.

    Attributes
    ----------
    threshold : float
        Largest accepted relative thickness difference ``|t_area / t_series - 1|``. The default
        0.17 lies between the 10 % an area may differ and still count as matched and the 25 %
        beyond which it must be rejected; on the synthetic experiment matched areas were
        estimated within 0.15 and mismatched ones beyond 0.20.
    statistic : {"background", "shot-noise"}
        Thickness statistic (see :mod:`.stats`): the background level in detector units (needs
        the same detector gain and offset for training and tomography frames), or the background
        in shot-noise units of the min-max normalised frame (gain- and offset-free, less exact
        for bright frames).
    smooth_px : float
        Gaussian smoothing before the background percentile, px.
    percentile : float
        Percentile of the smoothed frame taken as its background.
    patch_px : int
        Edge of the training patches counted in the report (the network's 64 x 64 px).
    accept, reject : tuple of str
        Areas (``area_003`` or ``3``) the user accepts or rejects whatever the statistic says;
        added to the overrides already stored in the project.
    clear_overrides : bool
        Forget the stored overrides first.
    recompute_references : bool
        Recompute DCFI references that already exist with the same DCFI settings.
    dcfi_passes : int
        DCFI registration passes (see :func:`rstem_core.dcfi.dcfi`).
    dcfi_nonrigid_bands : int
        DCFI non-rigid refinement bands (0: rigid only).
    """

    threshold: float = 0.17
    statistic: str = "background"
    smooth_px: float = 5.0
    percentile: float = 95.0
    patch_px: int = 64
    accept: tuple[str, ...] = ()
    reject: tuple[str, ...] = ()
    clear_overrides: bool = False
    recompute_references: bool = False
    dcfi_passes: int = 3
    dcfi_nonrigid_bands: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be a fraction in (0, 1), e.g. 0.17 for 17 %, got {self.threshold}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {self.statistic!r}")
        if not 0 < self.smooth_px <= 50:
            raise ValueError(f"smooth_px must be within (0, 50] px, got {self.smooth_px}")
        if not 50 <= self.percentile < 100:
            raise ValueError(f"percentile must be within [50, 100), got {self.percentile}")
        if self.patch_px < 8:
            raise ValueError(f"patch_px must be at least 8, got {self.patch_px}")
        if self.dcfi_passes < 1:
            raise ValueError(f"dcfi_passes must be at least 1, got {self.dcfi_passes}")
        both = set(map(str, self.accept)) & set(map(str, self.reject))
        if both:
            raise ValueError(f"an area cannot be both accepted and rejected: {', '.join(sorted(both))}")
        object.__setattr__(self, "accept", tuple(str(a) for a in self.accept))
        object.__setattr__(self, "reject", tuple(str(a) for a in self.reject))


@dataclass(frozen=True, eq=False)
class CurationResult:
    """What :func:`run_curation` stored: per-area decisions and per-tilt patch counts."""

    decisions: list[dict[str, Any]]
    patches: list[dict[str, Any]]
    beer_lambert: dict[str, float]

    @property
    def accepted(self) -> list[str]:
        return [d["area"] for d in self.decisions if d["accepted"]]


def area_name(value: str, names: list[str]) -> str:
    """Resolve a user's area reference (``area_007``, ``7``) against the project's areas."""
    text = str(value).strip()
    if text in names:
        return text
    if text.isdigit() and f"area_{int(text):03d}" in names:
        return f"area_{int(text):03d}"
    raise RstemError(f"no training area {text!r}; the project has {names[0]} .. {names[-1]}" if names else "no training areas")


def run_curation(
    project: Project,
    params: CurationParams | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> CurationResult:
    """Build DCFI references and decide which training areas match the tomography thickness.

    Raises
    ------
    RstemError
        No training areas or no rapid series, an unknown area in the overrides, or a series whose
        intensity cannot be calibrated against the tilt; the project is unchanged.
    """
    params = params or CurationParams()
    progress = progress or no_progress
    started = time.perf_counter()
    names = sorted(project.groups(TRAINING))
    if not names:
        raise RstemError(f"{project.path.name} has no training areas: import them with `rstem import PROJECT training FILE...`")
    if RAPID not in project:
        raise RstemError(f"{project.path.name} has no rapid series to match the training areas to: import it first")
    overrides = {} if params.clear_overrides or OVERRIDES_KEY not in project else dict(project.read_json(OVERRIDES_KEY))
    for value in params.accept:
        overrides[area_name(value, names)] = "accept"
    for value in params.reject:
        overrides[area_name(value, names)] = "reject"

    progress(0.0, "thickness of the tomography series")
    rapid = project.read_series(RAPID)
    angles = project.read_array(REFINED_ANGLES) if REFINED_ANGLES in project else rapid.angles_deg
    if len(angles) != rapid.n_frames:
        angles = rapid.angles_deg
    series_log = log_statistic(rapid.frames, params.statistic, smooth_px=params.smooth_px, percentile=params.percentile)
    try:
        fit = fit_beer_lambert(series_log, angles)
    except ValueError as exc:
        raise RstemError(str(exc)) from None
    _check(cancel)

    dcfi_settings = {"passes": params.dcfi_passes, "nonrigid_bands": params.dcfi_nonrigid_bands}
    references: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    computed: set[str] = set()
    decisions: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        _check(cancel)
        series = project.read_series(f"{TRAINING}/{name}")
        if series.frames.shape[1:] != rapid.frames.shape[1:]:
            raise RstemError(
                f"training area {name} has {series.frames.shape[1]}x{series.frames.shape[2]} px frames but the rapid "
                f"series {rapid.frames.shape[1]}x{rapid.frames.shape[2]} px"
            )
        tilt = float(series.metadata.get("stage_tilt_deg", np.median(series.angles_deg)))
        part = sub_progress(progress, 0.05 + 0.9 * i / len(names), 0.05 + 0.9 * (i + 1) / len(names))
        key = f"training/references/{name}"
        if not params.recompute_references and _reusable(project, key, dcfi_settings, series.n_frames):
            references[name] = (project.read_array(key), project.read_array(f"training/drift/{name}"), tilt)
        elif series.n_frames >= 2:
            try:
                result = dcfi(series.frames, passes=params.dcfi_passes, nonrigid_bands=params.dcfi_nonrigid_bands,
                              progress=part, cancel=cancel)
            except ValueError as exc:
                raise RstemError(f"training area {name}: {exc}") from None
            references[name] = (result.reference, result.drift_px, tilt)
            computed.add(name)
        decisions.append(_decide(name, series.frames, tilt, fit, params, overrides, rapid.frames, angles))
        if name not in references:
            decisions[-1].update(accepted=False, automatic=False,
                                 reason="a single frame: no drift-corrected reference to train against")
        part(1.0, f"{name}: {'accepted' if decisions[-1]['accepted'] else 'rejected'}")

    patches = _patch_report(decisions, references, params.patch_px, rapid.frames.shape[1:])
    accepted = [d["area"] for d in decisions if d["accepted"]]
    fit_info = {"intercept": fit.intercept, "slope": fit.slope, "residual_rms": fit.residual_rms,
                "n_frames": fit.n_frames, "statistic": params.statistic}
    _check(cancel)
    duration = time.perf_counter() - started
    with project.edit() as w:
        for name in sorted(computed):
            reference, drift, tilt = references[name]
            w.write_array(f"training/references/{name}", reference.astype(np.float32), attrs={
                "stage_tilt_deg": tilt, "n_frames": int(drift.shape[0]), "source": f"/{TRAINING}/{name}",
                "dcfi": json.dumps(dcfi_settings)})
            w.write_array(f"training/drift/{name}", drift, attrs={"columns": "dy, dx", "unit": "px"})
        w.write_json("training/decisions", decisions)
        w.write_json(ACCEPTED_KEY, accepted)
        w.write_json(OVERRIDES_KEY, overrides)
        w.write_json("training/patches", patches)
        w.set_params("training", asdict(params))
        w.set_attrs("training", {"beer_lambert": fit_info})
        w.append_log({"step": "curate", "params": asdict(params), "duration_s": round(duration, 3),
                      "outputs": ["training/references", "training/decisions", ACCEPTED_KEY],
                      "accepted": len(accepted), "areas": len(decisions)})
    progress(1.0, f"{len(accepted)} of {len(decisions)} training areas accepted")
    return CurationResult(decisions, patches, fit_info)


def _reusable(project: Project, key: str, settings: dict, n_frames: int) -> bool:
    if key not in project or f"training/drift/{key.rsplit('/', 1)[1]}" not in project:
        return False
    attrs = project.attrs(key)
    try:
        return json.loads(attrs.get("dcfi", "{}")) == settings and int(attrs.get("n_frames", -1)) == n_frames
    except (TypeError, ValueError):
        return False


def _decide(
    name: str,
    frames: np.ndarray,
    tilt: float,
    fit: BeerLambertFit,
    params: CurationParams,
    overrides: dict[str, str],
    series_frames: np.ndarray,
    series_angles: np.ndarray,
) -> dict[str, Any]:
    """One area's decision record."""
    log_values = log_statistic(frames, params.statistic, smooth_px=params.smooth_px, percentile=params.percentile)
    value = float(np.nanmedian(log_values)) if np.isfinite(log_values).any() else float("nan")
    rel = fit.relative_thickness(value, tilt) if np.isfinite(value) else float("nan")
    automatic = bool(np.isfinite(rel) and abs(rel) <= params.threshold)
    nearest = np.argsort(np.abs(np.abs(series_angles) - abs(tilt)))[:2]
    w1 = wasserstein(normalised_histogram(frames), normalised_histogram(series_frames[nearest]))
    override = overrides.get(name)
    accepted = automatic if override is None else override == "accept"
    if not np.isfinite(rel):
        reason = "no usable intensity (empty or saturated frames)"
    else:
        side = "thicker" if rel > 0 else "thinner"
        within = "within" if abs(rel) <= params.threshold else "beyond"
        reason = f"{100 * abs(rel):.0f} % {side} than the tomography area ({within} {100 * params.threshold:.0f} %)"
    if override is not None:
        reason = f"{'accepted' if accepted else 'rejected'} by the user; statistic: {reason}"
    return {
        "area": name,
        "stage_tilt_deg": tilt,
        "n_frames": int(len(frames)),
        "relative_thickness": round(rel, 4) if np.isfinite(rel) else None,
        "log_statistic": round(value, 5) if np.isfinite(value) else None,
        "series_log_statistic": round(float(fit.at(tilt)), 5),
        "wasserstein_normalised": round(w1, 5),
        "automatic": automatic,
        "accepted": bool(accepted),
        "override": override,
        "reason": reason,
    }


def _patch_report(
    decisions: list[dict[str, Any]], references: dict[str, Any], patch_px: int, shape: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Per stage tilt: accepted areas, their frames and the patches they yield."""
    per_frame = (shape[0] // patch_px) * (shape[1] // patch_px)
    out = []
    for tilt in sorted({d["stage_tilt_deg"] for d in decisions}):
        here = [d for d in decisions if d["stage_tilt_deg"] == tilt]
        acc = [d for d in here if d["accepted"] and d["area"] in references]
        frames = sum(d["n_frames"] for d in acc)
        out.append({
            "stage_tilt_deg": tilt,
            "areas": len(here),
            "accepted": len(acc),
            "frames": frames,
            "patches_per_frame": per_frame,
            "patches": frames * per_frame,
            "patch_px": patch_px,
        })
    return out


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.check()
