"""The refinement step on the quick synthetic experiment: targets, source, bad input, outputs.

The ``slow`` tests share one refinement of the quick demo's raw series with the default
parameters (``rstem demo --size 128 --frames 31`` then ``rstem refine``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi

from rstem_core.align import apply_alignment, refine_alignment
from rstem_core.analysis.refine_scores import angle_rms_deg, nominal_angle_rms_deg, shift_rms_px
from rstem_core.errors import Cancelled, RstemError
from rstem_core.exporting import export
from rstem_core.model import TiltSeries
from rstem_core.progress import CancelToken
from rstem_core.project import Project
from rstem_core.refine_step import ALIGNED, OUTPUT, RefineParams, choose_source, run_refinement

from .conftest import phantom_series


@pytest.fixture(scope="module")
def refined_demo(quick_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One refinement of the quick demo's raw series with the default parameters."""
    path = tmp_path_factory.mktemp("refined") / "demo.h5"
    shutil.copy(quick_demo, path)
    started = time.perf_counter()
    with Project.open(path, "a") as proj:
        result = run_refinement(proj, RefineParams())
        seconds = time.perf_counter() - started
        scores = {
            "angle_rms_deg": angle_rms_deg(proj),
            "nominal_angle_rms_deg": nominal_angle_rms_deg(proj),
            "shift_rms_px": shift_rms_px(proj),
        }
    return {"path": path, "result": result, "seconds": seconds, **scores}


@pytest.mark.slow
def test_quick_demo_shifts_within_target(refined_demo: dict) -> None:
    assert refined_demo["shift_rms_px"] <= 0.3


@pytest.mark.slow
def test_quick_demo_angles_no_worse_than_nominal(refined_demo: dict) -> None:
    assert refined_demo["angle_rms_deg"] <= refined_demo["nominal_angle_rms_deg"] + 0.02


@pytest.mark.slow
def test_source_is_the_raw_series_and_recorded(refined_demo: dict) -> None:
    with Project.open(refined_demo["path"]) as proj:
        attrs = proj.h5[OUTPUT].attrs
        assert attrs["source"] == "/raw/rapid"
        entry = [e for e in proj.log_entries() if e.get("step") == "refine"][-1]
        assert entry["source"] == "/raw/rapid" and entry["method"] == refined_demo["result"].method


@pytest.mark.slow
def test_aligned_series_carries_the_refined_angles(refined_demo: dict, tmp_path: Path) -> None:
    with Project.open(refined_demo["path"]) as proj:
        aligned = proj.read_series(ALIGNED)
        angles = proj.read_array(f"{OUTPUT}/angles_deg")
        raw = proj.read_series("raw/rapid")
        assert aligned.frames.shape == raw.frames.shape
        np.testing.assert_allclose(aligned.angles_deg, angles)
        assert proj.read_array(f"{OUTPUT}/shifts_px").shape == (raw.n_frames, 2)
        assert proj.read_array(f"{OUTPUT}/residuals_px").shape == (raw.n_frames,)
        out = export(proj, tmp_path / "aligned.mrc", what="aligned")
    tlt = out.with_suffix(".tlt").read_text().split()
    np.testing.assert_allclose([float(a) for a in tlt], angles, atol=0.006)


def _with_series(path: Path, key: str, series: TiltSeries) -> None:
    with Project.open(path, "a") as proj, proj.edit() as w:
        w.write_series(key, series)


def test_most_processed_source_is_chosen(quick_demo: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    shutil.copy(quick_demo, path)
    with Project.open(path) as proj:
        raw = proj.read_series("raw/rapid")
        assert choose_source(proj) == "raw/rapid"
    _with_series(path, "processed/corrected", raw)
    with Project.open(path) as proj:
        assert choose_source(proj) == "processed/corrected"
    _with_series(path, "processed/denoised", raw)
    with Project.open(path, "a") as proj:
        assert choose_source(proj) == "processed/denoised"
        assert choose_source(proj, "corrected") == "processed/corrected"
        run_refinement(proj, RefineParams(method="coarse", find_tilt_axis=False))
        assert proj.h5[OUTPUT].attrs["source"] == "/processed/denoised"


def test_cancel_leaves_the_project_unchanged(quick_demo: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    shutil.copy(quick_demo, path)
    with Project.open(path) as proj:
        before = sorted(proj.h5.keys())
    token = CancelToken()
    calls: list[float] = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        if fraction >= 0.9:
            token.cancel()

    with Project.open(path, "a") as proj, pytest.raises(Cancelled):
        run_refinement(proj, RefineParams(method="coarse", find_tilt_axis=False), progress=progress, cancel=token)
    with Project.open(path) as proj:
        assert sorted(proj.h5.keys()) == before
        assert OUTPUT not in proj and ALIGNED not in proj


def test_failure_leaves_the_project_unchanged(quick_demo: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    shutil.copy(quick_demo, path)
    with Project.open(path) as proj:
        raw = proj.read_series("raw/rapid")
    frames = np.full_like(raw.frames, 100)
    frames[[3, 9]] = raw.frames[[3, 9]]
    _with_series(path, "processed/corrected", TiltSeries(frames, raw.angles_deg, raw.pixel_size_nm))
    with Project.open(path, "a") as proj:
        with pytest.raises(RstemError, match="only 2 of 31 frames hold an image"):
            run_refinement(proj, RefineParams())
        assert OUTPUT not in proj and ALIGNED not in proj


def test_fewer_than_three_frames_is_refused() -> None:
    frames, angles, _ = phantom_series(n=2, size=32, nz=8, blobs=5)
    with pytest.raises(ValueError, match="at least 3 frames"):
        refine_alignment(frames, angles)


@pytest.mark.parametrize("resamples", [1, -2])
def test_a_bootstrap_without_a_spread_is_refused(resamples: int) -> None:
    frames, angles, _ = phantom_series(n=7, size=32, nz=8, blobs=5)
    with pytest.raises(ValueError, match="0 \\(one solution\\) or at least 2 resamples"):
        refine_alignment(frames, angles, bootstrap=resamples)


def test_angles_not_monotone_are_refused_with_the_frame_named() -> None:
    frames, angles, _ = phantom_series(n=7, size=32, nz=8, blobs=5)
    angles = angles.copy()
    angles[3] = angles[1]
    with pytest.raises(ValueError, match="frame 3"):
        refine_alignment(frames, angles)


def test_blank_frame_is_excluded_and_reported() -> None:
    frames, angles, _ = phantom_series(n=11, size=48, nz=12, blobs=20)
    frames = frames.copy()
    frames[4] = 0.0
    result = refine_alignment(frames, angles, method="coarse", contrast="bright", estimate_axis=False)
    assert result.flags[4] & 1
    assert not np.any(result.flags[np.arange(11) != 4] & 1)
    assert any("blank" in note and "4" in note for note in result.notes)
    assert result.angles_deg.shape == (11,) and np.all(np.isfinite(result.shifts_px))


def test_cli_refine_reports_source_method_and_flags(quick_demo: Path, tmp_path: Path, capsys) -> None:
    from rstem_core.cli import main

    path = tmp_path / "p.h5"
    shutil.copy(quick_demo, path)
    assert main(["refine", str(path), "--method", "coarse", "--no-find-axis", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "/raw/rapid" and report["method"] == "coarse"
    assert report["frames"] == 31 and report["angle_range_deg"][0] == pytest.approx(-70, abs=0.01)
    assert report["angle_sd_median_deg"] is None  # only a feature solution tells how well it holds
    assert report["last_round_change_deg"] is None  # nor how far its rounds settled
    assert main(["refine", str(path), "--method", "coarse", "--no-find-axis"]) == 0
    text = capsys.readouterr().out
    assert "source: /raw/rapid" in text and "method: coarse" in text and "angles:" in text
    with Project.open(path) as proj:
        params = json.loads(proj.attrs(OUTPUT)["params"])
        assert params["split_halves"] is True and params["bootstrap_resamples"] == 16  # the defaults
    assert main(["refine", str(path), "--method", "coarse", "--no-find-axis", "--one-volume", "--bootstrap", "0"]) == 0
    with Project.open(path) as proj:
        params = json.loads(proj.attrs(OUTPUT)["params"])
        assert params["split_halves"] is False and params["bootstrap_resamples"] == 0
    assert main(["refine", str(path), "--acceleration", "-1"]) == 2
    assert main(["refine", str(path), "--bootstrap", "1"]) == 2


@pytest.mark.slow
def test_denoised_frames_without_persistent_structure_are_not_trusted_for_the_geometry(
    quick_demo: Path, tmp_path: Path
) -> None:
    path = tmp_path / "demo.h5"
    shutil.copy(quick_demo, path)
    rng = np.random.default_rng(5)
    with Project.open(path, "a") as proj:
        raw = proj.read_series("raw/rapid")
        # a "denoiser" that invents smooth texture anew in every frame, beside undenoised frames
        # whose structure persists (the noise-free corrected frames stand in for a good series)
        invented = np.stack([ndi.gaussian_filter(rng.standard_normal(raw.frames.shape[1:]), 3) for _ in raw.frames])
        with proj.edit() as w:
            w.write_series("processed/denoised", dataclasses.replace(raw, frames=(100 + 10 * invented).astype(np.float32)))
            w.write_series("processed/corrected", dataclasses.replace(raw, frames=proj.read_array("truth/rapid_clean_undistorted")))
        run_refinement(proj, RefineParams())
        notes = json.loads(proj.attrs(OUTPUT)["notes"])
        assert proj.attrs(OUTPUT)["source"] == "/processed/corrected"
        assert any("refined on /processed/corrected" in n for n in notes)
        # the angles' standard deviations come from the feature resamples
        assert any("over 16 feature resamples" in n for n in notes)
        assert np.all(np.isfinite(proj.read_array(f"{OUTPUT}/angle_sd_deg")))
        assert proj.read_series(ALIGNED).metadata["aligned_from"] == "/processed/denoised"
        assert angle_rms_deg(proj) < 0.5 * nominal_angle_rms_deg(proj)
        # the followed features are stored where they lie in the aligned frames: on dark lines
        tracks = proj.read_array(f"{OUTPUT}/tracks_px")
        assert tracks.shape == (raw.n_frames, int(proj.attrs(OUTPUT)["n_features"]), 2)
        clean = apply_alignment(proj.read_array("truth/rapid_clean_undistorted"),
                                proj.read_array(f"{OUTPUT}/shifts_px"), 0.0)
        k = raw.n_frames // 2
        pts = tracks[k][np.all(np.isfinite(tracks[k]), axis=1)]
        assert len(pts) >= 10
        on_features = ndi.map_coordinates(clean[k], pts.T, order=1)
        assert np.median(on_features) < np.percentile(clean[k], 20)


@pytest.mark.slow
def test_frames_that_do_not_agree_with_their_neighbours_keep_the_nominal_angles(quick_demo: Path) -> None:
    rng = np.random.default_rng(6)
    with Project.open(quick_demo) as proj:
        raw = proj.read_series("raw/rapid")
    invented = np.stack([ndi.gaussian_filter(rng.standard_normal(raw.frames.shape[1:]), 3) for _ in raw.frames])
    result = refine_alignment(100 + 10 * invented, raw.angles_deg, timestamps_s=raw.timestamps_s,
                              line_time_s=raw.line_time_s)
    assert result.method == "coarse"
    np.testing.assert_allclose(result.angles_deg, raw.angles_deg)
    assert any("do not correlate with their neighbours" in n for n in result.notes)


def test_feature_refinement_stores_each_angles_standard_deviation(quick_demo: Path, tmp_path: Path) -> None:
    from rstem_core.analysis.refine_scores import angle_sd_rms_deg, round_angle_rms_deg

    path = tmp_path / "p.h5"
    shutil.copy(quick_demo, path)
    with Project.open(path) as proj:
        raw = proj.read_series("raw/rapid")
        clean = proj.read_array("truth/rapid_clean_undistorted")
    _with_series(path, "processed/denoised", dataclasses.replace(raw, frames=clean))
    with Project.open(path, "a") as proj:
        result = run_refinement(proj, RefineParams(rounds=2, polish_rounds=0, max_features=150, find_tilt_axis=False))
        assert result.method == "features"
        sd = proj.read_array(f"{OUTPUT}/angle_sd_deg")
        assert proj.h5[f"{OUTPUT}/angle_sd_deg"].attrs["unit"] == "deg"
        assert sd.shape == (31,) and np.all(np.isfinite(sd)) and np.all(sd > 0)
        # noise-free frames: the angles are known to a few hundredths to tenths of a degree
        assert 0.01 < np.median(sd) < 0.5
        assert angle_sd_rms_deg(proj) == pytest.approx(float(np.sqrt(np.mean(sd**2))))
        assert any("angles known to" in note for note in json.loads(proj.h5[OUTPUT].attrs["notes"]))
        # the angles after each round, the last being the result, and how much the last round moved them
        rounds = proj.read_array(f"{OUTPUT}/round_angles_deg")
        assert rounds.shape == (2, 31)
        np.testing.assert_array_equal(rounds[-1], proj.read_array(f"{OUTPUT}/angles_deg"))
        moved = float(np.sqrt(np.mean((rounds[1] - rounds[0]) ** 2)))
        assert moved > 0
        assert any(f"last feature round moved the angles by {moved:.2f} deg" in note
                   for note in json.loads(proj.h5[OUTPUT].attrs["notes"]))
        per_round = round_angle_rms_deg(proj)
        assert len(per_round) == 2 and per_round[-1] == pytest.approx(angle_rms_deg(proj))


def test_last_round_change_is_the_rms_move_of_the_usable_frames() -> None:
    from rstem_core.align.refine import last_round_change_deg

    rounds = np.array([[0.0, 10.0, 20.0, 30.0], [0.3, 10.0, 20.4, 99.0]])
    assert last_round_change_deg(rounds, np.array([True, True, True, False])) == pytest.approx(np.sqrt(0.25 / 3))
    assert last_round_change_deg(rounds[:1]) is None and last_round_change_deg(None) is None


def test_a_blank_frame_has_no_angle_sd_and_the_others_a_truthful_one() -> None:
    frames, angles, _ = phantom_series(n=21, size=64, nz=16, blobs=40)
    frames = frames.copy()
    frames[7] = 0.0
    result = refine_alignment(frames, angles, method="features", contrast="bright", estimate_axis=False, rounds=2,
                              polish_rounds=0)
    sd = result.angle_sd_deg
    assert np.isnan(sd[7]) and np.all(np.isfinite(np.delete(sd, 7))) and np.all(np.delete(sd, 7) > 0)
    keep = np.arange(21) != 7
    error = float(np.sqrt(np.mean((result.angles_deg[keep] - angles[keep]) ** 2)))
    expected = float(np.sqrt(np.mean(sd[keep] ** 2)))
    assert expected / 3 < error < 3 * expected, (error, expected)
