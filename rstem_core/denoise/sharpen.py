"""Line-width restoration: a high-boost filter calibrated so that denoised lines keep their width.

A network trained with a mean squared error predicts the mean of all images that fit the noisy
frame. Where the noise leaves a dislocation line's position uncertain by a pixel or so, that mean
is a broadened, shallower line: on the synthetic experiment at 4.56 nm pixels the U-Net's lines are
1.1-1.4 times as wide as the truth (paper Tables 1-3 show the same broadening for BM3D, 25-75 %).
A high-boost filter

    f + gain * (f - G_sigma * f)        (G_sigma: Gaussian of ``sigma_px``)

narrows them again. Its ``sigma_px`` is the blur the network added (from the line widths of the
denoised frames and of the DCFI references), and its ``gain`` per stage tilt is the one that brings
the median relative line width on the held-out validation areas to 1 against their DCFI references
(whose widths lie within 2 % of the truth on the synthetic experiment). A reference counts only
where its lines stand clearly above its own noise (median line depth at least ``min_line_cnr``
times the reference's noise standard deviation): in a noisy reference, as at 70 deg on the
synthetic experiment (line depth about 1x the noise), the line finder follows noise ridges and
the widths mean nothing. At a tilt without such a reference the gain comes from the blur model
instead: the network's blur ``b`` (FWHM, from the tilts with clear references) adds to a line's
width in quadrature, so the denoised lines, ``w`` wide, are narrowed to ``sqrt(w^2 - b^2)``
(measured on the denoised frames themselves). The model carries one blur to every tilt; on the
synthetic experiment the network blurs less at 70 deg (about 2.4 px FWHM against 3.3 px at
0-60 deg), so there it narrows the lines to about 0.89 of the truth's width. Frames between the
calibrated tilts take the gain interpolated in ``|tilt|``. A gain that would cost more than
``max_psnr_loss_db`` of PSNR is lowered until it does not; the PSNR is the one against the
noise-free image, estimated from the references by removing their own noise (the mean squared
difference from a reference is the one from the noise-free image plus the reference's noise
variance, :func:`reference_noise_variance`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..analysis.image_quality import FWHM_PER_SIGMA, line_measures
from ..progress import CancelToken, ProgressFn, no_progress


@dataclass(frozen=True)
class WidthRestoration:
    """A calibrated high-boost filter.

    Attributes
    ----------
    sigma_px : float
        Width of the Gaussian whose detail is boosted, px.
    tilts_deg : tuple of float
        Stage tilts (absolute, increasing) at which the gain was calibrated, degrees.
    gains : tuple of float
        Gain at each of ``tilts_deg`` (0: the frame is left as it is).
    width_before, width_after : tuple of float
        Median relative line width against the references at each tilt, before and after (NaN
        where the references were too noisy).
    sources : tuple of str
        How each tilt's gain was found: ``"references"`` or ``"blur model"``.
    """

    sigma_px: float
    tilts_deg: tuple[float, ...]
    gains: tuple[float, ...]
    width_before: tuple[float, ...] = ()
    width_after: tuple[float, ...] = ()
    sources: tuple[str, ...] = ()

    def gain_at(self, tilt_deg: float | None) -> float:
        """The gain for a frame at ``tilt_deg`` (interpolated in ``|tilt|``; None: the mean gain)."""
        if not self.gains:
            return 0.0
        if tilt_deg is None or not np.isfinite(tilt_deg):
            return float(np.mean(self.gains))
        return float(np.interp(abs(float(tilt_deg)), self.tilts_deg, self.gains))

    def apply(self, frames: np.ndarray, tilts_deg: float | Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """Restore the line width of one frame (rows, cols) or a stack (n, rows, cols).

        ``tilts_deg``: one tilt for all frames, one per frame, or None (the mean gain).
        """
        arr = np.asarray(frames, dtype=np.float32)
        stack = arr[None] if arr.ndim == 2 else arr
        if tilts_deg is None or np.ndim(tilts_deg) == 0:
            tilts = [None if tilts_deg is None else float(tilts_deg)] * stack.shape[0]
        else:
            tilts = [float(t) for t in np.asarray(tilts_deg, dtype=np.float64).ravel()]
            if len(tilts) != stack.shape[0]:
                raise ValueError(f"{len(tilts)} tilts for {stack.shape[0]} frames")
        out = np.stack([high_boost(f, self.sigma_px, self.gain_at(t)) for f, t in zip(stack, tilts, strict=True)])
        return out[0] if arr.ndim == 2 else out

    def to_json(self) -> dict[str, Any]:
        """JSON-able record (NaN, a width that could not be measured, as None)."""
        def plain(v: Any) -> Any:
            return None if isinstance(v, float) and not np.isfinite(v) else v

        return {k: ([plain(x) for x in v] if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WidthRestoration:
        def floats(key: str, required: bool = False) -> tuple[float, ...]:
            values = data[key] if required else data.get(key, ())
            return tuple(math.nan if x is None else float(x) for x in values)

        tilts, gains = floats("tilts_deg", True), floats("gains", True)
        if not tilts or len(tilts) != len(gains) or not all(np.isfinite(tilts + gains)):
            raise ValueError("tilts_deg and gains must be finite, non-empty and of equal length")
        return cls(float(data["sigma_px"]), tilts, gains, floats("width_before"), floats("width_after"),
                   tuple(str(x) for x in data.get("sources", ())))


def high_boost(frame: np.ndarray, sigma_px: float, gain: float) -> np.ndarray:
    """``frame + gain * (frame - G_sigma * frame)`` as float32 (``gain`` 0 returns a copy)."""
    f = np.asarray(frame, dtype=np.float32)
    if gain <= 0:
        return f.copy()
    return (f + gain * (f - ndimage.gaussian_filter(f, sigma_px, mode="nearest"))).astype(np.float32)


def reference_noise_variance(area: Any, max_frames: int = 6) -> float:
    """Noise variance of a training area's DCFI reference, ADU^2: the frames' noise over their count.

    A frame differs from the reference (moved onto it) by its own noise minus the reference's
    share of it, whose variance is ``sigma^2 (1 - 1/k)`` for ``k`` frames; the reference's noise
    variance is ``sigma^2 / k``. ``area`` is a :class:`~.pairs.TrainingArea` with a reference.
    """
    from .pairs import moved

    k = len(area.frames)
    if area.reference is None or k < 2:
        return 0.0
    diffs = [float(np.var(area.frames[j].astype(np.float64) - moved(area.reference, area.drift_px[j])))
             for j in range(min(k, max_frames))]
    sigma2 = float(np.median(diffs)) / (1.0 - 1.0 / k)
    return sigma2 / k


def undo_high_boost(frames: np.ndarray, sigma_px: float, gains: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """The frames before :func:`high_boost` (one gain, or one per frame), by division in Fourier space.

    The filter's transfer function ``1 + gain (1 - exp(-sigma^2 k^2 / 2))`` is at least 1, so the
    division is stable. Frames are mirrored at their edges first (the filter used the nearest
    edge value there; the few edge pixels differ slightly).

    Parameters
    ----------
    frames : ndarray, shape (rows, cols) or (n, rows, cols)
    sigma_px : float
    gains : float or sequence of float, one per frame
    """
    arr = np.asarray(frames, dtype=np.float32)
    stack = arr[None] if arr.ndim == 2 else arr
    g = np.broadcast_to(np.asarray(gains, dtype=np.float64), (stack.shape[0],))
    rows, cols = stack.shape[1:]
    pad = int(math.ceil(4 * sigma_px))
    ky = np.fft.fftfreq(rows + 2 * pad)[:, None]
    kx = np.fft.rfftfreq(cols + 2 * pad)[None, :]
    gauss = np.exp(-2 * (math.pi * sigma_px) ** 2 * (ky**2 + kx**2))
    out = np.empty_like(stack)
    for i, (frame, gain) in enumerate(zip(stack, g, strict=True)):
        if gain <= 0:
            out[i] = frame
            continue
        big = np.pad(frame.astype(np.float64), pad, mode="symmetric")
        spectrum = np.fft.rfft2(big) / (1.0 + gain * (1.0 - gauss))
        out[i] = np.fft.irfft2(spectrum, s=big.shape)[pad : pad + rows, pad : pad + cols]
    return out[0] if arr.ndim == 2 else out


def _median(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


def calibrate_width_restoration(
    denoised: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    tilts_deg: Sequence[float],
    *,
    reference_noise: Sequence[float] | None = None,
    max_gain: float = 4.0,
    max_psnr_loss_db: float = 1.5,
    min_line_cnr: float = 2.0,
    tolerance: float = 0.02,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> WidthRestoration | None:
    """Find the high-boost filter that gives denoised lines the width of the references' lines.

    Parameters
    ----------
    denoised, references : sequence of ndarray (rows, cols)
        Denoised validation frames and their references (DCFI, moved onto each frame), same units.
    tilts_deg : sequence of float
        Stage tilt of each pair, degrees; pairs of one (rounded) tilt share one gain.
    reference_noise : sequence of float, optional
        Noise variance of each reference (ADU^2, :func:`reference_noise_variance`), removed from
        the mean squared differences for the PSNR guard; zero if omitted.
    max_gain : float
        Largest gain tried.
    max_psnr_loss_db : float
        Largest PSNR loss a gain may cost at a tilt, dB (estimated against the noise-free image
        with ``reference_noise``).
    min_line_cnr : float
        A pair counts only when the median depth of its reference's lines is at least this many
        times the reference's noise standard deviation (with ``reference_noise``).
    tolerance : float
        The bisection stops when the median relative width is within this of 1.

    Returns
    -------
    WidthRestoration or None
        None when no line could be measured in any pair, or no reference is clear at any tilt
        (nothing tells how much the network blurs: on the 128 px synthetic set, where every
        reference is that noisy, a blur taken from all pairs gave gain 4 and cost 2.8 dB of PSNR
        against the truth while the widths stayed 1.3-2.2). Tilts whose references are all too
        noisy take their gain from the blur model (NaN widths). Every gain keeps to
        ``max_psnr_loss_db``.
    """
    if not (len(denoised) == len(references) == len(tilts_deg)):
        raise ValueError("denoised, references and tilts_deg must have the same length")
    noise = [0.0] * len(denoised) if reference_noise is None else [float(v) for v in reference_noise]
    progress = progress or no_progress
    pairs = [(np.asarray(d, np.float32), np.asarray(r, np.float32)) for d, r in zip(denoised, references, strict=True)]
    base = [line_measures(d, r) for d, r in pairs]
    if not any(np.isfinite(m["width_ratio"]) for m in base):
        return None

    def blur_of(ms: list[dict[str, Any]]) -> list[float]:
        return [math.sqrt(m["image_fwhm_px"] ** 2 - m["reference_fwhm_px"] ** 2) / FWHM_PER_SIGMA
                for m in ms if np.isfinite(m["width_ratio"]) and m["image_fwhm_px"] > m["reference_fwhm_px"]]

    for m, var in zip(base, noise, strict=True):  # lines that do not stand above the noise are noise
        if var > 0 and not m["reference_depth"] >= min_line_cnr * math.sqrt(var):
            m["width_ratio"] = math.nan
    if not any(np.isfinite(m["width_ratio"]) for m in base):
        return None  # no clear reference anywhere: nothing tells how much the network blurs
    blur = blur_of(base)
    sigma = float(np.clip(np.median(blur), 0.5, 3.0)) if blur else 1.0
    groups: dict[float, list[int]] = {}
    for i, t in enumerate(tilts_deg):
        groups.setdefault(float(round(abs(float(t)))), []).append(i)
    tilts, gains, before, after, sources = [], [], [], [], []
    for k, (tilt, members) in enumerate(sorted(groups.items())):
        if cancel is not None:
            cancel.check()
        idx = [i for i in members if np.isfinite(base[i]["width_ratio"])]

        def width(gain: float, idx: list[int] = idx) -> float:
            return _median([line_measures(high_boost(pairs[i][0], sigma, gain), pairs[i][1])["width_ratio"] for i in idx])

        def mse(gain: float, idx: list[int] = members) -> float:
            """Estimated mean squared error against the noise-free image (summed over the pairs)."""
            total = 0.0
            for i in idx:
                d = high_boost(pairs[i][0], sigma, gain).astype(np.float64) - pairs[i][1]
                total += max(float(np.mean(d**2)) - noise[i], 1e-12)
            return total

        w0 = _median([base[i]["width_ratio"] for i in idx])
        gain, w = 0.0, w0
        if not idx:  # no reference clear enough at this tilt: the blur model
            gain = _model_gain([pairs[i][0] for i in members], FWHM_PER_SIGMA * sigma, max_gain, tolerance) if blur else 0.0
            gain = _within_allowance(gain, mse, max_psnr_loss_db)
            tilts.append(tilt)
            gains.append(round(float(gain), 4))
            before.append(math.nan)
            after.append(math.nan)
            sources.append("blur model")
            progress((k + 1) / len(groups), f"line-width restoration at {tilt:g} deg: references too noisy, "
                                            f"gain {gain:.2f} from the blur model")
            continue
        if w0 > 1 + tolerance:
            gain = _bisect_gain(width, 1.0, max_gain, tolerance)
            w = width(gain)
            allowed = _within_allowance(gain, mse, max_psnr_loss_db)
            if allowed != gain:
                gain, w = allowed, width(allowed)
        tilts.append(tilt)
        gains.append(round(float(gain), 4))
        before.append(round(w0, 4))
        after.append(round(w, 4) if np.isfinite(w) else math.nan)
        sources.append("references")
        progress((k + 1) / len(groups), f"line-width restoration at {tilt:g} deg: gain {gain:.2f}, width {w0:.2f} -> {w:.2f}")
    return WidthRestoration(sigma, tuple(tilts), tuple(gains), tuple(before), tuple(after), tuple(sources))


def _within_allowance(gain: float, mse: Any, max_psnr_loss_db: float) -> float:
    """``gain``, lowered in steps of 20 % until its estimated PSNR loss is within the allowance."""
    ceiling = mse(0.0) * 10 ** (max_psnr_loss_db / 10)
    while gain > 0 and mse(gain) > ceiling:
        gain = round(0.8 * gain, 3) if gain > 0.05 else 0.0
    return gain


def _model_gain(frames: list[np.ndarray], blur_fwhm_px: float, max_gain: float, tolerance: float) -> float:
    """Gain that narrows the frames' own lines from ``w`` to ``sqrt(w^2 - blur^2)`` (0 if unmeasurable)."""
    own = _median([line_measures(f, f)["image_fwhm_px"] for f in frames])
    if not np.isfinite(own) or own <= blur_fwhm_px:
        return 0.0
    target = math.sqrt(1.0 - (blur_fwhm_px / own) ** 2)

    def ratio(gain: float) -> float:
        return _median([line_measures(high_boost(f, blur_fwhm_px / FWHM_PER_SIGMA, gain), f)["width_ratio"]
                        for f in frames])

    return _bisect_gain(ratio, target, max_gain, tolerance * target)


def _bisect_gain(measure: Any, target: float, max_gain: float, tolerance: float, steps: int = 8) -> float:
    """The gain in [0, max_gain] at which ``measure(gain)`` (a width, falling with the gain) meets
    ``target`` within ``tolerance``; ``max_gain`` when even that leaves it above."""
    top = measure(max_gain)
    if np.isfinite(top) and top > target:
        return max_gain
    lo, hi = 0.0, max_gain
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        value = measure(mid)
        if np.isfinite(value) and abs(value - target) <= tolerance:
            return mid
        if np.isfinite(value) and value > target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
