"""Which reader or writer handles a file: by suffix, or by the first bytes when the suffix is unknown."""

from __future__ import annotations

from pathlib import Path

from ..errors import FileFormatError

#: Image-series formats :func:`rstem_core.io.read_series` reads, by suffix.
READ_SUFFIXES: dict[str, str] = {
    ".mrc": "mrc",
    ".mrcs": "mrc",
    ".st": "mrc",
    ".ali": "mrc",
    ".rec": "mrc",
    ".map": "mrc",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".dm3": "dm",
    ".dm4": "dm",
    ".emd": "emd",
}

#: Export formats of :func:`rstem_core.io.write_volume` and :func:`rstem_core.io.write_stack`.
WRITE_SUFFIXES: dict[str, str] = {
    ".mrc": "mrc",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".zarr": "zarr",
}

#: Angle-list side files (IMOD style, one angle in degrees per line).
ANGLE_SUFFIXES = (".rawtlt", ".tlt")


def _supported(table: dict[str, str]) -> str:
    return ", ".join(sorted(table))


def _sniff(path: Path) -> str | None:
    """Guess the reader from the first bytes of the file; ``None`` if nothing matches."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError:
        return None
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "emd"
    if head[:4] in (b"\x00\x00\x00\x03", b"\x00\x00\x00\x04"):
        return "dm"
    if len(head) >= 212 and head[208:211] == b"MAP":
        return "mrc"
    return None


def reader_for(path: Path) -> str:
    """The reader family (``"mrc"``, ``"tiff"``, ``"dm"``, ``"emd"``) for an existing file.

    Raises
    ------
    FileFormatError
        If the file does not exist, is a folder, or is of no supported format.
    """
    if not path.exists():
        raise FileFormatError(f"{path}: file not found")
    if not path.is_file():
        raise FileFormatError(f"{path}: is a folder, not an image file")
    kind = READ_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        if path.suffix.lower() in ANGLE_SUFFIXES + (".mdoc", ".txt"):
            raise FileFormatError(
                f"{path}: is a side file, not images; give the image file and pass angle lists "
                "with --angles"
            )
        kind = _sniff(path)
    if kind is None:
        raise FileFormatError(
            f"{path}: unknown image format {path.suffix or '(no suffix)'!r}; supported: "
            f"{_supported(READ_SUFFIXES)}"
        )
    return kind


def writer_for(path: Path) -> str:
    """The writer family (``"mrc"``, ``"tiff"``, ``"zarr"``) for an export path, by suffix.

    Raises
    ------
    FileFormatError
        If the suffix is not an export format.
    """
    kind = WRITE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise FileFormatError(
            f"{path}: cannot export to {path.suffix or '(no suffix)'!r}; supported: "
            f"{_supported(WRITE_SUFFIXES)}"
        )
    return kind
