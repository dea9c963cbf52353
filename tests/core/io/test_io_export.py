"""Exports read back with mrcfile, tifffile and zarr (not with our own readers)."""

from __future__ import annotations

import io
import json

import mrcfile
import numpy as np
import pytest
import tifffile
import zarr

import rstem_core.io.export as export_module
from rstem_core.errors import FileFormatError, RstemError
from rstem_core.io import read_series, write_stack, write_volume
from rstem_core.model import TiltSeries, Volume

VOXEL_NM = 2.5


@pytest.fixture
def volume() -> Volume:
    rng = np.random.default_rng(1)
    return Volume(
        data=rng.random((6, 10, 14), dtype=np.float32),
        voxel_size_nm=VOXEL_NM,
        metadata={"algorithm": "sirt"},
    )


@pytest.fixture
def series() -> TiltSeries:
    rng = np.random.default_rng(2)
    return TiltSeries(
        frames=rng.random((5, 8, 12), dtype=np.float32),
        angles_deg=[-60.0, -30.5, 0.0, 30.25, 60.0],
        pixel_size_nm=VOXEL_NM,
        metadata={"source": "test"},
    )


def _folder_names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_volume_to_mrc(volume, tmp_path):
    path = write_volume(volume, tmp_path / "vol.mrc")

    with mrcfile.open(path) as mrc:  # strict mode: a valid MRC2014 file
        assert mrc.data.shape == (6, 10, 14)
        assert mrc.data.dtype == np.float32
        np.testing.assert_array_equal(mrc.data, volume.data)
        assert int(mrc.header.mode) == 2
        for axis in "xyz":
            assert float(getattr(mrc.voxel_size, axis)) == pytest.approx(VOXEL_NM * 10)  # Angstrom
        assert (int(mrc.header.nx), int(mrc.header.ny), int(mrc.header.nz)) == (14, 10, 6)
        assert int(mrc.header.mz) == 6 and int(mrc.header.ispg) == 1
        assert tuple(float(v) for v in mrc.header.origin.item()) == (0.0, 0.0, 0.0)
    assert mrcfile.validate(str(path), print_file=io.StringIO())
    assert _folder_names(tmp_path) == ["vol.mrc"]


def test_stack_to_mrc_with_rawtlt_and_back(series, tmp_path):
    path = write_stack(series, tmp_path / "tilts.mrc")

    assert (tmp_path / "tilts.rawtlt").read_text() == "-60.00\n-30.50\n0.00\n30.25\n60.00\n"
    with mrcfile.open(path) as mrc:
        assert mrc.data.shape == (5, 8, 12)
        assert int(mrc.header.ispg) == 0  # an image stack for IMOD
        assert float(mrc.voxel_size.x) == pytest.approx(25.0)
    again = read_series([path])
    np.testing.assert_array_equal(again.frames, series.frames)
    np.testing.assert_allclose(again.angles_deg, series.angles_deg)
    assert again.pixel_size_nm == pytest.approx(VOXEL_NM)
    assert _folder_names(tmp_path) == ["tilts.mrc", "tilts.rawtlt"]


def test_volume_to_imagej_tiff(volume, tmp_path):
    path = write_volume(volume, tmp_path / "vol.tif")

    with tifffile.TiffFile(path) as tif:
        data = tif.asarray()
        meta = tif.imagej_metadata
        x_resolution = tif.pages[0].resolution[0]
    assert data.shape == (6, 10, 14) and data.dtype == np.float32
    np.testing.assert_array_equal(data, volume.data)
    assert meta["unit"] == "nm"
    assert meta["spacing"] == pytest.approx(VOXEL_NM)
    assert meta["images"] == 6
    assert x_resolution == pytest.approx(1 / VOXEL_NM, rel=1e-6)  # pixels per nm


def test_stack_to_tiff_round_trips_through_the_importer(series, tmp_path):
    path = write_stack(series, tmp_path / "tilts.tiff")

    assert (tmp_path / "tilts.rawtlt").is_file()
    again = read_series([path])
    np.testing.assert_array_equal(again.frames, series.frames)
    np.testing.assert_allclose(again.angles_deg, series.angles_deg)
    assert again.pixel_size_nm == pytest.approx(VOXEL_NM, rel=1e-6)


def test_volume_to_ome_zarr(volume, tmp_path):
    path = write_volume(volume, tmp_path / "vol.zarr")

    root = zarr.open_group(str(path), mode="r")
    assert root.metadata.zarr_format == 2
    (multiscale,) = root.attrs["multiscales"]
    assert multiscale["version"] == "0.4"
    assert [(a["name"], a["type"], a["unit"]) for a in multiscale["axes"]] == [
        ("z", "space", "nanometer"),
        ("y", "space", "nanometer"),
        ("x", "space", "nanometer"),
    ]
    (dataset,) = multiscale["datasets"]
    assert dataset["path"] == "0"
    assert dataset["coordinateTransformations"] == [{"type": "scale", "scale": [VOXEL_NM] * 3}]
    array = root["0"]
    assert array.shape == (6, 10, 14) and array.dtype == np.float32
    np.testing.assert_array_equal(array[...], volume.data)
    assert root.attrs["rstem"]["metadata"] == {"algorithm": "sirt"}
    # NGFF 0.4 chunk keys are nested ("0/0/0"), and the attributes are plain JSON on disk
    assert (path / "0" / "0" / "0" / "0").is_file()
    assert json.loads((path / ".zattrs").read_text())["multiscales"][0]["version"] == "0.4"
    assert _folder_names(tmp_path) == ["vol.zarr"]


def test_stack_to_zarr_keeps_the_angles(series, tmp_path):
    path = write_stack(series, tmp_path / "tilts.zarr")
    root = zarr.open_group(str(path), mode="r")
    assert root["0"].shape == (5, 8, 12)
    assert root.attrs["rstem"]["angles_deg"] == [-60.0, -30.5, 0.0, 30.25, 60.0]


def test_zarr_export_replaces_an_older_one(volume, tmp_path):
    target = tmp_path / "vol.zarr"
    write_volume(Volume(np.zeros((2, 3, 4)), voxel_size_nm=1.0), target)
    write_volume(volume, target)
    assert zarr.open_group(str(target), mode="r")["0"].shape == (6, 10, 14)
    assert _folder_names(tmp_path) == ["vol.zarr"]


def test_failed_write_leaves_the_previous_file_and_no_debris(volume, tmp_path, monkeypatch):
    target = tmp_path / "vol.mrc"
    target.write_bytes(b"previous export")

    def crash(path, *args, **kwargs):
        path.write_bytes(b"half a file")
        raise RuntimeError("disk pulled out")

    monkeypatch.setattr(export_module, "write_mrc", crash)
    with pytest.raises(RuntimeError, match="disk pulled out"):
        write_volume(volume, target)

    assert target.read_bytes() == b"previous export"
    assert _folder_names(tmp_path) == ["vol.mrc"]


def test_unsupported_suffix_and_missing_folder(volume, tmp_path):
    with pytest.raises(
        FileFormatError, match=r"cannot export to '.png'; supported: .mrc, .tif, .tiff, .zarr"
    ):
        write_volume(volume, tmp_path / "vol.png")
    with pytest.raises(RstemError, match="does not exist"):
        write_volume(volume, tmp_path / "no" / "vol.mrc")


def test_progress_is_reported(volume, tmp_path):
    seen = []
    write_volume(volume, tmp_path / "v.tif", progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0
