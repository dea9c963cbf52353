"""Shared inputs of the refinement tests: a small phantom tilt series and one quick demo project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rstem_core.recon import Geometry, Projector
from rstem_core.simulate import SimulationConfig, write_demo_project

QUICK = {"size": 128, "frames": 31, "seed": 0}


def phantom_series(
    *, n: int = 31, size: int = 64, nz: int = 24, blobs: int = 40, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projections of random Gaussian blobs in a slab: (frames, angles_deg, volume).

    Bright blobs on zero background, tilt axis along x, angles -60..60 deg, no shifts.
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:nz, :size, :size].astype(np.float32)
    vol = np.zeros((nz, size, size), np.float32)
    for _ in range(blobs):
        cz, cy, cx = rng.uniform(4, nz - 4), rng.uniform(8, size - 8), rng.uniform(8, size - 8)
        vol += np.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / (2 * 1.5**2))
    angles = np.linspace(-60, 60, n)
    frames = Projector(Geometry(angles, size, size, nz), "cpu").project(vol)
    return frames, angles, vol


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick synthetic experiment (``rstem demo --size 128 --frames 31``), written once per module."""
    path = tmp_path_factory.mktemp("refine") / "demo.h5"
    config = SimulationConfig.scaled(
        size=QUICK["size"], frames=QUICK["frames"], seed=QUICK["seed"], areas_per_tilt=1, frames_per_area=2
    )
    return write_demo_project(path, config)
