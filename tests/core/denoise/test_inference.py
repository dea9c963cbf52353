"""Tiled inference: seamless, any frame size, same units as the input, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rstem_core.denoise.inference import axis_tiles, denoise_frames, tile_layout
from rstem_core.denoise.network import UNet
from rstem_core.denoise.weights import DenoiserModel
from rstem_core.errors import Cancelled, RstemError
from rstem_core.progress import CancelToken


@pytest.fixture(scope="module")
def model() -> DenoiserModel:
    """An untrained smoothing-like network: every output depends on a wide neighbourhood."""
    torch.manual_seed(0)
    net = UNet(2, 4, residual=False)
    return DenoiserModel(net)


@pytest.fixture(scope="module")
def frame(line_image) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.poisson(np.clip(line_image(rng, 96), 0, None)).astype(np.float32)


def test_tiles_cover_the_frame_with_weights_summing_to_positive_values() -> None:
    (tr, tc), layout = tile_layout((100, 70), 32, 8, 4)
    assert tr <= 32 and tc <= 32 and tr % 4 == 0
    # tiles start on the network's 4 px grid; the last ones may reach past the frame (padded)
    assert all(r % 4 == 0 and c % 4 == 0 for r, c, _ in layout)
    total = np.zeros((max(r for r, _, _ in layout) + tr, max(c for _, c, _ in layout) + tc))
    for r, c, w in layout:
        total[r:r + tr, c:c + tc] += w
    assert total[:100, :70].min() > 0.5


def test_fewest_tiles_with_at_least_the_overlap() -> None:
    assert axis_tiles(512, 512, 32, 16) == (512, [0])
    tile, starts = axis_tiles(1024, 512, 32, 16)
    assert len(starts) == 3 and tile <= 512 and tile % 16 == 0 and starts[-1] + tile == 1024
    assert min(a + tile - b for a, b in zip(starts[:-1], starts[1:], strict=True)) >= 32
    assert axis_tiles(50, 512, 32, 8) == (56, [0])


def test_tiled_equals_whole_frame_within_a_small_bound(model: DenoiserModel, frame: np.ndarray) -> None:
    whole = denoise_frames(frame, model, tile_px=256, overlap_px=0)  # one tile: frame and its border
    tiled = denoise_frames(frame, model, tile_px=32, overlap_px=16, batch_size=3)
    spread = np.ptp(whole)
    assert np.abs(tiled - whole).mean() < 0.01 * spread
    assert np.abs(tiled - whole).max() < 0.08 * spread


def test_no_step_at_tile_edges(model: DenoiserModel) -> None:
    yy, xx = np.mgrid[0:96, 0:96]
    smooth = (20 + 0.05 * xx + 0.03 * yy).astype(np.float32)
    out = denoise_frames(smooth, model, tile_px=32, overlap_px=16)
    step_x = np.abs(np.diff(out, axis=1))
    # a seam would show as a column of large jumps; compare the worst column with the typical one
    per_col = step_x[8:-8, 8:-8].mean(axis=0)
    assert per_col.max() < 3 * np.median(per_col) + 1e-3 * np.ptp(out)


def test_any_frame_size_and_shape_and_units_are_kept(model: DenoiserModel, frame: np.ndarray) -> None:
    odd = frame[:50, :70]
    out = denoise_frames(odd, model, tile_px=32, overlap_px=8)
    assert out.shape == odd.shape and out.dtype == np.float32
    stack = np.stack([odd, odd * 2])
    out2 = denoise_frames(stack, model, tile_px=32, overlap_px=8)
    assert out2.shape == stack.shape
    # per-frame normalisation: output follows an affine change of the input units exactly
    np.testing.assert_allclose(out2[1], 2 * out2[0], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(out2[0], out, rtol=1e-5, atol=1e-4)


def test_nan_frames_are_refused_with_the_frame_named(model: DenoiserModel, frame: np.ndarray) -> None:
    bad = np.stack([frame, frame])
    bad[1, 3, 4] = np.nan
    with pytest.raises(RstemError, match="frame 1 has 1 NaN"):
        denoise_frames(bad, model)


def test_cancel_stops_inference(model: DenoiserModel, frame: np.ndarray) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        denoise_frames(frame, model, cancel=token)


def test_no_rim_along_the_frame_border(model: DenoiserModel, frame: np.ndarray) -> None:
    out = denoise_frames(frame, model)
    inner = out[8:-8, 8:-8]
    level, spread = np.median(inner), np.std(inner)
    for edge in (out[0], out[-1], out[:, 0], out[:, -1]):
        assert abs(np.median(edge) - level) < 1.5 * spread


def test_the_models_width_restoration_is_applied_at_each_frames_tilt(model, frame, tmp_path) -> None:
    from rstem_core.denoise.sharpen import WidthRestoration, high_boost
    from rstem_core.denoise.weights import export_safetensors, import_safetensors

    restoration = WidthRestoration(1.2, (0.0, 60.0), (2.0, 0.0))
    sharp = DenoiserModel(model.network, {"width_restoration": restoration.to_json()})
    assert sharp.width_restoration == restoration
    plain = denoise_frames(frame, model)
    np.testing.assert_allclose(denoise_frames(frame, sharp, restore_width=False), plain, rtol=1e-5, atol=1e-4)
    stack = denoise_frames(np.stack([frame, frame]), sharp, tilts_deg=np.array([-60.0, 0.0]))
    np.testing.assert_allclose(stack[0], plain, rtol=1e-5, atol=1e-4)  # gain 0 at 60 deg
    np.testing.assert_allclose(stack[1], high_boost(plain, 1.2, 2.0), rtol=1e-4, atol=1e-3)
    again = import_safetensors(export_safetensors(sharp, tmp_path / "m.safetensors"))
    assert again.width_restoration == restoration
    broken = {**sharp.description, "width_restoration": {"sigma_px": 1.0}}
    with pytest.raises(RstemError, match="line-width restoration record is damaged"):
        DenoiserModel.from_arrays(broken, sharp.state_arrays(), "m.safetensors")


def test_average_flips_is_the_mean_of_the_flipped_copies(model: DenoiserModel, frame: np.ndarray) -> None:
    stack = np.stack([frame, frame[::-1].copy()])
    seen: list[float] = []
    averaged = denoise_frames(stack, model, average_flips=True, progress=lambda f, m: seen.append(f))
    plain = denoise_frames(stack, model)
    by_rows = denoise_frames(stack[:, ::-1].copy(), model)[:, ::-1]
    by_cols = denoise_frames(stack[:, :, ::-1].copy(), model)[:, :, ::-1]
    assert averaged.shape == stack.shape and averaged.dtype == np.float32
    np.testing.assert_allclose(averaged, (plain + by_rows + by_cols) / 3, rtol=1e-5, atol=1e-5 * float(np.abs(plain).max()))
    assert float(np.abs(averaged - plain).max()) > 1e-3 * float(np.abs(plain).max())  # the copies do differ
    assert np.all(np.diff(seen) >= -1e-9) and seen[-1] == pytest.approx(1.0)
    single = denoise_frames(frame, model, average_flips=True)
    assert single.shape == frame.shape
    np.testing.assert_allclose(single, averaged[0], rtol=1e-5, atol=1e-5 * float(np.abs(plain).max()))
