"""Fixtures of the denoise tests: tiny in-memory training areas and one tiny curated project."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rstem_core.denoise.pairs import TrainingArea


def _line_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth background with a few dark lines (intensity ~10..30 ADU)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    img = 20 + 6 * np.sin(xx / size * 3 + rng.uniform(0, 6)) * np.cos(yy / size * 2 + rng.uniform(0, 6))
    for _ in range(4):
        a, c = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8) * size
        dist = (xx - c) * np.cos(a) + (yy - size / 2) * np.sin(a)
        img -= 6 * np.exp(-(dist**2) / (2 * 1.2**2))
    return img.astype(np.float32)


def make_areas(n_areas: int = 4, frames: int = 6, size: int = 48, seed: int = 0) -> tuple[list[TrainingArea], dict]:
    """Areas of Poisson-noisy frames (no drift) with their exact clean images as references."""
    rng = np.random.default_rng(seed)
    areas, clean = [], {}
    for i in range(n_areas):
        img = _line_image(rng, size)
        noisy = rng.poisson(np.clip(img, 0, None) / 2, (frames, size, size)).astype(np.float32) * 2
        name = f"area_{i:03d}"
        areas.append(TrainingArea(name, noisy, img, np.zeros((frames, 2)), float(20 * (i % 2))))
        clean[name] = img
    return areas, clean


@pytest.fixture(scope="session")
def line_image():
    """``line_image(rng, size)``: a smooth background with dark lines, ADU."""
    return _line_image


@pytest.fixture(scope="session")
def tiny_areas() -> tuple[list[TrainingArea], dict]:
    return make_areas()


@pytest.fixture(scope="session")
def _curated_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rstem_core.curate import run_curation
    from rstem_core.project import Project
    from rstem_core.simulate import SimulationConfig, write_demo_project

    path = tmp_path_factory.mktemp("denoise") / "tiny.h5"
    write_demo_project(path, SimulationConfig.scaled(size=64, frames=5, seed=1, areas_per_tilt=2, frames_per_area=6))
    with Project.open(path, "a") as proj:
        run_curation(proj)
    return path


@pytest.fixture()
def curated_project(_curated_project: Path, tmp_path: Path) -> Path:
    """A fresh copy of a tiny curated synthetic project (64 px frames, 5 tilts x 2 areas)."""
    dst = tmp_path / "tiny.h5"
    shutil.copy(_curated_project, dst)
    return dst


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny networks gain nothing from threads, and threads that wait for a busy CPU cost a lot."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
