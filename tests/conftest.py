"""Shared fixtures: the real microscope files in ../shared/data and small synthetic inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The folder of real microscope files (../shared/data beside the repository)."""
    env = os.environ.get("RSTEM_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; fails loudly (never skips) when it is missing."""
    folder = shared_data_dir()
    if not folder.is_dir():
        pytest.fail(f"real test data folder {folder} is missing (set RSTEM_SHARED_DATA)")
    return folder


@pytest.fixture(scope="session")
def data_file(shared_data: Path):
    """Return a function mapping a MANIFEST name to its path, failing if the file is missing."""

    def get(name: str) -> Path:
        path = shared_data / name
        if not path.is_file():
            pytest.fail(f"test data file {path} is missing (see ../shared/data/MANIFEST.md)")
        return path

    return get
