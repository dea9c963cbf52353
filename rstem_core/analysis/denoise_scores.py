"""Per-tilt scores of denoisers on held-out training areas (paper Tables 1-3).

A synthetic project's training areas come with their noise-free image (``/truth/training``). Some
thickness-matched areas per stage tilt are held out of training (:func:`heldout_areas`); one
rapid frame of each is denoised by every method and scored against the noise-free truth (or the
area's DCFI reference) with :mod:`.image_quality`: PSNR, SSIM and the relative width and intensity
of the dislocation lines, as mean and standard deviation over the areas of each tilt.

Conventions
-----------
* Units: every image is compared in detector units (ADU). The truth of frame ``j`` is
  ``adu_per_unit * clean`` shifted by that frame's drift ``drift_px[j]`` (cubic spline; a feature
  at ``(r, c)`` of the clean image is at ``(r + dy, c + dx)`` in the frame); the DCFI reference is
  shifted by the curation's measured drift of the frame the same way. Denoisers return frames in
  their input's units, so no image is rescaled and the PSNR peak is the reference's range.
* Tilt keys are the stage tilt rounded to an integer degree, as strings (``"0"``, ``"20"``, ...).
* The table includes the unprocessed frame as method ``"raw"``. Values that are not finite (no
  line profile could be measured, a single area has no standard deviation) are ``None``.
* The U-Net trainer must leave out the areas :func:`heldout_areas` returns (same arguments), or
  the U-Net's scores are on its own training data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import RstemError
from ..progress import CancelToken, ProgressFn, no_progress
from ..project import Project
from .image_quality import line_measures, psnr_db, ssim

METRICS = ("psnr_db", "ssim", "width_ratio", "intensity_ratio")
BASELINE_NAMES = ("bm3d", "gaussian", "median", "nlm")  # rstem_core.denoise.baselines.BASELINES
TRUTH = "truth/training"


@dataclass(frozen=True, eq=False)
class HeldOutFrame:
    """One held-out frame with its references.

    Attributes
    ----------
    area : str
        Training area name (``area_NNN``).
    tilt_deg : float
        Stage tilt, degrees.
    frame : ndarray, shape (rows, cols), float32
        The noisy rapid frame, ADU.
    truth : ndarray, shape (rows, cols), float32
        The noise-free image in the frame's geometry, ADU.
    dcfi : ndarray, shape (rows, cols), float32, or None
        The area's DCFI reference moved onto the frame, ADU (None before curation).
    """

    area: str
    tilt_deg: float
    frame: np.ndarray
    truth: np.ndarray
    dcfi: np.ndarray | None = None


def _require_truth(project: Project) -> None:
    for key in (f"{TRUTH}/matched", f"{TRUTH}/stage_tilt_deg"):
        if key not in project:
            raise RstemError(f"{project.path.name} has no {key}: not a synthetic project")


def heldout_areas(project: Project, *, per_tilt: int = 2, seed: int = 0) -> dict[float, list[str]]:
    """Training areas held out for testing the denoisers: a deterministic choice per stage tilt.

    Among the thickness-matched areas (``/truth/training/matched``) of each stage tilt, ``per_tilt``
    are drawn with ``numpy.random.default_rng([seed, tilt])``; at least one matched area stays in
    training when a tilt has two or more, and a tilt with a single matched area gives it to testing.

    Parameters
    ----------
    project : Project
        A synthetic project.
    per_tilt : int
        Areas to hold out per stage tilt (>= 1).
    seed : int
        Seed of the draw.

    Returns
    -------
    dict
        ``{stage_tilt_deg: [area names, sorted]}`` for every tilt with a matched area.

    Raises
    ------
    RstemError
        Not a synthetic project.
    ValueError
        ``per_tilt`` < 1.
    """
    if per_tilt < 1:
        raise ValueError(f"per_tilt must be >= 1, got {per_tilt}")
    _require_truth(project)
    matched = project.read_array(f"{TRUTH}/matched").astype(bool)
    tilts = project.read_array(f"{TRUTH}/stage_tilt_deg")
    out: dict[float, list[str]] = {}
    for tilt in sorted(set(np.round(tilts, 6).tolist())):
        index = np.flatnonzero(matched & np.isclose(tilts, tilt))
        if index.size == 0:
            continue
        k = min(per_tilt, max(index.size - 1, 1))
        rng = np.random.default_rng([seed, int(round(tilt * 1000)) % 2**32])
        chosen = rng.choice(index, size=k, replace=False)
        out[float(tilt)] = [f"area_{i:03d}" for i in sorted(chosen.tolist())]
    return out


def test_images(
    project: Project, areas: Iterable[str] | Mapping[Any, Sequence[str]], *, frame_index: int = 0
) -> list[HeldOutFrame]:
    """One frame of each area with its truth (and DCFI reference when curation ran), in ADU.

    Parameters
    ----------
    project : Project
        A synthetic project.
    areas : iterable of str, or the dict :func:`heldout_areas` returns
        Training area names.
    frame_index : int
        Which frame of each area (0: the first, whose drift from the truth image is smallest).

    Returns
    -------
    list of HeldOutFrame
        In the order of ``areas``.

    Raises
    ------
    RstemError
        An area without a truth image, or a frame index beyond an area's frames.
    """
    names = (
        [a for group in areas.values() for a in group]
        if isinstance(areas, Mapping)
        else list(areas)
    )
    records = []
    for name in names:
        truth_key = f"{TRUTH}/{name}"
        if f"{truth_key}/clean" not in project:
            raise RstemError(f"{project.path.name} has no truth image for {name}")
        series = project.read_series(f"raw/training/{name}")
        if not -len(series.frames) <= frame_index < len(series.frames):
            raise RstemError(
                f"{name} has {len(series.frames)} frames; frame {frame_index} does not exist"
            )
        attrs = project.attrs(truth_key)
        drift = project.read_array(f"{truth_key}/drift_px")[frame_index]
        clean = project.read_array(f"{truth_key}/clean").astype(np.float64) * float(
            attrs["adu_per_unit"]
        )
        truth = ndimage.shift(clean, drift, order=3, mode="nearest")
        dcfi = None
        if f"training/references/{name}" in project:
            ref = project.read_array(f"training/references/{name}").astype(np.float64)
            shift = (
                project.read_array(f"training/drift/{name}")[frame_index]
                if f"training/drift/{name}" in project
                else np.zeros(2)
            )
            dcfi = ndimage.shift(ref, shift, order=3, mode="nearest").astype(np.float32)
        records.append(
            HeldOutFrame(
                area=name,
                tilt_deg=float(attrs.get("stage_tilt_deg", np.nan)),
                frame=np.asarray(series.frames[frame_index], np.float32),
                truth=truth.astype(np.float32),
                dcfi=dcfi,
            )
        )
    return records


test_images.__test__ = False  # a library function, not a pytest test, when imported into tests


def image_scores(image: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """PSNR (dB), SSIM, relative line width and intensity of one image against its reference."""
    lines = line_measures(image, reference)
    return {
        "psnr_db": psnr_db(image, reference),
        "ssim": ssim(image, reference),
        "width_ratio": lines["width_ratio"],
        "intensity_ratio": lines["intensity_ratio"],
    }


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in METRICS:
        values = np.array([r[metric] for r in rows], np.float64)
        values = values[np.isfinite(values)]
        out[metric] = _finite(values.mean()) if values.size else None
        out[f"{metric}_std"] = _finite(values.std(ddof=1)) if values.size > 1 else None
    out["n_areas"] = len(rows)
    return out


def score_table(
    denoisers: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    records: Sequence[HeldOutFrame],
    *,
    reference: str = "truth",
    include_raw: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Scores of every denoiser per stage tilt, mean and standard deviation over the areas.

    Parameters
    ----------
    denoisers : dict
        ``{name: denoise(frame) -> frame}``: a (rows, cols) frame in ADU to a denoised frame of the
        same shape in ADU; callables marked by :func:`with_tilt` are called as
        ``denoise(frame, tilt_deg)``.
    records : sequence of HeldOutFrame
        The test frames (:func:`test_images`).
    reference : {"truth", "dcfi"}
        Score against the noise-free truth or the DCFI reference (records without one are skipped).
    include_raw : bool
        Add the unprocessed frame as method ``"raw"``.
    progress, cancel
        ``progress(fraction, message)`` after every image; the token is checked before each.

    Returns
    -------
    dict
        ``{method: {tilt: {"psnr_db", "ssim", "width_ratio", "intensity_ratio", each also with
        "_std", "n_areas"}}}``; tilts as strings of the integer degree, in increasing order.

    Raises
    ------
    ValueError
        Unknown reference, a denoiser that changes the frame's shape.
    RstemError
        No record has the requested reference.
    """
    if reference not in ("truth", "dcfi"):
        raise ValueError(f"reference must be 'truth' or 'dcfi', got {reference!r}")
    usable = [r for r in records if (r.truth if reference == "truth" else r.dcfi) is not None]
    if not usable:
        raise RstemError(
            f"no test image has a {reference} reference; run the training-set step first"
        )
    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    if include_raw:
        methods["raw"] = lambda frame: frame
    methods.update(denoisers)
    progress = progress or no_progress
    total = len(methods) * len(usable)
    rows: dict[str, dict[str, list[dict[str, float]]]] = {}
    done = 0
    for name, denoise in methods.items():
        per_tilt = rows.setdefault(name, {})
        for rec in usable:
            if cancel is not None:
                cancel.check()
            ref = rec.truth if reference == "truth" else rec.dcfi
            out = denoise(rec.frame, rec.tilt_deg) if getattr(denoise, "uses_tilt", False) else denoise(rec.frame)
            out = np.asarray(out, np.float64)
            if out.shape != rec.frame.shape:
                raise ValueError(
                    f"{name} returned shape {out.shape} for a frame of {rec.frame.shape}"
                )
            per_tilt.setdefault(str(int(round(rec.tilt_deg))), []).append(image_scores(out, ref))
            done += 1
            progress(done / total, f"{name}: {rec.area}")
    return {
        name: {tilt: _summary(per_tilt[tilt]) for tilt in sorted(per_tilt, key=float)}
        for name, per_tilt in rows.items()
    }


def with_tilt(denoise: Callable[[np.ndarray, float], np.ndarray]) -> Callable[[np.ndarray, float], np.ndarray]:
    """Mark a ``denoise(frame, tilt_deg)`` callable: :func:`score_table` then passes each frame's tilt."""
    denoise.uses_tilt = True  # type: ignore[attr-defined]
    return denoise


def unet_denoiser(model: Any, **options: Any) -> Callable[[np.ndarray, float], np.ndarray]:
    """``denoise(frame, tilt_deg)`` with a trained network (its line-width restoration at that tilt)."""
    from ..denoise.inference import denoise_frames

    return lambda frame, tilt_deg: denoise_frames(frame, model, tilts_deg=tilt_deg, **options)


def baseline_denoisers(
    methods: Iterable[str] | None = None,
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The non-learning baselines (default: all) with their default parameters, as frame -> frame
    callables."""
    from ..denoise.baselines import BASELINES, available_baselines, denoise_baseline

    chosen = available_baselines() if methods is None else tuple(methods)
    return {m: (lambda frame, m=m: denoise_baseline(frame, m)) for m in chosen if m in BASELINES}


def denoise_scores(
    project: Project,
    *,
    reference: str = "truth",
    per_tilt: int = 2,
    seed: int = 0,
    frame_index: int = 0,
    methods: Sequence[str] | None = None,
    unet_model: Any = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """The denoising score table of a synthetic project, as ``rstem evaluate`` reports it.

    Methods: ``raw``, the baselines (``bm3d``, ``gaussian``, ``median``, ``nlm``) and ``unet``: the
    project's trained model (``/models/denoiser``), or without one the shipped starter model that
    the denoise step then uses (said in the notes). Nothing is written to the project.

    Parameters
    ----------
    project : Project
        A synthetic project.
    reference : {"truth", "dcfi"}
        What the frames are scored against.
    per_tilt, seed
        The held-out areas (:func:`heldout_areas`).
    frame_index : int
        Which frame of each held-out area is denoised.
    methods : sequence of str, optional
        Restrict the table to these methods (``raw`` is always included); default all available.
    unet_model : DenoiserModel, optional
        The network scored as ``unet`` (default: the project's ``/models/denoiser``, else the
        shipped starter for the rapid series' pixel size).
    progress, cancel
        As :func:`score_table`.

    Returns
    -------
    dict
        ``denoise`` (the :func:`score_table`), ``denoise_reference``, ``denoise_areas``
        (``{tilt: [areas]}``), ``denoise_frame_index`` and ``denoise_notes`` (list of strings,
        e.g. why a method is missing).
    """
    known = ("raw", "unet", *BASELINE_NAMES)
    unknown = set(methods or ()) - set(known)
    if unknown:
        raise ValueError(
            f"unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(known)}"
        )
    areas = heldout_areas(project, per_tilt=per_tilt, seed=seed)
    records = test_images(project, areas, frame_index=frame_index)
    denoisers = baseline_denoisers(methods)
    notes: list[str] = []
    if methods is None and "bm3d" not in denoisers:
        notes.append("bm3d skipped: the optional package bm3d is not installed")
    want_unet = methods is None or "unet" in methods
    if want_unet and unet_model is not None:
        denoisers["unet"] = with_tilt(unet_denoiser(unet_model))
    elif want_unet:
        try:
            from ..denoise.step import project_denoiser
        except ImportError as err:
            notes.append(f"unet skipped: the denoiser modules cannot be imported ({err})")
        else:  # the network the denoise step uses: the trained model, else the shipped starter
            pixel_nm = float(project.attrs("raw/rapid")["pixel_size_nm"]) if "raw/rapid" in project else None
            model, _, used = project_denoiser(project, pixel_nm)
            notes += [f"unet: {note}" for note in used]
            denoisers["unet"] = with_tilt(unet_denoiser(model))
    table = score_table(denoisers, records, reference=reference, progress=progress, cancel=cancel)
    return {
        "denoise": table,
        "denoise_reference": reference,
        "denoise_areas": {str(int(round(t))): names for t, names in areas.items()},
        "denoise_frame_index": frame_index,
        "denoise_notes": notes,
    }
