"""Line-width restoration: a calibrated high-boost filter gives broadened lines their width back."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from rstem_core.analysis.image_quality import FWHM_PER_SIGMA, line_measures
from rstem_core.denoise.pairs import TrainingArea
from rstem_core.denoise.sharpen import (
    WidthRestoration,
    calibrate_width_restoration,
    high_boost,
    reference_noise_variance,
)

SHAPE = (128, 128)


def dark_lines(fwhm_px: float, seed: int = 0, n: int = 5) -> np.ndarray:
    """Straight Gaussian dark lines of one FWHM, random directions, on a flat background (ADU)."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(float)
    image = np.full(SHAPE, 100.0)
    s = fwhm_px / FWHM_PER_SIGMA
    for k in range(n):
        th = rng.uniform(0, np.pi)
        d = (rr - 64) * np.cos(th) + (cc - 64) * np.sin(th) - (k - n // 2) * 22.0
        image -= 40.0 * np.exp(-0.5 * (d / s) ** 2)
    return image.astype(np.float32)


def test_calibrated_gain_brings_broadened_lines_back_to_the_reference_width() -> None:
    refs = [dark_lines(3.0, seed) for seed in range(2)]
    blurred = [ndimage.gaussian_filter(r, 1.2) for r in refs]  # FWHM 3 -> about 4.3 px
    before = np.median([line_measures(b, r)["width_ratio"] for b, r in zip(blurred, refs, strict=True)])
    assert before > 1.3
    restoration = calibrate_width_restoration(blurred, refs, [0.0, 0.0], max_psnr_loss_db=10.0)
    assert restoration is not None and restoration.gains[0] > 0.5
    assert 0.8 < restoration.sigma_px < 2.0  # the blur the "network" added, 1.2 px
    after = [line_measures(restoration.apply(b, 0.0), r)["width_ratio"] for b, r in zip(blurred, refs, strict=True)]
    assert abs(np.median(after) - 1.0) < 0.05
    assert restoration.width_before[0] == pytest.approx(before, abs=0.01)


def test_sharp_lines_are_left_alone_and_the_psnr_guard_limits_the_gain() -> None:
    refs = [dark_lines(3.0, seed) for seed in range(2)]
    same = calibrate_width_restoration(refs, refs, [20.0, 20.0])
    assert same is not None and same.gains == (0.0,)
    rng = np.random.default_rng(5)
    noisy = [ndimage.gaussian_filter(r, 1.2) + rng.normal(0, 3.0, SHAPE).astype(np.float32) for r in refs]
    free = calibrate_width_restoration(noisy, refs, [0.0, 0.0], max_psnr_loss_db=20.0)
    guarded = calibrate_width_restoration(noisy, refs, [0.0, 0.0], max_psnr_loss_db=0.0)
    assert free.gains[0] > 0.5 and guarded.gains[0] == 0.0


def test_gain_follows_the_tilt_and_round_trips_through_json() -> None:
    r = WidthRestoration(1.5, (0.0, 40.0, 70.0), (2.0, 1.0, 0.0), (1.3, 1.2, 1.0), (1.0, 1.0, 1.0))
    assert r.gain_at(-20.0) == pytest.approx(1.5)  # interpolated in |tilt|
    assert r.gain_at(80.0) == 0.0 and r.gain_at(None) == pytest.approx(1.0)
    assert WidthRestoration.from_json(r.to_json()) == r
    frames = np.stack([dark_lines(4.0, 0)] * 3)
    out = r.apply(frames, [0.0, 40.0, 70.0])
    np.testing.assert_array_equal(out[2], frames[2])
    depth = [float(100 - o.min()) for o in out]
    assert depth[0] > depth[1] > depth[2]  # more gain, deeper (narrower) lines
    np.testing.assert_allclose(high_boost(frames[0], 1.5, 1.0), out[1], rtol=1e-5)
    with pytest.raises(ValueError, match="2 tilts for 3 frames"):
        r.apply(frames, [0.0, 1.0])


def test_reference_noise_variance_of_a_frame_average() -> None:
    rng = np.random.default_rng(1)
    clean = dark_lines(3.0)
    k, sigma = 20, 6.0
    frames = (clean + rng.normal(0, sigma, (k, *SHAPE))).astype(np.float32)
    area = TrainingArea("a", frames, frames.mean(axis=0), np.zeros((k, 2)), 0.0)
    assert reference_noise_variance(area) == pytest.approx(sigma**2 / k, rel=0.1)


def test_a_tilt_with_too_noisy_references_takes_its_gain_from_the_blur_model() -> None:
    """Blur b adds to a line's width in quadrature: lines 3 px wide at one tilt and 6 px at the
    other, both blurred alike, need less narrowing at the wider ones."""
    narrow = [dark_lines(3.0, seed) for seed in range(2)]
    wide = [dark_lines(6.0, seed) for seed in range(2, 4)]
    blurred = [ndimage.gaussian_filter(r, 1.2) for r in narrow + wide]
    # the 70 deg references are as noisy as their lines are deep: they cannot be measured
    noise = [0.01, 0.01, 40.0**2, 40.0**2]
    r = calibrate_width_restoration(blurred, narrow + wide, [0.0, 0.0, 70.0, 70.0], reference_noise=noise,
                                    max_psnr_loss_db=10.0)
    assert r.sources == ("references", "blur model") and np.isnan(r.width_before[1])
    assert 0 < r.gains[1] < r.gains[0]
    after = [line_measures(r.apply(b, 70.0), w)["width_ratio"] for b, w in zip(blurred[2:], wide, strict=True)]
    assert abs(np.median(after) - 1.0) < 0.06
    assert WidthRestoration.from_json(r.to_json()).to_json() == r.to_json()  # NaN travels as null
    assert r.to_json()["width_before"][1] is None


def test_no_calibration_when_no_reference_stands_above_its_noise() -> None:
    """Lines as deep as the references' noise: their measured widths are noise ridges, so no
    blur can be told and no restoration is made (rather than a guess that sharpens noise)."""
    refs = [dark_lines(3.0, seed) for seed in range(2)]
    blurred = [ndimage.gaussian_filter(r, 1.2) for r in refs]
    assert calibrate_width_restoration(blurred, refs, [0.0, 20.0], reference_noise=[40.0**2] * 2) is None
    clear = calibrate_width_restoration(blurred, refs, [0.0, 20.0], reference_noise=[1.0] * 2,
                                        max_psnr_loss_db=10.0)
    assert clear is not None and min(clear.gains) > 0.5


def test_undoing_the_high_boost_gives_the_frames_back() -> None:
    from rstem_core.denoise.sharpen import undo_high_boost

    rng = np.random.default_rng(2)
    frames = np.stack([ndimage.gaussian_filter(dark_lines(3.0, s), 1.0) + rng.normal(0, 1.0, SHAPE) for s in range(3)])
    gains = [0.0, 1.0, 2.8]
    boosted = np.stack([high_boost(f, 1.4, g) for f, g in zip(frames, gains, strict=True)])
    back = undo_high_boost(boosted, 1.4, gains)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(back - frames)[inner].max() < 0.05  # ADU, on lines 40 ADU deep and noise of 1 ADU
    np.testing.assert_array_equal(back[0], boosted[0].astype(np.float32))
