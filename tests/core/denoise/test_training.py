"""Training: parameters validate themselves, the network learns, cancel/resume, masks, flips, memory."""

from __future__ import annotations

import numpy as np
import pytest

from rstem_core.denoise.pairs import flip_augment, row_blind_spot_mask, split_by_area
from rstem_core.denoise.training import TrainParams, build_patch_pools, train_denoiser
from rstem_core.errors import Cancelled, RstemError
from rstem_core.progress import CancelToken

TINY = dict(patch_px=32, depth=2, base_channels=4, unshuffle=1, batch_size=8, patches_per_frame=6, seed=0)


@pytest.mark.parametrize(("field", "value"), [("mode", "care"), ("patch_px", 30), ("validation_fraction", 0.9),
                                              ("epochs", 0), ("learning_rate", -1.0), ("n2v_run_px", 4),
                                              ("max_memory_mb", 1.0), ("depth", 2.5)])
def test_params_name_the_bad_parameter(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        TrainParams(**{field: value})


def test_the_network_learns_on_a_tiny_task(tiny_areas) -> None:
    areas, _ = tiny_areas
    model = train_denoiser(areas, TrainParams(epochs=3, learning_rate=3e-3, **TINY))
    metrics = model.description["metrics"]
    history = model.description["training"]["history"]
    assert metrics["validation_psnr_db"] > metrics["validation_psnr_initial_db"] + 4.0, history
    assert metrics["validation_target"] == "dcfi reference"
    assert set(model.description["training"]["validation_areas"]).isdisjoint(model.description["training"]["training_areas"])
    assert len(model.description["training"]["data_hash"]) == 64


def test_validation_is_held_out_by_area_across_tilts() -> None:
    areas = [(f"area_{i:03d}", float(t)) for i, t in enumerate([0, 0, 0, 20, 20, 20, 40, 40, 40, 60])]
    train, val = split_by_area(areas, 0.3, seed=1)
    assert len(val) == 3 and set(train).isdisjoint(val) and len(train) + len(val) == 10
    tilts = {dict(areas)[v] for v in val}
    assert len(tilts) == 3


def test_cancel_returns_the_best_weights_so_far_marked_cancelled(tiny_areas) -> None:
    areas, _ = tiny_areas
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if message.startswith("epoch 2"):
            token.cancel()

    model = train_denoiser(areas, TrainParams(epochs=6, **TINY), progress=progress, cancel=token)
    training = model.description["training"]
    assert training["cancelled"] is True
    assert [h["epoch"] for h in training["history"]] == [0, 1, 2]
    best = max(h["val_psnr_db"] for h in training["history"])
    assert model.description["metrics"]["validation_psnr_db"] == pytest.approx(best, abs=1e-3)


def test_cancel_before_the_first_epoch_raises(tiny_areas) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        train_denoiser(tiny_areas[0], TrainParams(epochs=2, **TINY), cancel=token)


def test_resume_continues_the_history_and_the_weights(tiny_areas) -> None:
    areas, _ = tiny_areas
    first = train_denoiser(areas, TrainParams(epochs=1, **TINY))
    again = train_denoiser(areas, TrainParams(epochs=1, **TINY), initial=first)
    history = again.description["training"]["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert again.description["training"]["resumed"] is True
    assert again.description["metrics"]["validation_psnr_db"] >= first.description["metrics"]["validation_psnr_db"] - 1e-3


def test_noise2void_mask_is_made_of_horizontal_runs() -> None:
    rng = np.random.default_rng(0)
    batch = rng.random((3, 32, 40)).astype(np.float32)
    masked, centres, replaced = row_blind_spot_mask(batch, 0.01, 5, rng)
    b, r, c = np.nonzero(centres)
    assert len(b) > 0
    for bi, ri, ci in zip(b, r, c, strict=True):
        lo, hi = max(ci - 2, 0), min(ci + 3, 40)
        assert replaced[bi, ri, lo:hi].all()
        donors = [batch[bi, rr, ci] for rr in (ri - 2, ri - 1, ri + 1, ri + 2) if 0 <= rr < 32]
        assert masked[bi, ri, ci] in donors
    # every replaced pixel belongs to a horizontal run around a centre of the same row
    assert replaced.sum() <= 5 * centres.sum()
    assert np.array_equal(masked[~replaced], batch[~replaced])


def test_noise2void_and_noise2noise_modes_train(tiny_areas) -> None:
    areas, _ = tiny_areas
    for mode in ("noise2void", "noise2noise"):
        model = train_denoiser(areas, TrainParams(mode=mode, epochs=1, **TINY))
        assert model.description["training"]["mode"] == mode
        assert np.isfinite(model.description["metrics"]["validation_psnr_db"])


def test_augmentation_is_flips_only() -> None:
    rng = np.random.default_rng(2)
    patch = np.arange(16 * 16, dtype=np.float32).reshape(1, 16, 16)
    allowed_y = [patch[0], patch[0, ::-1]]
    allowed_xy = allowed_y + [patch[0, :, ::-1], patch[0, ::-1, ::-1]]
    seen = set()
    for _ in range(40):
        out, _ = flip_augment(patch, None, rng, flip_x=False)
        assert any(np.array_equal(out[0], a) for a in allowed_y)
        out, _ = flip_augment(patch, None, rng, flip_x=True)
        idx = [i for i, a in enumerate(allowed_xy) if np.array_equal(out[0], a)]
        assert idx and not np.array_equal(out[0], patch[0].T)
        seen.add(idx[0])
    assert seen == {0, 1, 2, 3}


def test_patch_pool_respects_the_memory_cap(tiny_areas) -> None:
    areas, _ = tiny_areas
    params = TrainParams(epochs=1, max_memory_mb=16, **{**TINY, "patches_per_frame": 10000})
    train, val, info = build_patch_pools(areas, params, np.random.default_rng(0), lambda f, m: None)
    budget = 16 * 2**20 // (32 * 32 * 4 * 2)
    assert info["train_patches"] + info["validation_patches"] <= budget
    assert train.inputs.nbytes + train.targets.nbytes + val.inputs.nbytes + val.targets.nbytes <= 16 * 2**20
    assert len(train.inputs) > 0.7 * budget


def test_empty_training_set_is_a_clear_error() -> None:
    with pytest.raises(RstemError, match="no training areas"):
        train_denoiser([], TrainParams(**TINY))


def test_patches_shrink_to_fit_small_training_frames(tiny_areas) -> None:
    areas, _ = tiny_areas  # 48 px frames without drift: room for 44 px, a multiple of 2**depth = 4
    notes: list[str] = []
    params = TrainParams(**{**TINY, "patch_px": 64, "epochs": 1})
    model = train_denoiser(areas, params, progress=lambda f, m: notes.append(m))
    assert model.description["training"]["params"]["patch_px"] == 44
    assert any("patches of 44 px instead of 64 px" in n for n in notes)


def test_frames_too_small_for_any_patch_are_refused(tiny_areas) -> None:
    areas, _ = tiny_areas
    small = [type(a)(a.name, a.frames[:, :10, :10], a.reference[:10, :10], a.drift_px, a.stage_tilt_deg) for a in areas]
    with pytest.raises(RstemError, match="room for 6 px patches"):
        train_denoiser(small, TrainParams(**{**TINY, "epochs": 1}))


def test_training_calibrates_the_line_width_restoration_on_the_validation_areas(tiny_areas) -> None:
    areas, _ = tiny_areas
    model = train_denoiser(areas, TrainParams(epochs=3, learning_rate=3e-3, **TINY))
    training = model.description["training"]
    restoration = model.width_restoration
    assert restoration is not None, training["width_restoration_note"]
    assert training["width_restoration_note"].startswith("calibrated on ")
    val_tilts = {a.stage_tilt_deg for a in areas if a.name in training["validation_areas"]}
    assert set(restoration.tilts_deg) <= val_tilts
    for before, after, gain in zip(restoration.width_before, restoration.width_after, restoration.gains, strict=True):
        assert abs(after - 1) <= abs(before - 1) + 1e-9 and (gain > 0) == (before > 1.02)
    off = train_denoiser(areas, TrainParams(epochs=1, restore_width=False, **TINY))
    assert off.width_restoration is None and off.description["training"]["width_restoration_note"] == "off"
