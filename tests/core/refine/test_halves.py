"""Cross-checked feature rounds: each half of the frames is measured against the other half's volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rstem_core.align.refine as refine_module
from rstem_core.align import refine_alignment
from rstem_core.align.refine import frame_halves
from rstem_core.project import Project
from rstem_core.refine_step import RefineParams

from .conftest import phantom_series


def test_halves_split_the_usable_frames_and_share_only_the_end_frames() -> None:
    usable = np.ones(11, dtype=bool)
    usable[[0, 4]] = False  # an excluded first frame and one in the middle
    (built_a, seen_a), (built_b, seen_b) = frame_halves(usable)
    order = np.flatnonzero(usable)  # 1 2 3 5 6 7 8 9 10
    np.testing.assert_array_equal(np.flatnonzero(built_a), order[::2])
    np.testing.assert_array_equal(np.flatnonzero(built_b), order[1::2])
    assert not np.any(built_a & built_b) and np.array_equal(built_a | built_b, usable)
    # each volume's features are measured in the other half, plus the two end frames (1 and 10)
    np.testing.assert_array_equal(np.flatnonzero(seen_a), [1, 2, 5, 7, 9, 10])
    np.testing.assert_array_equal(np.flatnonzero(seen_b), [1, 3, 6, 8, 10])
    assert not np.any((seen_a | seen_b) & ~usable)


@pytest.fixture(scope="module")
def noise_free(quick_demo: Path) -> tuple[np.ndarray, object, np.ndarray]:
    with Project.open(quick_demo) as proj:
        raw = proj.read_series("raw/rapid")
        clean = proj.read_array("truth/rapid_clean_undistorted")
        truth = proj.read_array("truth/rapid_angles_deg")
    return clean, raw, truth


def _refine(noise_free, split: bool, **kw):
    clean, raw, _ = noise_free
    p = RefineParams()
    return refine_alignment(
        clean, raw.angles_deg, timestamps_s=raw.timestamps_s, line_time_s=raw.line_time_s,
        smooth_deg_s2=p.angle_acceleration_deg_s2, smooth_shifts_px_s2=p.drift_acceleration_px_s2,
        estimate_axis=False, split_halves=split, **kw,
    )


def test_no_frame_is_measured_against_a_volume_it_helped_to_build(noise_free, monkeypatch) -> None:
    built_sets, kept_masks = [], []
    real_rays, real_only = refine_module.rays_with_data, refine_module._only

    def rays(valid, usable, rows):
        built_sets.append(np.array(usable))
        return real_rays(valid, usable, rows)

    def only(tracks, keep):
        kept_masks.append(np.array(keep))
        return real_only(tracks, keep)

    monkeypatch.setattr(refine_module, "rays_with_data", rays)
    monkeypatch.setattr(refine_module, "_only", only)
    result = _refine(noise_free, True, rounds=2, max_features=150)
    assert result.method == "features"
    n = len(noise_free[2])
    ends = [0, n - 1]
    # two volumes per round, two rounds; each volume's features counted only outside its own frames
    volumes = [b for b in built_sets if b.sum() < n]
    assert len(volumes) == 4 and len(kept_masks) == 4
    for built, keep in zip(volumes, kept_masks, strict=True):
        own = np.flatnonzero(built)
        own = own[~np.isin(own, ends)]
        assert own.size >= 13
        assert not keep[own].any()
        assert keep[~built].any(axis=1).sum() >= 10  # measured in the other half's frames


def test_cross_checked_rounds_follow_noise_free_frames_as_well(noise_free) -> None:
    truth = noise_free[2]
    nominal = np.sqrt(np.mean((noise_free[1].angles_deg - truth) ** 2))
    errors = {}
    for split in (False, True):
        result = _refine(noise_free, split, rounds=3)
        assert result.method == "features" and result.n_features >= 20
        errors[split] = float(np.sqrt(np.mean((result.angles_deg - truth) ** 2)))
    # quick demo, noise-free, 3 rounds: nominal 0.71 deg, one volume 0.14, the halves 0.15
    assert errors[True] < 0.4 * nominal
    assert errors[True] < errors[False] + 0.1


def test_a_short_series_is_refined_with_one_volume_and_says_so() -> None:
    frames, angles, _ = phantom_series(n=9, size=48, nz=16, blobs=25)
    result = refine_alignment(frames, angles + 0.3, rounds=1, split_halves=True, estimate_axis=False)
    assert any("9 usable frames: too few to split into halves" in note for note in result.notes)
    assert result.angles_deg.shape == (9,) and np.all(np.isfinite(result.angles_deg))
