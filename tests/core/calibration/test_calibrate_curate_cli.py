"""`rstem calibrate` and `rstem curate`: outputs written, one-line user errors with status 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rstem_core.cli import main
from rstem_core.project import Project


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture()
def project(small_demo_path: Path, tmp_path: Path) -> Path:
    path = tmp_path / "p.h5"
    shutil.copyfile(small_demo_path, path)
    return path


def test_calibrate_then_curate(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", str(project), "--save-map", str(tmp_path / "map.h5")]) == 0
    out = capsys.readouterr().out
    assert "calibration/distortion_map" in out and "processed/corrected: 7 frames of 128x128 px" in out
    assert (tmp_path / "map.h5").is_file()
    assert main(["curate", str(project), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["decisions"]) == 10 and len(report["patches"]) == 5
    with Project.open(project) as proj:
        assert "calibration/distortion_map/dx_px" in proj and "processed/corrected" in proj
        assert proj.read_json("training/accepted") == [d["area"] for d in report["decisions"] if d["accepted"]]
    assert main(["calibrate", str(project), "--load-map", str(tmp_path / "map.h5"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["corrected"] is True
    assert main(["curate", str(project), "--reject", "0"]) == 0
    assert "area_000    0.0 deg  reject  rejected by the user" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["calibrate", "{p}", "--window", "4"], "window_px must be at least 8"),
        (["calibrate", "{p}", "--order", "2"], "invalid choice: 2"),
        (["calibrate", "{p}", "--load-map", "{tmp}/missing.h5"], "no such distortion map file"),
        (["calibrate", "{tmp}/empty.h5"], "has no grating-slow image"),
        (["curate", "{p}", "--threshold", "2"], "threshold must be a fraction"),
        (["curate", "{p}", "--accept", "999"], "no training area '999'"),
        (["curate", "{tmp}/empty.h5"], "has no training areas"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    Project.create(tmp_path / "empty.h5").close()
    assert main([a.format(p=project, tmp=tmp_path) for a in argv]) == 2
    assert expected in _one_error_line(capsys)
