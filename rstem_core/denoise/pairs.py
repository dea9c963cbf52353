"""Training pairs from the curated training set: patches of (noisy input, target).

Supervised (the paper's mode)
    input = one raw training frame, target = the area's DCFI reference moved into that frame's
    geometry. The *reference* is moved (cubic spline; it is smooth, so this costs almost nothing),
    never the noisy frame: interpolating a frame would smooth its noise and the network would
    learn on noise it never sees at inference, where it gets raw or distortion-corrected frames.
Noise2Noise
    input = frame i, target = frame j of the same area moved into frame i's geometry (its noise is
    independent of frame i's, so the network learns the mean; no reference needed).
Noise2Void
    input = frame with blind spots, target = the same frame (see :func:`row_blind_spot_mask`).

Drift convention (``/training/drift/area_NNN``): a feature at (r, c) of the reference is seen at
(r + dy, c + dx) in the frame, so the reference in the frame's geometry is ``shift(ref, drift)``.
Patches avoid the border band that a shift leaves without data. Each frame is normalised with its
own whole-frame range (:mod:`.normalisation`) and its target with the same range.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import RstemError
from .normalisation import frame_range, normalise

MODES = ("supervised", "noise2noise", "noise2void")
ACCEPTED_KEY = "training/accepted"


@dataclass(frozen=True, eq=False)
class TrainingArea:
    """One accepted training area as read from the project.

    Attributes
    ----------
    name : str
    frames : ndarray, shape (k, rows, cols), float32
        Raw frames (ADU).
    reference : ndarray, shape (rows, cols), float32, or None
        DCFI reference (ADU), in the geometry of zero drift.
    drift_px : ndarray, shape (k, 2)
        (dy, dx) of each frame relative to the reference, px.
    stage_tilt_deg : float
    pixel_size_nm : float or None
        Pixel size of the frames, nm (recorded with the model: a network knows the line widths
        in pixels it was trained on).
    """

    name: str
    frames: np.ndarray
    reference: np.ndarray | None
    drift_px: np.ndarray
    stage_tilt_deg: float
    pixel_size_nm: float | None = None


def accepted_areas(project) -> list[tuple[str, float]]:
    """Names and stage tilts of the accepted training areas, in name order.

    Raises
    ------
    RstemError
        The training set was not curated, or no area was accepted.
    """
    if ACCEPTED_KEY not in project:
        raise RstemError(f"{project.path.name} has no curated training set: run `rstem curate` first")
    names = sorted(str(a) for a in project.read_json(ACCEPTED_KEY))
    if not names:
        raise RstemError(f"{project.path.name}: no training area is accepted (all rejected or none imported); "
                         "accept areas with `rstem curate --accept AREA` or import matching ones")
    out = []
    for name in names:
        if f"raw/training/{name}" not in project or f"training/drift/{name}" not in project:
            raise RstemError(f"accepted training area {name} has no frames or drift in {project.path.name}: re-run `rstem curate`")
        out.append((name, _metadata_tilt(project.attrs(f"raw/training/{name}"))))
    return out


def _metadata_tilt(attrs: dict) -> float:
    import json

    try:
        return float(json.loads(attrs.get("metadata", "{}")).get("stage_tilt_deg", 0.0))
    except (TypeError, ValueError):
        return 0.0


def read_area(project, name: str, tilt: float) -> TrainingArea:
    """Read one training area's frames, reference (if any) and drift."""
    series = project.read_series(f"raw/training/{name}")
    frames = series.frames
    ref_key = f"training/references/{name}"
    reference = project.read_array(ref_key).astype(np.float32) if ref_key in project else None
    drift = np.asarray(project.read_array(f"training/drift/{name}"), dtype=np.float64)
    if drift.shape != (len(frames), 2):
        raise RstemError(f"training area {name}: drift has shape {drift.shape}, expected ({len(frames)}, 2)")
    if not np.all(np.isfinite(frames)):
        raise RstemError(f"training area {name} has NaN or infinite pixels")
    return TrainingArea(name, frames, reference, drift, tilt, float(series.pixel_size_nm))


def split_by_area(areas: list[tuple[str, float]], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out whole areas for validation, spread over the stage tilts.

    Returns (training names, validation names). With a single area both lists hold it (the
    caller then splits that area spatially, see :func:`sample_patches`).
    """
    if len(areas) < 2 or fraction <= 0:
        names = [a for a, _ in areas]
        return names, names if len(areas) < 2 else []
    n_val = min(len(areas) - 1, max(1, round(fraction * len(areas))))
    rng = np.random.default_rng(seed)
    by_tilt: dict[float, list[str]] = {}
    for name, tilt in areas:
        by_tilt.setdefault(tilt, []).append(name)
    queues = [list(rng.permutation(v)) for _, v in sorted(by_tilt.items())]
    val: list[str] = []
    while len(val) < n_val:
        for q in queues:
            if q and len(val) < n_val:
                val.append(str(q.pop()))
    return [a for a, _ in areas if a not in val], sorted(val)


def moved(image: np.ndarray, shift_px: np.ndarray) -> np.ndarray:
    """``image`` moved by (dy, dx) px: content at (r, c) lands at (r + dy, c + dx) (cubic spline)."""
    if not np.any(np.abs(shift_px) > 1e-6):
        return image.astype(np.float32, copy=True)
    return ndimage.shift(image.astype(np.float64), shift_px, order=3, mode="nearest").astype(np.float32)


def sample_patches(
    area: TrainingArea,
    mode: str,
    count: int,
    patch_px: int,
    rng: np.random.Generator,
    *,
    percentiles: tuple[float, float],
    row_band: tuple[float, float] = (0.0, 1.0),
    target: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cut ``count`` random (input, target) patch pairs from one area.

    Parameters
    ----------
    area : TrainingArea
    mode : {"supervised", "noise2noise", "noise2void"}
        How targets are made (module notes).
    count : int
        Number of pairs, spread evenly over the area's frames.
    patch_px : int
        Patch edge, px.
    rng : numpy Generator
    percentiles : (float, float)
        Normalisation percentiles of each input frame.
    row_band : (float, float)
        Fraction of the rows from which patches are cut (to split a single area spatially; a band
        shorter than a patch is extended, so on small frames the bands may overlap).
    target : {"reference"}, optional
        Override the mode's target (validation against the DCFI reference).

    Returns
    -------
    inputs : ndarray, shape (count, patch_px, patch_px), float32
    targets : ndarray of the same shape, or None for Noise2Void (the input is its own target)
    """
    kind = target or mode
    k, rows, cols = area.frames.shape
    if kind == "supervised" and area.reference is None:
        raise RstemError(f"training area {area.name} has no DCFI reference: run `rstem curate` or use noise2void")
    if min(rows, cols) < patch_px:
        raise RstemError(f"training frames of {area.name} ({rows}x{cols} px) are smaller than patch_px={patch_px}")
    ranges = frame_range(area.frames, percentiles)
    inputs = np.empty((count, patch_px, patch_px), np.float32)
    targets = None if kind == "noise2void" else np.empty_like(inputs)
    per_frame = np.bincount(rng.integers(0, k, count), minlength=k)
    i = 0
    for f in range(k):
        if per_frame[f] == 0:
            continue
        tgt, shift = None, np.zeros(2)
        if kind in ("supervised", "reference"):
            shift = area.drift_px[f]
            tgt = moved(area.reference, shift)
        elif kind == "noise2noise":
            j = int(rng.choice([x for x in range(k) if x != f])) if k > 1 else f
            shift = area.drift_px[f] - area.drift_px[j]
            tgt = moved(area.frames[j], shift)
        margin = int(math.ceil(np.max(np.abs(shift)))) + (2 if np.any(np.abs(shift) > 1e-6) else 0)
        # a row band too short for a patch grows into its neighbour (single-area splits of small frames)
        r_lo = min(max(margin, int(row_band[0] * rows)), rows - margin - patch_px)
        r_hi = max(min(rows - margin, int(row_band[1] * rows)) - patch_px, r_lo)
        c_lo, c_hi = margin, cols - margin - patch_px
        if r_lo < margin or c_hi < c_lo:
            raise RstemError(f"training area {area.name}: drift of {np.max(np.abs(shift)):.1f} px leaves no room "
                             f"for {patch_px} px patches; use a smaller patch_px")
        rs = rng.integers(r_lo, r_hi + 1, per_frame[f])
        cs = rng.integers(c_lo, c_hi + 1, per_frame[f])
        frame_n = normalise(area.frames[f:f + 1], ranges[f:f + 1])[0]
        tgt_n = None if tgt is None else normalise(tgt[None], ranges[f:f + 1])[0]
        for r, c in zip(rs, cs, strict=True):
            inputs[i] = frame_n[r:r + patch_px, c:c + patch_px]
            if targets is not None:
                targets[i] = tgt_n[r:r + patch_px, c:c + patch_px]
            i += 1
    return inputs, targets


def update_hash(digest: hashlib._Hash, area: TrainingArea) -> None:
    """Fold an area's name, frames, reference and drift into a training-data hash."""
    digest.update(area.name.encode())
    digest.update(np.ascontiguousarray(area.frames).tobytes())
    if area.reference is not None:
        digest.update(np.ascontiguousarray(area.reference).tobytes())
    digest.update(np.ascontiguousarray(area.drift_px).tobytes())


def flip_augment(inputs: np.ndarray, targets: np.ndarray | None, rng: np.random.Generator,
                 flip_x: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Random flips of a batch (batch, rows, cols): upside down (rows) always allowed, left-right
    (columns) only with ``flip_x``. Never a rotation or transpose: the rapid-scan noise is
    streaked along x and the detector afterglow trails along +x, so x and y are not exchangeable
    (and a left-right flip reverses the afterglow's direction, hence off by default)."""
    flip_r = rng.random(len(inputs)) < 0.5
    flip_c = (rng.random(len(inputs)) < 0.5) & flip_x
    out_in = inputs.copy()
    out_in[flip_r] = out_in[flip_r, ::-1, :]
    out_in[flip_c] = out_in[flip_c, :, ::-1]
    if targets is None:
        return out_in, None
    out_t = targets.copy()
    out_t[flip_r] = out_t[flip_r, ::-1, :]
    out_t[flip_c] = out_t[flip_c, :, ::-1]
    return out_in, out_t


def row_blind_spot_mask(
    batch: np.ndarray, fraction: float, run_px: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise2Void blind spots shaped as short horizontal runs.

    The rapid-scan noise is correlated along x (detector afterglow, row streaks), so masking a
    single pixel would let the network read its noise from the row neighbours. Around each
    blind-spot centre a run of ``run_px`` pixels of the same row is replaced by the pixels of a
    row one or two above or below (whose noise is independent); the loss is taken at the centre.

    Parameters
    ----------
    batch : ndarray, shape (b, rows, cols)
    fraction : float
        Share of pixels that are blind-spot centres.
    run_px : int
        Length of each masked horizontal run (odd), px.

    Returns
    -------
    masked : ndarray, shape (b, rows, cols)
        The input with the runs replaced.
    centres : ndarray of bool, shape (b, rows, cols)
        Where the loss is evaluated.
    replaced : ndarray of bool, shape (b, rows, cols)
        Every replaced pixel (rows of ``run_px``-long runs).
    """
    b, rows, cols = batch.shape
    per = max(1, int(round(fraction * rows * cols)))
    half = run_px // 2
    rr = rng.integers(2, rows - 2, (b, per)) if rows > 4 else rng.integers(0, rows, (b, per))
    cc = rng.integers(0, cols, (b, per))
    bb = np.repeat(np.arange(b)[:, None], per, axis=1)
    offs = rng.choice(np.array([-2, -1, 1, 2]), (b, per))
    donor = np.clip(rr + offs, 0, rows - 1)
    donor = np.where(donor == rr, np.clip(rr - offs, 0, rows - 1), donor)
    other = np.clip(rr - offs, 0, rows - 1)
    centres = np.zeros(batch.shape, bool)
    centres[bb, rr, cc] = True
    masked = batch.copy()
    replaced = np.zeros(batch.shape, bool)
    for o in range(-half, half + 1):
        c = np.clip(cc + o, 0, cols - 1)
        # never copy a loss pixel's own value next to it (it would leak through the copy)
        src = np.where(centres[bb, donor, c], other, donor)
        masked[bb, rr, c] = batch[bb, src, c]
        replaced[bb, rr, c] = True
    return masked, centres, replaced


def iterate_batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled index batches over ``n`` items (the last one may be smaller)."""
    order = rng.permutation(n)
    for b0 in range(0, n, batch_size):
        yield order[b0:b0 + batch_size]
