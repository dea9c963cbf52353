"""The whole refinement of a tilt series' geometry, from frames and nominal angles to results.

Stages (each a plain function of this package):

1. :func:`~.signal.alignment_signal`: what is matched; blank frames are left out.
2. :func:`~.axis.estimate_tilt_axis`: the axis direction, when it is clearly not along x.
3. :func:`~.coarse.coarse_align`: neighbour cross-correlation with cosine stretching (again on the
   frames without their scan-line streaks where neighbour pairs are too weak to trust).
4. Feature refinement, a few rounds of: reconstruct on a tall grid, detect 3D features
   (:func:`~.features.detect_features`), measure them in every frame
   (:func:`~.features.measure_features`), and solve angles, shifts and positions together
   (:func:`~.bundle.bundle_adjust`).
5. :func:`~.projmatch.projection_matching` instead, when too few features can be followed (or
   the features give angles that turn back), on a pre-filtered signal
   (:func:`~.signal.prefilter`) with the angles and shifts kept on smooth curves in time
   (:func:`~.smooth.smooth_in_time`). When the frames match their held-out re-projections too
   weakly (very noisy raw frames), the nominal angles and the coarse shifts are kept and the
   frames flagged: a fit to noise would move them further from the truth than they are.

Large frames are binned for the work (to about 256 pixels); results are given in the frames'
own pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
import scipy.ndimage as ndi

from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..recon.thickness import bin_frames, slab_extent
from ._tall import (
    frame_row_angles,
    masked_sirt,
    project_tall,
    rays_with_data,
    shift_columns,
    tall_pad_rows,
    tall_projector,
)
from .axis import estimate_tilt_axis, rotate_frames
from .bundle import (
    FrameTiming,
    bootstrap_adjust,
    bundle_adjust,
    interpolation_weights,
    next_usable,
    predict_positions,
)
from .checks import anchor_angles, check_series, residual_outliers
from .coarse import CoarseAlignment, coarse_align
from .features import Tracks, detect_features, local_orientation, measure_features
from .projmatch import projection_matching, remove_translation
from .signal import (
    CONTRASTS,
    alignment_signal,
    blank_frames,
    detect_contrast,
    prefilter,
    remove_streaks,
)

METHODS = ("auto", "features", "projection", "coarse")
_TALL_FEATURES = True
_ANCHOR_FRAMES = 1
_MIN_HALF_FRAMES = 5  # fewest frames in each half of cross-checked feature rounds

#: bits of :attr:`AlignmentResult.flags`
FLAG_EXCLUDED = 1
FLAG_OUTLIER = 2
FLAG_WEAK = 4
FLAG_NAMES = {FLAG_EXCLUDED: "excluded (blank or unusable frame)", FLAG_OUTLIER: "residual outlier",
              FLAG_WEAK: "few or no measurements"}


@dataclass(frozen=True, eq=False)
class AlignmentResult:
    """Refined geometry of a tilt series (all in the frames' own pixels and degrees).

    Attributes
    ----------
    angles_deg : ndarray, shape (n,)
        Angle of every frame at its mid-time, degrees.
    shifts_px : ndarray, shape (n, 2)
        (dy, dx): a feature expected at (r, c) (frame centre, tilt axis along x) is seen at
        ``R(tilt_axis) (r, c) + (dy, dx)``; with the axis along x simply at (r + dy, c + dx).
    tilt_axis_deg : float
        Direction of the tilt axis in the frames, degrees from +x towards +y.
    residuals_px : ndarray, shape (n,)
        RMS distance between measured and predicted feature positions per frame (NaN where the
        method gives none: excluded frames, projection matching).
    flags : ndarray, shape (n,), uint8
        Bit mask per frame, see :data:`FLAG_NAMES`.
    method : str
        ``"features"``, ``"projection"`` or ``"coarse"``.
    contrast : str
        ``"dark"`` or ``"bright"``.
    coarse_shifts_px : ndarray, shape (n, 2)
        The coarse alignment's shifts (frame pixels).
    n_features : int
        Features kept by the refinement (0 for the other methods).
    notes : list of str
        What happened, for the log.
    tracks_px : ndarray, shape (n, m, 2), optional
        The kept features as measured in every frame, (row, col) in the aligned frames' pixels
        (tilt axis along x, the frame's shift removed); NaN where a feature was not used in a
        frame. None when no features were followed.
    angle_sd_deg : ndarray, shape (n,), optional
        Standard deviation of each refined angle, degrees, from the feature solution
        (:func:`~.uncertainty.angle_sd`): the spread the frames' measurement noise leaves, relative to
        the end frames' readings. None for the other methods.
    round_angles_deg : ndarray, shape (rounds, n), optional
        The angles after each round of the feature refinement (the last row is ``angles_deg``).
        How much the last round still moved them tells how far the rounds have settled: each
        round finds its features again in a new reconstruction, and on noisy series the angles
        keep moving from round to round (default-size synthetic seeds 0 / 1 / 2, rounds 7-16:
        0.04-0.08 / 0.05-0.22 / 0.08-0.19 deg RMS a round). None for the other methods.
    """

    angles_deg: np.ndarray
    shifts_px: np.ndarray
    tilt_axis_deg: float
    residuals_px: np.ndarray
    flags: np.ndarray
    method: str
    contrast: str
    coarse_shifts_px: np.ndarray
    n_features: int = 0
    notes: list[str] = field(default_factory=list)
    tracks_px: np.ndarray | None = None
    angle_sd_deg: np.ndarray | None = None
    round_angles_deg: np.ndarray | None = None


def default_binning(shape: tuple[int, int], work_px: int = 256) -> int:
    """Binning that brings the smaller frame side to about ``work_px`` pixels (at least 1)."""
    return max(1, int(round(min(shape) / work_px)))


def neighbour_agreement(frames: np.ndarray, angles_deg: np.ndarray, *, contrast: str = "auto") -> float:
    """Share of neighbouring frame pairs whose stretched cross-correlation is trusted (0..1).

    A quick test of whether a series carries structure that persists from frame to frame: a
    denoiser that invents texture, or frames of pure noise, give few trusted pairs. Blank
    frames are left out.
    """
    check_series(frames, angles_deg)
    f = np.asarray(frames, dtype=np.float32)
    usable = ~blank_frames(f)
    if usable.sum() < 3:
        return 0.0
    if contrast == "auto":
        contrast = detect_contrast(f, usable=usable)
    small = bin_frames(alignment_signal(f, contrast=contrast, usable=usable), default_binning(f.shape[1:]))
    coarse, _ = _coarse(small, np.asarray(angles_deg, dtype=np.float64), usable, contrast, None, no_progress)
    pairs = max(int(usable.sum()) - 1, 1)
    return float(1.0 - (~coarse.trusted[usable]).sum() / pairs)


def _coarse(small: np.ndarray, angles: np.ndarray, usable: np.ndarray, contrast: str, cancel: CancelToken | None,
            progress: ProgressFn) -> tuple[CoarseAlignment, bool]:
    """The coarse alignment, and whether it was made on frames without their scan-line streaks.

    A bright-field rapid frame carries horizontal streaks (detector gain and baseline wander)
    that are independent from frame to frame; in undenoised frames they can bury the
    neighbours' correlation peaks. Where some neighbour pairs are too weak to trust, the
    alignment is made again on the frames with their streaks removed
    (:func:`~.signal.remove_streaks`), and kept when that at least halves the untrusted pairs
    (streaks were then what hid them; a pair or two more in a series too noisy to align is
    chance). Default-size synthetic series, distortion-corrected frames not denoised, seeds
    0 / 1 / 2: untrusted pairs 12 / 7 / 49 -> 5 / 2 / 12. Frames whose pairs are all trusted
    (denoised ones) are aligned exactly as before.
    """
    coarse = coarse_align(small, angles, usable=usable, contrast=contrast, cancel=cancel, progress=progress)
    weak = int((~coarse.trusted[usable]).sum())
    if contrast != "dark" or weak == 0:
        return coarse, False
    again = coarse_align(remove_streaks(small), angles, usable=usable, contrast=contrast, cancel=cancel)
    if 2 * int((~again.trusted[usable]).sum()) <= weak:
        return again, True
    return coarse, False


def _rotate_vectors(vectors: np.ndarray, angle_deg: float) -> np.ndarray:
    """(dy, dx) vectors of a frame turned by ``angle_deg`` expressed in the original frame."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    dy, dx = vectors[:, 0], vectors[:, 1]
    return np.stack([c * dy + s * dx, -s * dy + c * dx], axis=1)


def _slab_thickness_px(signal: np.ndarray, angles: np.ndarray, shifts: np.ndarray, usable: np.ndarray,
                       device: str, cancel: CancelToken | None, work_px: int = 48) -> int:
    """Thickness of the structured layer in pixels of ``signal``, from a quick reconstruction.

    The frames are binned to about ``work_px`` and reconstructed into a volume as tall as the
    frame is high; the layer where fine structure lives (:func:`rstem_core.recon.thickness.
    slab_extent`) gives the thickness.
    """
    b = default_binning(signal.shape[1:], work_px)
    small = bin_frames(signal, b)
    n, rows, cols = small.shape
    nz = rows
    pad = tall_pad_rows(rows, nz // 3, float(np.max(np.abs(angles))) + 2)
    ra = frame_row_angles(angles, rows)
    moved, valid = shift_columns(small, shifts[:, 1] / b)
    mask = rays_with_data(valid, usable, moved.shape[1])
    vol = masked_sirt(ra, moved, mask, nz, pad, dy_px=shifts[:, 0] / b, iterations=10, device=device, cancel=cancel)
    vol = vol[:, pad : pad + rows]
    fine = vol - ndi.uniform_filter(vol, size=(1, 3, 3))
    profile = (fine.astype(np.float64) ** 2).sum(axis=(1, 2))
    start, stop = slab_extent(profile)
    return max(4, (stop - start) * b)


def refine_alignment(
    frames: np.ndarray,
    angles_deg: np.ndarray,
    *,
    timestamps_s: np.ndarray | None = None,
    line_time_s: float | None = None,
    contrast: str = "auto",
    method: str = "auto",
    estimate_axis: bool = True,
    axis_search_deg: float = 90.0,
    fit_tilt_axis: bool = False,
    smooth_deg_s2: float | None = 10.0,
    smooth_shifts_px_s2: float | None = None,
    nominal_sd_deg: float = 1.0,
    thickness_px: float | None = None,
    binning: int | None = None,
    rounds: int = 3,
    polish_rounds: int = 0,
    max_features: int = 600,
    min_features: int = 12,
    split_halves: bool = False,
    bootstrap: int = 0,
    min_correlation: float = 0.2,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> AlignmentResult:
    """Refine every frame's angle and shift (and the tilt axis) from the images.

    Parameters
    ----------
    frames : ndarray, shape (n, rows, cols)
        The tilt series, tilt axis (nominally) along x.
    angles_deg : ndarray, shape (n,)
        Nominal angles, degrees, monotone.
    timestamps_s : ndarray, shape (n,), optional
        Frame start times, seconds; with ``line_time_s`` every feature is seen at the angle of
        the moment its row was scanned (time lag), and the smooth angle model works in time.
    line_time_s : float, optional
        Time per scan row, seconds.
    contrast : {"auto", "dark", "bright"}
        Dark structure on bright (bright field) or bright on dark (HAADF).
    method : {"auto", "features", "projection", "coarse"}
        ``auto`` uses features and falls back to projection matching when fewer than
        ``min_features`` can be followed.
    estimate_axis : bool
        Look for the tilt-axis direction and turn the frames when it is clearly not along x.
    axis_search_deg : float
        Largest departure of the axis from x that the search considers, degrees (90: any
        direction, for frames whose axis direction is unknown).
    fit_tilt_axis : bool
        Refine a small remaining axis rotation in the least-squares solution.
    smooth_deg_s2 : float or None
        Expected angular acceleration of the goniometer, deg/s^2 (deg per frame^2 without
        timestamps): regularises the angles towards a smooth curve; None leaves every frame free.
    smooth_shifts_px_s2 : float or None
        Expected acceleration of the specimen drift, px/s^2 (px per frame^2 without timestamps):
        regularises the shifts towards a smooth drift path (continuous tilt); None leaves every
        frame's shift free (stop-and-go series whose stage tracking jumps).
    nominal_sd_deg : float
        Expected error of the nominal angles, degrees: the feature solution pulls every angle
        towards its nominal value with this tolerance.
    thickness_px : float, optional
        Specimen thickness in pixels (estimated from the data if not given).
    binning : int, optional
        Work binning (default: frames brought to about 256 px).
    rounds : int
        Reconstruct / measure / solve rounds of the feature refinement.
    polish_rounds : int
        Rounds of projection matching of the shifts (angles kept) after a feature refinement:
        each frame is matched as a whole with the re-projection of the other frames' volume,
        which moves frames whose tracks settled together beside the frame's content. 0: none.
    max_features, min_features : int
        Most features detected (in each volume); fewest kept before falling back to projection
        matching.
    split_halves : bool
        Cross-checked feature rounds: two volumes per round, from the even and from the odd
        frames, each volume's features measured only in the other half's frames (the end frames
        in both), so that no frame's noise is confirmed by a volume it helped to make. Twice the
        reconstruction work per round.
    bootstrap : int
        Feature resamples of the last round's solution (:func:`~.bundle.bootstrap_adjust`): the
        angles and shifts become their means and the angles' standard deviations their spread,
        which counts the errors that follow a feature through the series. 0: one solution, with
        the standard deviations of its curvature; 1 is an error (one resample has no spread).
    min_correlation : float
        Projection matching is trusted only when the frames' median correlation with their
        held-out re-projections reaches this; below it the frames are too noisy to tell their
        angles and shifts better than the nominal angles and the coarse alignment, which are
        kept (and the frames flagged as weak).
    device : str
        Torch device for the reconstructions (``"cpu"``, ``"cuda"``, ``"auto"``).

    Returns
    -------
    AlignmentResult

    Raises
    ------
    ValueError
        Fewer than 3 frames (or usable frames), angles not monotone, unknown options.
    """
    check_series(frames, angles_deg)
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {', '.join(CONTRASTS)}, got {contrast!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if bootstrap == 1 or bootstrap < 0:
        raise ValueError(f"bootstrap must be 0 (one solution) or at least 2 resamples, got {bootstrap}")
    progress = progress or no_progress
    notes: list[str] = []
    f = np.asarray(frames, dtype=np.float32)
    nominal = np.asarray(angles_deg, dtype=np.float64)
    n, rows, cols = f.shape
    blank = blank_frames(f)
    usable = ~blank
    if blank.any():
        notes.append(f"frames left out as blank: {', '.join(str(int(i)) for i in np.flatnonzero(blank))}")
    if usable.sum() < 3:
        raise ValueError(f"only {int(usable.sum())} of {n} frames hold an image; at least 3 are needed")
    if contrast == "auto":
        contrast = detect_contrast(f, usable=usable)
        notes.append(f"contrast detected: {contrast}")
    signal = alignment_signal(f, contrast=contrast, usable=usable)
    progress(0.05, "alignment signal ready")

    # tilt axis
    axis = 0.0
    if estimate_axis:
        best, tried = estimate_tilt_axis(signal, nominal, usable=usable, max_abs_deg=axis_search_deg,
                                         progress=sub_progress(progress, 0.05, 0.2), cancel=cancel)
        at_zero = tried.get(0.0, min(tried.values()))
        if min(tried.values()) < 0.8 * at_zero and abs(best) > 1.0:
            axis = best
            notes.append(f"tilt axis found at {axis:.1f} deg from x; frames turned to put it along x")
    work = rotate_frames(signal, axis) if axis else signal
    timed = timestamps_s is not None and line_time_s is not None and abs(axis) < 1.0
    b = binning or default_binning((rows, cols))
    small = bin_frames(work, b)
    _, r_b, c_b = small.shape
    ts = np.asarray(timestamps_s, float) if timed else None
    lt = float(line_time_s) * b if timed else None
    timing = FrameTiming(ts, lt, r_b) if timed else None

    coarse, destreaked = _coarse(small, nominal, usable, contrast, cancel, sub_progress(progress, 0.2, 0.3))
    if destreaked:
        notes.append("coarse alignment on the frames with their scan-line streaks removed")
    shifts = coarse.shifts_px.copy()
    angles = nominal.copy()
    untrusted = int((~coarse.trusted[usable]).sum())
    if untrusted:
        notes.append(f"coarse alignment: {untrusted} neighbour pairs too weak to trust")
    if method == "auto" and untrusted > 0.5 * (int(usable.sum()) - 1):
        # most neighbours do not even agree with each other: no structure persists through the
        # series, and a fit of angles to it would only move them further from the truth
        notes.append("most frames do not correlate with their neighbours: the nominal angles and the "
                     "coarse shifts are kept")
        method = "coarse"
    if thickness_px is None:
        nz_slab = _slab_thickness_px(small, angles, shifts, usable, device, cancel)
    else:
        nz_slab = max(4, int(round(thickness_px / b)))
    nz = int(math.ceil(nz_slab * 1.2)) + 4
    progress(0.35, f"volume {nz} px thick for the refinement")

    used_method = "coarse" if method == "coarse" else None
    tracks_binned = None
    angle_sd = None
    round_angles = None
    residuals = np.full(n, np.nan)
    weak = np.zeros(n, dtype=bool)
    n_kept = 0
    if split_halves and usable.sum() < _MIN_HALF_FRAMES * 2:
        split_halves = False
        notes.append(f"{int(usable.sum())} usable frames: too few to split into halves, one volume per round")
    if method in ("auto", "features"):
        outcome = _feature_rounds(
            small, angles, shifts, nominal, usable, nz, nz_slab, timing, contrast, smooth_deg_s2,
            fit_tilt_axis, rounds, max_features, device, sub_progress(progress, 0.35, 0.95), cancel,
            shift_smooth=None if smooth_shifts_px_s2 is None else smooth_shifts_px_s2 / b,
            nominal_sd=nominal_sd_deg, split_halves=split_halves, bootstrap=bootstrap,
        )
        n_kept = outcome["kept"]
        d = np.diff(outcome["angles"][usable])
        monotone = bool(np.all(d > 0) or np.all(d < 0))
        if method == "auto" and n_kept >= min_features and not monotone:
            notes.append(f"feature refinement ({n_kept} features) gave angles that turn back: projection "
                         "matching instead")
        elif n_kept >= min_features or method == "features":
            angles, shifts = outcome["angles"], outcome["shifts"]
            axis += outcome["axis"]
            residuals = outcome["residuals"] * b
            weak = outcome["weak"]
            tracks_binned = outcome["tracks"]
            angle_sd = outcome["angle_sd"]
            round_angles = outcome["history"]
            used_method = "features"
            notes.append(f"feature refinement: {n_kept} features kept")
            if polish_rounds > 0:
                # the tracks of a frame can settle, all together, a pixel or two beside where the
                # frame's content is (in a noisy frame each feature locks onto the noise next to
                # its prediction); matching the whole frame with its re-projection cannot
                progress(0.95, "matching the frames with their re-projections")
                shifts = projection_matching(
                    prefilter(small, contrast), angles, shifts, nz, usable=usable, timestamps_s=ts, line_time_s=lt,
                    fit_angles=False, smooth_px_s2=None if smooth_shifts_px_s2 is None else smooth_shifts_px_s2 / b,
                    iterations=polish_rounds, device=device, cancel=cancel,
                ).shifts_px
                notes.append(f"shifts polished by {polish_rounds} rounds of projection matching")
        else:
            notes.append(f"only {n_kept} features could be followed (< {min_features}): projection matching instead")
    if used_method is None:
        matched = prefilter(small, contrast)
        match = projection_matching(
            matched, angles, shifts, nz, usable=usable, timestamps_s=ts, line_time_s=lt,
            smooth_deg_s2=smooth_deg_s2,
            smooth_px_s2=None if smooth_shifts_px_s2 is None else smooth_shifts_px_s2 / b,
            device=device, progress=sub_progress(progress, 0.35, 0.95), cancel=cancel,
        )
        corr = match.correlation
        typical = float(np.nanmedian(corr[usable])) if np.isfinite(corr[usable]).any() else 0.0
        used_method = "projection"
        if typical >= min_correlation:
            angles = anchor_angles(match.angles_deg, nominal, usable)
            shifts = match.shifts_px
            weak = usable & ~(corr > 0.05)
        else:
            weak = usable.copy()
            notes.append(
                f"frames match their re-projections too weakly (median correlation {typical:.2f} < "
                f"{min_correlation}): the nominal angles and the coarse shifts are kept; denoise the "
                "series first for a better refinement"
            )
    d = np.diff(angles[usable])
    if used_method != "coarse" and not (np.all(d > 0) or np.all(d < 0)):
        notes.append(f"the {used_method} refinement gave angles that turn back: the nominal angles and the "
                     "coarse shifts are kept")
        angles, shifts = nominal.copy(), coarse.shifts_px.copy()
        residuals = np.full(n, np.nan)
        angle_sd = round_angles = None
        weak = usable.copy()
        used_method = "coarse"
    progress(0.97, "collecting results")
    ref = int(np.argmin(np.where(usable, np.abs(angles), np.inf)))
    shifts[usable] = remove_translation(shifts[usable], angles[usable], int(np.sum(usable[:ref])))
    shifts[~usable] = 0.0
    full_shifts = _rotate_vectors(shifts * b, -axis) if axis else shifts * b
    coarse_full = _rotate_vectors(coarse.shifts_px * b, -axis) if axis else coarse.shifts_px * b
    flags = np.zeros(n, dtype=np.uint8)
    flags[~usable] |= FLAG_EXCLUDED
    flags[weak & usable] |= FLAG_WEAK
    flags[residual_outliers(residuals) & usable] |= FLAG_OUTLIER
    tracks = None
    if used_method == "features" and tracks_binned is not None:
        # binned (row, col) of the turned frames -> full pixels of the aligned frames
        tracks = (tracks_binned - shifts[:, None, :]) * b + (b - 1) / 2
    if angle_sd is not None and np.isfinite(angle_sd[usable]).any():
        spread = f" over {bootstrap} feature resamples" if bootstrap >= 2 else ""
        notes.append(f"angles known to {np.nanmedian(angle_sd[usable]):.2f} deg (median standard deviation{spread}; "
                     f"largest {np.nanmax(angle_sd[usable]):.2f} deg) relative to the end frames' readings")
    change = last_round_change_deg(round_angles, usable)
    if change is not None:
        notes.append(f"the last feature round moved the angles by {change:.2f} deg RMS (how far the rounds "
                     "have settled)")
    return AlignmentResult(angles, full_shifts, float(axis), residuals, flags, used_method, contrast,
                           coarse_full, n_kept, notes, tracks, angle_sd, round_angles)


def last_round_change_deg(round_angles_deg: np.ndarray | None, usable: np.ndarray | None = None) -> float | None:
    """RMS change of the angles (degrees) between the last two feature rounds; None with fewer."""
    if round_angles_deg is None or len(round_angles_deg) < 2:
        return None
    a = np.asarray(round_angles_deg, dtype=np.float64)
    keep = np.ones(a.shape[1], dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    return float(np.sqrt(np.mean((a[-1, keep] - a[-2, keep]) ** 2)))


def _feature_rounds(small, angles, shifts, nominal, usable, nz, nz_slab, timing, contrast, smooth, fit_axis,
                    rounds, max_features, device, progress, cancel, model_snr: float = 6.0,
                    shift_smooth: float | None = None, nominal_sd: float = 1.0, split_halves: bool = False,
                    bootstrap: int = 0) -> dict:
    """Rounds of reconstruct / detect / measure / solve on the binned signal.

    With ``split_halves`` every round reconstructs two volumes, one from each half of the frames
    (even and odd), and measures each volume's features only in the other half's frames (see
    :func:`frame_halves`): no frame is then measured against a volume that its own noise helped
    to make, which otherwise confirms that noise round after round.

    With ``bootstrap`` (2 or more) the last round's solution is replaced by its mean over that
    many feature resamples, and its standard deviations by theirs (:func:`~.bundle.bootstrap_adjust`).
    """
    n, rows, cols = small.shape
    angles, shifts = angles.copy(), shifts.copy()
    pad = tall_pad_rows(rows, nz, float(np.max(np.abs(nominal))) + 2.0)
    width = 0.9 if contrast == "dark" else max(1.0, min(rows, cols) / 128)
    spacing = max(3.0, 4 * width)
    axis = 0.0
    result = None
    kept = 0
    history = []
    measured = remove_streaks(small) if contrast == "dark" else small
    groups = frame_halves(usable) if split_halves else [(usable, usable)]
    vols: list[np.ndarray | None] = [None] * len(groups)
    z_edge = max(1, (nz - nz_slab) // 2)
    region = (slice(z_edge, nz - z_edge), slice(None) if _TALL_FEATURES else slice(pad, pad + rows), slice(None))
    for k in range(max(1, rounds)):
        if cancel is not None:
            cancel.check()
        ra = frame_row_angles(angles, rows, timestamps_s=None if timing is None else timing.timestamps_s,
                              line_time_s=None if timing is None else timing.line_time_s)
        moved, valid = shift_columns(small, shifts[:, 1])
        projector = tall_projector(ra, cols, nz, pad, dy_px=shifts[:, 0], device=device)
        found = []
        for g, (built, seen) in enumerate(groups):
            mask = rays_with_data(valid, built, moved.shape[1])
            vols[g] = masked_sirt(ra, moved, mask, nz, pad, iterations=20 if vols[g] is None else 8, start=vols[g],
                                  cancel=cancel, projector=projector)
            proj = project_tall(vols[g], ra, projector=projector)
            models = np.stack([ndi.shift(proj[i], (0.0, shifts[i, 1]), order=1, mode="nearest") for i in range(n)])
            tall = vols[g].shape[1]
            zyx = detect_features(vols[g], scale_px=width, spacing_px=spacing, max_features=max_features,
                                  region=region)
            points = np.stack([zyx[:, 2] - (cols - 1) / 2, zyx[:, 1] - (tall - 1) / 2, zyx[:, 0] - (nz - 1) / 2],
                              axis=1)
            pred = _predict(points, angles, shifts, (rows, cols), axis, timing, usable)
            normal, coherence = local_orientation(models, pred)
            search = 3 if k == 0 else 2
            followed = measure_features(measured, pred, normal, coherence, width_px=width, search_px=search,
                                        along_px=max(3, int(round(6 * width))))
            # a feature counts in a frame only where the model shows it clearly: in a noisy frame
            # the best match of a line that is not there is just the strongest noise nearby
            shown = measure_features(models, pred, normal, coherence, width_px=width, search_px=search, min_snr=0.0)
            found.append((_only(followed, seen[:, None] & (shown.score >= model_snr)), points))
        tracks = _joined([t for t, _ in found])
        points = np.concatenate([p for _, p in found])
        last = k == max(1, rounds) - 1
        options = dict(nominal_angles_deg=nominal, usable=usable, timing=timing, smooth_deg_s2=smooth,
                       fit_tilt_axis=fit_axis, tilt_axis_deg=axis, point_sigma_px=3.0,
                       smooth_shifts_px_s2=shift_smooth, anchor_frames=_ANCHOR_FRAMES, nominal_sigma_deg=nominal_sd)
        result = bundle_adjust(tracks, angles, shifts, points, (rows, cols), uncertainty=last and bootstrap < 2,
                               **options)
        if last and bootstrap >= 2:
            result = bootstrap_adjust(tracks, result, (rows, cols), resamples=bootstrap, cancel=cancel,
                                      progress=sub_progress(progress, (k + 0.5) / rounds, (k + 1) / rounds), **options)
        angles, shifts, axis = result.angles_deg.copy(), result.shifts_px.copy(), result.tilt_axis_deg
        history.append(angles.copy())
        kept = int(result.kept_features.sum())
        # the slab's middle at depth zero: a pure gauge move (depth z0 <-> shifts -z0 sin(theta))
        z = result.points_px[result.kept_features, 2]
        if z.size >= 4:
            zc = 0.5 * (np.percentile(z, 5) + np.percentile(z, 95))
            shifts[:, 0] -= zc * np.sin(np.deg2rad(angles))
        progress((k + 1) / rounds, f"feature refinement: round {k + 1}/{rounds}, {kept} features")
        if kept < 4:
            break
    counts = result.used.sum(axis=1) if result is not None else np.zeros(n)
    weak = counts < max(3, 0.1 * np.median(counts[usable])) if result is not None else np.ones(n, dtype=bool)
    residuals = result.frame_residual_px if result is not None else np.full(n, np.nan)
    followed = None
    if result is not None and kept > 0:
        keep = result.kept_features
        followed = np.where(result.used[:, keep, None], tracks.positions_px[:, keep], np.nan)
    sd = result.angle_sd_deg if result is not None else np.full(n, np.nan)
    return {"angles": angles, "shifts": shifts, "axis": axis, "kept": kept, "residuals": residuals, "weak": weak,
            "tracks": followed, "angle_sd": sd, "history": np.array(history) if history else None}


def frame_halves(usable: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two halves of the usable frames for cross-checked feature rounds.

    Returns ``[(built, seen), (built, seen)]``: one volume is built from the even usable frames
    and its features are seen (measured) in the odd ones, the other the reverse. The first and
    last usable frame, which fix the angles' common offset, are measured against both volumes
    (measured only against the other half, default-size synthetic series sat 0.3-0.5 deg off
    the truth as a whole: with an odd number of frames both ends lie in one half).
    """
    usable = np.asarray(usable, dtype=bool)
    order = np.flatnonzero(usable)
    even = np.zeros_like(usable)
    even[order[::2]] = True
    odd = usable & ~even
    ends = np.zeros_like(usable)
    ends[order[[0, -1]]] = True
    return [(even, odd | ends), (odd, even | ends)]


def _joined(parts: list[Tracks]) -> Tracks:
    """Tracks of several feature sets side by side (the same frames)."""
    if len(parts) == 1:
        return parts[0]
    return Tracks(**{f.name: np.concatenate([getattr(t, f.name) for t in parts], axis=1)
                     for f in fields(Tracks)})


def _only(tracks: Tracks, keep: np.ndarray) -> Tracks:
    """The same tracks with only the measurements where ``keep`` (n, m) is true left valid."""
    return replace(tracks, valid=tracks.valid & keep)


def _predict(points, angles, shifts, shape, axis, timing, usable):
    """Predicted (row, col) with each feature at the angle of its own scan row (time lag)."""
    pred = predict_positions(points, angles, shifts, shape, tilt_axis_deg=axis)
    if timing is None:
        return pred
    n, m = pred.shape[:2]
    frame = np.repeat(np.arange(n), m)
    k, w = interpolation_weights(timing, frame, np.nan_to_num(pred[..., 0]).ravel(), n, usable)
    k2 = next_usable(usable)[k]
    row_angles = ((1 - w) * angles[k] + w * angles[k2]).reshape(n, m)
    return predict_positions(points, angles, shifts, shape, tilt_axis_deg=axis, row_angles_deg=row_angles)
