"""Training areas and the thickness plan, determinism for a seed, the scaled configurations."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from rstem_core.simulate import (
    Experiment,
    SimulationConfig,
    TrainingArea,
    simulate_experiment,
    training_plan,
)


def test_training_thicknesses_bracket_the_specimen() -> None:
    for cfg in (SimulationConfig(), SimulationConfig.scaled(size=128, frames=31)):
        plans = training_plan(cfg)
        assert len(plans) == cfg.areas_per_tilt * 5
        t = np.array([p.thickness_nm for p in plans])
        matched = np.array([p.matched for p in plans])
        assert t.min() < 0.8 * cfg.thickness_nm and t.max() > 1.2 * cfg.thickness_nm
        assert np.all(np.abs(t[matched] / cfg.thickness_nm - 1) < cfg.matched_tolerance)
        assert np.all(np.abs(t[~matched] / cfg.thickness_nm - 1) >= cfg.mismatch_min - 1e-9)
        assert 0.3 < matched.mean() < 0.7
        for tilt in cfg.training_tilts_deg:
            here = [p for p in plans if p.stage_tilt_deg == tilt]
            assert any(p.thickness_nm < cfg.thickness_nm * 0.8 for p in here)
            assert any(p.thickness_nm > cfg.thickness_nm * 1.2 for p in here)
        assert Counter(p.stage_tilt_deg for p in plans) == {
            t: cfg.areas_per_tilt for t in cfg.training_tilts_deg
        }


def test_training_areas_are_repeated_noisy_views_of_their_clean_image(
    experiment: Experiment, areas: list[TrainingArea]
) -> None:
    cfg = experiment.config
    assert len(areas) == cfg.n_training_areas
    for area in areas:
        s = area.series
        assert s.frames.shape == (cfg.frames_per_area, cfg.size, cfg.size)
        assert np.all(s.angles_deg == area.plan.stage_tilt_deg)
        assert s.metadata == {"stage_tilt_deg": area.plan.stage_tilt_deg, "area": area.plan.index}
        expected = area.adu_per_unit * area.clean
        mean = s.frames.mean(axis=0)
        # zero-mean noise, except that clipping at 0 ADU lifts the darkest (thick, 70 deg) areas a little
        assert abs(mean.mean() - expected.mean()) < 0.02 * expected.mean() + 0.25
        single = np.corrcoef(s.frames[0].ravel(), expected.ravel())[0, 1]
        average = np.corrcoef(mean.ravel(), expected.ravel())[0, 1]
        assert single < 0.5  # a single frame is mostly noise
        assert average > 1.7 * single  # averaging frames recovers the clean image (~sqrt(8) x)
        drift = np.linalg.norm(area.drift_px, axis=1)
        assert 0 < drift.max() < cfg.area_drift_nm / cfg.pixel_size_nm + 0.1
        assert not np.allclose(s.frames[0], s.frames[1])


def test_thicker_and_more_tilted_areas_are_darker(areas: list[TrainingArea]) -> None:
    level = {a.plan.index: float(a.clean.mean()) for a in areas}
    for tilt in {a.plan.stage_tilt_deg for a in areas}:
        here = sorted(
            (a for a in areas if a.plan.stage_tilt_deg == tilt), key=lambda a: a.plan.thickness_nm
        )
        assert level[here[0].plan.index] > level[here[-1].plan.index]
    at0 = np.mean(
        [level[a.plan.index] for a in areas if a.plan.stage_tilt_deg == 0 and a.plan.matched]
    )
    at70 = np.mean(
        [level[a.plan.index] for a in areas if a.plan.stage_tilt_deg == 70 and a.plan.matched]
    )
    assert 0.2 * at0 < at70 < 0.6 * at0  # clearly darker, not black


def _tiny(seed: int = 7, **kw) -> SimulationConfig:
    return SimulationConfig.scaled(
        size=48, frames=4, seed=seed, areas_per_tilt=1, frames_per_area=3, **kw
    )


def _arrays(exp: Experiment) -> dict[str, np.ndarray]:
    area = next(iter(exp.training_areas()))
    return {
        "rapid": exp.rapid.frames,
        "slow": exp.slow.frames,
        "clean": exp.rapid_truth.clean,
        "angles": exp.rapid_truth.row_angles_deg,
        "dx": exp.distortion.dx_px,
        "density": exp.density,
        "grating": exp.grating_rapid.frames,
        "area": area.series.frames,
    }


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = _arrays(simulate_experiment(_tiny(), workers=2))
    b = _arrays(simulate_experiment(_tiny(), workers=1))
    c = _arrays(simulate_experiment(_tiny(seed=8)))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert not np.array_equal(a[key], c[key]), key


def test_changing_one_part_leaves_the_others_alone() -> None:
    base = _tiny()
    more_dose = dataclasses.replace(base, dose_e_per_px=2 * base.dose_e_per_px)
    a, b = _arrays(simulate_experiment(base)), _arrays(simulate_experiment(more_dose))
    for key in ("clean", "angles", "dx", "density"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a["rapid"], b["rapid"])


def test_scaled_configurations() -> None:
    assert SimulationConfig.scaled() == SimulationConfig()
    c = SimulationConfig.scaled(size=128, frames=31, seed=3)
    assert c.pixel_size_nm == pytest.approx(9.12)
    assert (c.areas_per_tilt, c.frames_per_area, c.seed) == (4, 10, 3)
    assert c.frame_interval_s * (c.n_frames - 1) == pytest.approx(4.9)
    assert c.nominal_tilt_rate_deg_s == pytest.approx(SimulationConfig().nominal_tilt_rate_deg_s)
    assert c.frame_time_s == 0.030 and c.line_time_s == pytest.approx(0.030 / 128)
    full = SimulationConfig()
    assert full.dwell_time_s == pytest.approx(114e-9, rel=0.01)
    assert 27.5 < full.nominal_tilt_rate_deg_s < 29.0
    assert full.slow_angles_deg()[1] - full.slow_angles_deg()[0] == pytest.approx(2.0)
    assert full.n_training_areas * full.frames_per_area == 8750
    assert SimulationConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="frame_interval_s"):
        SimulationConfig(frame_interval_s=0.01)
