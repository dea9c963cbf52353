"""The project steps: train -> /models/denoiser, denoise -> /processed/denoised; all or nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rstem_core.denoise.step import DenoiseParams, run_denoise, run_training
from rstem_core.denoise.training import TrainParams
from rstem_core.denoise.weights import load_from_project
from rstem_core.errors import Cancelled, RstemError
from rstem_core.progress import CancelToken
from rstem_core.project import Project

TINY = TrainParams(patch_px=32, depth=2, base_channels=4, unshuffle=1, batch_size=8, patches_per_frame=4, epochs=2)


def _content(proj: Project) -> list:
    return [(d["path"], d["shape"]) for d in proj.datasets()]


def test_training_stores_the_model_and_a_log_entry(curated_project) -> None:
    with Project.open(curated_project, "a") as proj:
        model = run_training(proj, TINY)
        stored = load_from_project(proj)
        assert proj.params("models/denoiser")["mode"] == "supervised"
        pixel = proj.read_series("raw/rapid").pixel_size_nm
        log = proj.log_entries()[-1]
    assert log["step"] == "train" and log["outputs"] == ["models/denoiser"]
    assert stored.description["training"]["data_hash"] == model.description["training"]["data_hash"]
    assert len(stored.description["training"]["history"]) == 3
    assert stored.description["training"]["pixel_size_nm"] == pytest.approx(pixel, rel=1e-3)
    for name, arr in model.state_arrays().items():
        assert np.array_equal(stored.state_arrays()[name], arr)


def test_resume_continues_the_stored_model(curated_project) -> None:
    with Project.open(curated_project, "a") as proj:
        run_training(proj, TINY)
        run_training(proj, TINY, resume=True)
        history = load_from_project(proj).description["training"]["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3, 4]


def test_cancelled_training_leaves_the_project_unchanged(curated_project) -> None:
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if message.startswith("epoch 1"):
            token.cancel()

    with Project.open(curated_project, "a") as proj:
        before = _content(proj)
        with pytest.raises(Cancelled, match="unchanged"):
            run_training(proj, TINY, progress=progress, cancel=token)
        assert _content(proj) == before


def test_all_rejected_training_set_is_a_clear_error(curated_project) -> None:
    with Project.open(curated_project, "a") as proj:
        with proj.edit() as w:
            w.write_json("training/accepted", [])
        before = _content(proj)
        with pytest.raises(RstemError, match="no training area is accepted"):
            run_training(proj, TINY)
        assert _content(proj) == before


def test_denoise_writes_a_series_with_the_source_angles(curated_project) -> None:
    with Project.open(curated_project, "a") as proj:
        run_training(proj, TINY)
        result = run_denoise(proj, DenoiseParams(tile_px=32, overlap_px=8))
        raw = proj.read_series("raw/rapid")
        out = proj.read_series("processed/denoised")
        log = proj.log_entries()[-1]
    assert result.source == "/raw/rapid" and result.model == "/models/denoiser" and result.notes == []
    assert out.frames.shape == raw.frames.shape
    np.testing.assert_array_equal(out.angles_deg, raw.angles_deg)
    np.testing.assert_array_equal(out.timestamps_s, raw.timestamps_s)
    assert out.line_time_s == raw.line_time_s
    assert out.metadata["denoise_method"] == "unet" and out.metadata["denoise_source"] == "/raw/rapid"
    assert out.metadata["seed"] == raw.metadata["seed"]
    assert log["step"] == "denoise" and log["source"] == "/raw/rapid"
    # the network smooths: less pixel-to-pixel variation than the raw frames
    assert np.abs(np.diff(out.frames, axis=1)).mean() < 0.8 * np.abs(np.diff(raw.frames, axis=1)).mean()


def test_denoise_prefers_the_corrected_series_and_runs_baselines(curated_project) -> None:
    with Project.open(curated_project, "a") as proj:
        raw = proj.read_series("raw/rapid")
        with proj.edit() as w:
            w.write_series("processed/corrected", raw)
        result = run_denoise(proj, DenoiseParams(method="gaussian"))
        assert result.source == "/processed/corrected"
        assert proj.read_series("processed/denoised").metadata["denoise_method"] == "gaussian"
        assert json.loads(proj.attrs("processed/denoised")["params"])["method"] == "gaussian"


def test_nan_frames_fail_and_leave_the_project_unchanged(curated_project) -> None:
    with Project.open(curated_project, "a") as proj:
        raw = proj.read_series("raw/rapid")
        frames = raw.frames.copy()
        frames[2, 5, 5] = np.nan
        with proj.edit() as w:
            w.delete("raw/rapid/frames")
            w.write_array("raw/rapid/frames", frames)
        before = _content(proj)
        for method in ("unet", "gaussian"):
            with pytest.raises(RstemError, match="frame 2 has 1 NaN"):
                run_denoise(proj, DenoiseParams(method=method))
        assert _content(proj) == before


def test_denoise_without_a_trained_model_uses_the_starter(curated_project) -> None:
    with Project.open(curated_project, "a") as proj:
        result = run_denoise(proj)
    assert result.model == "starter"
    assert any("starter" in n for n in result.notes)


def test_denoise_on_a_synthetic_project_scores_itself_per_tilt(curated_project) -> None:
    with Project.open(curated_project, "a") as proj:
        run_denoise(proj, DenoiseParams(method="gaussian", baseline_options={"sigma_px": 1.5}))
        table = json.loads(proj.attrs("processed/denoised")["scores"])
    assert set(table) == {"raw", "gaussian"}
    assert set(table["gaussian"]) == {"0", "20", "40", "60", "70"}
    for tilt, entry in table["gaussian"].items():
        # a 1.5 px Gaussian takes out most of the noise: far closer to the truth than the raw frame
        assert entry["psnr_db"] > table["raw"][tilt]["psnr_db"] + 3.0
        assert entry["width_ratio"] is None or entry["width_ratio"] > 0.5


def test_the_line_width_restoration_is_recorded_and_can_be_undone_for_measuring(curated_project) -> None:
    from rstem_core.denoise.sharpen import WidthRestoration
    from rstem_core.denoise.weights import MODEL_KEY, DenoiserModel, save_to_project
    from rstem_core.refine_step import plain_network_output

    with Project.open(curated_project, "a") as proj:
        model = run_training(proj, TINY)
        restoration = WidthRestoration(1.2, (0.0, 60.0), (2.0, 0.5))
        with proj.edit() as w:
            save_to_project(w, MODEL_KEY, DenoiserModel(model.network, {**model.description,
                                                                      "width_restoration": restoration.to_json()}))
        run_denoise(proj, DenoiseParams(tile_px=32, overlap_px=8))
        restored = proj.read_series("processed/denoised")
        run_denoise(proj, DenoiseParams(tile_px=32, overlap_px=8, restore_width=False))
        plain = proj.read_series("processed/denoised")
    record = restored.metadata["width_restoration"]
    assert record["gains"] == pytest.approx([restoration.gain_at(t) for t in restored.angles_deg], abs=1e-4)
    assert "width_restoration" not in plain.metadata
    frames, note = plain_network_output(restored)
    assert "before its line-width restoration" in note
    inner = (slice(None), slice(6, -6), slice(6, -6))
    scale = np.ptp(plain.frames)
    assert np.abs(frames - plain.frames)[inner].max() < 0.01 * scale
    assert np.abs(restored.frames - plain.frames)[inner].max() > 0.05 * scale
    assert plain_network_output(plain)[0] is plain.frames
