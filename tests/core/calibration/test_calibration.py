"""Scan-distortion calibration: accuracy against the synthetic truth, storage, map files, bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from rstem_core.analysis.truth_scores import (
    alignment_residual_rms_px,
    corrected_grating_rms_px,
    distortion_rms_px,
)
from rstem_core.calib import (
    CalibrationParams,
    DistortionMap,
    estimate_distortion,
    find_grating_period,
    run_calibration,
)
from rstem_core.calib.measure import MIN_PERIOD_STRENGTH
from rstem_core.errors import Cancelled, RstemError
from rstem_core.model import TiltSeries
from rstem_core.pipeline import step_states
from rstem_core.progress import CancelToken
from rstem_core.project import Project


def copy_project(src: Path, dest: Path) -> Path:
    shutil.copyfile(src, dest)
    return dest
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gratings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with Project.open(path) as proj:
        return proj.read_series("raw/grating-slow").frames[0], proj.read_series("raw/grating-rapid").frames[0]


def test_distortion_map_error_is_under_0_15_px(calibrated_path: Path) -> None:
    with Project.open(calibrated_path) as proj:
        score = distortion_rms_px(proj)
    assert score["distortion_rms_px"] < 0.15, score
    # the map measures the scan field minus the detector's feature delay (a fraction of a pixel)
    assert 0.2 < score["afterglow_delay_px"] < 1.0
    assert score["distortion_rms_no_delay_px"] > score["distortion_rms_px"]


def test_corrected_rapid_grating_matches_the_slow_one_under_0_2_px(calibrated_path: Path) -> None:
    with Project.open(calibrated_path) as proj:
        score = corrected_grating_rms_px(proj)
        truth_x = proj.read_array("truth/distortion_x_px")
    assert score["corrected_grating_rms_px"] < 0.2, score
    assert np.ptp(truth_x) > 8  # there was a lot to correct: several pixels across the frame


def test_corrected_frames_lie_on_the_undistorted_grid(calibrated_path: Path) -> None:
    with Project.open(calibrated_path) as proj:
        dmap = DistortionMap.read_group(proj.h5["calibration/distortion_map"])
        i = int(np.argmin(np.abs(proj.read_array("truth/rapid_angles_deg"))))
        distorted = proj.read_array("truth/rapid_clean")[i]
        undistorted = proj.read_array("truth/rapid_clean_undistorted")[i]
    # dislocation frames are sparse: windows of 64 px hold enough lines to be measured
    assert alignment_residual_rms_px(dmap, undistorted, distorted, window_px=64) < 0.25
    identity = DistortionMap(np.zeros_like(dmap.dy_px), np.zeros_like(dmap.dx_px), quality=dmap.quality)
    assert alignment_residual_rms_px(identity, undistorted, distorted, window_px=64) > 1.0


def test_map_and_corrected_series_are_stored(calibrated_path: Path) -> None:
    with Project.open(calibrated_path) as proj:
        grp = proj.h5["calibration/distortion_map"]
        rapid = proj.read_series("raw/rapid")
        corrected = proj.read_series("processed/corrected")
        assert grp["dx_px"].shape == grp["dy_px"].shape == rapid.frames.shape[1:]
        n = grp["window_centres_px"].shape[0]
        for name in ("window_displacement_px", "window_std_px", "window_residual_px"):
            assert grp[name].shape == (n, 2)
        assert grp["window_quality"].shape == grp["window_valid"].shape == (n,)
        attrs = proj.attrs("calibration/distortion_map")
        assert attrs["pixel_size_nm"] == pytest.approx(rapid.pixel_size_nm)
        assert attrs["n_valid_windows"] >= 0.9 * attrs["n_windows"]
        assert 0 < attrs["residual_rms_px"] < 1.0
        assert proj.params("calibration/distortion_map")["interpolation_order"] == 3
        assert proj.log_entries()[-1]["step"] == "calibrate"
        assert step_states(proj)["calibrate"].state == "done"
    assert corrected.frames.shape == rapid.frames.shape
    np.testing.assert_array_equal(corrected.angles_deg, rapid.angles_deg)
    np.testing.assert_array_equal(corrected.timestamps_s, rapid.timestamps_s)
    assert corrected.line_time_s == rapid.line_time_s
    assert corrected.metadata["distortion_corrected"] is True
    assert corrected.metadata["seed"] == rapid.metadata["seed"]


def test_a_saved_map_loads_into_another_project(calibrated_path: Path, demo_path: Path, tmp_path: Path) -> None:
    with Project.open(calibrated_path) as proj:
        dmap = DistortionMap.read_group(proj.h5["calibration/distortion_map"])
        expected = proj.read_series("processed/corrected").frames
    file = dmap.save(tmp_path / "scan-256px.h5")
    loaded = DistortionMap.load(file)
    np.testing.assert_array_equal(loaded.dx_px, dmap.dx_px)
    np.testing.assert_array_equal(loaded.windows["window_displacement_px"], dmap.windows["window_displacement_px"])
    assert loaded.quality == dmap.quality and loaded.pixel_size_nm == dmap.pixel_size_nm
    other = copy_project(demo_path, tmp_path / "other.h5")
    with Project.open(other, "a") as proj:
        result = run_calibration(proj, CalibrationParams(load_map=str(file)))
        assert proj.attrs("calibration/distortion_map")["source"] == str(file.absolute())
        np.testing.assert_allclose(proj.read_series("processed/corrected").frames, expected, atol=1e-3)
    assert "map loaded from scan-256px.h5" in result.notes


def test_correction_inverts_a_known_field() -> None:
    rng = np.random.default_rng(1)
    image = ndimage.gaussian_filter(rng.normal(size=(96, 120)), 3.0)
    r, c = np.mgrid[0:96, 0:120].astype(float)
    dx = 2.0 * np.sin(c / 30.0) + 0.04 * (c - 60) + 0.01 * r
    dy = 0.6 * np.exp(-r / 6.0)
    rapid = ndimage.map_coordinates(image, [r + dy, c + dx], order=3, mode="nearest")
    corrected = DistortionMap(dy, dx).correct(rapid, order=3)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(corrected[inner] - image[inner]).max() < 0.02 * np.ptp(image)


def test_grating_period_is_found_and_noise_has_none() -> None:
    r, c = np.mgrid[0:128, 0:128].astype(float)
    a = np.radians(4.0)
    u, v = c * np.cos(a) + r * np.sin(a), -c * np.sin(a) + r * np.cos(a)
    grating = 1 - 0.25 * ((np.cos(2 * np.pi * u / 12.5) > 0.3) | (np.cos(2 * np.pi * v / 12.5) > 0.3))
    found = find_grating_period(grating)
    assert found.period_px == pytest.approx(12.5, rel=0.04)
    assert found.strength > MIN_PERIOD_STRENGTH
    noise = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(128, 128)), 1.0)
    assert find_grating_period(noise).strength < MIN_PERIOD_STRENGTH


def test_bad_grating_pairs_are_rejected_with_the_reason(demo_path: Path) -> None:
    slow, rapid = _gratings(demo_path)
    with pytest.raises(RstemError, match="same frame size"):
        estimate_distortion(slow, rapid[:200])
    with pytest.raises(RstemError, match="grating period not found"):
        estimate_distortion(np.random.default_rng(0).poisson(800, slow.shape).astype(float), rapid)
    bad = rapid.copy()
    bad[10, 10] = np.nan
    with pytest.raises(RstemError, match="NaN"):
        estimate_distortion(slow, bad)
    with pytest.raises(RstemError, match="do not show the same field"):
        estimate_distortion(slow, np.fliplr(np.flipud(rapid)))


def test_a_rejected_calibration_changes_nothing(demo_path: Path, tmp_path: Path) -> None:
    path = copy_project(demo_path, tmp_path / "p.h5")
    with Project.open(path, "a") as proj, proj.edit() as w:
        noise = np.random.default_rng(2).poisson(800, (256, 256)).astype(np.float32)
        w.write_series("raw/grating-slow", TiltSeries(noise[None], [0.0], proj.read_series("raw/rapid").pixel_size_nm))
    before = _digest(path)
    with Project.open(path, "a") as proj, pytest.raises(RstemError, match="grating period not found"):
        run_calibration(proj, CalibrationParams(save_map=str(tmp_path / "never.h5")))
    assert _digest(path) == before
    assert not (tmp_path / "never.h5").exists()


def test_a_map_of_another_frame_size_is_refused(demo_path: Path, tmp_path: Path) -> None:
    small = DistortionMap(np.zeros((128, 128)), np.zeros((128, 128)), pixel_size_nm=9.12)
    file = small.save(tmp_path / "small.h5")
    path = copy_project(demo_path, tmp_path / "p.h5")
    before = _digest(path)
    with Project.open(path, "a") as proj, pytest.raises(RstemError, match="128x128 px but the rapid frames"):
        run_calibration(proj, CalibrationParams(load_map=str(file)))
    assert _digest(path) == before


def test_cancel_leaves_the_project_unchanged(demo_path: Path, tmp_path: Path) -> None:
    path = copy_project(demo_path, tmp_path / "p.h5")
    before = _digest(path)
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if fraction > 0.3:
            token.cancel()

    with Project.open(path, "a") as proj, pytest.raises(Cancelled):
        run_calibration(proj, progress=progress, cancel=token)
    assert _digest(path) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_px": 4}, "window_px must be at least 8"),
        ({"window_px": 16, "step_px": 32}, "must not exceed window_px"),
        ({"interpolation_order": 2}, "interpolation_order must be 1 or 3"),
        ({"min_valid_fraction": 0.0}, "min_valid_fraction"),
    ],
)
def test_parameters_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CalibrationParams(**kwargs)
