"""The tilt-refinement step: read the most processed rapid series, refine its geometry, store.

Input (``source="auto"``): ``/processed/denoised``, else ``/processed/corrected`` (distortion
corrected), else ``/raw/rapid``; the choice is recorded. Denoised frames that do not correlate with their
neighbours (a denoiser that invents texture in very noisy frames) while the undenoised ones do
are not trusted for the geometry: it is then refined on the undenoised series, said so in the
notes, and the aligned series is still made of the denoised frames. The science is in
:func:`rstem_core.align.refine_alignment`; this module only reads and writes the project, all
in one transaction at the end (a cancel or an error leaves the project unchanged).

Output
------
``/processed/alignment`` (group; ``attrs['params']`` = :class:`RefineParams`)
    ``angles_deg`` (n,)
        Refined angle of every frame at its mid-time (the reconstruction interpolates the
        angle of every scan row from these and the frame timestamps).
    ``shifts_px`` (n, 2)
        (dy, dx): a feature expected at (r, c) is seen at (r + dy, c + dx) (after turning by
        ``tilt_axis_deg`` about the frame centre when that is not zero).
    ``residuals_px`` (n,)
        RMS misfit of the feature positions per frame, across the measured structure (NaN where
        none, e.g. projection matching).
    ``flags`` (n,) uint8
        Bit 1 excluded (blank frame), bit 2 residual outlier, bit 4 few measurements; the
        legend is in ``attrs['flag_bits']``.
    ``nominal_angles_deg`` (n,), ``coarse_shifts_px`` (n, 2)
        The starting angles and the coarse alignment, for comparison.
    ``angle_sd_deg`` (n,), when features were followed
        Standard deviation of each refined angle (degrees) that the frames' measurement noise
        leaves, relative to the end frames' readings (NaN for excluded frames).
    ``round_angles_deg`` (rounds, n), when features were followed
        The angles after each round of the feature refinement (the last row is ``angles_deg``):
        the change over the last round shows how far the rounds have settled.
    ``tracks_px`` (n, m, 2), when features were followed
        Each kept feature's measured (row, col) in every frame of ``/processed/aligned`` (NaN
        where it was not used).
    attrs
        ``tilt_axis_deg``, ``method``, ``source``, ``contrast``, ``n_features``, ``notes``
        (JSON list), ``gauge`` (how the absolute angle and position were fixed).
``/processed/aligned``
    The source series with the shifts removed and the axis along x, its ``angles_deg`` the
    refined ones, same timestamps and line time (no line time when the frames had to be turned
    by more than a degree, since rows are then no longer scan lines).
``/log``
    One entry ``{"step": "refine", ...}`` with the parameters, source, method and duration.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import numpy as np

from .align import METHODS, AlignmentResult, apply_alignment, refine_alignment
from .align.refine import FLAG_NAMES
from .align.signal import CONTRASTS
from .errors import RstemError
from .model import TiltSeries
from .progress import CancelToken, ProgressFn, no_progress, sub_progress
from .project import Project, pick_series

SOURCES = {"denoised": "processed/denoised", "corrected": "processed/corrected", "raw": "raw/rapid"}
OUTPUT = "processed/alignment"
ALIGNED = "processed/aligned"
GAUGE = (
    "mean of the first and last frames' angles = mean of their nominal angles; zero shift for the "
    "frame nearest 0 deg (x, and y at that frame's angle); depth origin in the middle of the "
    "features' depth range (the slab centre)"
)


@dataclass(frozen=True)
class RefineParams:
    """Parameters of the tilt-refinement step.

    Attributes
    ----------
    method : {"auto", "features", "projection", "coarse"}
        ``auto``: feature refinement, or projection matching when too few features can be
        followed; ``coarse``: cross-correlation only (nominal angles kept).
    source : {"auto", "denoised", "corrected", "raw"}
        Which version of the rapid series to refine; ``auto`` takes the most processed.
    contrast : {"auto", "dark", "bright"}
        Dark structure on a bright background (bright field) or the reverse (HAADF).
    find_tilt_axis : bool
        Look for the tilt-axis direction in the images and turn the frames when it clearly is
        not along x (for files that do not say, or say wrongly).
    axis_search_deg : float
        Largest departure of the tilt axis from x the search considers, degrees. Import has
        already turned the frames by the axis direction the file recorded, so only a remaining
        small error is looked for by default; 90 searches every direction (files that do not say).
    fit_tilt_axis : bool
        Also refine a small remaining axis rotation in the least-squares solution.
    smooth_angles : bool
        Regularise the angles towards a smooth angle-against-time curve (continuous tilt).
    angle_acceleration_deg_s2 : float
        Expected angular acceleration of the goniometer, deg/s^2 (deg per frame^2 when the
        series has no timestamps): larger lets the angles follow the data more freely. The
        synthetic goniometer's accelerations are 7-10 deg/s^2 RMS (up to 30-40 in its start and
        stop, which the model allows ten times this at the series' ends); default-size series
        with a 1 deg nominal-angle tolerance, seeds 0 / 1 / 2: 0.146 / 0.273 / 0.549 deg at 30,
        0.111 / 0.255 / 0.233 deg at 10 (one volume per round). With the cross-checked halves,
        seeds 0-5: 0.092 / 0.185 / 0.129 / 0.265 / 0.232 / 0.149 deg at 5, 0.134 / 0.199 /
        0.264 / 0.319 / 0.164 / 0.178 deg at 10; seeds 3 / 4 0.286 / 0.178 deg at 3. A prior
        tighter than the goniometer's own accelerations wins because the measurements scatter
        more than their claimed precision (by 1.4 near zero tilt to 3-5 at 65 deg, measured
        against the noise-free frames), so the data's weight is too high by that much.
    nominal_angle_sd_deg : float
        How far the goniometer's reported angles are expected to be from the true ones, degrees
        (one standard deviation): every angle is pulled towards its nominal value with this
        tolerance, which keeps angles that the features hardly constrain (a thin slab near zero
        tilt, few features in a small noisy series) from wandering off along with the shifts.
        Only the scatter about the readings' common offset is pulled (the offset is fixed by the
        end frames). Larger trusts the images more. Default-size synthetic series (nominal
        angles 0.72 deg RMS off), with the acceleration at 30 deg/s^2: seed 0 0.140 / 0.146 /
        0.123 deg at 5 / 1 / 0.5 deg, seed 1 0.397 / 0.273 / 0.506 deg.
    drift_acceleration_px_s2 : float or None
        Expected acceleration of the specimen drift in frame pixels per s^2 for a continuously
        tilted series (one with frame timestamps): the shifts follow a smooth drift path, which
        keeps the dark high-tilt frames from wandering (default size synthetic series, seed 0,
        8 rounds: shift error 0.26 px at 20 px/s^2, 0.16 px at 5). Series without timestamps (stop-and-go,
        whose stage corrections jump) and None leave every frame's shift free.
    min_correlation : float
        Fewest median correlation of the frames with their held-out re-projections for which
        projection matching is trusted; below it the nominal angles and coarse shifts are kept.
    thickness_nm : float or None
        Specimen thickness; None estimates it from the data.
    binning : int
        Work binning; 0 brings the frames to about 256 px.
    rounds : int
        Reconstruct / measure / solve rounds of the feature refinement; each round finds the
        features again in a sharper reconstruction (default size synthetic series, seed 0: angle
        error 0.19 deg after 3 rounds, 0.11-0.14 deg after 8). On noisy series the rounds do not
        settle on one answer: over 16 rounds, seeds 0 / 1 / 2 averaged 0.115 / 0.209 / 0.258 deg
        over rounds 7-12, and from round 7 on each round moved them by 0.04-0.08 / 0.05-0.22 /
        0.08-0.19 deg RMS.
    polish_rounds : int
        After the feature refinement, rounds of projection matching of the shifts alone: each
        frame is matched as a whole with the re-projection of a volume made from the others. In
        a noisy frame every feature's track can settle on the noise next to its prediction, so a
        frame's tracks may agree with each other a pixel or two beside its content; the whole
        frame cannot. Default-size synthetic series, seeds 0 / 1 / 2, shift error 0.25 / 0.56 /
        0.43 px without, 0.11 / 0.29 / 0.31 with 2 rounds, 0.12 / 0.21 / 0.31 with 4 (angles
        unchanged; about 36 s of a 153 s refinement on 2 cores). 0: none.
    max_features : int
        Most 3D features followed.
    min_features : int
        Fewest features kept before falling back to projection matching.
    split_halves : bool
        Cross-checked feature rounds: every round reconstructs one volume from the even and one
        from the odd frames, and measures each volume's features only in the other half's frames
        (the first and last frame, which fix the angles' common offset, in both). A volume made
        of the very frames it is measured on confirms their noise: the rounds then settle where
        the noise put them. Twice the reconstruction work of a round (the default-size
        refinement of seed 4 takes 105 s instead of 78 s alone on 2 cores). Default-size
        synthetic series, seeds 0-5 (pipeline projects, denoised frames), at 5 deg/s^2: angles
        0.092 / 0.185 / 0.129 / 0.265 / 0.232 / 0.149 deg RMS, shifts 0.18 / 0.22 / 0.35 / 0.25
        / 0.37 / 0.53 px; one volume 0.151 / 0.261 / 0.184 / 0.472 / 0.290 / 0.145 deg, 0.15 /
        0.31 / 0.42 / 0.39 / 0.44 / 0.79 px. At 10 deg/s^2: the halves 0.134 / 0.199 / 0.264 /
        0.319 / 0.164 / 0.178 deg, one volume 0.097 / 0.231 / 0.221 / 0.705 / 0.424 / 0.188 deg.
    bootstrap_resamples : int
        Feature bootstrap of the last round: its least-squares solution is solved again on this
        many resamples of the features (drawn with replacement, the same draws every run); the
        angles and shifts are the resamples' means and each angle's standard deviation their
        spread. The curvature's standard deviation counts random measurement errors only: on
        default-size synthetic series (seeds 0-5, pipeline projects, denoised frames) the actual
        errors about their common offset were 1.3 / 2.2 / 0.85 / 2.6 / 2.0 / 1.3 times it, and
        0.5-1.1 times the spread of 16 resamples. Angles 0.091 / 0.153 / 0.119 / 0.234 / 0.187 /
        0.142 deg RMS with 16 resamples (better than one solution on all six), 0.092 / 0.185 /
        0.129 / 0.265 / 0.232 / 0.149 deg without. The mean of few resamples carries their own
        scatter (about the spread over the root of their number): the first 8 of these draws
        gave 0.097 / 0.143 / 0.133 / 0.221 / 0.143 / 0.153 deg, the other 8 0.100 / 0.175 /
        0.120 / 0.264 / 0.242 / 0.135; 48 (these 16 and 32 more) 0.092 / 0.155 / 0.129 / 0.254 /
        0.209 / 0.124 deg, RMS over the six 0.170 against 0.161 with 16 and 0.185 without, so
        part of the 16's gain is the luck of their draws. About 2-3 s per resample at the
        default size. 0: one solution, with the curvature's standard deviations.
    device : str
        ``"auto"`` (GPU when present), ``"cpu"`` or ``"cuda"``, for the reconstructions.
    """

    method: str = "auto"
    source: str = "auto"
    contrast: str = "auto"
    find_tilt_axis: bool = True
    axis_search_deg: float = 20.0
    fit_tilt_axis: bool = False
    smooth_angles: bool = True
    angle_acceleration_deg_s2: float = 5.0
    nominal_angle_sd_deg: float = 1.0
    drift_acceleration_px_s2: float | None = 5.0
    min_correlation: float = 0.2
    thickness_nm: float | None = None
    binning: int = 0
    rounds: int = 8
    polish_rounds: int = 4
    max_features: int = 600
    min_features: int = 12
    split_halves: bool = True
    bootstrap_resamples: int = 16
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.source != "auto" and self.source not in SOURCES:
            raise ValueError(f"source must be auto or one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.contrast not in CONTRASTS:
            raise ValueError(f"contrast must be one of {', '.join(CONTRASTS)}, got {self.contrast!r}")
        if not self.angle_acceleration_deg_s2 > 0:
            raise ValueError(f"angle_acceleration_deg_s2 must be positive, got {self.angle_acceleration_deg_s2}")
        if not self.nominal_angle_sd_deg > 0:
            raise ValueError(f"nominal_angle_sd_deg must be positive, got {self.nominal_angle_sd_deg}")
        if self.drift_acceleration_px_s2 is not None and not self.drift_acceleration_px_s2 > 0:
            raise ValueError(f"drift_acceleration_px_s2 must be positive, got {self.drift_acceleration_px_s2}")
        if self.thickness_nm is not None and not self.thickness_nm > 0:
            raise ValueError(f"thickness_nm must be positive, got {self.thickness_nm}")
        if self.binning < 0:
            raise ValueError(f"binning must be 0 (automatic) or positive, got {self.binning}")
        if not 0 <= self.axis_search_deg <= 90:
            raise ValueError(f"axis_search_deg must lie in [0, 90], got {self.axis_search_deg}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {self.rounds}")
        if self.polish_rounds < 0:
            raise ValueError(f"polish_rounds must be 0 or more, got {self.polish_rounds}")
        if self.max_features < 1 or self.min_features < 0:
            raise ValueError("max_features must be >= 1 and min_features >= 0")
        if self.bootstrap_resamples == 1 or self.bootstrap_resamples < 0:
            raise ValueError(f"bootstrap_resamples must be 0 (off) or at least 2, got {self.bootstrap_resamples}")


def choose_source(project: Project, source: str = "auto") -> str:
    """The project key of the rapid series to refine (the most processed one for ``auto``)."""
    return pick_series(project, SOURCES, source, "to refine")


def _trustworthy_source(project: Project, denoised: TiltSeries, progress: ProgressFn) -> tuple[str, TiltSeries, str]:
    """The denoised series, unless its frames do not correlate with their neighbours (a denoiser
    that invents texture) while the undenoised ones do: then those, with a note saying why."""
    from .align import neighbour_agreement

    progress(0.0, "checking that the denoised frames agree with their neighbours")
    agree = neighbour_agreement(denoised.frames, denoised.angles_deg)
    if agree >= 0.5:
        return SOURCES["denoised"], denoised, ""
    alternative = SOURCES["corrected"] if SOURCES["corrected"] in project else SOURCES["raw"]
    other = project.read_series(alternative)
    other_agree = neighbour_agreement(other.frames, other.angles_deg)
    if other_agree <= agree:
        return SOURCES["denoised"], denoised, ""
    return alternative, other, (
        f"the denoised frames agree with their neighbours in {agree:.0%} of the pairs, /{alternative} in "
        f"{other_agree:.0%}: refined on /{alternative}; the aligned series is still made of the denoised frames")


def plain_network_output(series: TiltSeries) -> tuple[np.ndarray, str]:
    """The frames to measure positions on: a denoised series without its line-width restoration.

    The high-boost filter that gives denoised lines their width back also sharpens the noise the
    network left; feature positions measured on it are worse (default-size synthetic series,
    seed 0: angle error 0.19 deg on the restored frames, 0.14 deg on the network output). The
    filter is undone exactly (:func:`~rstem_core.denoise.sharpen.undo_high_boost`).
    """
    record = series.metadata.get("width_restoration")
    if not isinstance(record, dict) or "gains" not in record:
        return series.frames, ""
    gains = np.asarray(record["gains"], dtype=np.float64)
    if gains.shape != (series.n_frames,) or not np.any(gains > 0):
        return series.frames, ""
    from .denoise.sharpen import undo_high_boost

    frames = undo_high_boost(series.frames, float(record["sigma_px"]), gains)
    return frames, "positions measured on the network output before its line-width restoration"


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def refine_frames(
    frames: np.ndarray,
    series: TiltSeries,
    params: RefineParams,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> AlignmentResult:
    """Refine ``frames`` (the shape of ``series``) with the step's parameters, storing nothing.

    ``series`` gives the nominal angles, the timestamps, the line time and the pixel size; the
    frames may be any version of it (the step passes the denoiser's plain output; the angle
    limits (:mod:`rstem_core.analysis.angle_limits`) pass noise-free or undenoised frames).

    Raises
    ------
    ValueError
        From :func:`~rstem_core.align.refine_alignment` (too few usable frames, angles not monotone).
    """
    thickness_px = None if params.thickness_nm is None else params.thickness_nm / series.pixel_size_nm
    return refine_alignment(
        frames, series.angles_deg,
        timestamps_s=series.timestamps_s, line_time_s=series.line_time_s,
        contrast=params.contrast, method=params.method, estimate_axis=params.find_tilt_axis,
        axis_search_deg=params.axis_search_deg,
        fit_tilt_axis=params.fit_tilt_axis,
        smooth_deg_s2=params.angle_acceleration_deg_s2 if params.smooth_angles else None,
        nominal_sd_deg=params.nominal_angle_sd_deg,
        smooth_shifts_px_s2=params.drift_acceleration_px_s2 if series.timestamps_s is not None else None,
        min_correlation=params.min_correlation,
        thickness_px=thickness_px,
        binning=params.binning or None, rounds=params.rounds, polish_rounds=params.polish_rounds,
        max_features=params.max_features, split_halves=params.split_halves,
        bootstrap=params.bootstrap_resamples,
        min_features=params.min_features, device=_device(params.device),
        progress=progress, cancel=cancel,
    )


def run_refinement(
    project: Project,
    params: RefineParams | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> AlignmentResult:
    """Refine the geometry of the project's rapid series and store it (one transaction).

    Returns
    -------
    AlignmentResult
        What was stored (angles, shifts, axis, residuals, flags, method, notes).

    Raises
    ------
    RstemError
        No rapid series, a series that cannot be refined (fewer than 3 usable frames, angles
        not monotone), or a refinement that did not give monotone angles.
    """
    params = params or RefineParams()
    progress = progress or no_progress
    started = time.perf_counter()
    key = choose_source(project, params.source)
    series = project.read_series(key)
    frames_key, frames_series, chosen_note = key, series, ""
    if params.source == "auto" and key == SOURCES["denoised"]:
        key, series, chosen_note = _trustworthy_source(project, series, progress)
    px = series.pixel_size_nm
    frames, plain_note = plain_network_output(series)
    try:
        result = refine_frames(frames, series, params, progress=sub_progress(progress, 0.0, 0.9), cancel=cancel)
    except ValueError as exc:
        raise RstemError(f"{project.path.name} /{key}: {exc}") from None
    if not np.all(np.diff(result.angles_deg) > 0) and not np.all(np.diff(result.angles_deg) < 0):
        raise RstemError(
            "the refined angles are not monotone (the refinement failed on this series); try "
            "--method projection or --method coarse, or check the frames"
        )
    progress(0.9, "writing the aligned series")
    series = frames_series  # the aligned stack is always made of the most processed frames
    aligned = apply_alignment(series.frames, result.shifts_px, result.tilt_axis_deg,
                              progress=sub_progress(progress, 0.9, 0.98), cancel=cancel)
    turned = abs(result.tilt_axis_deg) >= 1.0
    aligned_series = TiltSeries(
        frames=aligned,
        angles_deg=result.angles_deg,
        pixel_size_nm=px,
        timestamps_s=series.timestamps_s,
        line_time_s=None if turned else series.line_time_s,
        metadata={**series.metadata, "aligned_from": "/" + frames_key, "alignment": "/" + OUTPUT,
                  "alignment_method": result.method, "tilt_axis_turned_deg": result.tilt_axis_deg},
    )
    duration = time.perf_counter() - started
    notes = [f"source: /{key}", *([chosen_note] if chosen_note else []), *([plain_note] if plain_note else []),
             *result.notes]
    if cancel is not None:
        cancel.check()
    with project.edit() as w:
        w.delete(OUTPUT)
        w.write_array(f"{OUTPUT}/angles_deg", result.angles_deg, attrs={"unit": "deg"})
        w.write_array(f"{OUTPUT}/shifts_px", result.shifts_px, attrs={"unit": "px", "columns": "dy, dx"})
        w.write_array(f"{OUTPUT}/residuals_px", result.residuals_px, attrs={"unit": "px"})
        w.write_array(f"{OUTPUT}/flags", result.flags.astype(np.uint8))
        w.write_array(f"{OUTPUT}/nominal_angles_deg", series.angles_deg, attrs={"unit": "deg"})
        w.write_array(f"{OUTPUT}/coarse_shifts_px", result.coarse_shifts_px, attrs={"unit": "px"})
        if result.angle_sd_deg is not None:
            w.write_array(f"{OUTPUT}/angle_sd_deg", result.angle_sd_deg, attrs={"unit": "deg"})
        if result.round_angles_deg is not None:
            w.write_array(f"{OUTPUT}/round_angles_deg", result.round_angles_deg, attrs={"unit": "deg"})
        if result.tracks_px is not None:
            w.write_array(f"{OUTPUT}/tracks_px", result.tracks_px.astype(np.float32),
                          attrs={"unit": "px", "columns": "row, col in the aligned frames; NaN: not used"})
        w.set_attrs(OUTPUT, {
            "tilt_axis_deg": float(result.tilt_axis_deg),
            "method": result.method,
            "source": "/" + key,
            "contrast": result.contrast,
            "n_features": int(result.n_features),
            "notes": json.dumps(notes),
            "flag_bits": json.dumps({str(k): v for k, v in FLAG_NAMES.items()}),
            "gauge": GAUGE,
        })
        w.set_params(OUTPUT, asdict(params))
        w.write_series(ALIGNED, aligned_series)
        w.set_params(ALIGNED, asdict(params))
        w.append_log({
            "step": "refine", "params": asdict(params), "source": "/" + key, "method": result.method,
            "outputs": ["/" + OUTPUT, "/" + ALIGNED], "duration_s": round(duration, 3), "notes": notes,
        })
    progress(1.0, f"refined {series.n_frames} frames from /{key} by {result.method}")
    return result
