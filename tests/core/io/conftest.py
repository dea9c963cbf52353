"""Fixtures for the importer/exporter tests (``shared_data`` and ``data_file`` come from
tests/conftest.py: a missing real file fails the test, never skips it)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def copy_data(tmp_path: Path, data_file: Callable[[str], Path]) -> Callable[..., Path]:
    """``copy_data("etspy/HAADF.mrc", "etspy/HAADF.txt")`` copies files into a fresh folder.

    Returns the copy of the first file; the others land beside it (side files).
    """

    def copy(*relatives: str) -> Path:
        copies = []
        for relative in relatives:
            source = data_file(relative)
            copies.append(Path(shutil.copy(source, tmp_path / source.name)))
        return copies[0]

    return copy
