"""Contrast normalisation and binarisation of bright-field frames (paper Supp. G)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from rstem_core.binarize import (
    BinarizeParams,
    dislocation_signal,
    median_background,
    preprocess,
    saturate,
)


def _bf_frame(background: float, contrast: float, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright-field frame: a sloping background with a bend-contour band, one dark line."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:96, :96].astype(float)
    bg = background * (1.0 - 0.3 * x / 96) * (1.0 - 0.25 * np.exp(-((y - 70) ** 2) / (2 * 12.0**2)))
    line = np.exp(-((x - 0.4 * y - 30) ** 2) / (2 * 1.5**2))
    frame = bg * (1.0 - contrast * line) + rng.normal(0, noise * background, bg.shape)
    return frame.astype(np.float32), line > 0.5


@pytest.mark.parametrize(("background", "noise"), [(1000.0, 0.02), (300.0, 0.05)])  # thin/low tilt, thick/high tilt
def test_binarised_line_is_found_with_few_false_pixels(background: float, noise: float) -> None:
    frame, truth = _bf_frame(background, contrast=0.4, noise=noise)
    binary = preprocess(frame[None], BinarizeParams(mode="binarize", threshold_sigma=3.0))[0]
    assert set(np.unique(binary)) <= {0.0, 1.0}
    recall = binary[truth].mean()
    away = ~ndi.binary_dilation(truth, iterations=3)  # pixels clear of the line's flanks
    away[:6], away[-6:], away[:, :6], away[:, -6:] = False, False, False, False
    false_rate = binary[away].mean()
    assert recall > 0.8 and false_rate < 0.01


def test_signal_is_flat_where_there_is_no_line() -> None:
    frame, truth = _bf_frame(1000.0, contrast=0.4, noise=0.0)
    signal = dislocation_signal(frame, BinarizeParams(smooth_px=0.0))
    y, x = np.mgrid[:96, :96]
    far = (np.abs(x - 0.4 * y - 30) > 10) & (y >= 6) & (y < 90) & (x >= 6) & (x < 90)
    assert np.abs(signal[far]).max() < 0.05  # the sloping background and the contour band are gone
    assert signal[truth].mean() > 0.25  # dark lines became a positive signal


def test_modes_none_and_normalize() -> None:
    frame, _ = _bf_frame(1000.0, 0.4, 0.01)
    np.testing.assert_array_equal(preprocess(frame[None], BinarizeParams(mode="none"))[0], frame)
    norm = preprocess(frame[None], BinarizeParams(mode="normalize"))[0]
    assert norm.min() >= 0 and norm.max() > 0.2
    with pytest.raises(ValueError, match="mode must be one of"):
        BinarizeParams(mode="otsu")


def test_frame_edges_get_no_more_false_dislocations_than_the_middle() -> None:
    rng = np.random.default_rng(0)
    frames = (100 + 10 * rng.standard_normal((30, 96, 96))).astype(np.float32)  # no dislocations at all
    b = preprocess(frames, BinarizeParams(mode="binarize", smooth_px=1.0))
    middle = b[:, 20:76, 20:76].mean()
    for edge in (b[:, 0, :], b[:, -1, :], b[:, :, 0], b[:, :, -1]):
        assert edge.mean() < 1.4 * middle, (edge.mean(), middle)


@pytest.mark.parametrize("shape", [(64, 64), (61, 47)])
def test_background_ignores_thin_lines_and_follows_a_slope(shape: tuple[int, int]) -> None:
    # a background falling across the frame (thickness change) with a 3 px dark line on it; the
    # estimate must follow the slope, not the line, on even and odd frame sizes alike
    rows, cols = shape
    y, x = np.mgrid[:rows, :cols].astype(np.float64)
    background = 1.0 - 0.004 * x - 0.002 * y
    frame = background * np.where(np.abs(y - 0.6 * x - 8) < 1.5, 0.6, 1.0)
    rng = np.random.default_rng(1)
    frame = (frame + 0.02 * rng.standard_normal(shape)).astype(np.float32)
    est = median_background(frame, 13, 6.0, bin_px=2)  # as the pre-processing runs it by default
    inner = (slice(8, rows - 8), slice(8, cols - 8))  # the Gaussian's reach from the edges
    assert est.shape == shape
    assert np.max(np.abs(est - background)[inner] / background[inner]) < 0.03


def test_saturation_lifts_a_faint_line_to_the_strong_one_and_leaves_the_noise() -> None:
    # a strong and a faint dark line (contrast 0.6 and 0.15) in a nearly noise-free frame
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:128, :128].astype(float)
    strong = np.exp(-((x - 40) ** 2) / (2 * 1.5**2))
    faint = np.exp(-((x - 90) ** 2) / (2 * 1.5**2))
    frame = 1000.0 * (1 - 0.6 * strong - 0.15 * faint) + rng.normal(0, 2.0, strong.shape)
    norm = preprocess(frame[None].astype(np.float32), BinarizeParams(mode="normalize"))
    clipped = saturate(norm, 0.5)
    ratio_before = norm[0, :, 88:93].max(axis=1).mean() / norm[0, :, 38:43].max(axis=1).mean()
    ratio_after = clipped[0, :, 88:93].max(axis=1).mean() / clipped[0, :, 38:43].max(axis=1).mean()
    assert ratio_before < 0.3 and ratio_after > 1.8 * ratio_before  # the strong line is cut down to half its height
    away = (np.abs(x - 40) > 8) & (np.abs(x - 90) > 8)
    np.testing.assert_array_equal(clipped[0][away], norm[0][away])  # noise below the clip is kept
    assert clipped.dtype == np.float32 and clipped.shape == norm.shape


def test_saturation_never_clips_a_noise_dominated_frame_below_its_noise() -> None:
    rng = np.random.default_rng(4)
    frame = 1000.0 + rng.normal(0, 50.0, (128, 128))  # no line at all, 5 % noise
    norm = preprocess(frame[None].astype(np.float32), BinarizeParams(mode="normalize"))
    clipped = saturate(norm, 0.5)
    changed = np.mean(clipped != norm)
    assert changed < 0.001  # only values beyond 4 sigma are clipped
