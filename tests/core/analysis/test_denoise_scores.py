"""The per-tilt denoising score table on a small synthetic project."""

from __future__ import annotations

import numpy as np
import pytest

from rstem_core.analysis import denoise_scores as ds
from rstem_core.curate import run_curation
from rstem_core.denoise.baselines import denoise_baseline
from rstem_core.errors import RstemError
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig, write_demo_project

TILTS = ["0", "20", "40", "60", "70"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """64 px project, 2 training areas of 6 frames per tilt, curated (DCFI references)."""
    path = tmp_path_factory.mktemp("denoise_scores") / "small.h5"
    config = SimulationConfig.scaled(size=64, frames=5, seed=0, areas_per_tilt=2, frames_per_area=6)
    write_demo_project(path, config, workers=1)
    with Project.open(path, "a") as proj:
        run_curation(proj)
    with Project.open(path) as proj:
        yield proj


@pytest.fixture(scope="module")
def records(project):
    return ds.test_images(project, ds.heldout_areas(project))


def test_heldout_areas_are_matched_deterministic_and_per_tilt(project):
    areas = ds.heldout_areas(project)
    assert areas == ds.heldout_areas(project)
    assert sorted(areas) == [0.0, 20.0, 40.0, 60.0, 70.0]
    matched = project.read_array("truth/training/matched")
    tilts = project.read_array("truth/training/stage_tilt_deg")
    for tilt, names in areas.items():
        assert len(names) == 1  # one matched area per tilt in this project
        index = int(names[0].rsplit("_", 1)[1])
        assert matched[index] == 1 and tilts[index] == tilt
    with pytest.raises(ValueError, match="per_tilt"):
        ds.heldout_areas(project, per_tilt=0)


def test_test_images_are_in_adu_and_aligned(project, records):
    assert len(records) == 5
    for rec in records:
        assert rec.frame.shape == rec.truth.shape == rec.dcfi.shape == (64, 64)
        # the truth is the frame's expectation: same mean within the noise, positive correlation
        assert rec.truth.mean() == pytest.approx(rec.frame.mean(), rel=0.05)
        assert rec.dcfi.mean() == pytest.approx(rec.frame.mean(), rel=0.05)
        # six averaged frames: closer to the truth than one frame
        frame_corr = np.corrcoef(rec.frame.ravel(), rec.truth.ravel())[0, 1]
        assert np.corrcoef(rec.dcfi.ravel(), rec.truth.ravel())[0, 1] > frame_corr + 0.1
    with pytest.raises(RstemError, match="frame 6"):
        ds.test_images(project, ["area_000"], frame_index=6)


def test_score_table_shape_and_raw_below_gaussian(records):
    table = ds.score_table({"gaussian": lambda f: denoise_baseline(f, "gaussian")}, records)
    assert list(table) == ["raw", "gaussian"]
    for method in table.values():
        assert list(method) == TILTS
        for cell in method.values():
            assert set(cell) == {*ds.METRICS, *(f"{m}_std" for m in ds.METRICS), "n_areas"}
            assert cell["n_areas"] == 1 and cell["psnr_db_std"] is None
    for tilt in TILTS:
        assert table["gaussian"][tilt]["psnr_db"] > table["raw"][tilt]["psnr_db"] + 5.0
        assert table["gaussian"][tilt]["ssim"] > table["raw"][tilt]["ssim"]


def test_truth_itself_scores_one(records):
    truth_of = {id(r.frame): r.truth for r in records}
    table = ds.score_table({"truth": lambda f: truth_of[id(f)]}, records, include_raw=False)
    for cell in table["truth"].values():
        assert cell["width_ratio"] == pytest.approx(1.0, abs=1e-6)
        assert cell["intensity_ratio"] == pytest.approx(1.0, abs=1e-6)
        assert cell["ssim"] == pytest.approx(1.0, abs=1e-9)
        assert cell["psnr_db"] is None  # infinite: reported as null


def test_dcfi_reference_and_bad_reference(records):
    table = ds.score_table({}, records, reference="dcfi")
    assert list(table["raw"]) == TILTS
    with pytest.raises(ValueError, match="reference"):
        ds.score_table({}, records, reference="slow")


def test_denoise_scores_without_a_model(project):
    seen = []
    out = ds.denoise_scores(
        project, methods=("gaussian", "median", "unet"), progress=lambda f, m: seen.append(f)
    )
    # without a trained model the shipped starter, which the denoise step then uses, is scored
    assert list(out["denoise"]) == ["raw", "gaussian", "median", "unet"]
    assert out["denoise_areas"].keys() == set(TILTS)
    assert any("unet" in note and "starter" in note for note in out["denoise_notes"])
    assert seen[-1] == pytest.approx(1.0)
    for method in ("gaussian", "median", "unet"):
        mean_gain = np.mean(
            [
                out["denoise"][method][t]["psnr_db"] - out["denoise"]["raw"][t]["psnr_db"]
                for t in TILTS
            ]
        )
        assert mean_gain > 5.0
    with pytest.raises(ValueError, match="wiener"):
        ds.denoise_scores(project, methods=("wiener",))


def test_denoise_scores_use_the_projects_trained_model(project, tmp_path):
    import shutil

    from rstem_core.denoise.weights import MODEL_KEY, save_to_project, starter_model

    path = tmp_path / "trained.h5"
    shutil.copy(project.path, path)
    model = starter_model()
    with Project.open(path, "a") as proj:
        with proj.edit() as w:
            save_to_project(w, MODEL_KEY, model)
        out = ds.denoise_scores(proj, methods=("unet",))
        given = ds.denoise_scores(proj, methods=("unet",), unet_model=model)
    assert list(out["denoise"]) == ["raw", "unet"]
    assert not any("starter" in note for note in out["denoise_notes"])
    for t in TILTS:  # the stored model scores as the same model passed in
        assert out["denoise"]["unet"][t]["psnr_db"] == pytest.approx(given["denoise"]["unet"][t]["psnr_db"], abs=1e-3)
        assert out["denoise"]["unet"][t]["psnr_db"] > out["denoise"]["raw"][t]["psnr_db"] + 3.0
