"""The command line contract: exit status 2 with one line for user errors, JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rstem_core.cli import STEP_COMMANDS, TerminalProgress, main
from rstem_core.model import TiltSeries
from rstem_core.project import Project


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_info_json_of_an_empty_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Project.create(tmp_path / "p.h5").close()
    assert main(["info", str(tmp_path / "p.h5"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["schema_version"] == 1 and info["roles"] == {} and info["truth"] is False
    assert info["steps"] == {
        "calibrate": "not run", "curate": "not run", "train": "not run", "denoise": "not run",
        "refine": "not run", "reconstruct": "not run", "evaluate": "not run",
    }


def test_info_lists_series_datasets_and_angles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = TiltSeries(np.zeros((5, 8, 12)), np.linspace(-70, 70, 5), 4.56, timestamps_s=np.arange(5) * 0.07)
    with Project.create(tmp_path / "p.h5") as proj, proj.edit() as w:
        w.write_series("raw/rapid", series)
        w.write_series("raw/training/area_000", TiltSeries(np.zeros((3, 8, 8)), [20.0] * 3, 4.56))
    assert main(["info", str(tmp_path / "p.h5"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    rapid = info["roles"]["rapid"]
    assert (rapid["frames"], rapid["rows"], rapid["cols"]) == (5, 8, 12)
    assert rapid["angles_deg"] == [-70.0, -35.0, 0.0, 35.0, 70.0]
    assert rapid["duration_s"] == pytest.approx(0.28)
    assert info["roles"]["training"]["areas"] == 1 and info["roles"]["training"]["stage_tilts_deg"] == [20.0]
    paths = {d["path"]: d for d in info["datasets"]}
    assert paths["/raw/rapid/frames"]["shape"] == [5, 8, 12] and paths["/raw/rapid/frames"]["dtype"] == "float32"
    assert main(["info", str(tmp_path / "p.h5")]) == 0
    text = capsys.readouterr().out
    assert "rapid" in text and "5 frames of 8x12 px" in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["info"], "the following arguments are required: project"),
        (["info", "{tmp}/missing.h5"], "no such project file"),
        (["import", "{tmp}/p.h5", "sideways", "x.mrc"], "unknown role 'sideways'"),
        (["import", "{tmp}/p.h5", "rapid", "{tmp}/missing.mrc"], "missing.mrc"),
        (["export", "{tmp}/p.h5", "{tmp}/v.mrc"], "has no volume yet: run `rstem reconstruct` first"),
        (["export", "{tmp}/p.h5", "{tmp}/v.mrc", "--what", "bogus"], "invalid choice: 'bogus'"),
        (["info", "{tmp}/p.h5", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "{tmp}/d.h5", "--size", "4"], "--size must be at least 32"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    Project.create(tmp_path / "p.h5").close()
    status = main([a.format(tmp=tmp_path) for a in argv])
    assert status == 2
    assert expected in _one_error_line(capsys)


@pytest.mark.parametrize("step", STEP_COMMANDS)
def test_steps_on_an_empty_project_say_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], step: str
) -> None:
    Project.create(tmp_path / "p.h5").close()
    assert main([step, str(tmp_path / "p.h5")]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("rstem: error: ") and ("no " in line or "has no" in line), line


def test_unreadable_project_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.h5").write_bytes(b"\x00" * 100)
    assert main(["info", str(tmp_path / "junk.h5"), "--json"]) == 2
    assert "junk.h5" in _one_error_line(capsys)
    assert capsys.readouterr().out == ""


def test_console_script_exit_status(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rstem_core.cli", "info", str(tmp_path / "none.h5")],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no such project file" in done.stderr


class _FakeTTY:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_progress_bar_draws_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    tty = _FakeTTY()
    bar = TerminalProgress(tty, width=10)
    bar(0.5, "halfway")
    bar(1.0, "done")
    bar.close()
    assert "[#####-----]  50.0%" in tty.text and "[##########] 100.0%" in tty.text and "done" in tty.text
    assert tty.text.endswith("\n")
