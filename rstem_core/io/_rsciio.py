"""Helpers shared by the rosettasciio-based readers (DM, EMD): image selection by title, axes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError
from ._record import length_to_nm

Signal = dict[str, Any]


def title(signal: Signal) -> str:
    """The image's title (Velox channel name, DM image name); empty if none."""
    return str(signal.get("metadata", {}).get("General", {}).get("title", "") or "")


def signal_axes(signal: Signal) -> list[dict]:
    """The non-navigation axes of a rosettasciio signal, in array order."""
    return [ax for ax in signal["axes"] if not ax.get("navigate", False)]


def navigation_axes(signal: Signal) -> list[dict]:
    """The navigation axes (stack, time, ...) of a rosettasciio signal, in array order."""
    return [ax for ax in signal["axes"] if ax.get("navigate", False)]


def is_image(signal: Signal) -> bool:
    """True for a 2D image or a stack of them along at most one navigation axis."""
    return len(signal_axes(signal)) == 2 and len(navigation_axes(signal)) <= 1


def is_real(signal: Signal) -> bool:
    """True when the data are real numbers (not complex, not RGB records)."""
    dtype = np.asarray(signal["data"]).dtype
    return dtype.kind in "uif"


def pixel_size_nm(signal: Signal) -> float | None:
    """Pixel size in nm from the x axis' scale and units (µm, nm, pm, Å ...), if it has units."""
    axes = signal_axes(signal)
    if not axes:
        return None
    x = axes[-1]
    return length_to_nm(x.get("scale", 0.0), x.get("units"))


def pick_image(signals: list[Signal], channel: str | None, path: Path) -> tuple[Signal, list[str]]:
    """Choose the image to import from the signals a file holds.

    Parameters
    ----------
    signals : list of dict
        What ``rsciio.<format>.file_reader`` returned.
    channel : str or None
        Title of the image to take; ``None`` takes the first real-valued image.
    path : Path
        The file, for messages.

    Returns
    -------
    signal : dict
        The chosen image signal.
    others : list of str
        Titles of the other images in the file.

    Raises
    ------
    FileFormatError
        If the file holds no image, the named channel does not exist, or it is complex.
    """
    images = [s for s in signals if is_image(s)]
    if not images:
        kinds = {len(signal_axes(s)) for s in signals}
        what = "a spectrum or spectrum image" if 1 in kinds else "no 2D images"
        raise FileFormatError(f"{path}: not an image series (it holds {what})")
    titles = [title(s) for s in images]
    if channel is not None:
        matches = [s for s in images if title(s) == channel]
        if not matches:
            matches = [s for s in images if title(s).lower() == channel.strip().lower()]
        if not matches:
            raise FileFormatError(
                f"{path}: has no channel {channel!r}; available: {', '.join(map(repr, titles))}"
            )
        chosen = matches[0]
        if not is_real(chosen):
            real = [title(s) for s in images if is_real(s)]
            raise FileFormatError(
                f"{path}: channel {channel!r} holds {np.asarray(chosen['data']).dtype} values "
                f"(e.g. a DPC vector field), not intensities; choose one of: {', '.join(map(repr, real))}"
            )
    else:
        real = [s for s in images if is_real(s)]
        if not real:
            raise FileFormatError(
                f"{path}: no image holds real intensities (channels: {', '.join(map(repr, titles))})"
            )
        chosen = real[0]
    others = [t for s, t in zip(images, titles, strict=True) if s is not chosen]
    return chosen, others
