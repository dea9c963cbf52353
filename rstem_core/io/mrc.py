"""MRC / IMOD stacks (``.mrc``, ``.st``, ``.ali``, ``.mrcs``, ``.rec``) through mrcfile.

Reading tries mrcfile's normal mode, then its permissive mode, because old FEI files lack the
``MAP`` stamp and have a zero machine stamp. Tilt angles and the true pixel size may sit in the
extended header:

- old FEI style (no ``exttyp``, ``nint`` 0, ``nreal`` 32): 128 bytes = 32 little-endian
  float32 per frame, alpha tilt in degrees first, pixel size in metres twelfth;
- ``FEI1`` / ``FEI2``: mrcfile's ``indexed_extended_header`` (``Alpha tilt`` degrees,
  ``Pixel size X`` metres);
- SerialEM (``SERI``, or no ``exttyp`` in older files, recognised by ``nreal`` flags that add
  up to ``nint`` bytes per frame): when flag 1 is set the first two bytes of each frame's
  entry are the tilt angle in hundredths of a degree.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import mrcfile
import numpy as np

from ..errors import FileFormatError
from ._record import FileRecord, first_line, float32_value, length_to_nm

_FEI_OLD_BYTES = 128
# SerialEM extended-header flags (``nreal`` bits) and the bytes each adds per frame (IMOD docs)
_SERIALEM_SIZES = {1: 2, 2: 6, 4: 4, 8: 2, 16: 2, 32: 4}
_MRC_TILT_AXIS = re.compile(r"tilt\s*axis\s*angle\s*=\s*([-+]?\d+\.?\d*)", re.IGNORECASE)


def _open(path: Path, notes: list[str]) -> mrcfile.mrcfile.MrcFile:
    """Open in normal mode, else permissive mode; record why permissive mode was needed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mrcfile.open(path, mode="r")
    except Exception as strict_error:  # mrcfile raises ValueError, OSError, struct errors ...
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                handle = mrcfile.open(path, mode="r", permissive=True)
            except Exception as exc:
                reason = _worst(caught) or first_line(exc)
                raise FileFormatError(
                    f"{path}: cannot be read as MRC; the file is truncated or corrupt ({reason})"
                ) from exc
        if caught:
            quirks = "; ".join(dict.fromkeys(str(w.message) for w in caught))
            notes.append(f"{path.name}: read in mrcfile's permissive mode ({quirks})")
        if handle.data is None:
            reason = _worst(caught) or first_line(strict_error)
            handle.close()
            raise FileFormatError(
                f"{path}: cannot be read as MRC; the file is truncated or corrupt ({reason})"
            ) from None
        return handle


def _worst(caught: list[warnings.WarningMessage]) -> str | None:
    """The most telling permissive-mode warning (a size shortfall beats a missing stamp)."""
    messages = [str(w.message) for w in caught]
    for message in reversed(messages):
        if message.startswith(("Expected", "Couldn't")):
            return message
    return messages[-1] if messages else None


def _fei_old(extended: bytes, n: int) -> tuple[np.ndarray | None, float | None]:
    """Angles (deg) and pixel size (nm) from an old-style FEI extended header, if it holds them.

    The table is trusted only when its pixel-size column is one plausible value (1e-13 to
    1e-4 m) for every frame, so that other data in an untyped extended header is not misread.
    """
    if len(extended) < _FEI_OLD_BYTES * n:
        return None, None
    table = np.frombuffer(extended[: _FEI_OLD_BYTES * n], dtype="<f4").reshape(n, 32)
    angles = table[:, 0].astype(np.float64)
    pixels_m = table[:, 11].astype(np.float64)
    if not (np.all(np.isfinite(pixels_m)) and 1e-13 < pixels_m[0] < 1e-4):
        return None, None
    if not np.allclose(pixels_m, pixels_m[0], rtol=1e-4):
        return None, None
    pixel_nm = length_to_nm(float32_value(pixels_m[0]), "m")
    plausible = np.all(np.isfinite(angles)) and np.all(np.abs(angles) <= 90.0)
    if not plausible or (n > 1 and np.all(angles == 0)):
        return None, pixel_nm
    return np.array([float32_value(a) for a in angles]), pixel_nm


def _fei_indexed(handle: mrcfile.mrcfile.MrcFile) -> tuple[np.ndarray | None, float | None]:
    """Angles (deg) and pixel size (nm) from an ``FEI1``/``FEI2`` extended header."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            table = handle.indexed_extended_header
        except Exception:  # an unreadable table means: no angles from it
            return None, None
    if table is None:
        return None, None
    angles = np.asarray(table["Alpha tilt"], dtype=np.float64)
    pixel_nm = length_to_nm(float(table["Pixel size X"][0]), "m")
    if not (np.all(np.isfinite(angles)) and np.all(np.abs(angles) <= 90.0)):
        angles = None
    return angles, pixel_nm


def _nint_nreal(header: np.recarray) -> tuple[int, int, str]:
    """The ``nint`` and ``nreal`` header words (bytes 128-131) and the header's byte order."""
    order = "<" if header.mode.dtype.byteorder in ("<", "=", "|") else ">"
    nint, nreal = (int(v) for v in np.frombuffer(header.tobytes()[128:132], dtype=order + "i2"))
    return nint, nreal, order


def _serialem_layout(nint: int, nreal: int) -> bool:
    """True when ``nreal`` holds SerialEM flags whose entry sizes add up to ``nint`` bytes."""
    if nint <= 0 or nreal <= 0 or nreal & ~0x3F:
        return False
    return sum(size for bit, size in _SERIALEM_SIZES.items() if nreal & bit) == nint


def _serialem(header: np.recarray, extended: bytes, n: int) -> np.ndarray | None:
    """Tilt angles (deg) from a SerialEM extended header when it records them (flag 1)."""
    nint, nreal, order = _nint_nreal(header)
    if not (nreal & 1) or nint < 2 or len(extended) < nint * n:
        return None
    table = np.frombuffer(extended[: nint * n], dtype=np.uint8).reshape(n, nint)
    return table[:, :2].copy().view(order + "i2")[:, 0].astype(np.float64) / 100.0


def _labels(header: np.recarray) -> list[str]:
    count = min(int(header.nlabl), 10)
    return [bytes(header.label[i]).decode("latin-1").strip() for i in range(count)]


def read_mrc(path: Path) -> FileRecord:
    """Read an MRC stack with its tilt angles and pixel size from the headers.

    Parameters
    ----------
    path : Path
        An MRC-family file; frames are sections along the file's z.

    Returns
    -------
    FileRecord
        Frames ``(n, rows, cols)`` in the file's dtype. Pixel size in nm from the extended
        header when the main header's voxel size is missing or the 1 Angstrom placeholder,
        else from the voxel size. Angles in degrees from an FEI or SerialEM extended header.

    Raises
    ------
    FileFormatError
        If the file is truncated, corrupt, complex-valued or not 2D/3D.
    """
    notes: list[str] = []
    handle = _open(path, notes)
    with handle:
        header = handle.header
        frames = np.asarray(handle.data)
        extended = b"" if handle.extended_header is None else handle.extended_header.tobytes()
        voxel_a = float(handle.voxel_size.x)
        exttyp = bytes(header.exttyp).strip(b"\x00 ")
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise FileFormatError(
                f"{path}: holds a {frames.ndim}D array; expected a stack of 2D frames"
            )
        if np.iscomplexobj(frames):
            raise FileFormatError(f"{path}: holds complex values; expected image intensities")
        n = frames.shape[0]
        record = FileRecord(path=path, format="MRC", frames=frames, warnings=notes)
        angles, fei_pixel, source = None, None, ""
        if exttyp in (b"FEI1", b"FEI2"):
            angles, fei_pixel = _fei_indexed(handle)
            source = f"{exttyp.decode()} extended header"
        elif exttyp == b"SERI" or (not exttyp and _serialem_layout(*_nint_nreal(header)[:2])):
            angles = _serialem(header, extended, n)
            source = "SerialEM extended header"
        elif not exttyp and _nint_nreal(header)[:2] in ((0, 32), (0, 0)):
            angles, fei_pixel = _fei_old(extended, n)
            source = "FEI extended header"
        labels = _labels(header)
    if angles is not None:
        record.angles_deg, record.angles_source = angles, source
    placeholder = not (voxel_a > 0) or abs(voxel_a - 1.0) < 1e-6
    if fei_pixel is not None and placeholder:
        record.pixel_size_nm, record.pixel_size_source = fei_pixel, source
        if voxel_a > 0:
            notes.append(
                f"{path.name}: header voxel size of 1 Angstrom ignored as a placeholder; "
                f"pixel size {fei_pixel:g} nm from the {source}"
            )
    elif not placeholder:
        record.pixel_size_nm = length_to_nm(voxel_a, "Å")
        record.pixel_size_source = "MRC header voxel size"
    for label in labels:
        match = _MRC_TILT_AXIS.search(label)
        if match:
            record.tilt_axis_deg = float(match.group(1))
            record.tilt_axis_source = "MRC header label"
            break
    record.metadata.update(
        {
            "original_dtype": str(frames.dtype),
            "mrc_labels": [label for label in labels if label],
            "mrc_extended_header_type": exttyp.decode("latin-1") or None,
        }
    )
    return record


def write_mrc(
    path: Path, data: np.ndarray, voxel_size_nm: float, *, stack: bool, label: str
) -> None:
    """Write a float32 (z, y, x) array as an IMOD-compatible MRC (mode 2, origin 0).

    Parameters
    ----------
    path : Path
        Destination (normally a temporary name that the caller renames).
    data : ndarray, shape (z, y, x)
        Written as float32, section k = ``data[k]``.
    voxel_size_nm : float
        Voxel edge in nanometres; stored in Angstrom in the header.
    stack : bool
        True for a tilt stack (``ispg`` 0, image stack), False for a volume (``ispg`` 1).
    label : str
        Text for the first header label (at most 80 ASCII characters are kept).
    """
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        if stack:
            mrc.set_image_stack()
        else:
            mrc.set_volume()
        mrc.voxel_size = float(voxel_size_nm) * 10.0
        mrc.header.origin = (0.0, 0.0, 0.0)
        mrc.header.label[0] = label.encode("ascii", errors="replace")[:80]
        mrc.header.nlabl = 1
