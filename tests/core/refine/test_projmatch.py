"""Projection matching of the shifts: frames whose tracks settled together beside their content."""

from __future__ import annotations

import numpy as np

from rstem_core.align.projmatch import projection_matching
from rstem_core.analysis.refine_scores import shift_errors_px

from .conftest import phantom_series


def test_shift_polish_brings_back_frames_that_drifted_off_together() -> None:
    """The end frames start 1.5 px off in both directions, tapering over six frames (what a
    feature solution on noisy high-tilt frames left at the default size); matching each frame
    with the re-projection of the others brings them back, and the angles stay as they were."""
    frames, angles, _ = phantom_series(n=31, size=64, nz=24, blobs=40, seed=3)
    rng = np.random.default_rng(3)
    noisy = (frames + rng.normal(0, 0.1 * frames.max(), frames.shape)).astype(np.float32)
    n = len(angles)
    ramp = np.zeros(n)
    ramp[:6] = np.linspace(1.5, 0.0, 6)
    ramp[-6:] = np.linspace(0.0, -1.5, 6)
    start = np.stack([ramp, ramp], axis=1)
    out = projection_matching(noisy, angles, start, 24, fit_angles=False, iterations=4)
    np.testing.assert_array_equal(out.angles_deg, angles)
    # errors after removing the specimen translation no image can tell (as the evaluation does)
    before = shift_errors_px(start, np.zeros((n, 2)), angles)
    after = shift_errors_px(out.shifts_px, np.zeros((n, 2)), angles)
    end = np.r_[0:3, n - 3 : n]
    assert np.abs(after[end]).max() < 0.5 * np.abs(before[end]).max()
    assert np.sqrt(np.mean(after**2)) < 0.5 * np.sqrt(np.mean(before**2))
