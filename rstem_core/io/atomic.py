"""Atomic exports: write under a temporary name beside the target, then rename into place.

A crash or a failed write leaves the previous file (or nothing) at the target, never half a file.
Temporary names are hidden (``.<name>.<random>.part``) and created by the writer itself, so the
exported files get the user's normal permissions.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import RstemError


def _temporary_name(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def _check_folder(target: Path) -> None:
    if not target.parent.is_dir():
        raise RstemError(f"{target}: cannot write, folder {target.parent} does not exist")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_files(*targets: Path) -> Iterator[list[Path]]:
    """Yield temporary paths beside ``targets``; on success rename each onto its target.

    Parameters
    ----------
    *targets : Path
        Final file paths. Their folders must exist.

    Yields
    ------
    list of Path
        One unused temporary path per target (same folder, hidden name); the caller creates
        the files there.

    Raises
    ------
    RstemError
        If a folder is missing, a target is a folder, or the operating system refuses.
    """
    for target in targets:
        _check_folder(target)
        if target.is_dir():
            raise RstemError(f"{target}: is a folder; choose another file name")
    temps = [_temporary_name(target, ".part") for target in targets]
    try:
        yield temps
        for temp, target in zip(temps, targets, strict=True):
            os.replace(temp, target)
    except OSError as exc:
        raise RstemError(f"{exc.filename or targets[0]}: cannot write ({exc.strerror})") from exc
    finally:
        for temp in temps:
            _remove(temp)


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield an unused temporary path beside ``target``; on success it replaces ``target``.

    The caller creates the folder (e.g. a Zarr store) there. An existing ``target`` is moved
    aside first and removed only once the new folder is in place.

    Raises
    ------
    RstemError
        If the parent folder is missing or the operating system refuses.
    """
    _check_folder(target)
    temp = _temporary_name(target, ".part")
    aside: Path | None = None
    try:
        yield temp
        if target.exists() or target.is_symlink():
            aside = _temporary_name(target, ".old")
            os.replace(target, aside)
        os.replace(temp, target)
    except OSError as exc:
        if aside is not None and not target.exists():
            os.replace(aside, target)
            aside = None
        raise RstemError(f"{exc.filename or target}: cannot write ({exc.strerror})") from exc
    finally:
        _remove(temp)
        if aside is not None:
            _remove(aside)
