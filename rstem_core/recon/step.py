"""The reconstruction step: read the best available series from a project, reconstruct, store.

Input, in order of preference (``source="auto"``): the aligned series (``/processed/aligned``),
the denoised series (``/processed/denoised``), the distortion-corrected series
(``/processed/corrected``), the raw rapid series (``/raw/rapid``). Angles: the
refined ones (``/processed/alignment/angles_deg``) when tilt refinement ran, otherwise the series'
own. When the series is the denoised one (or aligned from it), the series the denoiser read is
reconstructed instead, in the same geometry, or mixed in (``noisy_share``, see
:class:`ReconstructionParams`). With ``time_lag`` every scan row gets the angle of the moment it
was scanned, interpolated from the angle-against-time curve of the frames (frame mid-times),
using the frames' timestamps and the line time. Output:
``/reconstruction/volume`` (a Volume) with the parameters in ``attrs['params']`` and one
``/log`` entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..binarize import BinarizeParams, preprocess, saturate
from ..errors import RstemError
from ..model import TiltSeries, Volume
from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from ..project import Project, pick_series
from . import (
    ALGORITHMS,
    BACKENDS,
    FILTERS,
    Geometry,
    reconstruct,
    row_angles_from_curve,
    row_times_s,
    slab_pad_rows,
)
from .thickness import bin_frames, estimate_thickness_px, slab_clarity, slab_offset_px

SOURCES = {
    "aligned": "processed/aligned",
    "denoised": "processed/denoised",
    "corrected": "processed/corrected",
    "raw": "raw/rapid",
}
OUTPUT = "reconstruction/volume"


@dataclass(frozen=True)
class ReconstructionParams:
    """Parameters of the reconstruction step.

    Attributes
    ----------
    algorithm : {"sirt", "fbp", "cgls"}
        SIRT (default, as in the paper) is robust to the missing wedge and noise; FBP is instant
        but streaky; CGLS converges faster than SIRT but without non-negativity.
    iterations : int
        SIRT/CGLS iterations (paper: 50).
    relaxation : float
        SIRT step size in (0, 2); lower it if the volume oscillates.
    nonnegative : bool
        Clip negative voxels in SIRT (dislocation signal is positive after pre-processing).
    filter_window : str
        FBP ramp-filter window; smoother windows trade resolution for noise.
    thickness_nm : float or None
        z extent of the volume in nm; None estimates it from the data (plus ``margin_nm``).
    margin_nm : float
        Added above and below the estimated thickness, nm.
    fallback_thickness_nm : float
        Thickness used when ``thickness_nm`` is None and the data show no clear specimen layer
        (its depth profile's peak less than ``min_slab_clarity`` times its background, see
        :func:`~rstem_core.recon.thickness.slab_clarity`): frames too noisy to estimate from. The
        default is the specimens this workbench is made for (300 nm thick steel foils).
    min_slab_clarity : float
        Smallest peak-to-background ratio of the depth profile for which the estimate is
        trusted (default-size synthetic series: about 65; 128 px ones at the rapid dose 2-2.5,
        with estimates of 110-150 nm for a 300 nm slab; 4x that dose: 3.1, 283 nm).
    pad_rows : int or None
        Volume rows (pixels after binning) reconstructed above and below the frame's rows and cut
        off afterwards: room for the specimen that tilted views show beyond the frame, which
        would otherwise pile up as bright top and bottom rows. None: as many as the most tilted
        view needs (:func:`~rstem_core.recon.slab_pad_rows`); 0: none (faster).
    binning : int
        Average b x b pixels first: a quick preview at 1/b resolution (1 = full resolution).
    time_lag : bool
        Give every scan row its own angle (needs frame timestamps and the line time).
    source : {"auto", "aligned", "denoised", "corrected", "raw"}
        Which series to reconstruct.
    backend : {"torch", "astra", "tomopy"}
        The built-in engine (CPU or GPU, every scan row its own angle), or ASTRA / TomoPy when
        installed (one angle per frame).
    device : str
        "auto" (GPU when present), "cpu" or "cuda".
    preprocessing : BinarizeParams
        Contrast normalisation / binarisation (paper Supp. G).
    noisy_share : float
        When the denoised series is reconstructed (with ``preprocessing.mode="normalize"``), the
        share of the same frames before denoising (the series the denoiser read, aligned like
        the denoised ones) in the reconstructed signal, 0..1: ``(1 - share) * denoised + share *
        before denoising``. 1 (the default) reconstructs the frames before denoising alone, with
        the refined geometry; 0 the denoised frames alone. The denoiser sees one frame at a time
        and drops or thins dislocations too faint for a single frame, while the reconstruction
        sums every frame's dose: the volume of the frames before denoising holds more of them,
        and its extra noise is averaged away by the evaluation's smoothing along the lines (it
        looks grainier in slices). Default-size synthetic series (refined geometry, the
        evaluation's defaults but with centroids weighed with the volume itself), share of true
        centres found (and of found centres that are true), seeds 0 / 1 / 2 / 3 / 4: share 1
        86.0 / 76.8 / 78.3 / 76.9 / 67.7 % (94.9 / 93.9 / 91.8 / 93.6 / 94.8 %), mean errors x
        3.72 / 4.31 / 3.26 / 4.50 / 4.92, y 2.45 / 3.78 / 4.25 / 2.89 / 3.43, z 4.21 / 5.47 /
        4.88 / 5.72 / 4.58 nm (with the evaluation's defaults: 86.4 / 76.8 / 79.4 / 77.7 / 68.2
        %, z 3.97 / 5.36 / 4.62 / 5.42 / 4.40 nm); seeds 0 / 1 / 2 / 4 with the denoised frames
        and those before denoising at a third of the signal (the previous default) 82.3 / 70.9
        / 77.5 / 58.1 % (94.3 / 93.1 / 81.4 / 94.1 %), z 4.10 / 5.40 / 4.77 / 4.73 nm; the
        denoised frames alone 80.4 / 70.6 / 76.7 / 54.9 %. Seed 4's pile-ups gain most.
    saturate : float
        With ``preprocessing.mode="normalize"``, each frame's signal is clipped at this fraction
        of its 99.5th percentile (never below 4 times its noise) before the reconstruction, so
        strong and faint dislocations reach a similar height (the denoised frames only: it acts
        with ``noisy_share`` below 1); 0 (the default) turns it off. It finds more faint
        dislocations and places them less well. Default-size synthetic series (with the frames
        before denoising at a third of the signal), 0.5 with the evaluation's threshold at 0.3
        against off at 0.2: share of true centres found (of found
        centres true) seed 0 84.2 % (94.2 %) against 82.4 % (94.3 %), seed 1 72.6 % (92.9 %)
        against 71.0 % (93.1 %), seed 2 79.7 % (85.6 %) against 77.8 % (79.6 %); mean depth
        error 4.24 / 5.43 / 4.99 nm against 4.10 / 5.41 / 4.78 nm. On noise-free frames it
        loses: 88.8 % (92.1 %) at prominence 0.1, depth error 3.90 nm, against 91.5 % (94.5 %)
        and 3.32 nm: clipped lines are flat-topped, and their reconstruction brighter at the rim.
    noisy_smooth_px : float
        Gaussian smoothing (pixels) of the signal of the frames before denoising (in place of
        ``preprocessing.smooth_px``); the default equals the pre-processing's own 1 px.
    """

    algorithm: str = "sirt"
    iterations: int = 50
    relaxation: float = 1.0
    nonnegative: bool = True
    filter_window: str = "ram-lak"
    thickness_nm: float | None = None
    margin_nm: float = 20.0
    fallback_thickness_nm: float = 300.0
    min_slab_clarity: float = 3.0
    pad_rows: int | None = None
    binning: int = 1
    time_lag: bool = True
    source: str = "auto"
    backend: str = "torch"
    device: str = "auto"
    preprocessing: BinarizeParams = field(default_factory=BinarizeParams)
    noisy_share: float = 1.0
    noisy_smooth_px: float = 1.0
    saturate: float = 0.0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.filter_window not in FILTERS:
            raise ValueError(f"filter_window must be one of {', '.join(FILTERS)}, got {self.filter_window!r}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if self.binning < 1:
            raise ValueError(f"binning must be at least 1, got {self.binning}")
        if self.thickness_nm is not None and self.thickness_nm <= 0:
            raise ValueError(f"thickness_nm must be positive (an empty volume extent otherwise), got {self.thickness_nm}")
        if self.pad_rows is not None and self.pad_rows < 0:
            raise ValueError(f"pad_rows must be >= 0 or None (automatic), got {self.pad_rows}")
        if self.margin_nm < 0:
            raise ValueError(f"margin_nm must be >= 0, got {self.margin_nm}")
        if not self.fallback_thickness_nm > 0:
            raise ValueError(f"fallback_thickness_nm must be positive, got {self.fallback_thickness_nm}")
        if self.min_slab_clarity < 0:
            raise ValueError(f"min_slab_clarity must be >= 0, got {self.min_slab_clarity}")
        if not 0 <= self.noisy_share <= 1:
            raise ValueError(f"noisy_share must lie in [0, 1], got {self.noisy_share}")
        if self.saturate < 0:
            raise ValueError(f"saturate must be >= 0, got {self.saturate}")
        if self.noisy_smooth_px < 0:
            raise ValueError(f"noisy_smooth_px must be >= 0, got {self.noisy_smooth_px}")
        if self.source != "auto" and self.source not in SOURCES:
            raise ValueError(f"source must be auto or one of {', '.join(SOURCES)}, got {self.source!r}")


def choose_source(project: Project, source: str = "auto") -> str:
    """The project key of the series to reconstruct."""
    return pick_series(project, SOURCES, source, "to reconstruct")


def frame_geometry_inputs(project: Project, key: str, series: TiltSeries) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-frame angles (refined when available) and shifts (dy, dx) for ``series``."""
    angles = series.angles_deg
    shifts = None
    if "processed/alignment/angles_deg" in project:
        angles = project.read_array("processed/alignment/angles_deg")
        if key != "processed/aligned" and "processed/alignment/shifts_px" in project:
            shifts = project.read_array("processed/alignment/shifts_px")
    if angles.shape[0] != series.n_frames:
        raise RstemError(f"{series.n_frames} frames but {angles.shape[0]} angles: re-run tilt refinement")
    return angles, shifts


def noisy_companion(project: Project, key: str, series: TiltSeries) -> tuple[np.ndarray, str] | None:
    """The frames of ``series`` before denoising, in the same geometry, and their project key.

    For the denoised series: the series it was made from (its ``denoise_source``; without that
    record ``/processed/corrected``, else ``/raw/rapid``); for the aligned series made of
    denoised frames: those frames aligned with the same shifts and tilt axis. None for any other
    series or when no such frames exist.
    """
    from ..align.apply import apply_alignment

    aligned = key == "processed/aligned"
    if aligned and series.metadata.get("aligned_from") != "/processed/denoised":
        return None
    if not aligned and key != "processed/denoised":
        return None
    made_from = str(series.metadata.get("denoise_source", "")).lstrip("/")  # recorded by the denoise step
    noisy_key = made_from if made_from in SOURCES.values() and made_from in project else next(
        (k for k in (SOURCES["corrected"], SOURCES["raw"]) if k in project), None)
    if noisy_key is None:
        return None
    frames = project.read_series(noisy_key).frames
    if frames.shape != series.frames.shape:
        return None
    if aligned:
        if "processed/alignment/shifts_px" not in project:
            return None
        frames = apply_alignment(frames, project.read_array("processed/alignment/shifts_px"),
                                 float(series.metadata.get("tilt_axis_turned_deg", 0.0)))
    return frames, noisy_key


def time_lag_angles(series: TiltSeries, angles_deg: np.ndarray) -> np.ndarray | None:
    """Per-row angles (frames, rows) from the frames' angle-against-time curve, or None.

    The frame angle is taken as the angle at the frame's mid-time; rows are scanned at
    ``timestamp + (row + 0.5) * line_time``.
    """
    if series.timestamps_s is None or series.line_time_s is None or series.n_frames < 2:
        return None
    rows = series.frames.shape[1]
    mid = series.timestamps_s + 0.5 * rows * series.line_time_s
    if np.any(np.diff(mid) <= 0):
        return None
    times = row_times_s(series.timestamps_s, rows, series.line_time_s)
    return row_angles_from_curve(mid, angles_deg, times)


def run_reconstruction(
    project: Project,
    params: ReconstructionParams | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    preview: Callable[[int, int, np.ndarray], None] | None = None,
) -> Volume:
    """Reconstruct the project's series and store the volume (one transaction).

    ``preview(iteration, iterations, section)`` receives the x-z cross-section at the central
    row after every iteration (see :func:`rstem_core.recon.reconstruct`).

    Raises
    ------
    RstemError
        No series to reconstruct, or angles and frames disagree.
    """
    params = params or ReconstructionParams()
    progress = progress or no_progress
    started = time.perf_counter()
    key = choose_source(project, params.source)
    series = project.read_series(key)
    angles, shifts = frame_geometry_inputs(project, key, series)
    noisy = None
    if params.noisy_share > 0 and params.preprocessing.mode == "normalize":
        progress(0.0, "reading the frames before denoising")
        noisy = noisy_companion(project, key, series)
    data, voxel_nm, thickness_nm, notes, row_angles = reconstruct_series(
        series, angles, shifts, params, progress=progress, cancel=cancel, preview=preview,
        noisy_frames=None if noisy is None else noisy[0])
    if noisy is not None:
        notes.insert(0, f"reconstructed from the frames before denoising (/{noisy[1]}, aligned like /{key})"
                        if params.noisy_share >= 1 else
                        f"the frames before denoising (/{noisy[1]}) make {params.noisy_share:g} of the signal")
    nz = data.shape[0]
    duration = time.perf_counter() - started
    volume = Volume(
        data,
        voxel_nm,
        {
            "source": "/" + key,
            "algorithm": params.algorithm,
            "iterations": params.iterations,
            "time_lag": row_angles is not None,
            "thickness_nm": thickness_nm,
            "z_extent_nm": nz * voxel_nm,
            "notes": notes,
        },
    )
    if cancel is not None:
        cancel.check()
    with project.edit() as w:
        w.write_volume(OUTPUT, volume)
        w.set_params(OUTPUT, asdict(params))
        w.append_log({"step": "reconstruct", "params": asdict(params), "outputs": [OUTPUT],
                      "duration_s": round(duration, 3), "notes": notes})
    progress(1.0, f"volume {nz}x{data.shape[1]}x{data.shape[2]} voxels of {voxel_nm:.3g} nm")
    return volume


def reconstruct_series(
    series: TiltSeries,
    angles: np.ndarray,
    shifts: np.ndarray | None,
    params: ReconstructionParams,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    preview: Callable[[int, int, np.ndarray], None] | None = None,
    noisy_frames: np.ndarray | None = None,
) -> tuple[np.ndarray, float, float, list[str], np.ndarray | None]:
    """Reconstruct one tilt series with the step's parameters, outside any project.

    Parameters
    ----------
    series : TiltSeries
        Frames (n, rows, cols), pixel size, and timestamps/line time for the time-lag geometry.
    angles : ndarray, shape (n,)
        Frame angles in degrees (at each frame's mid-time).
    shifts : ndarray, shape (n, 2), optional
        Frame shifts (dy, dx) in px still present in the frames.
    params : ReconstructionParams
    noisy_frames : ndarray, shape like ``series.frames``, optional
        The same frames before denoising; their pre-processed signal is added with
        ``params.noisy_share`` (see :class:`ReconstructionParams`).

    Returns
    -------
    data : ndarray, shape (z, y, x), float32
    voxel_nm, thickness_nm : float
    notes : list of str
    row_angles : ndarray (n, rows) or None
        The per-row angles used (None: one angle per frame).
    """
    progress = progress or no_progress
    notes: list[str] = []
    row_angles = time_lag_angles(series, angles) if params.time_lag else None
    if params.time_lag and row_angles is None:
        notes.append("time-lag correction off: the series has no frame timestamps or line time")
    progress(0.0, "pre-processing the tilt series")
    share = params.noisy_share if noisy_frames is not None else 0.0
    if noisy_frames is not None and noisy_frames.shape != series.frames.shape:
        raise ValueError(f"noisy frames {noisy_frames.shape} differ from the series' {series.frames.shape}")
    signal = None
    if share < 1:
        signal = preprocess(series.frames, params.preprocessing, progress=sub_progress(progress, 0.0, 0.1),
                            cancel=cancel)
        if params.saturate > 0 and params.preprocessing.mode == "normalize":
            signal = saturate(signal, params.saturate)
        if share > 0:
            signal *= np.float32(1.0 - share)
    if share > 0:
        noisy_pre = replace(params.preprocessing, smooth_px=params.noisy_smooth_px)
        part = preprocess(noisy_frames, noisy_pre, progress=sub_progress(progress, 0.0, 0.1), cancel=cancel)
        signal = part if share >= 1 else signal + np.float32(share) * part
    b = params.binning
    signal = bin_frames(signal, b)
    voxel_nm = series.pixel_size_nm * b
    if row_angles is not None and b > 1:
        row_angles = row_angles[:, : signal.shape[1] * b].reshape(series.n_frames, -1, b).mean(axis=2)
    if shifts is not None:
        shifts = shifts / b
    if params.thickness_nm is None:
        progress(0.1, "estimating the specimen thickness")
        mode = params.preprocessing.mode
        estimate_binning = max(1, round(min(signal.shape[1:]) / 128))  # frames of about 128 px
        thick_px, profile = estimate_thickness_px(
            bin_frames(series.frames, b), angles, binning=estimate_binning,
            dark_lines=None if mode == "none" else params.preprocessing.dark_lines,
            device=params.device, progress=sub_progress(progress, 0.1, 0.25), cancel=cancel,
        )
        clarity = slab_clarity(profile)
        if clarity >= params.min_slab_clarity:
            thickness_nm = thick_px * voxel_nm
            notes.append(f"thickness estimated from the data: {thickness_nm:.0f} nm")
            off_nm = slab_offset_px(profile, estimate_binning) * voxel_nm
            if abs(off_nm) > params.margin_nm / 2:
                notes.append(f"the specimen layer lies {off_nm:+.0f} nm off the tilt axis in z: the volume, "
                             "centred on the axis, is made that much taller on each side to hold it")
                thickness_nm += 2 * abs(off_nm)
        else:
            thickness_nm = float(params.fallback_thickness_nm)
            notes.append(f"no clear specimen layer in the data (depth contrast {clarity:.1f} < "
                         f"{params.min_slab_clarity:g}): thickness taken as {thickness_nm:.0f} nm; set it "
                         "with --thickness")
    else:
        thickness_nm = float(params.thickness_nm)
    nz = max(1, int(round((thickness_nm + 2 * params.margin_nm) / voxel_nm)))
    pad = slab_pad_rows(nz, angles) if params.pad_rows is None else params.pad_rows
    geometry = Geometry(
        row_angles if row_angles is not None else angles, signal.shape[1], signal.shape[2], nz, shifts, pad
    )
    data = reconstruct(
        signal, geometry, algorithm=params.algorithm, iterations=params.iterations,
        relaxation=params.relaxation, nonnegative=params.nonnegative, filter_window=params.filter_window,
        backend=params.backend, device=params.device, progress=sub_progress(progress, 0.25, 0.97), cancel=cancel,
        preview=preview,
    )
    return data, voxel_nm, thickness_nm, notes, row_angles
