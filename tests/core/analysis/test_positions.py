"""Dislocation centres per cross-section and their pairing with a reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from rstem_core.analysis import find_centres_yz, line_crossings_yz, pair_centres
from rstem_core.analysis.positions import (
    compare_centres,
    section_centres,
    section_h_maxima,
    smooth_along_lines,
    spot_threshold,
    typical_line_level,
)


def _tube_volume(nz: int, ny: int, nx: int, y_px: float, z_px: float, sigma: float = 1.5) -> np.ndarray:
    z, y = np.mgrid[:nz, :ny].astype(np.float64)
    spot = np.exp(-((z - z_px) ** 2 + (y - y_px) ** 2) / (2 * sigma**2))
    return np.repeat(spot[:, :, None], nx, axis=2).astype(np.float32)


def test_weighted_centroid_finds_subvoxel_centres() -> None:
    vol = _tube_volume(21, 41, 5, y_px=27.3, z_px=8.6)
    c = find_centres_yz(vol, voxel_nm=4.0)
    assert c.xyz_nm.shape == (5, 3)
    # origin at the volume centre: y = (27.3 - 20) * 4, z = (8.6 - 10) * 4
    np.testing.assert_allclose(c.xyz_nm[:, 1], 29.2, atol=0.3)
    np.testing.assert_allclose(c.xyz_nm[:, 2], -5.6, atol=0.3)
    np.testing.assert_allclose(c.xyz_nm[:, 0], (np.arange(5) - 2) * 4.0)


def test_a_spot_brighter_at_its_rim_gives_one_centre_in_its_middle() -> None:
    # a binarised line reconstructed by SIRT: a flat-topped spot whose rim overshoots, so it has
    # several local maxima around its edge; it is one dislocation with its centre in the middle
    z, y = np.mgrid[:31, :61].astype(np.float64)
    r = np.hypot(z - 15.4, (y - 30.7) / 1.8)  # drawn out along y (an oblique line)
    spot = np.where(r < 4.0, 1.0, 0.0) + 0.4 * np.exp(-((r - 3.5) ** 2) / 0.5)
    rng = np.random.default_rng(0)
    spot += 0.02 * rng.standard_normal(spot.shape)
    vol = np.repeat(spot[:, :, None], 4, axis=2).astype(np.float32)
    c = find_centres_yz(vol, voxel_nm=4.0, border_px=2)
    assert c.xyz_nm.shape == (4, 3)  # one per section
    np.testing.assert_allclose(c.xyz_nm[:, 1], (30.7 - 30) * 4.0, atol=1.0)
    np.testing.assert_allclose(c.xyz_nm[:, 2], (15.4 - 15) * 4.0, atol=1.0)


def test_two_close_dislocations_stay_two() -> None:
    # two spots 6 voxels apart (27 nm at the default voxel): the dip between them splits them
    vol = _tube_volume(21, 41, 3, y_px=17.0, z_px=10.0) + _tube_volume(21, 41, 3, y_px=23.0, z_px=10.0)
    c = find_centres_yz(vol, voxel_nm=4.0)
    assert c.xyz_nm.shape == (6, 3)
    np.testing.assert_allclose(np.sort(c.xyz_nm[:2, 1]), [-12.0, 12.0], atol=0.6)


def test_line_crossings() -> None:
    line = np.array([[-10.0, 0.0, -50.0], [10.0, 20.0, 50.0]])
    pts = line_crossings_yz([line], np.array([-5.0, 0.0, 5.0, 20.0]))
    np.testing.assert_allclose(pts, [[-5, 5, -25], [0, 10, 0], [5, 15, 25]])


def test_pairing_reports_errors_and_completeness() -> None:
    ref = np.array([[0, 0, 0], [0, 50, 10], [4, 0, 0], [4, 100, 0.0]])
    found = np.array([[0, 1, 2], [0, 48, 13], [4, 0.5, -1], [8, 100, 0.0]])
    e = pair_centres(found, ref, max_distance_nm=10, plane_tol_nm=1.0)
    assert e.dxyz_nm.shape == (3, 3)
    assert e.completeness == pytest.approx(0.75)
    m = e.mean_abs_nm
    assert m["y"] == pytest.approx((1 + 2 + 0.5) / 3) and m["z"] == pytest.approx((2 + 3 + 1) / 3)


def test_a_few_very_bright_voxels_do_not_hide_ordinary_dislocations() -> None:
    # three tubes of ordinary brightness (1.0, 0.6, 0.4) and one edge artefact 20x brighter
    vol = (_tube_volume(21, 61, 8, y_px=12.0, z_px=6.0) + 0.6 * _tube_volume(21, 61, 8, y_px=30.0, z_px=12.0)
           + 0.4 * _tube_volume(21, 61, 8, y_px=47.0, z_px=9.0))
    vol[3, 3, 2] = 20.0
    c = find_centres_yz(vol, voxel_nm=4.0, threshold=0.2, border_px=4)
    assert c.xyz_nm.shape == (24, 3)  # all three in all eight sections, the artefact ignored
    ys = np.sort(np.unique(np.round(c.xyz_nm[:, 1] / 4.0 + 30)))
    np.testing.assert_allclose(ys, [12, 30, 47])


def test_completeness_by_depth_shows_where_centres_are_missed() -> None:
    # reference centres spread through a 300 nm slab; those within 30 nm of its surfaces are missed
    z = np.linspace(-148, 148, 60)
    ref = np.c_[np.zeros_like(z), np.arange(60) * 40.0, z]
    found = ref[np.abs(z) < 120] + [0.0, 1.0, 2.0]
    out = compare_centres({"x": found}, {"x": ref}, voxel_nm=4.0, max_distance_nm=10.0, register=False, bins=5)
    shares = out["completeness_by_z"]
    assert len(out["z_bands_nm"]) == 5 and out["z_bands_nm"][0] < -100 < 100 < out["z_bands_nm"][-1]
    assert shares[2] == 1.0 and shares[0] < 0.6 and shares[-1] < 0.6
    assert out["completeness"] == pytest.approx(np.mean(np.abs(z) < 120), abs=1e-3)


def test_registration_keeps_lined_up_sections_where_a_neighbouring_section_pairs_more() -> None:
    # the same straight lines in both sets, but the reference reaches a few sections further on one
    # side: pairing found section s with reference section s + 1 then gives more pairs than the
    # true alignment, each off by the lines' slope; the registration must not take that shift
    v = 4.0
    t = np.array([1.0, 0.4, 0.6])  # one direction (one slip system), lines 30 nm or more apart
    lines = [np.stack([p - 400 * t, p + 400 * t])
             for p in (np.array([0.0, y, z]) for y in np.linspace(-150, 150, 10) for z in (-60, -20, 20, 60))]
    found = {"x": line_crossings_yz(lines, np.arange(-20, 21) * v)}
    reference = {"x": line_crossings_yz(lines, np.arange(-25, 19) * v)}
    out = compare_centres(found, reference, voxel_nm=v, max_distance_nm=30.0)
    assert all(abs(o) < 0.05 * v for o in out["offset_nm"].values()), out["offset_nm"]
    assert out["position_error_nm"]["z"] < 0.05 * v and out["position_error_nm"]["y"] < 0.05 * v


def test_one_depth_offset_serves_both_section_families_whichever_comes_first() -> None:
    # the yz sections' centres lie 3 nm deeper than the truth (60 of them), the xz sections' 1 nm
    # shallower (40): one depth offset for both is the median of all pairs, 3 nm, leaving the
    # xz family's 4 nm; registering each family in turn left the last family's offset (-1 nm),
    # and the larger family's error (mean 2.4 nm instead of 1.6)
    def family(n: int, axis: int, dz: float) -> tuple[np.ndarray, np.ndarray]:
        ref = np.zeros((n, 3))
        ref[:, axis] = np.repeat(np.arange(n // 4), 4) * 4.0  # four centres in each section
        ref[:, 1 - axis] = np.tile(np.arange(4) * 60.0, n // 4)
        ref[:, 2] = np.linspace(-100, 100, n)
        return ref + [0.0, 0.0, dz], ref

    for n_yz, n_xz, expected in ((60, 40, 3.0), (40, 60, -1.0)):
        fx, rx = family(n_yz, 0, 3.0)
        fy, ry = family(n_xz, 1, -1.0)
        out = compare_centres({"x": fx, "y": fy}, {"x": rx, "y": ry}, voxel_nm=4.0, max_distance_nm=30.0)
        assert out["offset_nm"]["z"] == pytest.approx(expected, abs=1e-6)
        assert out["position_error_nm"]["z"] == pytest.approx(4.0 * min(n_yz, n_xz) / 100, abs=1e-3)
        assert out["completeness"] == 1.0


def _line_volume(shape: tuple[int, int, int], point: tuple[float, float, float], direction: tuple[float, float, float],
                 sigma: float = 1.2) -> np.ndarray:
    """A straight Gaussian tube through ``point`` (z, y, x voxels) along ``direction``."""
    grid = np.stack(np.mgrid[: shape[0], : shape[1], : shape[2]], axis=-1).astype(np.float64) - np.asarray(point)
    d = np.asarray(direction, dtype=np.float64)
    d /= np.linalg.norm(d)
    across = grid - (grid @ d)[..., None] * d
    return np.exp(-(across**2).sum(axis=-1) / (2 * sigma**2)).astype(np.float32)


def test_smoothing_along_a_line_averages_its_noise_and_keeps_its_profile() -> None:
    clean = _line_volume((40, 64, 64), (20, 32, 32), (0.5, 0.6, 0.8))
    noisy = clean + 0.3 * np.random.default_rng(1).standard_normal(clean.shape).astype(np.float32)
    smooth = smooth_along_lines(noisy, 3.0)
    on = clean > 0.5
    before = np.sqrt(np.mean((noisy - clean)[on] ** 2))
    after = np.sqrt(np.mean((smooth - clean)[on] ** 2))
    assert after < 0.4 * before  # about 13 samples along the line
    assert smooth[on].mean() == pytest.approx(clean[on].mean(), rel=0.08)  # the line is not blurred away
    assert smooth.dtype == np.float32 and smooth.shape == clean.shape


def test_smoothing_along_lines_keeps_the_gap_between_neighbours() -> None:
    # two parallel lines 5 voxels apart in z, drawn out in z like a reconstruction's spots
    shape = (40, 64, 64)
    pair = _line_volume(shape, (17.5, 32, 32), (0, 0.3, 1)) + _line_volume(shape, (22.5, 32, 32), (0, 0.3, 1))
    pair = ndi.gaussian_filter(pair, (1.5, 0, 0))
    noisy = pair + 0.15 * np.random.default_rng(2).standard_normal(shape).astype(np.float32)

    def dip(v: np.ndarray) -> float:  # how far the middle sinks below the two lines' mean peak
        profile = v[:, 32, 20:44].mean(axis=1)
        return float((profile[17] + profile[23]) / 2 - profile[20])

    along = smooth_along_lines(noisy, 3.0)
    across = ndi.gaussian_filter(noisy, 1.5)  # isotropic smoothing of about the same reach
    assert dip(along) > 0.6 * dip(pair)
    assert dip(across) < 0.3 * dip(pair)
    # only the voxels asked for change
    where = np.zeros(shape, dtype=bool)
    where[:, :32] = True
    part = smooth_along_lines(noisy, 3.0, where=where)
    np.testing.assert_array_equal(part[:, 32:], noisy[:, 32:])
    np.testing.assert_allclose(part[:, :32], along[:, :32], atol=1e-6)


def test_spots_found_in_a_smoothed_copy_keep_the_centroids_of_the_volume() -> None:
    vol = _tube_volume(21, 41, 5, y_px=27.3, z_px=8.6)
    detect = ndi.gaussian_filter(vol, 2.0)  # where to look; the centroid weighs the volume itself
    c = find_centres_yz(vol, voxel_nm=4.0, detect=detect)
    np.testing.assert_allclose(c.xyz_nm[:, 1], 29.2, atol=0.3)
    np.testing.assert_allclose(c.xyz_nm[:, 2], -5.6, atol=0.3)
    with pytest.raises(ValueError, match="shape"):
        find_centres_yz(vol, voxel_nm=4.0, detect=detect[:, :-1])


def test_section_h_maxima_equal_those_of_each_section_alone() -> None:
    from skimage.morphology import h_maxima

    rng = np.random.default_rng(3)
    # many spots of mixed heights, some touching or overlapping, a few pieces along the section
    # edges and a plateau: each yz section compared with skimage's h-maxima of that section alone
    values = ndi.gaussian_filter(rng.random((30, 70, 12)) ** 6, (1.2, 1.2, 0))
    values[10:14, 30:34, 5] = values.max()  # a plateau
    h = 0.05 * float(values.max())
    level = max(float(np.percentile(values, 70)), 1.01 * h)  # above h on the mask, as the finder has it
    mask = values > level
    masked = np.where(mask, values, 0.0)
    found = section_h_maxima(masked, mask, h, width=40)  # a narrow mosaic: several shelves
    for ix in range(values.shape[2]):
        alone = h_maxima(masked[:, :, ix], h).astype(bool) & mask[:, :, ix]
        np.testing.assert_array_equal(found[:, :, ix], alone)
    assert found.sum() > 3 * values.shape[2]  # several maxima per section, not a trivial case
    assert not section_h_maxima(np.zeros((4, 5, 3)), np.zeros((4, 5, 3), bool), h).any()
    # a piece lower than h beside a high one still has its own maximum: pieces stand alone
    pair = np.zeros((9, 20, 1))
    pair[2:5, 2:5, 0] = [[1, 1, 1], [1, 2, 1], [1, 1, 1]]
    pair[2:5, 12:15, 0] = 10.0 * pair[2:5, 2:5, 0]
    peaks = section_h_maxima(pair, pair > 0, 5.0)
    assert peaks[3, 3, 0] and peaks[3, 13, 0] and peaks.sum() == 2


def test_the_noise_floor_keeps_noise_peaks_of_a_sparse_volume_out() -> None:
    # two faint lines along x in a noisy volume: 0.2 of their brightness lies within the noise,
    # so a fixed fraction counts noise peaks as dislocations; the floor at 5 times the noise
    # level (its 90th percentile) leaves the two lines alone in every section
    rng = np.random.default_rng(3)
    vol = _tube_volume(30, 60, 12, y_px=20.0, z_px=12.0) + _tube_volume(30, 60, 12, y_px=42.0, z_px=17.0)
    vol = np.clip(vol + 0.1 * rng.standard_normal(vol.shape).astype(np.float32), 0, None)
    plain = find_centres_yz(vol, voxel_nm=4.0, border_px=2)
    floored = find_centres_yz(vol, voxel_nm=4.0, border_px=2, noise_floor=5.0)
    assert plain.xyz_nm.shape[0] > 3 * 12  # noise spots besides the 2 x 12 crossings
    assert floored.xyz_nm.shape[0] == 2 * 12
    np.testing.assert_allclose(np.sort(floored.xyz_nm[:, 1]).reshape(2, 12).mean(axis=1),
                               [(20.0 - 29.5) * 4, (42.0 - 29.5) * 4], atol=1.0)
    used = spot_threshold(vol, 0.2, 5.0, 2)
    assert 0.4 < used < 0.95  # raised: the noise's 90th percentile is ~0.1 of the lines
    assert spot_threshold(vol, 0.2, 0.0, 2) == 0.2
    # a clean volume keeps the threshold it was given
    clean = _tube_volume(30, 60, 12, y_px=20.0, z_px=12.0)
    assert spot_threshold(clean, 0.2, 5.0, 2) == 0.2


def test_sections_that_no_line_crosses_do_not_lower_the_spot_threshold() -> None:
    # two lines along x: every yz section holds both, but only the few xz sections near y = 20
    # and y = 42 hold anything but noise; the level a threshold refers to must be the lines'
    # in both section families, or the noise-only xz sections count their noise peaks as spots
    rng = np.random.default_rng(5)
    vol = _tube_volume(30, 60, 40, y_px=20.0, z_px=12.0) + _tube_volume(30, 60, 40, y_px=42.0, z_px=17.0)
    vol = np.clip(vol + 0.04 * rng.standard_normal(vol.shape).astype(np.float32), 0, None)
    assert typical_line_level(vol, 2) > 0.9  # the lines' brightness, not a noise peak's
    assert typical_line_level(np.swapaxes(vol, 1, 2), 2) == typical_line_level(vol, 2)
    yz = section_centres(vol, 4.0, axis="x", threshold=0.2, min_prominence=0.1, border_px=2)
    xz = section_centres(vol, 4.0, axis="y", threshold=0.2, min_prominence=0.1, border_px=2)
    assert yz.shape[0] == 2 * 40
    # no line crosses an xz section; the two lines lying in a few of them give a few spots
    assert xz.shape[0] <= 2 * 8
    assert np.all(np.min(np.abs(xz[:, 1:2] - np.array([(20.0 - 29.5) * 4, (42.0 - 29.5) * 4])), axis=1) < 12.0)


def test_centroids_weighed_with_the_line_average_scatter_less_and_stay_on_the_line() -> None:
    # a noisy line along x: weighed with the volume averaged along the line, the centres of its
    # 40 sections scatter less than half as far from the true centre as weighed with the volume
    rng = np.random.default_rng(3)
    vol = _tube_volume(24, 40, 40, y_px=20.3, z_px=11.6, sigma=2.0)
    vol = vol + 0.2 * rng.standard_normal(vol.shape).astype(np.float32)
    detect = smooth_along_lines(vol, 3.0)
    scatter = {}
    for weigh in (False, True):
        c = find_centres_yz(vol, 4.0, detect=detect, threshold=0.4, min_prominence=0.1, border_px=2,
                            weigh_detect=weigh)
        assert c.xyz_nm.shape[0] == 40
        y, z = c.xyz_nm[:, 1] / 4.0 + 19.5, c.xyz_nm[:, 2] / 4.0 + 11.5  # voxels
        assert abs(np.mean(y) - 20.3) < 0.1 and abs(np.mean(z) - 11.6) < 0.1
        scatter[weigh] = float(np.sqrt(np.mean((y - 20.3) ** 2 + (z - 11.6) ** 2)))
    assert scatter[True] < 0.5 * scatter[False]
    assert scatter[True] < 0.2  # voxels


def test_a_merged_pile_up_is_split_and_single_lines_are_not() -> None:
    # three parallel lines 4 voxels apart along z, blurred along z as by the missing wedge, merge
    # into one long spot per section; three single lines and one lying obliquely to the
    # sections (its spot long too, but moving 1.5 voxels per section) stay as they are
    shape = (32, 80, 40)
    singles = [(16.0, 10.0), (8.0, 28.0), (22.0, 45.0)]
    vol = sum(_line_volume(shape, (z, y, 20), (0, 0, 1)) for z, y in singles)
    vol = vol + sum(_line_volume(shape, (10.0 + 4.0 * k, 64.0 + 0.3 * k, 20), (0, 0, 1)) for k in range(3))
    vol = vol + _line_volume(shape, (24, 40, 20), (0, 1.5, 1))
    vol = ndi.gaussian_filter(vol, (2.0, 0.5, 0.0))
    found = {}
    for ratio in (0.0, 3.0):
        c = find_centres_yz(vol, 1.0, threshold=0.2, min_prominence=0.02, border_px=2, split_ratio=ratio)
        x, y, z = (c.xyz_nm + np.array([19.5, 39.5, 15.5])).T
        inner = (x >= 5) & (x <= 34)
        pile = inner & (y > 58) & (z < 21)
        found[ratio] = z[pile], x[pile]
        for zs, ys in singles:
            assert np.sum(inner & (np.abs(y - ys) < 4) & (np.abs(z - zs) < 5)) == 30  # one per section
        assert np.sum(inner & (np.abs(z - 24) < 4) & (y < 58) & (np.abs(y - 45) > 3)) == 22  # the oblique line
    z_off, x_off = found[0.0]
    assert np.array_equal(np.sort(x_off), np.arange(5, 35))  # merged: one centre per section
    z_on, x_on = found[3.0]
    assert np.array_equal(np.sort(x_on), np.repeat(np.arange(5, 35), 2))  # split: two per section
    assert np.all(np.abs(z_on - 14.0) > 2.5) and np.all(np.abs(z_on - 14.0) < 5.0)  # either side of the middle
