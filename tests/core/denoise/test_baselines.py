"""Non-learning baselines: noise estimates, error reduction, shapes and input checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from rstem_core.denoise.baselines import (
    BASELINES,
    denoise_baseline,
    estimate_gain,
    estimate_noise_psd,
    estimate_noise_sigma,
)

GAIN = 2.0  # ADU per count


def clean_image(size: int = 64) -> np.ndarray:
    """Bright background (~40 counts) with a few dark lines and a smooth gradient, counts."""
    rr, cc = np.mgrid[:size, :size].astype(float)
    image = 40.0 + 10.0 * rr / size
    for angle, offset in ((20.0, -12.0), (75.0, 4.0), (130.0, 14.0)):
        th = np.deg2rad(angle)
        d = (rr - size / 2) * np.cos(th) + (cc - size / 2) * np.sin(th) - offset
        image -= 12.0 * np.exp(-0.5 * (d / 1.5) ** 2)
    return image


def afterglow_noisy(clean: np.ndarray, seed: int = 0) -> np.ndarray:
    """Poisson counts times GAIN, smoothed along x by a causal exponential tail (mean-preserving)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(clean).astype(float)
    kernel = np.exp(-np.arange(6) / 1.5)
    kernel /= kernel.sum()
    smeared = ndimage.convolve1d(counts, kernel, axis=1, mode="nearest", origin=-(len(kernel) // 2))
    return GAIN * smeared


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - b) ** 2)))


def test_noise_sigma_of_white_noise():
    rng = np.random.default_rng(0)
    frame = 100.0 + rng.normal(0.0, 3.0, (128, 128))
    assert estimate_noise_sigma(frame) == pytest.approx(3.0, rel=0.05)


def test_noise_sigma_sees_noise_correlated_along_x():
    rng = np.random.default_rng(1)
    white = rng.normal(0.0, 1.0, (128, 128))
    correlated = ndimage.uniform_filter1d(white, 4, axis=1) * 2.0  # std 1.0, correlated over 4 px
    true = correlated.std()
    assert estimate_noise_sigma(50.0 + correlated) == pytest.approx(true, rel=0.06)


def test_noise_psd_is_white_noise_level_and_coloured_along_x():
    rng = np.random.default_rng(2)
    white = rng.normal(0.0, 2.0, (64, 64))
    psd = estimate_noise_psd(white)
    assert psd.mean() / white.size == pytest.approx(4.0, rel=0.15)
    smooth = ndimage.uniform_filter1d(rng.normal(0.0, 1.0, (64, 64)), 4, axis=1)
    psd = estimate_noise_psd(smooth)
    assert psd[:, 0].mean() > 5 * psd[:, 32].mean()  # low kx carries the correlated power
    np.testing.assert_allclose(psd[0], psd[17])  # white along y


def test_gain_of_poisson_counts():
    frame = afterglow_noisy(clean_image(128)) / 1.0
    rng = np.random.default_rng(3)
    poisson = GAIN * rng.poisson(30.0 + 20.0 * np.linspace(0, 1, 128)[None, :], (128, 128))
    assert estimate_gain(poisson) == pytest.approx(GAIN, rel=0.08)
    assert estimate_gain(frame) < GAIN  # the afterglow averages counts: less variance per mean


@pytest.mark.parametrize(
    ("method", "margin"),
    [("bm3d", 0.45), ("gaussian", 0.35), ("median", 0.25), ("nlm", 0.35)],
)
def test_baseline_reduces_error(method, margin):
    clean = GAIN * clean_image()
    noisy = afterglow_noisy(clean_image())
    out = denoise_baseline(noisy, method)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert rmse(out, clean) < (1 - margin) * rmse(noisy, clean)
    assert abs(out.mean() - clean.mean()) < 0.02 * clean.mean()  # units kept


def test_bm3d_psd_beats_white_on_correlated_noise():
    clean = GAIN * clean_image()
    noisy = afterglow_noisy(clean_image(), seed=5)
    psd = rmse(denoise_baseline(noisy, "bm3d", noise_model="psd"), clean)
    white = rmse(denoise_baseline(noisy, "bm3d", noise_model="white"), clean)
    assert psd < 0.95 * white


def test_stack_shape_and_progress():
    noisy = np.stack([afterglow_noisy(clean_image(32), seed=s) for s in range(3)]).astype(np.uint16)
    seen = []
    out = denoise_baseline(noisy, "median", size_px=3, progress=lambda f, m: seen.append(f))
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    assert seen[-1] == 1.0 and len(seen) == 3
    np.testing.assert_allclose(out[1], denoise_baseline(noisy[1], "median", size_px=3))


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError) as err:
        denoise_baseline(np.ones((16, 16)), "wiener")
    for name in BASELINES:
        assert name in str(err.value)


def test_unknown_parameter_is_refused():
    with pytest.raises(ValueError, match="sigma_px"):
        denoise_baseline(np.ones((16, 16)), "gaussian", size_px=3)


def test_nan_input_is_refused():
    frame = np.ones((16, 16))
    frame[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        denoise_baseline(frame, "gaussian")


def test_without_the_optional_bm3d_package_it_is_left_out_with_a_clear_message(monkeypatch) -> None:
    import sys

    from rstem_core.analysis.denoise_scores import baseline_denoisers
    from rstem_core.denoise.baselines import available_baselines, denoise_baseline
    from rstem_core.errors import RstemError

    monkeypatch.setitem(sys.modules, "bm3d", None)  # as in an installation without it
    assert "bm3d" not in available_baselines() and "gaussian" in available_baselines()
    assert set(baseline_denoisers()) == {"gaussian", "median", "nlm"}
    with pytest.raises(RstemError, match="optional package bm3d"):
        denoise_baseline(np.ones((16, 16), np.float32), "bm3d", sigma=1.0)
