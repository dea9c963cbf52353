"""Synthetic projects shared by the calibration, DCFI and curation tests (built once per worker)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rstem_core.calib import run_calibration
from rstem_core.curate import run_curation
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig, write_demo_project


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 px (the smallest size whose single rapid grating frame holds enough signal for the
    0.15 px bound), 15 tilts, 4 training areas of 8 frames per stage tilt. Never modified."""
    config = SimulationConfig.scaled(size=256, frames=15, seed=0, areas_per_tilt=4, frames_per_area=8)
    return write_demo_project(tmp_path_factory.mktemp("demo") / "demo.h5", config)


@pytest.fixture(scope="session")
def calibrated_path(demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibrated") / "p.h5"
    shutil.copyfile(demo_path, path)
    with Project.open(path, "a") as proj:
        run_calibration(proj)
    return path


@pytest.fixture(scope="session")
def curated_path(demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("curated") / "p.h5"
    shutil.copyfile(demo_path, path)
    with Project.open(path, "a") as proj:
        run_curation(proj)
    return path


@pytest.fixture(scope="session")
def small_demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """128 px, 7 tilts, 2 training areas of 6 frames per tilt: for the command line tests."""
    config = SimulationConfig.scaled(size=128, frames=7, seed=3, areas_per_tilt=2, frames_per_area=6)
    return write_demo_project(tmp_path_factory.mktemp("small") / "small.h5", config)
