"""PNG previews of a synthetic experiment in the style of the paper's Fig. 1c-g.

Written with matplotlib's object API and the Agg canvas (no pyplot, no global backend switch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy import ndimage

_NICE = (10, 20, 50, 100, 200, 250, 500, 1000, 2000)


def _scale_bar_nm(width_nm: float) -> int:
    """A round bar length of about a fifth of the width."""
    target = width_nm / 5
    return min(_NICE, key=lambda v: abs(v - target))


def _stretch(image: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> np.ndarray:
    a, b = np.percentile(image, [lo, hi])
    return np.clip((image - a) / max(b - a, 1e-12), 0, 1)


def _save(
    image: np.ndarray,
    path: Path,
    title: str,
    pixel_size_nm: float | None,
    cmap: str = "gray",
    dpi: int = 100,
) -> Path:
    rows, cols = image.shape[:2]
    zoom = max(1, 512 // cols)  # whole screen pixels per image pixel: no resampling moire
    size = cols * zoom / dpi
    fig = Figure(figsize=(size, size * rows / cols + 0.45), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, rows / cols * size / (size * rows / cols + 0.45)))
    ax.imshow(
        image, cmap=cmap if image.ndim == 2 else None, interpolation="nearest", vmin=0, vmax=1
    )
    ax.set_axis_off()
    fig.text(
        0.5, 1 - 0.2 / (size * rows / cols + 0.45), title, ha="center", va="center", fontsize=10
    )
    if pixel_size_nm:
        bar = _scale_bar_nm(cols * pixel_size_nm)
        length = bar / pixel_size_nm
        outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]
        ax.add_patch(
            Rectangle(
                (cols * 0.05, rows * 0.93),
                length,
                rows * 0.015,
                facecolor="white",
                edgecolor="black",
                linewidth=1.0,
            )
        )
        ax.text(
            cols * 0.05 + length / 2,
            rows * 0.91,
            f"{bar} nm",
            color="white",
            ha="center",
            va="bottom",
            fontsize=10,
            path_effects=outline,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def noise_spectrum(noise: np.ndarray) -> np.ndarray:
    """Centred log power spectrum of a noise image (a Hann window suppresses edge streaks)."""
    rows, cols = noise.shape
    window = np.outer(np.hanning(rows), np.hanning(cols))
    spec = np.abs(np.fft.fftshift(np.fft.fft2((noise - noise.mean()) * window))) ** 2
    return np.log10(spec + 1e-12 * spec.max())


def write_previews(
    directory: str | Path,
    *,
    rapid_frame: np.ndarray,
    rapid_clean: np.ndarray,
    slow_frame: np.ndarray,
    area_frames: np.ndarray,
    grating_slow: np.ndarray,
    grating_rapid: np.ndarray,
    pixel_size_nm: float,
    rapid_angle_deg: float = 0.0,
    prefix: str = "demo_",
) -> list[Path]:
    """Write the Fig. 1c-g style previews as PNG files.

    Parameters
    ----------
    directory : path
        Output folder (created).
    rapid_frame, rapid_clean : ndarray, shape (rows, cols)
        A single rapid frame (ADU) and its clean twin.
    slow_frame : ndarray, shape (rows, cols)
        A slow frame at the same tilt.
    area_frames : ndarray, shape (k, rows, cols)
        Repeated rapid frames of one area at 0 deg; the noise image is frame 0 minus their mean.
    grating_slow, grating_rapid : ndarray, shape (rows, cols)
        The calibration pair; superposed as red (slow) and cyan (rapid), as in Fig. 1g.
    pixel_size_nm : float
        For the scale bars (nm).
    rapid_angle_deg : float
        True angle of the rapid frame, for the titles.
    prefix : str
        File-name prefix.

    Returns
    -------
    list of Path
        ``rapid_frame``, ``rapid_clean``, ``slow_frame``, ``noise``, ``noise_fft``,
        ``grating_overlay`` (each ``PREFIX<name>.png``).
    """
    out = Path(directory)
    a = f"{rapid_angle_deg:+.1f} deg"
    noise = area_frames[0] - area_frames.mean(axis=0)
    lim = np.percentile(np.abs(noise), 99.5)
    paths = [
        _save(
            _stretch(rapid_frame),
            out / f"{prefix}rapid_frame.png",
            f"single rapid frame (30 ms), {a}",
            pixel_size_nm,
        ),
        _save(
            _stretch(rapid_clean),
            out / f"{prefix}rapid_clean.png",
            f"its noise-free twin, {a}",
            pixel_size_nm,
        ),
        _save(
            _stretch(slow_frame),
            out / f"{prefix}slow_frame.png",
            f"slow frame (1.6 s), {a}",
            pixel_size_nm,
        ),
        _save(
            np.clip(noise / (2 * lim) + 0.5, 0, 1),
            out / f"{prefix}noise.png",
            f"frame minus mean of {len(area_frames)} frames",
            pixel_size_nm,
        ),
        _save(
            _stretch(noise_spectrum(noise), 1, 99.9),
            out / f"{prefix}noise_fft.png",
            "FFT of the noise image (log power)",
            None,
            cmap="magma",
        ),
    ]
    # grating pair: dark features made bright, lightly smoothed (1 px) so the offsets stand out
    red = 1 - _stretch(ndimage.gaussian_filter(np.asarray(grating_slow, float), 1.0), 1, 99)
    cyan = 1 - _stretch(ndimage.gaussian_filter(np.asarray(grating_rapid, float), 1.0), 1, 99)
    overlay = np.stack([red, cyan, cyan], axis=-1)
    paths.append(
        _save(
            overlay,
            out / f"{prefix}grating_overlay.png",
            "grating: slow (red) over rapid (cyan), 1 px smoothing",
            pixel_size_nm,
        )
    )
    return paths
