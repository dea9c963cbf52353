"""IMOD-style angle lists (``.rawtlt``, ``.tlt``): one tilt angle in degrees per line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from .formats import ANGLE_SUFFIXES


def read_angle_file(path: str | Path) -> np.ndarray:
    """Read tilt angles from a text file with one angle per line.

    Blank lines and lines starting with ``#`` are skipped; a line may hold further columns
    after the angle (only the first number is used).

    Parameters
    ----------
    path : str or Path
        An IMOD ``.rawtlt`` / ``.tlt`` file or any text file of that layout.

    Returns
    -------
    ndarray, shape (n,), float64
        Tilt angles in degrees, in file order.

    Raises
    ------
    FileFormatError
        If the file is missing, empty, or a line does not start with a number.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise FileFormatError(f"{path}: angle file not found") from None
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read the angle file ({exc.strerror})") from None
    angles = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip().replace(",", " ")
        if not stripped or stripped.startswith("#"):
            continue
        try:
            angles.append(float(stripped.split()[0]))
        except ValueError:
            raise FileFormatError(
                f"{path}: line {number} is not a tilt angle in degrees: {line.strip()[:40]!r}"
            ) from None
    if not angles:
        raise FileFormatError(f"{path}: holds no tilt angles")
    result = np.asarray(angles, dtype=np.float64)
    if not np.all(np.isfinite(result)):
        raise FileFormatError(f"{path}: holds a tilt angle that is not a finite number")
    return result


def find_angle_file(image_path: Path) -> Path | None:
    """The ``<stem>.rawtlt`` (nominal angles, preferred) or ``<stem>.tlt`` beside an image file."""
    for suffix in ANGLE_SUFFIXES:
        candidate = image_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def format_angles(angles_deg: np.ndarray) -> str:
    """Angles as IMOD ``.rawtlt`` text: one ``"%.2f"`` value per line, ending in a newline."""
    return "".join(f"{a:.2f}\n" for a in np.asarray(angles_deg, dtype=np.float64))
