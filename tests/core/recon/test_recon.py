"""Reconstruction engine: projector adjointness and convention, agreement with ASTRA, algorithms."""

from __future__ import annotations

import numpy as np
import pytest

from rstem_core.errors import Cancelled
from rstem_core.progress import CancelToken
from rstem_core.recon import (
    Geometry,
    Projector,
    reconstruct,
    row_angles_from_curve,
    row_times_s,
    slab_pad_rows,
)
from rstem_core.recon.algorithms import angular_weights
from rstem_core.recon.thickness import (
    bin_frames,
    estimate_thickness_px,
    slab_extent,
    slab_offset_px,
)


def _blobs(nz: int, ny: int, nx: int, n: int = 25, seed: int = 0, margin: int = 4) -> np.ndarray:
    """Smooth Gaussian blobs inside a slab of nz voxels: a phantom with known content."""
    rng = np.random.default_rng(seed)
    z, y = np.mgrid[:nz, :ny].astype(np.float32)
    vol = np.zeros((nz, ny, nx), np.float32)
    for _ in range(n):
        cz, cy = rng.uniform(margin, nz - margin), rng.uniform(margin, ny - margin)
        x = rng.integers(0, nx)
        vol[:, :, x] += rng.uniform(0.5, 1.0) * np.exp(-((z - cz) ** 2 + (y - cy) ** 2) / (2 * 2.0**2))
    return vol


def test_adjoint_passes_the_dot_product_test() -> None:
    rng = np.random.default_rng(1)
    n, rows, nz = 9, 40, 17
    per_frame = Geometry(np.linspace(-70, 70, n), rows, 3, nz, shifts_px=rng.normal(0, 2, (n, 2)))
    per_row = Geometry(
        np.linspace(-70, 70, n)[:, None] + np.linspace(0, 0.8, rows)[None, :], rows, 3, nz,
        shifts_px=rng.normal(0, 2, (n, 2)),
    )
    padded = Geometry(np.linspace(-70, 70, n), rows, 3, nz, shifts_px=rng.normal(0, 2, (n, 2)), pad_rows=11)
    for geometry in (per_frame, per_row, padded):
        p = Projector(geometry, "cpu")
        x = rng.random(geometry.volume_shape()).astype(np.float32)
        y = rng.random((n, rows, 3)).astype(np.float32)
        lhs = float(np.sum(p.project(x).astype(np.float64) * y))
        rhs = float(np.sum(x.astype(np.float64) * p.backproject(y)))
        assert abs(lhs - rhs) / abs(lhs) < 1e-5


def test_projection_follows_the_design_convention() -> None:
    """A point (y, z) from the volume centre appears at row v = y cos(theta) - z sin(theta)."""
    nz, rows = 41, 81
    vol = np.zeros((nz, rows, 1), np.float32)
    iz, iy = 8, 60  # z = 8 - 20 = -12, y = 60 - 40 = 20
    vol[iz, iy, 0] = 1.0
    angles = np.array([-60.0, -30.0, 0.0, 30.0, 60.0])
    proj = Projector(Geometry(angles, rows, 1, nz), "cpu").project(vol)[:, :, 0]
    r = np.arange(rows)
    found = (proj * r).sum(axis=1) / proj.sum(axis=1) - (rows - 1) / 2
    t = np.deg2rad(angles)
    np.testing.assert_allclose(found, 20 * np.cos(t) + 12 * np.sin(t), atol=0.1)


def test_shift_moves_the_projection() -> None:
    nz, rows = 21, 61
    vol = np.zeros((nz, rows, 1), np.float32)
    vol[10, 30, 0] = 1.0
    g = Geometry(np.array([0.0, 20.0]), rows, 1, nz, shifts_px=np.array([[3.0, 0.0], [-2.5, 0.0]]))
    proj = Projector(g, "cpu").project(vol)[:, :, 0]
    centre = (proj * np.arange(rows)).sum(axis=1) / proj.sum(axis=1) - 30
    np.testing.assert_allclose(centre, [3.0, -2.5], atol=0.05)


def test_projector_equals_astra_linear_projector() -> None:
    import astra

    nz, rows = 30, 50
    slice_ = _blobs(nz, rows, 1)[:, :, 0]
    angles = np.linspace(-70, 70, 15)
    ours = Projector(Geometry(angles, rows, 1, nz), "cpu").project(slice_[:, :, None])[:, :, 0]
    vg = astra.create_vol_geom(nz, rows)
    pg = astra.create_proj_geom("parallel", 1.0, rows, np.deg2rad(angles))
    pid = astra.create_projector("linear", pg, vg)
    sid, theirs = astra.create_sino(slice_, pid)
    astra.data2d.delete(sid)
    astra.projector.delete(pid)
    np.testing.assert_allclose(ours, theirs, atol=1e-4 * np.abs(theirs).max())


@pytest.mark.parametrize("algorithm", ["sirt", "cgls"])
def test_agrees_with_astra_within_one_percent(algorithm: str) -> None:
    nz, rows, nx = 32, 64, 4
    vol = _blobs(nz, rows, nx)
    g = Geometry(np.linspace(-70, 70, 36), rows, nx, nz)
    series = Projector(g, "cpu").project(vol)
    ours = reconstruct(series, g, algorithm=algorithm, iterations=50, device="cpu")
    theirs = reconstruct(series, g, algorithm=algorithm, iterations=50, backend="astra")
    rel = np.sqrt(np.mean((ours - theirs) ** 2)) / np.sqrt(np.mean(theirs**2))
    assert rel < 0.01


def test_fbp_of_a_noiseless_phantom_matches_it() -> None:
    nz = rows = 64
    vol = _blobs(nz, rows, 2, n=20, margin=12)
    g = Geometry(np.linspace(-89, 89, 180), rows, 2, nz)
    rec = reconstruct(Projector(g, "cpu").project(vol), g, algorithm="fbp", device="cpu")
    rel = np.sqrt(np.mean((rec - vol) ** 2)) / np.sqrt(np.mean(vol**2))
    assert rel < 0.12  # the linear-interpolation projector and the band limit blur 2-voxel blobs
    assert float(rec.sum() / vol.sum()) == pytest.approx(1.0, abs=0.05)


def test_padding_keeps_specimen_beyond_the_frame_out_of_the_edge_rows() -> None:
    """A slab wider than the field of view: tilted views see material above and below the frame.

    Without room for it SIRT piles it into the first and last rows; with the padding that
    ``slab_pad_rows`` gives, the edge rows look like the rest of the volume.
    """
    nz, rows, wide = 20, 64, 64 + 2 * 80
    angles = np.linspace(-70, 70, 36)
    specimen = _blobs(nz, wide, 2, n=60, seed=3)
    series = Projector(Geometry(angles, rows, 2, nz, pad_rows=80), "cpu").project(specimen)
    inside = specimen[:, 80 : 80 + rows]
    pad = slab_pad_rows(nz, angles)
    assert pad == int(np.ceil(nz * np.tan(np.deg2rad(70)))) + 1
    errors, edges = {}, {}
    for p in (0, pad):
        rec = reconstruct(series, Geometry(angles, rows, 2, nz, pad_rows=p), iterations=50, device="cpu")
        assert rec.shape == inside.shape
        edge = np.r_[0:3, rows - 3 : rows]
        edges[p] = float(rec[:, edge].mean() / inside[:, edge].mean())
        errors[p] = float(np.sqrt(np.mean((rec - inside) ** 2) / np.mean(inside**2)))
    assert edges[0] > 2.0  # the artefact the padding removes is real
    assert 0.6 < edges[pad] < 1.4
    assert errors[pad] < 0.7 * errors[0]


def test_sirt_converges_on_consistent_data() -> None:
    nz, rows = 24, 48
    vol = _blobs(nz, rows, 2, n=10)
    g = Geometry(np.linspace(-70, 70, 71), rows, 2, nz)
    series = Projector(g, "cpu").project(vol)
    errors = []
    for it in (5, 50):
        rec = reconstruct(series, g, algorithm="sirt", iterations=it, device="cpu")
        errors.append(np.sqrt(np.mean((rec - vol) ** 2)) / np.sqrt(np.mean(vol**2)))
    assert errors[1] < 0.6 * errors[0] and errors[1] < 0.25


def test_time_lag_geometry_puts_features_where_they_are() -> None:
    """Data scanned while the specimen turns: per-row angles recover the true feature depths.

    Point-like features far from the mid-plane and near the top and bottom rows (scanned
    earliest and latest in a frame) are displaced when every row is given the frame's angle.
    """
    nz, rows, nx = 40, 128, 1
    points = [(4, 10), (35, 12), (5, 118), (34, 116), (20, 64), (8, 60), (32, 70)]
    vol = np.zeros((nz, rows, nx), np.float32)
    for z, y in points:
        vol[z, y, 0] = 1.0
    n = 71
    t0 = np.arange(n) * 0.070
    curve_a = np.linspace(-70, 70, n)  # 28 deg/s
    row_angles = row_angles_from_curve(t0 + 0.015, curve_a, row_times_s(t0, rows, 0.030 / rows))
    rate = 140 / (70 * 0.070)  # deg/s
    assert row_angles[0, -1] - row_angles[0, 0] == pytest.approx(rate * 0.030 * (rows - 1) / rows, rel=1e-6)
    lagged = Projector(Geometry(row_angles, rows, nx, nz), "cpu").project(vol)
    errors = {}
    for name, angles in (("frame", curve_a), ("row", row_angles)):
        rec = reconstruct(lagged, Geometry(angles, rows, nx, nz), iterations=100, device="cpu")[:, :, 0]
        err = []
        for z, y in points:
            win = np.clip(rec[max(z - 4, 0) : z + 5, y - 4 : y + 5], 0, None)
            zz, yy = np.mgrid[max(z - 4, 0) : z + 5, y - 4 : y + 5]
            err.append(np.hypot((win * zz).sum() / win.sum() - z, (win * yy).sum() / win.sum() - y))
        errors[name] = float(np.mean(err))
    assert errors["row"] < 0.5 * errors["frame"], errors


def test_bad_inputs_are_named() -> None:
    g = Geometry(np.linspace(-60, 60, 5), 8, 4, 6)
    with pytest.raises(ValueError, match="has 4 frames .* expects 5 angles"):
        reconstruct(np.zeros((4, 8, 4)), g)
    frames = np.zeros((5, 8, 4))
    frames[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite values .first in frame 2"):
        reconstruct(frames, g)
    with pytest.raises(ValueError, match="empty volume extent"):
        Geometry(np.zeros(5), 8, 4, 0)
    with pytest.raises(ValueError, match="strictly between -90 and \\+90"):
        Geometry(np.array([0.0, 90.0]), 8, 4, 4)
    with pytest.raises(ValueError, match="one column per frame row"):
        Geometry(np.zeros((5, 7)), 8, 4, 4)
    with pytest.raises(ValueError, match="unknown algorithm"):
        reconstruct(np.zeros((5, 8, 4)), g, algorithm="art")


def test_progress_and_cancel() -> None:
    g = Geometry(np.linspace(-60, 60, 7), 16, 2, 8)
    seen: list[float] = []
    reconstruct(np.ones((7, 16, 2)), g, iterations=10, device="cpu", progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:], strict=False)) and len(seen) > 10
    token = CancelToken()

    def cancel_midway(fraction: float, message: str) -> None:
        if fraction > 0.3:
            token.cancel()

    with pytest.raises(Cancelled):
        reconstruct(np.ones((7, 16, 2)), g, iterations=50, device="cpu", progress=cancel_midway, cancel=token)


def test_batches_give_the_same_volume() -> None:
    g = Geometry(np.linspace(-60, 60, 9), 20, 7, 10)
    series = np.random.default_rng(0).random((9, 20, 7)).astype(np.float32)
    whole = reconstruct(series, g, iterations=5, device="cpu")
    parts = reconstruct(series, g, iterations=5, device="cpu", max_slices_per_batch=3)
    np.testing.assert_allclose(whole, parts, rtol=1e-5, atol=1e-6)


def test_angular_weights_cover_the_range() -> None:
    w = angular_weights(np.linspace(-70, 70, 71))
    assert w.sum() == pytest.approx(np.deg2rad(142.0))


def test_thickness_estimate_finds_the_slab() -> None:
    rows, nz_true = 96, 24
    vol = np.zeros((rows, rows, 8), np.float32)
    top = (rows - nz_true) // 2
    vol[top : top + nz_true] = _blobs(nz_true, rows, 8, n=60, margin=3)
    g = Geometry(np.linspace(-70, 70, 36), rows, 8, rows)
    series = Projector(g, "cpu").project(vol)
    thickness, profile = estimate_thickness_px(series, g.angles_deg, binning=2, dark_lines=None, device="cpu")
    assert profile.shape == (rows // 2,)
    assert 0.7 * nz_true <= thickness <= 1.6 * nz_true


def test_a_slab_off_the_tilt_axis_is_located() -> None:
    """A layer whose middle lies 16 px below the axis: its offset is measured, so the volume can
    be made tall enough to hold it."""
    rows, nz_true = 96, 20
    vol = np.zeros((rows, rows, 8), np.float32)
    top = (rows - nz_true) // 2 - 16
    vol[top : top + nz_true] = _blobs(nz_true, rows, 8, n=60, margin=3)
    g = Geometry(np.linspace(-70, 70, 36), rows, 8, rows)
    series = Projector(g, "cpu").project(vol)
    _, profile = estimate_thickness_px(series, g.angles_deg, binning=2, dark_lines=None, device="cpu")
    assert slab_offset_px(profile, 2) == pytest.approx(-16.0, abs=3.0)


def test_thickness_of_the_synthetic_specimen(tmp_path) -> None:
    """On the noisy rapid series of the demo (300 nm slab) the estimate is within 30 %."""
    from rstem_core.project import Project
    from rstem_core.simulate import SimulationConfig, write_demo_project

    path = write_demo_project(tmp_path / "d.h5", SimulationConfig.scaled(
        size=128, frames=31, seed=0, areas_per_tilt=1, frames_per_area=2))
    with Project.open(path) as proj:
        series = proj.read_series("raw/rapid")
        true_nm = float(proj.attrs("truth")["thickness_nm"])
    px, _ = estimate_thickness_px(series.frames, series.angles_deg, binning=4, device="cpu")
    assert 0.7 * true_nm <= px * series.pixel_size_nm <= 1.3 * true_nm


def test_extent_and_binning_helpers() -> None:
    profile = np.array([9, 1, 1, 1, 1, 4, 6, 5, 1, 1, 1, 2, 1, 1, 9.0])  # artefacts at both ends
    assert slab_extent(profile, edge_fraction=0.2, level=0.3) == (5, 8)
    assert bin_frames(np.arange(2 * 4 * 6, dtype=float).reshape(2, 4, 6), 2).shape == (2, 2, 3)


def test_preview_sees_every_iteration_of_the_converging_volume() -> None:
    rng = np.random.default_rng(1)
    vol = np.zeros((12, 24, 6), np.float32)
    vol[4:8, 8:16, :] = 1.0
    geometry = Geometry(np.linspace(-60, 60, 15), 24, 6, 12)
    frames = Projector(geometry, "cpu").project(vol) + 0.01 * rng.standard_normal((15, 24, 6)).astype(np.float32)
    seen: list[tuple[int, int, np.ndarray]] = []
    result = reconstruct(frames, geometry, iterations=5, device="cpu",
                         preview=lambda k, n, section: seen.append((k, n, section)))
    assert [(k, n) for k, n, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert seen[-1][2].shape == (12, 6)
    np.testing.assert_allclose(seen[-1][2], result[:, 12, :], rtol=1e-6, atol=1e-7)
    assert np.abs(seen[0][2] - result[:, 12, :]).max() > 1e-3  # it shows the volume converging
