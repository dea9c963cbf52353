"""Training-set curation: thickness matching against the synthetic truth, storage, overrides."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from rstem_core.analysis.truth_scores import curation_scores
from rstem_core.curate import CurationParams, background_level, fit_beer_lambert, run_curation
from rstem_core.errors import RstemError
from rstem_core.model import TiltSeries
from rstem_core.pipeline import step_states
from rstem_core.project import Project


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_matched_areas_are_accepted_and_mismatched_rejected(curated_path: Path) -> None:
    with Project.open(curated_path) as proj:
        score = curation_scores(proj)
    assert score["curation_matched_areas"] >= 8 and score["curation_mismatched_areas"] >= 6
    assert score["curation_accept_matched"] >= 0.9, score
    assert score["curation_reject_mismatched"] >= 0.9, score


def test_thickness_estimates_follow_the_truth(curated_path: Path) -> None:
    with Project.open(curated_path) as proj:
        decisions = proj.read_json("training/decisions")
        truth = proj.read_array("truth/training/thickness_nm") / proj.attrs("truth")["thickness_nm"] - 1
    est = np.array([d["relative_thickness"] for d in decisions])
    true = np.array([truth[int(d["area"][-3:])] for d in decisions])
    assert np.corrcoef(est, true)[0, 1] > 0.95
    assert np.max(np.abs(est - true)[np.abs(true) <= 0.1]) < 0.1


def test_references_decisions_and_patch_report_are_stored(curated_path: Path) -> None:
    with Project.open(curated_path) as proj:
        names = sorted(proj.groups("raw/training"))
        decisions = proj.read_json("training/decisions")
        accepted = proj.read_json("training/accepted")
        patches = proj.read_json("training/patches")
        assert [d["area"] for d in decisions] == names
        assert accepted == [d["area"] for d in decisions if d["accepted"]]
        for name in names:
            ref = proj.read_array(f"training/references/{name}")
            drift = proj.read_array(f"training/drift/{name}")
            area = proj.read_series(f"raw/training/{name}")
            assert ref.shape == area.frames.shape[1:] and ref.dtype == np.float32
            assert drift.shape == (area.n_frames, 2)
            tilt = proj.attrs(f"training/references/{name}")["stage_tilt_deg"]
            assert tilt == area.metadata["stage_tilt_deg"]
        assert step_states(proj)["curate"].state == "done"
        assert proj.log_entries()[-1]["step"] == "curate"
    for d in decisions:
        assert set(d) >= {"relative_thickness", "wasserstein_normalised", "reason", "accepted", "override"}
        assert "thinner" in d["reason"] or "thicker" in d["reason"]
    assert sum(p["accepted"] for p in patches) == len(accepted)
    for p in patches:
        # 256 px frames hold 4 x 4 patches of 64 px
        assert p["patches_per_frame"] == 16 and p["patches"] == 16 * p["frames"]


def test_user_decisions_override_and_persist(curated_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    shutil.copyfile(curated_path, path)
    with Project.open(path) as proj:
        before = {d["area"]: d for d in proj.read_json("training/decisions")}
    accepted = next(a for a, d in before.items() if d["accepted"])
    rejected = next(a for a, d in before.items() if not d["accepted"])
    with Project.open(path, "a") as proj:
        run_curation(proj, CurationParams(reject=(accepted,), accept=(str(int(rejected[-3:])),)))
        run_curation(proj)  # a later run keeps the user's decisions
        after = {d["area"]: d for d in proj.read_json("training/decisions")}
        assert proj.read_json("training/overrides") == {accepted: "reject", rejected: "accept"}
    assert not after[accepted]["accepted"] and after[accepted]["override"] == "reject"
    assert "rejected by the user" in after[accepted]["reason"]
    assert after[rejected]["accepted"] and after[rejected]["automatic"] is False
    with Project.open(path, "a") as proj:
        run_curation(proj, CurationParams(clear_overrides=True))
        cleared = {d["area"]: d["accepted"] for d in proj.read_json("training/decisions")}
    assert cleared == {a: d["accepted"] for a, d in before.items()}


def test_errors_leave_the_project_unchanged(curated_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    shutil.copyfile(curated_path, path)
    before = _digest(path)
    with Project.open(path, "a") as proj, pytest.raises(RstemError, match="no training area '999'"):
        run_curation(proj, CurationParams(accept=("999",)))
    assert _digest(path) == before
    lonely = tmp_path / "lonely.h5"
    with Project.create(lonely) as proj, proj.edit() as w:
        w.write_series("raw/training/area_000", TiltSeries(np.ones((3, 32, 32)), [0.0] * 3, 5.0))
    before = _digest(lonely)
    with Project.open(lonely, "a") as proj, pytest.raises(RstemError, match="no rapid series"):
        run_curation(proj)
    assert _digest(lonely) == before


def test_beer_lambert_fit_recovers_thickness_over_absorption_length() -> None:
    angles = np.linspace(-70, 70, 29)
    log_b = np.log(1000.0) - 0.5 / np.cos(np.radians(angles))
    log_b[3] += 0.5  # one bad frame
    fit = fit_beer_lambert(log_b, angles)
    assert fit.slope == pytest.approx(-0.5, abs=1e-6) and fit.n_frames == 28
    # an area 20 % thicker at 40 deg
    thicker = np.log(1000.0) - 0.6 / np.cos(np.radians(40.0))
    assert fit.relative_thickness(thicker, 40.0) == pytest.approx(0.2, abs=1e-6)
    with pytest.raises(ValueError, match="too few tilts"):
        fit_beer_lambert(log_b[:2], angles[:2])


def test_background_level_ignores_dark_features() -> None:
    rng = np.random.default_rng(0)
    frame = np.full((128, 128), 40.0)
    frame[:, 40:44] = 15.0  # a dark line
    frame[70:110, :] *= 0.7  # a bend contour
    noisy = rng.poisson(frame).astype(np.float32)
    assert background_level(noisy) == pytest.approx(40.0, rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, "threshold must be a fraction"),
        ({"statistic": "mean"}, "statistic must be one of"),
        ({"accept": ("3",), "reject": ("3",)}, "both accepted and rejected"),
    ],
)
def test_parameters_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CurationParams(**kwargs)
