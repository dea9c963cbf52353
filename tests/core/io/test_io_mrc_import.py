"""MRC import from real files: the old FEI HAADF series and a SerialEM multi-tilt stack."""

from __future__ import annotations

import shutil
import warnings

import mrcfile
import numpy as np
import pytest

from rstem_core.errors import FileFormatError
from rstem_core.io import read_series

HAADF_ANGLES = np.arange(-76.0, 77.0, 2.0)


def _raw_mrc(path):
    """The stored array, read by mrcfile itself (permissive: HAADF.mrc has no MAP stamp)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mrcfile.open(path, permissive=True) as mrc:
            return np.array(mrc.data)


def test_haadf_with_its_side_files(data_file):
    path = data_file("etspy/HAADF.mrc")
    data_file("etspy/HAADF.rawtlt")
    data_file("etspy/HAADF.txt")

    series = read_series([path])

    assert series.frames.shape == (77, 256, 256)
    assert series.frames.dtype == np.float32
    np.testing.assert_allclose(series.angles_deg, HAADF_ANGLES, atol=1e-9)
    assert series.pixel_size_nm == pytest.approx(3.36, abs=1e-9)
    assert series.tilt_axis_deg == 0.0
    meta = series.metadata
    assert meta["angles_source"] == "angle file HAADF.rawtlt"
    assert meta["tilt_axis_in_file_deg"] == 90.0
    assert meta["import_rotation_deg"] == 90.0
    assert meta["original_dtype"] == "int16"
    assert meta["exposure_time_s"] == 10.0
    assert any("permissive" in w for w in meta["warnings"])


def test_haadf_rotation_is_exact_rot90_of_the_stored_frames(data_file):
    path = data_file("etspy/HAADF.mrc")
    series = read_series([path])
    raw = _raw_mrc(path)
    expected = np.rot90(raw, k=1, axes=(1, 2)).astype(np.float32)
    np.testing.assert_array_equal(series.frames, expected)
    # new column = old row: the file's vertical tilt axis now runs along x
    np.testing.assert_array_equal(series.frames[5, :, 17], raw[5, 17, ::-1])


def test_haadf_extended_header_alone_gives_angles_and_pixel_size(copy_data):
    path = copy_data("etspy/HAADF.mrc")  # no .rawtlt, no .txt beside the copy

    series = read_series([path])

    np.testing.assert_array_equal(series.angles_deg, HAADF_ANGLES)
    assert series.metadata["angles_source"] == "FEI extended header"
    # the header claims 1 A per pixel; the extended header holds 3.36e-9 m
    assert series.pixel_size_nm == pytest.approx(3.36, abs=1e-9)
    assert series.metadata["pixel_size_source"] == "FEI extended header"
    assert series.metadata["import_rotation_deg"] == 0.0
    np.testing.assert_array_equal(series.frames, _raw_mrc(path).astype(np.float32))


def test_sibling_rawtlt_beats_the_extended_header(copy_data):
    path = copy_data("etspy/HAADF.mrc")
    shifted = HAADF_ANGLES + 0.5
    path.with_suffix(".rawtlt").write_text("".join(f"{a:.2f}\n" for a in shifted))

    series = read_series([path])

    np.testing.assert_allclose(series.angles_deg, shifted)


def test_acquisition_log_gives_pixel_size_and_tilt_axis(tmp_path, data_file):
    """An MRC with the 1 A placeholder and no extended header takes both from the cp1252 log."""
    path = tmp_path / "plain.mrc"
    frames = np.arange(3 * 4 * 6, dtype=np.int16).reshape(3, 4, 6)
    with mrcfile.new(path) as mrc:
        mrc.set_data(frames)
        mrc.voxel_size = 1.0
    shutil.copy(data_file("etspy/HAADF.txt"), tmp_path / "plain.txt")
    (tmp_path / "plain.rawtlt").write_text("-2\n0\n2\n")

    series = read_series([path])

    assert series.pixel_size_nm == pytest.approx(3.36)
    assert series.metadata["pixel_size_source"] == "acquisition log plain.txt"
    assert series.metadata["tilt_axis_in_file_deg"] == 90.0
    assert series.frames.shape == (3, 6, 4)


def test_serialem_multitilt_with_mdoc(data_file):
    path = data_file("etspy/serialem_multitilt/test_000.mrc")
    data_file("etspy/serialem_multitilt/test_000.mdoc")

    series = read_series([path])

    assert series.frames.shape == (2, 1024, 1024)
    assert series.pixel_size_nm == pytest.approx(0.788)
    np.testing.assert_allclose(series.angles_deg, [-0.000488, -0.000488])
    assert series.metadata["angles_source"] == "SerialEM test_000.mdoc"
    assert series.metadata["tilt_axis_in_file_deg"] == -90.0
    assert series.metadata["import_rotation_deg"] == -90.0
    assert series.metadata["exposure_time_s"] == pytest.approx(0.524)
    assert series.metadata["channel"] == "HAADF"
    np.testing.assert_allclose(series.timestamps_s, [0.0, 2.0])  # DateTime 16:24:15 and :17
    expected = np.rot90(_raw_mrc(path), k=-1, axes=(1, 2)).astype(np.float32)
    np.testing.assert_array_equal(series.frames, expected)


def test_serialem_without_mdoc_uses_its_own_headers(copy_data):
    path = copy_data("etspy/serialem_multitilt/test_000.mrc")

    series = read_series([path])

    assert series.metadata["angles_source"] == "SerialEM extended header"
    np.testing.assert_allclose(series.angles_deg, [0.0, 0.0])  # stored in 1/100 degree
    assert series.pixel_size_nm == pytest.approx(0.788)  # MRC voxel size 7.88 A
    assert series.metadata["pixel_size_source"] == "MRC header voxel size"
    assert series.metadata["tilt_axis_in_file_deg"] == -90.0  # from the header label


def test_untyped_serialem_extended_header_is_not_read_as_fei(copy_data):
    """Older SerialEM stacks have no exttyp; their flag-coded table must not pass as FEI floats."""
    path = copy_data("etspy/serialem_multitilt/test_000.mrc")
    raw = bytearray(path.read_bytes())
    raw[104:108] = b"\x00" * 4  # drop the "SERI" exttyp
    path.write_bytes(bytes(raw))

    series = read_series([path])

    assert series.metadata["angles_source"] == "SerialEM extended header"
    np.testing.assert_allclose(series.angles_deg, [0.0, 0.0])
    assert series.pixel_size_nm == pytest.approx(0.788)


def test_angles_argument_overrides_and_must_match_the_frame_count(data_file, tmp_path):
    path = data_file("etspy/HAADF.mrc")
    good = tmp_path / "mine.tlt"
    good.write_text("\n".join(f"{a}" for a in np.linspace(-60, 60, 77)))
    series = read_series([path], angles_file=good)
    np.testing.assert_allclose(series.angles_deg, np.linspace(-60, 60, 77))

    short = tmp_path / "short.rawtlt"
    short.write_text("\n".join("0" for _ in range(76)))
    with pytest.raises(FileFormatError, match=r"76 tilt angles.*77 frames"):
        read_series([path], angles_file=short)


def test_truncated_mrc_gives_one_line_naming_the_file(data_file, tmp_path):
    broken = tmp_path / "broken.mrc"
    broken.write_bytes(data_file("etspy/HAADF.mrc").read_bytes()[:2000])

    with pytest.raises(FileFormatError) as info:
        read_series([broken])

    message = str(info.value)
    assert str(broken) in message
    assert "truncated or corrupt" in message
    assert "\n" not in message


def test_fei1_extended_header(tmp_path):
    """EPU/Tomography 5 files: angles and pixel size in the typed FEI1 extended header."""
    dtype = mrcfile.dtypes.get_ext_header_dtype(b"FEI1", "<")
    table = np.zeros(3, dtype=dtype)
    table["Metadata size"] = dtype.itemsize
    table["Alpha tilt"] = [-20.0, 0.0, 20.0]
    table["Pixel size X"] = 1.25e-9
    path = tmp_path / "epu.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((3, 4, 4), dtype=np.float32))
        mrc.set_extended_header(table)
        mrc.header.exttyp = b"FEI1"

    series = read_series([path])

    np.testing.assert_array_equal(series.angles_deg, [-20.0, 0.0, 20.0])
    assert series.pixel_size_nm == pytest.approx(1.25)
    assert series.metadata["angles_source"] == "FEI1 extended header"
