"""Side files: IMOD angle lists, SerialEM .mdoc, free-text acquisition logs in odd encodings."""

from __future__ import annotations

import numpy as np
import pytest

from rstem_core.errors import FileFormatError
from rstem_core.io import read_angle_file
from rstem_core.io.sidecars import decode_text, read_acquisition_log, read_mdoc


def test_haadf_rawtlt(data_file):
    angles = read_angle_file(data_file("etspy/HAADF.rawtlt"))
    np.testing.assert_array_equal(angles, np.arange(-76.0, 77.0, 2.0))


def test_angle_file_skips_blanks_and_comments_and_names_a_bad_line(tmp_path):
    path = tmp_path / "a.tlt"
    path.write_text("# nominal\n -60.0\n\n0 extra-column\n60\n")
    np.testing.assert_array_equal(read_angle_file(path), [-60.0, 0.0, 60.0])

    path.write_text("10\nten\n")
    with pytest.raises(FileFormatError, match=r"a.tlt: line 2 is not a tilt angle"):
        read_angle_file(path)
    with pytest.raises(FileFormatError, match="angle file not found"):
        read_angle_file(tmp_path / "none.rawtlt")


def test_haadf_log_in_cp1252(data_file):
    path = data_file("etspy/HAADF.txt")
    raw = path.read_bytes()
    assert b"\xb0" in raw  # a latin-1 / cp1252 degree sign, not valid UTF-8
    assert "Tilt Axis Angle [°]:90.00" in decode_text(raw)

    log = read_acquisition_log(path)

    assert log.pixel_size_nm == pytest.approx(3.36)
    assert log.tilt_axis_deg == 90.0
    assert log.exposure_time_s == 10.0


def test_log_in_utf8_reads_the_same(data_file, tmp_path):
    text = decode_text(data_file("etspy/HAADF.txt").read_bytes())
    copy = tmp_path / "utf8.txt"
    copy.write_text(text, encoding="utf-8")

    log = read_acquisition_log(copy)

    assert (log.pixel_size_nm, log.tilt_axis_deg) == (pytest.approx(3.36), 90.0)


def test_serialem_mdoc(data_file):
    mdoc = read_mdoc(data_file("etspy/serialem_multitilt/test_000.mdoc"))

    assert mdoc.n_sections == 2
    np.testing.assert_allclose(mdoc.angles_deg, [-0.000488, -0.000488])
    assert mdoc.pixel_size_nm == pytest.approx(0.788)  # PixelSpacing = 7.88 Angstrom
    assert mdoc.tilt_axis_deg == -90.0
    assert mdoc.exposure_time_s == [0.524, 0.524]
    assert mdoc.times_s[1] - mdoc.times_s[0] == 2.0
    assert mdoc.channels == ["HAADF", "HAADF"]
