"""The demo project file: layout other steps rely on, atomic writing, cancel, previews."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from rstem_core.errors import Cancelled, ProjectError, ProjectLockedError
from rstem_core.importing import ACQUISITION_KEYS
from rstem_core.progress import CancelToken
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig, write_demo_project


@pytest.fixture(scope="module")
def tiny_config() -> SimulationConfig:
    return SimulationConfig.scaled(size=64, frames=5, seed=2, areas_per_tilt=2, frames_per_area=4)


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: SimulationConfig
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("demo")
    seen: list[float] = []
    path = write_demo_project(
        folder / "demo.h5",
        tiny_config,
        progress=lambda f, m: seen.append(f),
        previews_dir=folder / "previews",
    )
    assert seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    return path, folder / "previews"


def test_raw_series_layout(demo: tuple[Path, Path], tiny_config: SimulationConfig) -> None:
    path, _ = demo
    cfg = tiny_config
    with Project.open(path) as proj:
        rapid = proj.read_series("raw/rapid")
        assert rapid.frames.shape == (5, 64, 64)
        assert proj.h5["raw/rapid/frames"].dtype == np.uint16
        np.testing.assert_allclose(rapid.angles_deg, np.linspace(-70, 70, 5))
        np.testing.assert_allclose(rapid.timestamps_s, np.arange(5) * cfg.frame_interval_s)
        assert rapid.line_time_s == pytest.approx(cfg.frame_time_s / 64)
        assert set(rapid.metadata) == set(ACQUISITION_KEYS) | {"source", "seed"}
        assert rapid.metadata["fast_scan_axis"] == "x" and rapid.metadata["source"] == "synthetic"
        slow = proj.read_series("raw/slow")
        np.testing.assert_allclose(slow.angles_deg, np.linspace(-70, 70, 5))
        for key in ("raw/grating-rapid", "raw/grating-slow"):
            g = proj.read_series(key)
            assert g.frames.shape == (1, 64, 64) and g.angles_deg[0] == 0.0
        areas = proj.groups("raw/training")
        assert areas == [f"area_{i:03d}" for i in range(10)]
        a = proj.read_series("raw/training/area_009")
        assert a.frames.shape == (4, 64, 64)
        assert a.metadata == {"stage_tilt_deg": 70.0, "area": 9}
        assert np.all(a.angles_deg == 70.0)
        log = proj.log_entries()
        assert (
            log[-1]["step"] == "demo"
            and log[-1]["params"]["seed"] == 2
            and log[-1]["duration_s"] > 0
        )


def test_truth_layout(demo: tuple[Path, Path], tiny_config: SimulationConfig) -> None:
    path, _ = demo
    with Project.open(path) as proj:
        attrs = proj.attrs("truth")
        assert attrs["thickness_nm"] == 300.0 and attrs["seed"] == 2
        assert attrs["pixel_size_nm"] == pytest.approx(tiny_config.pixel_size_nm)
        assert SimulationConfig.from_dict(json.loads(attrs["config"])) == tiny_config
        shapes = {
            "truth/density": tiny_config.volume_shape,
            "truth/rapid_angles_deg": (5,),
            "truth/rapid_row_angles_deg": (5, 64),
            "truth/rapid_row_times_s": (5, 64),
            "truth/rapid_drift_px": (5, 2),
            "truth/rapid_clean": (5, 64, 64),
            "truth/rapid_clean_undistorted": (5, 64, 64),
            "truth/slow_angles_deg": (5,),
            "truth/slow_drift_px": (5, 2),
            "truth/slow_clean": (5, 64, 64),
            "truth/distortion_x_px": (64, 64),
            "truth/distortion_y_px": (64, 64),
            "truth/grating_clean": (64, 64),
            "truth/grating_rapid_clean": (64, 64),
            "truth/training/area_000/clean": (64, 64),
            "truth/training/area_000/thickness_nm": (),
            "truth/training/thickness_nm": (10,),
        }
        for key, shape in shapes.items():
            assert proj.h5[key].shape == shape, key
        assert proj.attrs("truth/density")["voxel_size_nm"] == pytest.approx(
            tiny_config.pixel_size_nm
        )
        lines = proj.read_json("truth/lines")
        assert len(lines) >= 1 and all(len(p[0]) == 3 for p in lines)
        assert len(proj.read_json("truth/line_info")) == len(lines)
        frames = proj.read_array("raw/rapid/frames").astype(float)
        clean = proj.read_array("truth/rapid_clean") * attrs["rapid_adu_per_unit"]
        assert abs(frames.mean() / clean.mean() - 1) < 0.05
        t = proj.read_array("truth/training/thickness_nm")
        assert t.min() < 0.8 * 300 < 1.2 * 300 < t.max()


def test_previews_are_written(demo: tuple[Path, Path]) -> None:
    _, folder = demo
    names = {p.name for p in folder.glob("*.png")}
    assert names == {
        f"demo_{n}.png"
        for n in (
            "rapid_frame",
            "rapid_clean",
            "slow_frame",
            "noise",
            "noise_fft",
            "grating_overlay",
        )
    }
    assert all((folder / n).stat().st_size > 5000 for n in names)


def test_cancel_leaves_no_file_and_keeps_an_old_one(
    tmp_path: Path, tiny_config: SimulationConfig
) -> None:
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if fraction > 0.5:
            token.cancel()

    with pytest.raises(Cancelled):
        write_demo_project(tmp_path / "new.h5", tiny_config, progress=progress, cancel=token)
    assert not (tmp_path / "new.h5").exists()

    old = tmp_path / "old.h5"
    old.write_bytes(b"previous content")
    token = CancelToken()
    with pytest.raises(Cancelled):
        write_demo_project(old, tiny_config, progress=progress, cancel=token)
    assert old.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["old.h5"]


def test_refuses_to_overwrite_when_told(tmp_path: Path, tiny_config: SimulationConfig) -> None:
    path = tmp_path / "p.h5"
    path.write_bytes(b"x")
    with pytest.raises(ProjectError, match="already exists"):
        write_demo_project(path, tiny_config, overwrite=False)
    assert h5py.is_hdf5(path) is False


def test_replaces_an_existing_project_but_not_one_open_elsewhere(
    tmp_path: Path, tiny_config: SimulationConfig
) -> None:
    path = tmp_path / "p.h5"
    write_demo_project(path, tiny_config)
    other = SimulationConfig.scaled(size=48, frames=3, seed=9, areas_per_tilt=1, frames_per_area=2)
    write_demo_project(path, other)
    with Project.open(path) as proj:
        assert proj.attrs("truth")["seed"] == 9
        assert proj.read_series("raw/rapid").frames.shape == (3, 48, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5", "p.h5.lock"]
    with Project.open(path, "a"):
        with pytest.raises(ProjectLockedError):
            write_demo_project(path, other)
