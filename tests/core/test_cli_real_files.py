"""`rstem import` of every real microscope file, `rstem info --json`, and exports read back."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile
import zarr

from rstem_core.cli import main


def _import(capsys: pytest.CaptureFixture[str], *argv: object) -> dict:
    args = [str(a) for a in argv]
    status = main(["import", *args])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert main(["info", args[0], "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_haadf_series(tmp_path: Path, data_file, capsys) -> None:
    info = _import(capsys, tmp_path / "p.h5", "rapid", data_file("etspy/HAADF.mrc"))
    rapid = info["roles"]["rapid"]
    assert (rapid["frames"], rapid["rows"], rapid["cols"]) == (77, 256, 256)
    assert rapid["angles_deg"] == [float(a) for a in range(-76, 77, 2)]
    assert rapid["pixel_size_nm"] == pytest.approx(3.36)


def test_serialem_multitilt(tmp_path: Path, data_file, capsys) -> None:
    info = _import(capsys, tmp_path / "p.h5", "slow", data_file("etspy/serialem_multitilt/test_000.mrc"))
    slow = info["roles"]["slow"]
    assert (slow["frames"], slow["rows"], slow["cols"]) == (2, 1024, 1024)
    assert slow["pixel_size_nm"] == pytest.approx(0.788)
    assert slow["angles_deg"] == pytest.approx([-0.000488, -0.000488], abs=1e-4)


def test_dm3_series_from_three_files(tmp_path: Path, data_file, capsys) -> None:
    files = [data_file(f"etspy/dm_series/BF_00{i}.dm3") for i in (1, 2, 3)]
    info = _import(capsys, tmp_path / "p.h5", "rapid", *files)
    rapid = info["roles"]["rapid"]
    assert (rapid["frames"], rapid["rows"], rapid["cols"]) == (3, 128, 128)
    assert rapid["angles_deg"] == pytest.approx([-72.003, -69.004, -66.004], abs=1e-3)
    assert rapid["pixel_size_nm"] == pytest.approx(19.1087, rel=1e-4)


def test_dm3_stack_with_an_angle_file(tmp_path: Path, data_file, capsys) -> None:
    (tmp_path / "a.rawtlt").write_text("-10\n0\n10\n")
    info = _import(capsys, tmp_path / "p.h5", "slow", data_file("rosettasciio/test_stackbuilder_imagestack.dm3"),
                   "--angles", tmp_path / "a.rawtlt")
    slow = info["roles"]["slow"]
    assert (slow["frames"], slow["rows"], slow["cols"], slow["angles_deg"]) == (3, 2, 16, [-10.0, 0.0, 10.0])


def test_grating_pair_and_training_area(tmp_path: Path, data_file, capsys) -> None:
    p = tmp_path / "p.h5"
    _import(capsys, p, "grating-slow", data_file("rosettasciio/test-1.dm4"), "--pixel-size", "2.5")
    _import(capsys, p, "grating-rapid", data_file("rosettasciio/fei_example_dpc_titles.emd"), "--channel", "iDPC")
    (tmp_path / "tilts.json").write_text(json.dumps({"fei_example_tem_stack.emd": 20.0}))
    info = _import(capsys, p, "training", data_file("rosettasciio/fei_example_tem_stack.emd"))
    info = _import(capsys, p, "training", data_file("rosettasciio/fei_example_tem_stack.emd"),
                   "--tilts", tmp_path / "tilts.json")
    roles = info["roles"]
    assert (roles["grating-slow"]["frames"], roles["grating-slow"]["rows"], roles["grating-slow"]["cols"]) == (1, 2, 2)
    assert roles["grating-slow"]["pixel_size_nm"] == 2.5
    assert (roles["grating-rapid"]["rows"], roles["grating-rapid"]["cols"]) == (2, 2)
    training = roles["training"]
    assert training["areas"] == 2 and training["frames"] == 4
    # the first area's tilt comes from the Velox stage (radians in the file), the second from --tilts
    assert training["stage_tilts_deg"] == [-12.59, 20.0]


def test_spectrum_images_are_refused_in_one_line(tmp_path: Path, data_file, capsys) -> None:
    with zipfile.ZipFile(data_file("rosettasciio/velox_emd_version11.zip")) as z:
        z.extractall(tmp_path / "v11")
    emd = sorted((tmp_path / "v11").rglob("*.emd"))[0]
    assert main(["import", str(tmp_path / "p.h5"), "rapid", str(emd)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not an image series" in err and "\n" not in err


def test_import_twice_needs_replace(tmp_path: Path, data_file, capsys) -> None:
    p = tmp_path / "p.h5"
    _import(capsys, p, "rapid", data_file("etspy/HAADF.mrc"))
    assert main(["import", str(p), "rapid", str(data_file("etspy/HAADF.mrc"))]) == 2
    assert "add --replace" in capsys.readouterr().err
    assert main(["import", str(p), "rapid", str(data_file("etspy/HAADF.mrc")), "--replace"]) == 0


def test_acquisition_file_sets_times(tmp_path: Path, data_file, capsys) -> None:
    acq = {"frame_interval_s": 0.07, "frame_time_s": 0.03, "pixel_size_nm": 4.56, "fast_scan_axis": "x"}
    (tmp_path / "acq.json").write_text(json.dumps(acq))
    info = _import(capsys, tmp_path / "p.h5", "rapid", data_file("etspy/HAADF.mrc"),
                   "--acquisition", tmp_path / "acq.json")
    rapid = info["roles"]["rapid"]
    assert rapid["pixel_size_nm"] == 4.56
    assert rapid["duration_s"] == pytest.approx(76 * 0.07)
    assert rapid["line_time_s"] == pytest.approx(0.03 / 256)
    (tmp_path / "bad.json").write_text(json.dumps({"frame_rate": 3}))
    assert main(["import", str(tmp_path / "q.h5"), "rapid", str(data_file("etspy/HAADF.mrc")),
                 "--acquisition", str(tmp_path / "bad.json")]) == 2
    assert "unknown key(s) frame_rate" in capsys.readouterr().err


def test_exports_read_back_with_other_libraries(tmp_path: Path, data_file, capsys) -> None:
    p = tmp_path / "p.h5"
    _import(capsys, p, "rapid", data_file("etspy/HAADF.mrc"))
    for suffix in ("mrc", "tif", "zarr"):
        out = tmp_path / f"raw.{suffix}"
        assert main(["export", str(p), str(out), "--what", "raw"]) == 0, capsys.readouterr().err
    with mrcfile.open(tmp_path / "raw.mrc") as m:
        assert m.data.shape == (77, 256, 256) and m.data.dtype == np.float32
        assert float(m.voxel_size.x) == pytest.approx(33.6)
    assert (tmp_path / "raw.rawtlt").read_text().split()[:2] == ["-76.00", "-74.00"]
    with tifffile.TiffFile(tmp_path / "raw.tif") as t:
        assert t.series[0].shape == (77, 256, 256) and t.imagej_metadata["unit"] == "nm"
        assert t.imagej_metadata["spacing"] == pytest.approx(3.36)
    root = zarr.open_group(str(tmp_path / "raw.zarr"), mode="r")
    assert root["0"].shape == (77, 256, 256)
    scale = root.attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale[1:] == pytest.approx([3.36, 3.36])
