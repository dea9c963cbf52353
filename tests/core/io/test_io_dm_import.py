"""Gatan DM3/DM4 import: a series assembled from one file per tilt, a stack, a bare image."""

from __future__ import annotations

import numpy as np
import pytest
from rsciio import digitalmicrograph

from rstem_core.errors import FileFormatError
from rstem_core.io import read_series

DM_SERIES = [f"etspy/dm_series/BF_00{i}.dm3" for i in (1, 2, 3)]
# Stage Alpha of BF_001..003 in degrees, as stored in "Microscope Info/Stage Position"
DM_ALPHAS = [-72.00303315629543, -69.00359909878556, -66.00416504127571]


def test_dm_series_from_three_files(data_file):
    paths = [data_file(p) for p in DM_SERIES]

    series = read_series(paths)

    assert series.frames.shape == (3, 128, 128)
    np.testing.assert_allclose(series.angles_deg, DM_ALPHAS)
    assert series.pixel_size_nm == pytest.approx(19.1087, abs=1e-4)  # 0.0191087 um
    assert series.metadata["angles_source"] == "DM Stage Alpha"
    assert series.metadata["frame_files"] == ["BF_001.dm3", "BF_002.dm3", "BF_003.dm3"]
    assert series.metadata["dwell_time_s"] == pytest.approx(8e-6)  # DigiScan Sample Time 8 us
    assert series.line_time_s == pytest.approx(8e-6 * 128)
    for k, path in enumerate(paths):
        stored = digitalmicrograph.file_reader(path)[0]["data"]
        np.testing.assert_array_equal(series.frames[k], stored)


def test_dm_series_was_acquired_from_the_last_file_to_the_first(data_file):
    """BF_003 (-66 deg) was scanned first: times do not increase in angle order."""
    series = read_series([data_file(p) for p in DM_SERIES])

    assert series.timestamps_s is None
    assert series.metadata["frame_times_s"] == [180.0, 90.0, 0.0]
    assert any("frame_times_s" in w for w in series.metadata["warnings"])


def test_files_out_of_angle_order_are_sorted_with_a_warning(data_file):
    shuffled = [data_file(DM_SERIES[i]) for i in (1, 2, 0)]

    series = read_series(shuffled)

    np.testing.assert_allclose(series.angles_deg, DM_ALPHAS)
    assert series.metadata["frame_files"] == ["BF_001.dm3", "BF_002.dm3", "BF_003.dm3"]
    assert "files were not in tilt-angle order; sorted by angle" in series.metadata["warnings"]
    first = digitalmicrograph.file_reader(data_file(DM_SERIES[0]))[0]["data"]
    np.testing.assert_array_equal(series.frames[0], first)


def test_dm3_stack_without_angles_asks_for_them(data_file):
    path = data_file("rosettasciio/test_stackbuilder_imagestack.dm3")
    with pytest.raises(FileFormatError, match=r"no tilt angles found; give them with --angles"):
        read_series([path])


def test_dm3_stack_with_angles_file(data_file, tmp_path):
    path = data_file("rosettasciio/test_stackbuilder_imagestack.dm3")
    angles = tmp_path / "three.rawtlt"
    angles.write_text("-10\n0\n10\n")

    series = read_series([path], angles_file=angles)

    assert series.frames.shape == (3, 2, 16)
    np.testing.assert_array_equal(series.angles_deg, [-10.0, 0.0, 10.0])
    assert series.pixel_size_nm == pytest.approx(59.9829, abs=1e-4)
    assert series.metadata["original_dtype"] == "uint32"
    assert series.frames[0, 0, 0] == 606491.0


def test_single_dm4_image_becomes_one_frame(data_file, tmp_path):
    path = data_file("rosettasciio/test-1.dm4")
    with pytest.raises(FileFormatError, match="no tilt angles found"):
        read_series([path])
    angle = tmp_path / "one.rawtlt"
    angle.write_text("15.5\n")
    # the image has no calibrated axes, so the pixel size must be given
    with pytest.raises(FileFormatError, match="--pixel-size"):
        read_series([path], angles_file=angle)

    series = read_series([path], angles_file=angle, pixel_size_nm=0.5)

    assert series.frames.shape == (1, 2, 2)
    np.testing.assert_array_equal(series.frames[0], [[1, 2], [3, 4]])
    assert series.angles_deg.tolist() == [15.5]
    assert series.pixel_size_nm == 0.5


def test_files_of_different_frame_size_are_refused(data_file):
    with pytest.raises(FileFormatError, match="do not match"):
        read_series(
            [data_file(DM_SERIES[0]), data_file("rosettasciio/test-1.dm4")], pixel_size_nm=1.0
        )


def test_rotating_a_scanned_series_moves_the_row_time_to_metadata(data_file):
    """After a quarter turn image rows are no longer scan lines: no line_time_s for the model."""
    series = read_series([data_file(p) for p in DM_SERIES], tilt_axis_deg=90.0)

    assert series.line_time_s is None
    assert series.metadata["scan_line_time_s"] == pytest.approx(8e-6 * 128)
    assert series.metadata["fast_scan_axis"] == "y"
