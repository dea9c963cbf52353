"""The evaluation step: the paper's positional errors with the truth as an oracle, and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rstem_core.analysis.evaluate import EvaluationParams, _centres, run_evaluation, truth_centres
from rstem_core.analysis.positions import compare_centres
from rstem_core.analysis.report import write_report
from rstem_core.cli import main
from rstem_core.errors import RstemError
from rstem_core.model import Volume
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig, write_demo_project


@pytest.fixture(scope="module")
def truth_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic project whose 'reconstruction' is the true density itself."""
    path = tmp_path_factory.mktemp("evaluate") / "demo.h5"
    config = SimulationConfig.scaled(size=96, frames=7, seed=4, areas_per_tilt=1, frames_per_area=2)
    write_demo_project(path, config)
    with Project.open(path, "a") as proj:
        density = proj.read_array("truth/density")
        voxel = float(proj.attrs("truth/density")["voxel_size_nm"])
        with proj.edit() as w:
            w.write_volume("reconstruction/volume", Volume(density, voxel, {"thickness_nm": 300.0}))
    return path


@pytest.fixture()
def demo(truth_demo: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.h5"
    path.write_bytes(truth_demo.read_bytes())
    return path


def test_true_density_against_true_lines_is_near_perfect(truth_demo: Path) -> None:
    with Project.open(truth_demo) as proj:
        vol = proj.read_volume("reconstruction/volume")
        found = _centres(vol.data, vol.voxel_size_nm, EvaluationParams())
        ref = truth_centres(proj, vol.data.shape, vol.voxel_size_nm)
    out = compare_centres(found, ref, voxel_nm=vol.voxel_size_nm, max_distance_nm=30.0)
    err = out["position_error_nm"]
    assert max(err["x"], err["y"], err["z"]) < 0.25 * vol.voxel_size_nm, err
    assert out["completeness"] > 0.6
    assert out["pairs"]["x"] > 50 and out["pairs"]["y"] > 20
    assert all(abs(v) < 0.1 * vol.voxel_size_nm for v in out["offset_nm"].values())


def test_a_shifted_volume_is_registered_and_the_shift_reported(truth_demo: Path) -> None:
    with Project.open(truth_demo) as proj:
        vol = proj.read_volume("reconstruction/volume")
        ref = truth_centres(proj, vol.data.shape, vol.voxel_size_nm)
    v = vol.voxel_size_nm
    moved = np.roll(vol.data, (1, 2), axis=(0, 1))  # +1 voxel in z, +2 in y
    found = _centres(moved, v, EvaluationParams())
    out = compare_centres(found, ref, voxel_nm=v, max_distance_nm=30.0)
    assert out["offset_nm"]["y"] == pytest.approx(2 * v, abs=0.2 * v)
    assert out["offset_nm"]["z"] == pytest.approx(v, abs=0.2 * v)
    assert out["position_error_nm"]["z"] < 0.3 * v
    raw = compare_centres(found, ref, voxel_nm=v, max_distance_nm=30.0, register=False)
    assert raw["position_error_nm"]["z"] > 0.7 * v  # without registration the shift is an error


def test_evaluate_stores_the_report_and_prints_json(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(demo), "--reference", "truth", "--json", "--no-denoise-scores"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reference"] == "truth"
    assert set(out["position_error_nm"]) == {"x", "y", "z"} and out["completeness"] > 0.6
    assert "demo" in out["timings_s"] and "evaluate" in out["timings_s"]
    assert out["threshold_used"] == pytest.approx(0.2)  # the true density: no noise to lift it
    with Project.open(demo) as proj:
        stored = proj.read_json("evaluation/report")
        assert stored["completeness"] == out["completeness"]
        assert proj.log_entries()[-1]["step"] == "evaluate"
        assert json.loads(proj.attrs("evaluation/report")["params"])["line_averaged_centroids"] is True
    assert main(["evaluate", str(demo), "--reference", "truth", "--json", "--no-denoise-scores",
                 "--centroids-on-volume", "--split-pileups", "0"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["completeness"] > 0.6
    with Project.open(demo) as proj:
        stored_params = json.loads(proj.attrs("evaluation/report")["params"])
        assert stored_params["line_averaged_centroids"] is False and stored_params["split_pileups"] == 0


def test_evaluate_against_a_missing_slow_series_is_one_clear_line(demo: Path) -> None:
    with Project.open(demo, "a") as proj:
        with proj.edit() as w:
            w.delete("raw/slow")
        with pytest.raises(RstemError, match="no slow series"):
            run_evaluation(proj, EvaluationParams(reference="slow"))
        assert "evaluation/report" not in proj


def test_report_page_has_its_figures(demo: Path) -> None:
    with Project.open(demo, "a") as proj:
        run_evaluation(proj, EvaluationParams(denoise_scores=False))
        index = write_report(proj)
    assert index.parent == demo.with_name("demo_report")
    page = index.read_text()
    for name in ("angles.png", "volume.png", "centres.png", "dz.png"):
        assert name in page
        png = index.parent / name
        assert png.stat().st_size > 5_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Steps" in page and "Evaluation" in page and "completeness" in page


def test_no_centres_are_counted_in_the_sections_next_to_the_faces() -> None:
    # a dislocation along x crosses every yz section, one along y every xz section; the sections
    # within border_px of the x and y faces hold no true crossings and must hold no found ones
    nz, ny, nx = 20, 30, 24
    z, y, x = np.mgrid[:nz, :ny, :nx].astype(np.float64)
    vol = np.exp(-((z - 9.5) ** 2 + (y - 14.0) ** 2) / 4.0) + np.exp(-((z - 9.5) ** 2 + (x - 11.0) ** 2) / 4.0)
    voxel = 4.0
    # two lines fill a tenth of this small volume: its 90th percentile is line, not noise, so
    # the noise floor (which assumes sparse lines) is turned off here; so is the pile-up split,
    # which needs a typical spot among many and here would split the long spots that the line
    # along y leaves in the yz sections beside its own
    params = EvaluationParams(border_px=3, noise_floor=0.0, split_pileups=0.0)
    found = _centres(vol.astype(np.float32), voxel, params)
    limit = {"x": ((nx - 1) / 2 - 3) * voxel, "y": ((ny - 1) / 2 - 3) * voxel}
    assert len(found["x"]) == nx - 6 and len(found["y"]) == ny - 6
    for pts in found.values():
        assert np.all(np.abs(pts[:, 0]) <= limit["x"] + 1e-6) and np.all(np.abs(pts[:, 1]) <= limit["y"] + 1e-6)
