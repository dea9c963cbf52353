"""The limits of the centre evaluation: one source of error left out at a time."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest

from rstem_core.analysis.limits import LIMITS, completeness_limits
from rstem_core.errors import RstemError
from rstem_core.project import Project
from rstem_core.recon.step import run_reconstruction
from rstem_core.simulate import SimulationConfig, write_demo_project


@pytest.fixture(scope="module")
def reconstructed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small noisy synthetic project reconstructed from its raw frames at the nominal angles."""
    path = tmp_path_factory.mktemp("limits") / "demo.h5"
    write_demo_project(path, SimulationConfig.scaled(size=96, frames=15, seed=4, areas_per_tilt=1, frames_per_area=2))
    with Project.open(path, "a") as proj:
        run_reconstruction(proj)
    return path


def test_each_limit_is_scored_on_the_steps_grid_and_the_noise_free_one_finds_far_more(reconstructed: Path) -> None:
    with Project.open(reconstructed) as proj:
        out = completeness_limits(proj)
    assert set(out) == set(LIMITS)
    for name in LIMITS:  # the same true crossings for every volume: the same grid in x and y
        assert out[name]["reference_centres"] == out["volume"]["reference_centres"]
    # the centre finder on the true density: nearly every crossing, each well within a voxel
    # (measured: 87 %, 1.5-2.1 nm of 24 nm voxels)
    assert out["density"]["completeness"] > 0.8
    assert max(out["density"]["position_error_nm"].values()) < 3.0
    # at 15 frames of 96 px the noise hides most lines (measured 13 %); the noise-free frames with
    # the true geometry show most of them (64 %)
    assert out["noise_free"]["completeness"] > out["volume"]["completeness"] + 0.3
    assert out["noise_free"]["completeness"] < out["density"]["completeness"]
    assert out["noise_free"]["seconds"] > 0


def test_limits_need_a_synthetic_project_with_a_volume(reconstructed: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.h5"
    bare.write_bytes(reconstructed.read_bytes())
    with h5py.File(bare, "a") as f:
        del f["reconstruction/volume"]
    with Project.open(bare) as proj, pytest.raises(RstemError, match="no volume yet"):
        completeness_limits(proj)
    with Project.open(reconstructed) as proj, pytest.raises(RstemError, match="unknown limit"):
        completeness_limits(proj, which=("density", "perfect"))
    with h5py.File(bare, "a") as f:
        del f["truth"]
    with Project.open(bare) as proj, pytest.raises(RstemError, match="holds no truth"):
        completeness_limits(proj)
