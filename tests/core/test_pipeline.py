"""The step pipeline: states from the project's generations, staleness, failures, `rstem run`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rstem_core import pipeline
from rstem_core.cli import main
from rstem_core.errors import RstemError
from rstem_core.project import Project
from rstem_core.recon.step import ReconstructionParams
from rstem_core.simulate import SimulationConfig, write_demo_project

QUICK_RECON = ReconstructionParams(iterations=3, thickness_nm=300.0, binning=2)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipeline") / "demo.h5"
    config = SimulationConfig.scaled(size=64, frames=7, seed=2, areas_per_tilt=1, frames_per_area=2)
    return write_demo_project(path, config)


@pytest.fixture()
def demo(small_demo: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.h5"
    path.write_bytes(small_demo.read_bytes())
    return path


def test_every_transaction_stamps_what_it_changed(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p.h5") as proj:
        with proj.edit() as w:
            w.write_array("processed/a", np.zeros(3))
            w.write_array("processed/b", np.ones(3))
        first = proj.generation("processed/a")
        with proj.edit() as w:
            w.write_array("processed/b", np.arange(3))
        assert proj.generation("processed/a") == first
        assert proj.generation("processed/b") == first + 1
        assert proj.generation("processed") == first + 1  # a parent carries its newest child
        assert proj.generation("processed/missing") == 0


def test_states_follow_runs_reimports_and_parameter_changes(demo: Path) -> None:
    with Project.open(demo, "a") as proj:
        states = pipeline.step_states(proj)
        assert all(s.state == "not run" for s in states.values())
        pipeline.run_step(proj, "reconstruct", QUICK_RECON)
        assert pipeline.step_states(proj)["reconstruct"].state == "done"
        # re-importing the rapid series makes the volume stale, and says why
        series = proj.read_series("raw/rapid")
        with proj.edit() as w:
            w.write_series("raw/rapid", series)
        st = pipeline.step_states(proj)["reconstruct"]
        assert st.state == "stale" and "raw/rapid" in st.reason
        pipeline.run_step(proj, "reconstruct", QUICK_RECON)
        assert pipeline.step_states(proj)["reconstruct"].state == "done"
        # a changed parameter makes it stale until it runs with it
        pipeline.save_params(proj, "reconstruct", ReconstructionParams(iterations=4, thickness_nm=300.0, binning=2))
        st = pipeline.step_states(proj)["reconstruct"]
        assert st.state == "stale" and "parameters" in st.reason
        assert pipeline.params_for(proj, "reconstruct").iterations == 4
        pipeline.run_step(proj, "reconstruct")
        assert pipeline.step_states(proj)["reconstruct"].state == "done"
        assert proj.params("reconstruction/volume")["iterations"] == 4


def test_a_stale_upstream_step_makes_downstream_stale(demo: Path) -> None:
    with Project.open(demo, "a") as proj:
        with proj.edit() as w:  # a refinement result that the volume was made from
            w.write_array("processed/alignment/angles_deg", proj.read_array("raw/rapid/angles_deg"))
            w.set_params("processed/alignment", {"method": "coarse"})
        pipeline.run_step(proj, "reconstruct", QUICK_RECON)
        assert pipeline.step_states(proj)["reconstruct"].state == "done"
        series = proj.read_series("raw/rapid")
        with proj.edit() as w:
            w.write_series("raw/rapid", series)
        states = pipeline.step_states(proj)
        assert states["refine"].state == "stale"
        assert states["reconstruct"].state == "stale"


def test_a_failed_step_is_recorded_and_changes_no_data(demo: Path) -> None:
    with Project.open(demo, "a") as proj:
        before = proj.read_array("raw/rapid/frames")
        with pytest.raises(RstemError, match="no aligned series"):
            pipeline.run_step(proj, "reconstruct", ReconstructionParams(source="aligned"))
        st = pipeline.step_states(proj)["reconstruct"]
        assert st.state == "failed" and "aligned" in st.reason
        assert "reconstruction/volume" not in proj
        np.testing.assert_array_equal(proj.read_array("raw/rapid/frames"), before)
        entry = proj.log_entries()[-1]
        assert entry["step"] == "reconstruct" and entry["status"] == "failed" and entry["params"]["source"] == "aligned"


def test_run_skips_steps_without_inputs_and_says_why(demo: Path) -> None:
    with Project.open(demo, "a") as proj:
        with proj.edit() as w:
            w.delete("raw/grating-rapid")
            w.delete("raw/training")
        pipeline.save_params(proj, "reconstruct", QUICK_RECON)
        records = pipeline.run_pipeline(proj, until="calibrate")
        assert [(r.step, r.action) for r in records] == [("calibrate", "skipped")]
        assert "no grating pair" in records[0].reason
        with pytest.raises(RstemError, match="comes after"):
            pipeline.run_pipeline(proj, start="reconstruct", until="calibrate")
        records = pipeline.run_pipeline(proj, start="reconstruct", until="reconstruct")
        assert [(r.step, r.action) for r in records] == [("reconstruct", "ran")]
        again = pipeline.run_pipeline(proj, start="reconstruct", until="reconstruct")
        assert again[0].action == "up to date"


def test_params_round_trip_with_nested_and_tuple_fields() -> None:
    from rstem_core.binarize import BinarizeParams
    from rstem_core.curate import CurationParams

    params = ReconstructionParams(preprocessing=BinarizeParams(mode="normalize"), iterations=7)
    back = pipeline.params_from_dict(ReconstructionParams, json.loads(json.dumps(pipeline.params_to_dict(params))))
    assert back == params
    cur = CurationParams(accept=("area_001",), threshold=0.2)
    assert pipeline.params_from_dict(CurationParams, pipeline.params_to_dict(cur)) == cur


def test_cli_records_a_failed_step(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconstruct", str(demo), "--source", "aligned"]) == 2
    assert "no aligned series" in capsys.readouterr().err
    assert main(["info", str(demo), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["steps"]["reconstruct"] == "failed"
    assert "aligned" in info["step_reasons"]["reconstruct"]


def test_rstem_run_from_reconstruct_writes_volume_evaluation_and_report(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rstem_core.analysis.evaluate import EvaluationParams

    with Project.open(demo, "a") as proj:
        pipeline.save_params(proj, "reconstruct", QUICK_RECON)
        pipeline.save_params(proj, "evaluate", EvaluationParams(denoise_scores=False))
    assert main(["run", str(demo), "--from", "reconstruct", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(s["step"], s["action"]) for s in out["steps"]] == [("reconstruct", "ran"), ("evaluate", "ran")]
    index = Path(out["report"])
    assert index.is_file() and (index.parent / "volume.png").is_file()
    with Project.open(demo) as proj:
        report = proj.read_json("evaluation/report")
        states = pipeline.step_states(proj)
    assert report["reference"] == "truth" and "position_error_nm" in report
    assert states["reconstruct"].state == "done" and states["evaluate"].state == "done"
    assert report["timings_s"]["reconstruct"] > 0


def test_a_step_that_completes_its_parameters_is_done_after_its_run(tmp_path: Path) -> None:
    from rstem_core.denoise.training import TrainParams

    config = SimulationConfig.scaled(size=64, frames=7, seed=2, areas_per_tilt=4, frames_per_area=2)
    demo = write_demo_project(tmp_path / "demo.h5", config)
    tiny = TrainParams(patch_px=32, depth=2, base_channels=4, unshuffle=1, batch_size=8, patches_per_frame=2, epochs=1)
    with Project.open(demo, "a") as proj:
        pipeline.run_step(proj, "curate")
        pipeline.save_params(proj, "train", tiny)  # as the application saves a page's form
        pipeline.run_step(proj, "train")
        # training keeps the held-out test areas out and records them with its parameters
        assert proj.params("models/denoiser")["exclude_areas"]
        assert pipeline.step_states(proj)["train"].state == "done"
        assert pipeline.params_for(proj, "train").exclude_areas == tuple(proj.params("models/denoiser")["exclude_areas"])


def test_a_project_with_only_a_rapid_series_still_gives_a_volume_and_says_what_it_skipped(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only = tmp_path / "only.h5"
    with Project.open(demo) as proj:
        rapid = proj.read_series("raw/rapid")
    with Project.create(only) as proj:
        with proj.edit() as w:
            w.write_series("raw/rapid", rapid)
        pipeline.save_params(proj, "reconstruct", QUICK_RECON)
    assert main(["run", str(only)]) == 0
    out = capsys.readouterr().out
    for step, why in (("calibrate", "no grating pair"), ("curate", "no training areas"),
                      ("train", "starter denoiser"), ("evaluate", "")):
        line = next(s for s in out.splitlines() if s.startswith(step))
        assert ("skipped" in line and why in line) or step == "evaluate"
    with Project.open(only) as proj:
        assert proj.read_volume("reconstruction/volume").data.shape[1:] == (32, 32)
        assert proj.read_series("processed/denoised").metadata["denoise_model"] == "starter"
        assert "processed/alignment" in proj
    page = (tmp_path / "only_report" / "index.html").read_text()
    assert "skipped: no grating pair imported" in page and "skipped: no training areas imported" in page
