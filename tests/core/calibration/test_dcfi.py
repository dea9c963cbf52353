"""Drift-corrected frame integration: drift recovered, reference as good as a perfectly registered
average, robust averaging, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from rstem_core.analysis.truth_scores import dcfi_psnr_gain_db, psnr_db
from rstem_core.dcfi import dcfi, sigma_clipped_mean
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig
from rstem_core.simulate.distortion import generate_scan_distortion
from rstem_core.simulate.seeding import component_rng
from rstem_core.simulate.series import rapid_chain, slow_chain
from rstem_core.simulate.training import AreaPlan, simulate_training_area


def _drifting_area(frame_time_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 frames (128 px, the simulator's detector; rapid 30 ms frames, or slow-scan frames of
    ``frame_time_s`` with the dose that goes with it) of one area drifting smoothly by 12 px:
    (frames ADU, clean ADU, true drift (dy, dx) px)."""
    config = SimulationConfig.scaled(size=128, frames=15, seed=0, frames_per_area=2)
    distortion = generate_scan_distortion(component_rng(0, "distortion"), 128, 128, config.scan)
    area = simulate_training_area(config, AreaPlan(0, 0.0, config.thickness_nm, True), distortion)
    chain = rapid_chain(config) if frame_time_s is None else slow_chain(config, frame_time_s=frame_time_s)
    rng = np.random.default_rng(0)
    drift = np.cumsum(ndimage.gaussian_filter1d(rng.normal(0, 1, (40, 2)), 3, axis=0), axis=0)
    drift -= drift[0]
    drift *= 12 / np.abs(drift).max()
    frames = np.stack(
        [chain.record(ndimage.shift(area.clean, d, order=3, mode="nearest"), rng) for d in drift]
    )
    return frames, area.clean * chain.adu_per_unit, drift


@pytest.fixture(scope="module")
def drifting_stack() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The drifting area at the rapid dose."""
    return _drifting_area()


def _oracle(frames: np.ndarray, drift: np.ndarray) -> np.ndarray:
    """The average of the frames registered with their true drift."""
    moved = np.stack([ndimage.shift(f, -d, order=3, mode="nearest") for f, d in zip(frames, drift, strict=True)])
    return moved.mean(axis=0)


def test_drift_is_recovered_and_the_reference_is_as_good_as_perfect_registration(drifting_stack) -> None:
    frames, clean, drift = drifting_stack
    result = dcfi(frames)
    err = result.drift_px - drift
    err -= err.mean(axis=0)
    assert np.sqrt(np.mean(np.sum(err**2, axis=1))) < 1.0
    margin = int(np.ceil(np.abs(drift).max())) + 3
    ours = psnr_db(result.reference, clean, margin)
    perfect = psnr_db(_oracle(frames, drift), clean, margin)
    plain = psnr_db(frames.mean(axis=0), clean, margin)
    assert ours >= perfect - 0.5
    # the gain over the plain average is limited by the shot noise left after 40 frames: the
    # drift blurs away only the fine content (lines), whose contrast is a fraction of the noise
    assert ours >= plain + 0.5
    assert result.reference.shape == clean.shape and result.frames_used.max() == len(frames)


def test_six_db_over_the_plain_average_where_the_noise_allows_it() -> None:
    """The same drifting area recorded with 0.48 s frames (16x the rapid dose). At the rapid dose no
    registration can gain 6 dB: even the perfectly registered average is only ~1.9 dB above the
    plain one (the 40-frame noise left is as strong as the fine content the drift blurs away). With
    less noise the registration's accuracy decides, and the reference must gain 6 dB or more."""
    frames, clean, drift = _drifting_area(frame_time_s=0.48)
    margin = int(np.ceil(np.abs(drift).max())) + 3
    result = dcfi(frames)
    ours = psnr_db(result.reference, clean, margin)
    plain = psnr_db(frames.mean(axis=0), clean, margin)
    assert ours >= plain + 6.0
    assert ours >= psnr_db(_oracle(frames, drift), clean, margin) - 0.3


def test_training_areas_of_the_demo_project(curated_path: Path) -> None:
    with Project.open(curated_path) as proj:
        score = dcfi_psnr_gain_db(proj)
    # the demo's areas drift by about a pixel in 8 frames: registration must not make things worse
    assert score["dcfi_drift_rms_px"] < 0.5
    assert score["dcfi_psnr_gain_db"] > -0.3


def test_sigma_clipping_removes_an_outlier_frame() -> None:
    rng = np.random.default_rng(3)
    stack = rng.normal(10.0, 1.0, (12, 32, 32)).astype(np.float32)
    stack[5, 10:14, :] = 500.0  # a flash across a few rows of one frame
    mean, count = sigma_clipped_mean(stack, np.ones(stack.shape, bool))
    assert abs(float(mean[10:14].mean()) - 10.0) < 0.5
    assert count[10:14].max() == 11 and count[20:].mean() > 11.9


def test_nonrigid_refinement_gives_per_row_drift(drifting_stack) -> None:
    frames, _, _ = drifting_stack
    result = dcfi(frames[:8], nonrigid_bands=4, passes=2)
    assert result.row_drift_px is not None and result.row_drift_px.shape == (8, 128, 2)
    assert np.all(np.isfinite(result.reference))


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((1, 64, 64)), "at least 2"),
        (np.full((3, 64, 64), np.nan), "NaN"),
        (np.zeros((64, 64)), "stack"),
    ],
)
def test_bad_stacks_are_rejected(frames: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dcfi(frames)
