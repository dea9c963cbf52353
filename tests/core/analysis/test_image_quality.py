"""PSNR, SSIM and dislocation-line measures on images with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from rstem_core.analysis.image_quality import (
    FWHM_PER_SIGMA,
    detect_dark_lines,
    line_measures,
    psnr_db,
    ssim,
)

SHAPE = (112, 112)
#: (orientation deg, offset px from the centre) of the straight test lines, well apart
LINES = ((10.0, -30.0), (55.0, 5.0), (100.0, 30.0), (145.0, -10.0))


def dark_lines(fwhm_px: float = 3.0, depth: float = 40.0, background: float = 100.0) -> np.ndarray:
    """Bright-field-like image: Gaussian dark lines of a known FWHM and depth on a flat background."""
    rr, cc = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(float)
    image = np.full(SHAPE, background)
    s = fwhm_px / FWHM_PER_SIGMA
    for angle, offset in LINES:
        th = np.deg2rad(angle)
        d = (rr - SHAPE[0] / 2) * np.cos(th) + (cc - SHAPE[1] / 2) * np.sin(th) - offset
        image -= depth * np.exp(-0.5 * (d / s) ** 2)
    return image


def test_psnr_known_value_and_scale_invariance():
    ref = np.tile(np.linspace(0.0, 10.0, 32), (32, 1))
    rng = np.random.default_rng(0)
    noisy = ref + rng.normal(0.0, 1.0, ref.shape)
    mse = np.mean((noisy - ref) ** 2)
    assert psnr_db(noisy, ref) == pytest.approx(10 * np.log10(100.0 / mse), rel=1e-12)
    assert psnr_db(3 * noisy, 3 * ref) == pytest.approx(psnr_db(noisy, ref), rel=1e-12)
    assert psnr_db(noisy, ref, data_range=20.0) == pytest.approx(
        psnr_db(noisy, ref) + 20 * np.log10(2), rel=1e-9
    )
    assert psnr_db(ref, ref) == math.inf
    assert psnr_db(ref + 0.5 * (noisy - ref), ref) == pytest.approx(
        psnr_db(noisy, ref) + 20 * np.log10(2), rel=1e-9
    )


def test_ssim_identical_and_noisier_is_lower():
    ref = dark_lines()
    rng = np.random.default_rng(1)
    assert ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    a = ssim(ref + rng.normal(0, 2.0, ref.shape), ref)
    b = ssim(ref + rng.normal(0, 8.0, ref.shape), ref)
    assert 0.0 < b < a < 1.0


def test_metrics_reject_bad_input():
    ref = np.ones((16, 16))
    with pytest.raises(ValueError, match="same shape"):
        psnr_db(np.ones((16, 15)), ref)
    with pytest.raises(ValueError, match="finite"):
        ssim(np.full((16, 16), np.nan), ref)
    with pytest.raises(ValueError, match="data_range"):
        psnr_db(ref * 2, ref)


def test_detects_every_test_line():
    skeleton = detect_dark_lines(dark_lines())
    labels, n = ndimage.label(ndimage.binary_dilation(skeleton, iterations=2))
    assert skeleton.sum() > 300  # the four lines cross the field (~110 px each, minus crossings)
    assert n <= 4  # no spurious pieces on the flat background


def test_identical_image_gives_ratios_of_one():
    ref = dark_lines()
    m = line_measures(ref, ref)
    assert m["n_profiles"] >= 40
    assert m["width_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert m["intensity_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert m["reference_fwhm_px"] == pytest.approx(3.0, rel=0.03)


@pytest.mark.parametrize("fwhm", [4.5, 6.0])
def test_wider_lines_give_the_width_ratio(fwhm):
    m = line_measures(dark_lines(fwhm_px=fwhm), dark_lines())
    assert m["width_ratio"] == pytest.approx(fwhm / 3.0, rel=0.03)
    assert m["intensity_ratio"] == pytest.approx(1.0, rel=0.03)


def test_blur_gives_the_expected_width_and_depth():
    ref = dark_lines()
    s = 3.0 / FWHM_PER_SIGMA
    blur = 1.2
    m = line_measures(ndimage.gaussian_filter(ref, blur), ref)
    assert m["width_ratio"] == pytest.approx(np.hypot(s, blur) / s, rel=0.03)
    assert m["intensity_ratio"] == pytest.approx(s / np.hypot(s, blur), rel=0.03)


def test_shallower_lines_give_the_intensity_ratio():
    m = line_measures(dark_lines(depth=24.0), dark_lines())
    assert m["intensity_ratio"] == pytest.approx(0.6, rel=0.02)
    assert m["width_ratio"] == pytest.approx(1.0, rel=0.02)


def test_contrast_relative_to_background_ignores_gain():
    ref = dark_lines()
    m = line_measures(2.5 * ref, ref, relative_to_background=True)
    assert m["intensity_ratio"] == pytest.approx(1.0, rel=1e-3)
    assert line_measures(2.5 * ref, ref)["intensity_ratio"] == pytest.approx(2.5, rel=1e-3)


def test_noisy_image_is_still_measured():
    ref = dark_lines()
    rng = np.random.default_rng(3)
    noisy = dark_lines(fwhm_px=4.5) + rng.normal(0.0, 6.0, SHAPE)  # line depth / noise ~ 7
    m = line_measures(noisy, ref)
    assert m["n_profiles"] >= 30
    assert m["width_ratio"] == pytest.approx(1.5, rel=0.06)
    assert m["intensity_ratio"] == pytest.approx(1.0, rel=0.08)


def test_no_lines_gives_nan_and_zero_profiles():
    flat = np.full(SHAPE, 50.0)
    m = line_measures(flat, flat)
    assert m["n_profiles"] == 0
    assert math.isnan(m["width_ratio"]) and math.isnan(m["intensity_ratio"])
