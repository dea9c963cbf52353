"""The project file's guarantees: atomic saves, one writer, no pickles, schema checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from rstem_core.errors import ProjectError, ProjectLockedError, SchemaVersionError
from rstem_core.model import TiltSeries, Volume
from rstem_core.project import SCHEMA_VERSION, TOP_LEVEL_GROUPS, Project

REPO = Path(__file__).resolve().parents[2]


def _series(n: int = 5, size: int = 16) -> TiltSeries:
    rng = np.random.default_rng(1)
    return TiltSeries(
        frames=rng.random((n, size, size + 3)),
        angles_deg=np.linspace(-60, 60, n),
        pixel_size_nm=4.56,
        measured_angles_deg=np.linspace(-61, 61, n),
        timestamps_s=np.arange(n) * 0.07,
        line_time_s=30e-3 / size,
        metadata={"detector": "BF", "dwell_time_s": 1.14e-7},
    )


def test_new_project_has_schema_and_all_groups(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p.h5") as proj:
        attrs = proj.attrs("/")
        assert attrs["schema_version"] == SCHEMA_VERSION
        assert attrs["software"].startswith("rstem ")
        assert attrs["created"]
        for name in TOP_LEVEL_GROUPS:
            assert name in proj


def test_series_and_volume_round_trip(tmp_path: Path) -> None:
    series = _series()
    vol = Volume(np.random.default_rng(2).random((4, 5, 6)), 4.56, {"algorithm": "sirt"})
    with Project.create(tmp_path / "p.h5") as proj:
        with proj.edit() as w:
            w.write_series("raw/rapid", series)
            w.write_volume("reconstruction/volume", vol)
    with Project.open(tmp_path / "p.h5") as proj:
        back = proj.read_series("raw/rapid")
        vback = proj.read_volume("reconstruction/volume")
    np.testing.assert_array_equal(back.frames, series.frames)
    np.testing.assert_array_equal(back.angles_deg, series.angles_deg)
    np.testing.assert_array_equal(back.measured_angles_deg, series.measured_angles_deg)
    np.testing.assert_array_equal(back.timestamps_s, series.timestamps_s)
    assert back.line_time_s == pytest.approx(series.line_time_s)
    assert back.pixel_size_nm == 4.56
    assert back.metadata == series.metadata
    np.testing.assert_array_equal(vback.data, vol.data)
    assert vback.voxel_size_nm == 4.56 and vback.metadata == {"algorithm": "sirt"}


def test_integer_storage_round_trips_counts(tmp_path: Path) -> None:
    counts = np.random.default_rng(3).poisson(5.0, (3, 8, 8)).astype(np.float32)
    series = TiltSeries(counts, [0, 0, 0], 4.56)
    with Project.create(tmp_path / "p.h5") as proj:
        with proj.edit() as w:
            w.write_series("raw/training/area_000", series, store_dtype="uint16", compression="lzf")
        assert proj.h5["raw/training/area_000/frames"].dtype == np.uint16
        back = proj.read_series("raw/training/area_000")
    assert back.frames.dtype == np.float32
    np.testing.assert_array_equal(back.frames, counts)


def test_failed_edit_leaves_project_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    with Project.create(path) as proj:
        with proj.edit() as w:
            w.write_array("processed/x", np.arange(3))
        before = path.read_bytes()
        with pytest.raises(RuntimeError, match="boom"), proj.edit() as w:
            w.write_array("processed/x", np.arange(10))
            w.write_array("processed/y", np.arange(10))
            raise RuntimeError("boom")
        np.testing.assert_array_equal(proj.read_array("processed/x"), np.arange(3))
        assert "processed/y" not in proj
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_only_arrays_strings_and_json_are_stored(tmp_path: Path) -> None:
    with Project.create(tmp_path / "p.h5") as proj:
        with proj.edit() as w:
            w.write_series("raw/rapid", _series())
            w.write_json("truth/lines", [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]])
            w.set_params("calibration", {"window_px": 64, "names": ["a", "b"]})
            w.set_attrs("truth", {"thickness_nm": 300.0, "nested": {"a": [1, "x"]}})
            w.append_log({"step": "import", "params": {"role": "rapid"}})
            with pytest.raises(TypeError, match="only numeric arrays"):
                w.write_array("raw/bad", np.array([object()], dtype=object))
        assert proj.read_json("truth/lines") == [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]]
        assert proj.params("calibration") == {"window_px": 64, "names": ["a", "b"]}

    kinds: list[str] = []

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            kinds.append(obj.dtype.kind if h5py.check_string_dtype(obj.dtype) is None else "str")
        for value in obj.attrs.values():
            assert isinstance(value, (str, bytes, int, float, np.number, np.ndarray)), (name, value)
            if isinstance(value, np.ndarray):
                assert value.dtype.kind in "biuf", (name, value.dtype)

    with h5py.File(tmp_path / "p.h5", "r") as h5:
        h5.visititems(visit)
    assert kinds and set(kinds) <= {"f", "i", "u", "str"}


def test_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    Project.create(path).close()
    with Project.open(path, "a"):
        script = textwrap.dedent(
            f"""
            import sys
            from rstem_core.project import Project
            from rstem_core.errors import ProjectLockedError
            try:
                Project.open({str(path)!r}, "a")
            except ProjectLockedError as exc:
                print(exc)
                sys.exit(3)
            """
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 3, done.stderr
        assert "open for writing by pid" in done.stdout
        assert str(os.getpid()) in done.stdout
        # reading stays possible while someone writes
        with Project.open(path, "r") as reader:
            assert reader.schema_version == SCHEMA_VERSION
    # the lock goes with the writer
    Project.open(path, "a").close()


def test_lock_within_one_process(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    with Project.create(path), pytest.raises(ProjectLockedError):
        Project.open(path, "a")


def test_read_only_project_refuses_edits(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    Project.create(path).close()
    with Project.open(path) as proj, pytest.raises(ProjectError, match="read-only"), proj.edit():
        pass


def test_newer_schema_is_refused_with_the_version_needed(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    Project.create(path).close()
    with h5py.File(path, "r+") as h5:
        h5.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError) as info:
        Project.open(path)
    msg = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in msg and f"up to {SCHEMA_VERSION}" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file at all\n" * 10, None])
def test_unreadable_files_give_one_line_naming_the_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "broken.h5"
    if content is None:  # a real project cut short, as by a full disk or an interrupted copy
        with Project.create(tmp_path / "whole.h5") as proj, proj.edit() as w:
            w.write_array("raw/x", np.zeros((64, 64, 64)))
        data = (tmp_path / "whole.h5").read_bytes()
        content = data[: len(data) // 3]
    path.write_bytes(content)
    with pytest.raises(ProjectError) as info:
        Project.open(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg


def test_not_an_rstem_project(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(ProjectError, match="not an rstem project"):
        Project.open(path)


def test_missing_project(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no such project file"):
        Project.open(tmp_path / "nope.h5")


def test_deleting_large_data_shrinks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    with Project.create(path) as proj:
        with proj.edit() as w:
            w.write_array("processed/big", np.zeros((64, 128, 128), np.float32))
        big = path.stat().st_size
        with proj.edit() as w:
            w.delete("processed/big")
    assert big > 4_000_000
    assert path.stat().st_size < 200_000


def test_save_as_copies_and_moves_the_lock(tmp_path: Path) -> None:
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    proj = Project.create(a)
    with proj.edit() as w:
        w.write_array("processed/x", np.arange(4))
    proj = proj.save_as(b)
    with proj:
        np.testing.assert_array_equal(proj.read_array("processed/x"), np.arange(4))
        Project.open(a, "a").close()  # the old file is free again
        with pytest.raises(ProjectLockedError):
            Project.open(b, "a")


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from rstem_core.project import Project

    proj = Project.open(sys.argv[1], "a")
    n = int(sys.argv[2])
    gen = int(proj.attrs("raw")["generation"])
    print("ready", flush=True)
    while True:
        gen += 1
        with proj.edit() as w:
            w.write_array("raw/payload", np.full(n, gen, dtype=np.int32))
            w.write_array("processed/check", np.full(7, gen, dtype=np.int32))
            w.set_attrs("raw", {"generation": gen})
        print(gen, flush=True)
    """
)


@pytest.mark.slow
def test_kill_during_save_leaves_old_or_new_content(tmp_path: Path) -> None:
    """SIGKILL a process that saves continuously, 20 times: the project always opens whole."""
    path = tmp_path / "p.h5"
    n = 2_000_000  # 8 MB per save, so kills land inside saves as well as between them
    with Project.create(path) as proj, proj.edit() as w:
        w.write_array("raw/payload", np.zeros(n, np.int32))
        w.write_array("processed/check", np.zeros(7, np.int32))
        w.set_attrs("raw", {"generation": 0})
    rng = np.random.default_rng(0)
    generations_seen = []
    killed_mid_save = 0
    for trial in range(20):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(n)],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.02, 0.4)))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        done = [int(line) for line in out.split()] or [None]
        killed_mid_save += any(".tmp-" in p.name for p in tmp_path.iterdir())
        with Project.open(path, "a") as proj:  # the kernel released the dead writer's lock
            gen = int(proj.attrs("raw")["generation"])
            payload = proj.read_array("raw/payload")
            check = proj.read_array("processed/check")
        assert np.all(payload == gen) and np.all(check == gen), f"trial {trial}: mixed content"
        last = done[-1] if done[-1] is not None else generations_seen[-1] if generations_seen else 0
        assert gen in (last, last + 1), f"trial {trial}: generation {gen}, last finished {last}"
        generations_seen.append(gen)
        leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
        assert leftovers == [], f"trial {trial}: temporaries left after reopening: {leftovers}"
    assert generations_seen[-1] > 20  # the writer really saved, many times
    assert killed_mid_save >= 3, f"only {killed_mid_save} of 20 kills landed inside a save"
