"""Coarse alignment, the tilt-axis direction, blank frames and the aligned stack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

from rstem_core.align import (
    alignment_signal,
    apply_alignment,
    blank_frames,
    coarse_align,
    detect_contrast,
    estimate_tilt_axis,
    neighbour_agreement,
    tlt_text,
)
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig, write_demo_project

from .conftest import phantom_series


def _shifted(frames: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Content moved by (dy, dx): a feature expected at (r, c) is seen at (r + dy, c + dx)."""
    return np.stack([ndi.shift(f, s, order=3, mode="constant") for f, s in zip(frames, shifts, strict=True)])


def test_coarse_alignment_finds_known_shifts() -> None:
    frames, angles, _ = phantom_series()
    rng = np.random.default_rng(0)
    shifts = rng.uniform(-4, 4, (len(angles), 2))
    ref = int(np.argmin(np.abs(angles)))
    shifts[:, 0] -= shifts[ref, 0] * np.cos(np.deg2rad(angles))  # the reference frame at (0, 0)
    shifts[:, 1] -= shifts[ref, 1]
    result = coarse_align(_shifted(frames, shifts), angles)
    assert result.reference == ref
    assert result.trusted.all()
    # parallax of depth stays (no 3D model yet); the chain must not wander off
    assert np.sqrt(np.mean((result.shifts_px - shifts) ** 2)) < 0.6


def test_blank_frame_is_left_out_and_gets_its_neighbours_shift() -> None:
    frames, angles, _ = phantom_series()
    frames = frames.copy()
    frames[7] = 0.0
    blank = blank_frames(frames)
    assert blank.tolist() == [i == 7 for i in range(len(angles))]
    result = coarse_align(frames, angles, usable=~blank)
    assert np.isnan(result.significance[7])
    np.testing.assert_allclose(result.shifts_px[7], 0.5 * (result.shifts_px[6] + result.shifts_px[8]))


def test_contrast_of_bright_field_and_haadf_like_frames() -> None:
    frames, _, _ = phantom_series()
    assert detect_contrast(frames + 1.0) == "bright"
    assert detect_contrast(10.0 - frames) == "dark"
    signal = alignment_signal(10.0 - frames, contrast="dark")
    assert signal.shape == frames.shape and signal.dtype == np.float32
    # the dark structure comes out positive
    assert np.corrcoef(signal.ravel(), frames.ravel())[0, 1] > 0.5


def test_tilt_axis_along_y_is_found() -> None:
    frames, angles, _ = phantom_series(n=31, size=64, nz=24)
    turned = np.rot90(frames, k=1, axes=(2, 1))  # the axis now runs along y (90 deg)
    axis, misfit = estimate_tilt_axis(turned, angles, size_px=64)
    assert min(abs(axis - 90), abs(axis + 90)) < 3.0
    assert misfit[90.0 if 90.0 in misfit else -90.0] < 0.5 * misfit[0.0]


def test_apply_alignment_removes_shifts_and_turns_the_axis_onto_x() -> None:
    frames, angles, _ = phantom_series(n=5)
    shifts = np.array([[1.5, -2.0], [0.0, 0.0], [-1.0, 2.5], [0.5, 0.5], [2.0, 1.0]])
    moved = _shifted(frames, shifts)
    back = apply_alignment(moved, shifts)
    inner = (slice(None), slice(6, -6), slice(6, -6))
    assert np.abs(back[inner] - frames[inner]).max() < 0.05 * frames.max()
    turned = np.rot90(frames, k=1, axes=(2, 1))  # +x turned onto +y: the axis at 90 deg
    restored = apply_alignment(turned, np.zeros((5, 2)), 90.0)
    assert np.abs(restored[inner] - frames[inner]).max() < 1e-3 * frames.max()


def test_tlt_text_has_one_angle_per_line() -> None:
    assert tlt_text(np.array([-60.0, 0.004, 59.996])) == "-60.00\n0.00\n60.00\n"


def test_streaked_bright_field_frames_are_aligned_again_without_their_streaks(tmp_path: Path) -> None:
    # the quick synthetic series at 16x the rapid dose: its dislocations are clear, but each frame's
    # scan-line streaks bury most neighbour correlations of the plain alignment signal
    config = SimulationConfig.scaled(size=128, frames=31, seed=0, areas_per_tilt=1, frames_per_area=2,
                                     dose_e_per_px=160.0)
    with Project.open(write_demo_project(tmp_path / "bright.h5", config), "r") as project:
        series = project.read_series("raw/rapid")
    plain = coarse_align(alignment_signal(series.frames, contrast="dark"), series.angles_deg, contrast="dark")
    assert plain.trusted.mean() < 0.5
    # the refinement's coarse step (and its neighbour test) aligns those frames again without
    # their streaks, and trusts most pairs
    assert neighbour_agreement(series.frames, series.angles_deg, contrast="dark") >= 0.8
