"""Geometry of the synthetic experiment: distortion, per-row angles, projection convention, specimen."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from rstem_core.simulate import Experiment, warp_to_rapid
from rstem_core.simulate.contrast import render_frame
from rstem_core.simulate.params import ContrastParams
from rstem_core.simulate.projection import Canvas, project_lines, sample_lines
from rstem_core.simulate.specimen import Dislocation, Specimen


def _peak(profile: np.ndarray, near: float, half: int = 3) -> float:
    """Sub-pixel position of the maximum of ``profile`` within ``half`` px of ``near``."""
    j0 = int(round(near))
    seg = profile[j0 - half : j0 + half + 1]
    k = int(np.argmax(seg))
    a, b, c = seg[k - 1], seg[k], seg[k + 1]
    return j0 - half + k + 0.5 * (a - c) / (a - 2 * b + c)


# -- distortion ---------------------------------------------------------------------------------
def test_warp_places_features_where_the_distortion_definition_says(experiment: Experiment) -> None:
    dist = experiment.distortion
    rows, cols = dist.shape
    canvas = dist.canvas(extra_px=2)
    xs = [12.3, 40.7, 70.1, 101.6]  # undistorted columns of four vertical lines
    c = canvas.frame_cols()
    pattern = sum(np.exp(-0.5 * ((c - x) / 1.3) ** 2) for x in xs)
    rapid = warp_to_rapid(np.repeat(pattern[None], canvas.shape[0], axis=0), canvas, dist)[0]
    for r in (3, 64, 124):
        specimen_x = np.arange(cols) + dist.dx_px[r]  # X(c) by definition, increasing
        for x in xs:
            expected = float(np.interp(x, specimen_x, np.arange(cols)))
            assert abs(_peak(rapid[r], expected) - expected) < 0.15


def test_warp_equals_map_coordinates_at_the_defined_positions(experiment: Experiment) -> None:
    dist = experiment.distortion
    rows, cols = dist.shape
    canvas = dist.canvas(extra_px=3)
    image = ndimage.gaussian_filter(np.random.default_rng(0).random(canvas.shape), 2).astype(
        np.float32
    )
    shift_y = np.random.default_rng(1).normal(0, 1, (2, rows))
    shift_x = np.random.default_rng(2).normal(0, 1, (2, rows))
    out = warp_to_rapid(image, canvas, dist, shift_rows_px=shift_y, shift_cols_px=shift_x)
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float64)
    for k in range(2):
        coords = [
            rr + dist.dy_px + shift_y[k][:, None] + canvas.margin_rows,
            cc + dist.dx_px + shift_x[k][:, None] + canvas.margin_cols,
        ]
        ref = ndimage.map_coordinates(image.astype(np.float64), coords, order=1)
        assert np.max(np.abs(out[k] - ref)) < 1e-4


def test_rapid_scan_is_shrunk_non_linearly_along_x(experiment: Experiment) -> None:
    dist = experiment.distortion
    rows, cols = dist.shape
    step = 1 + np.gradient(dist.dx_px, axis=1)  # undistorted px per rapid px
    assert np.all(step > 1.0)
    assert 0.03 < step.mean() - 1 < 0.10
    left, right = step[:, : cols // 10].mean(), step[:, -cols // 10 :].mean()
    assert left > right + 0.04  # strongest at the scan start (flyback hysteresis)
    spread_at_512 = (dist.dx_px.max() - dist.dx_px.min()) * 512 / cols
    assert 20 < spread_at_512 < 60  # tens of pixels at 512
    top, bottom = step[: rows // 10, : cols // 10].mean(), step[-rows // 10 :, : cols // 10].mean()
    assert 0 < abs(top - bottom) < 0.1  # weak y dependence
    assert np.max(np.abs(dist.dy_px)) < 1.0


def test_grating_pair_reveals_the_distortion_field(experiment: Experiment) -> None:
    truth = experiment.grating_truth
    dx = experiment.distortion.dx_px
    h, found, true = 12, [], []
    for r in (24, 64, 104):
        for c in (22, 43, 64, 85, 106):
            rapid = truth.rapid_clean[r - h : r + h, c - h : c + h].ravel()
            scores = [
                np.corrcoef(truth.clean[r - h : r + h, c - h + s : c + h + s].ravel(), rapid)[0, 1]
                for s in range(-9, 10)
            ]
            found.append(_peak(np.array(scores), int(np.argmax(scores))) - 9)
            true.append(dx[r, c])
    found, true = np.array(found), np.array(true)
    assert np.corrcoef(found, true)[0, 1] > 0.95
    offset = found - true  # the detector afterglow delays features by up to ~1 px
    assert -1.3 < offset.mean() < 0.1
    assert offset.std() < 0.35


# -- time and angles -----------------------------------------------------------------------------
def test_rows_have_their_own_angles(experiment: Experiment) -> None:
    cfg, rt = experiment.config, experiment.rapid_truth
    rows = cfg.size
    assert np.all(np.diff(rt.row_angles_deg, axis=1) > 0)
    sweep = rt.row_angles_deg[:, -1] - rt.row_angles_deg[:, 0]
    expected = cfg.nominal_tilt_rate_deg_s * cfg.frame_time_s * (rows - 1) / rows
    assert 0.75 * expected < np.median(sweep) < 1.3 * expected
    starts = experiment.rapid.timestamps_s
    np.testing.assert_allclose(starts, np.arange(cfg.n_frames) * cfg.frame_interval_s)
    np.testing.assert_allclose(rt.row_times_s, starts[:, None] + np.arange(rows) * cfg.line_time_s)
    np.testing.assert_allclose(rt.angles_deg, rt.curve.angle_at(starts + cfg.frame_time_s / 2))
    np.testing.assert_allclose(experiment.rapid.angles_deg, np.linspace(-70, 70, cfg.n_frames))
    deviation = np.abs(rt.angles_deg - experiment.rapid.angles_deg)
    assert 0.8 < deviation.max() < 2.0


def test_each_row_is_rendered_at_its_own_angle() -> None:
    px, z = 5.0, 140.0
    xs = np.linspace(-150, 150, 301)
    line = Dislocation(
        np.stack([xs, np.zeros_like(xs), np.full_like(xs, z)], 1),
        np.array([0.0, 0, 1]),
        1.0,
        1,
        -1,
        True,
    )
    specimen = Specimen(300.0, 320.0, (line,), (0.0, 0.0), 0.0)
    canvas = Canvas(64, 64, 4, 4)
    angles = 30.0 + 1.0 * (canvas.frame_rows() - 31.5)  # a very slow scan: 1 deg per row
    dark = project_lines(
        sample_lines(specimen, 1.0),
        canvas,
        pixel_size_nm=px,
        thickness_nm=300.0,
        row_angles_deg=angles,
        row_drift_px=np.zeros((canvas.shape[0], 2)),
        contrast=ContrastParams(image_side_nm=0.0),
    )
    profile = canvas.crop(dark).mean(axis=1)

    def row_at(angle_deg: float) -> float:
        return 31.5 - z * math.sin(math.radians(angle_deg)) / px

    r = 31.5
    for _ in range(50):  # the row whose own angle images the line there
        r = 0.5 * r + 0.5 * row_at(float(np.interp(r, canvas.frame_rows(), angles)))
    found = _peak(profile, r)
    assert abs(found - r) < 0.1
    assert abs(row_at(30.0) - r) > 3.0  # a single angle per frame would put it elsewhere


def test_time_lag_is_in_the_rapid_data(experiment: Experiment) -> None:
    cfg, rt = experiment.config, experiment.rapid_truth
    i = int(np.argmin(np.abs(rt.angles_deg)))
    canvas = Canvas(cfg.size, cfg.size, 10, 10)
    times = experiment.rapid.timestamps_s[i] + canvas.frame_rows() * cfg.line_time_s
    drift = rt.drift.at(times)

    def render(angle: float) -> np.ndarray:
        return canvas.crop(
            render_frame(
                experiment.specimen,
                experiment.points,
                experiment.bend,
                canvas,
                pixel_size_nm=cfg.pixel_size_nm,
                row_angles_deg=angle,
                row_drift_px=drift,
                contrast=cfg.contrast,
            )
        )

    first, last = render(rt.row_angles_deg[i, 0]), render(rt.row_angles_deg[i, -1])
    data = rt.clean_undistorted[i]
    top, bottom = slice(12, 40), slice(-40, -12)

    def err(a: np.ndarray, s: slice) -> float:
        return float(np.mean((a[s, 12:-12] - data[s, 12:-12]) ** 2))

    assert err(first, top) < 0.5 * err(last, top)
    assert err(last, bottom) < 0.5 * err(first, bottom)


# -- projection convention against the truth volume -----------------------------------------------
def _project(density: np.ndarray, theta_deg: float) -> np.ndarray:
    """Sum of the (z, y, x) density along the beam at tilt theta (DESIGN.md: v = y cos - z sin)."""
    nz, ny, nx = density.shape
    t = math.radians(theta_deg)
    nw = int(math.ceil(math.hypot(nz, ny)))
    v = np.arange(ny) - (ny - 1) / 2
    w = np.arange(nw) - (nw - 1) / 2
    vv, ww = np.meshgrid(v, w, indexing="ij")
    y = vv * math.cos(t) + ww * math.sin(t) + (ny - 1) / 2
    z = -vv * math.sin(t) + ww * math.cos(t) + (nz - 1) / 2
    out = np.empty((ny, nx))
    for ix in range(nx):
        out[:, ix] = ndimage.map_coordinates(density, [z, y, np.full_like(y, ix)], order=1).sum(
            axis=1
        )
    return out


def _best_match(signal: np.ndarray, projection: np.ndarray, m: int = 10) -> tuple[float, int, int]:
    best = (-1.0, 0, 0)
    a = signal[m:-m, m:-m].ravel()
    for dy in range(-4, 5):
        for dx in range(-4, 5):
            b = np.roll(projection, (dy, dx), axis=(0, 1))[m:-m, m:-m].ravel()
            cc = float(np.corrcoef(a, b)[0, 1])
            if cc > best[0]:
                best = (cc, dy, dx)
    return best


def test_slow_frames_are_projections_of_the_truth_under_the_design_convention(
    experiment: Experiment,
) -> None:
    st = experiment.slow_truth
    for target in (40.0, -40.0):
        i = int(np.argmin(np.abs(st.angles_deg - target)))
        clean = st.clean[i]
        dislocations = -np.log(clean / ndimage.grey_closing(clean, size=(7, 7)))
        right = _best_match(dislocations, _project(experiment.density, st.angles_deg[i]))
        wrong = _best_match(dislocations, _project(experiment.density, -st.angles_deg[i]))
        assert right[0] > 0.65
        assert wrong[0] < right[0] - 0.3
        assert abs(right[1] - st.drift_px[i, 0]) <= 1.0  # drift (dy, dx): content moves by +drift
        assert abs(right[2] - st.drift_px[i, 1]) <= 1.0


# -- specimen --------------------------------------------------------------------------------------
def test_dislocations_cross_the_slab_in_inclined_slip_planes(experiment: Experiment) -> None:
    cfg, spec = experiment.config, experiment.specimen
    half = cfg.thickness_nm / 2
    inside = [d for d in spec.dislocations if d.anchored_inside]
    assert cfg.n_dislocations[0] <= len(inside) <= cfg.n_dislocations[1]
    assert len(spec.dislocations) > len(inside)  # surroundings seen at high tilt
    for d in spec.dislocations:
        p = d.points_nm
        assert p[0, 2] == np.float64(-half) or abs(p[0, 2] + half) < 1e-9
        assert abs(p[-1, 2] - half) < 1e-9
        assert np.max(np.abs((p - p[0]) @ d.plane_normal)) < 1e-6  # stays in its slip plane
        assert 34.0 < math.degrees(math.acos(abs(d.plane_normal[2]))) <= 90.0
    groups: dict[int, list[Dislocation]] = {}
    for d in spec.dislocations:
        if d.pileup >= 0:
            groups.setdefault(d.pileup, []).append(d)
    assert any(len(g) >= 3 for g in groups.values())
    for g in groups.values():
        mids = np.array([d.points_nm[len(d.points_nm) // 2] for d in g])
        gaps = np.linalg.norm(np.diff(mids, axis=0), axis=1)
        assert np.all((gaps > 10) & (gaps < 250))


def test_truth_density_follows_the_truth_lines(experiment: Experiment) -> None:
    cfg, density = experiment.config, experiment.density
    assert density.shape == cfg.volume_shape
    assert 0.6 < density.max() < 1.3
    nz, ny, nx = density.shape
    px = cfg.pixel_size_nm
    pts = np.concatenate([d.points_nm for d in experiment.specimen.dislocations])
    idx = pts[:, [2, 1, 0]] / px + (np.array([nz, ny, nx]) - 1) / 2
    ok = np.all((idx > 3) & (idx < np.array([nz, ny, nx]) - 4), axis=1)
    on_lines = ndimage.map_coordinates(density, idx[ok].T, order=1)
    assert np.median(on_lines) > 0.5
    assert np.mean(density > 0.1) < 0.05
