"""Velox EMD import: a camera frame stack, a multi-channel DPC file and spectrum images."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
from rsciio import emd

from rstem_core.errors import FileFormatError
from rstem_core.io import read_series

TEM_STACK = "rosettasciio/fei_example_tem_stack.emd"
DPC = "rosettasciio/fei_example_dpc_titles.emd"


def test_velox_frame_stack_is_frames_at_one_tilt(data_file):
    series = read_series([data_file(TEM_STACK)])

    assert series.frames.shape == (2, 3, 3)
    # Stage/AlphaTilt is "-0.21967359999999991" radians
    expected = math.degrees(-0.2196736)
    np.testing.assert_allclose(series.angles_deg, [expected, expected], rtol=1e-9)
    assert expected == pytest.approx(-12.5864, abs=1e-4)
    assert series.pixel_size_nm == pytest.approx(0.0081729, rel=1e-4)  # 8.17 pm
    np.testing.assert_allclose(series.timestamps_s, [0.0, 0.8])  # Time axis, 0.8 s per frame
    assert series.metadata["detector"] == "BM-Ceta"
    assert series.metadata["exposure_time_s"] == pytest.approx(0.8)
    assert series.metadata["format"] == "Velox EMD"


def test_dpc_file_takes_the_first_real_channel_and_lists_the_others(data_file):
    series = read_series([data_file(DPC)])

    meta = series.metadata
    assert meta["channel"] == "B-D"
    assert {"DPC", "iDPC", "DF4-A", "Filtered iDPC"} <= set(meta["other_channels"])
    assert any("channel=" in w for w in meta["warnings"])
    assert series.pixel_size_nm == pytest.approx(0.0996199, rel=1e-5)
    assert series.angles_deg[0] == pytest.approx(math.degrees(0.081560771835436793))
    assert series.line_time_s == pytest.approx(0.01146)  # Scan/LineTime
    assert meta["dwell_time_s"] == pytest.approx(1e-5)
    assert meta["frame_time_s"] == pytest.approx(11.73505)


def test_dpc_file_honours_the_channel_argument(data_file):
    path = data_file(DPC)
    series = read_series([path], channel="iDPC")

    stored = next(s for s in emd.file_reader(path) if s["metadata"]["General"]["title"] == "iDPC")
    np.testing.assert_array_equal(series.frames[0], stored["data"])
    assert series.metadata["channel"] == "iDPC"


def test_complex_dpc_channel_is_refused_with_the_real_alternatives(data_file):
    with pytest.raises(FileFormatError, match=r"'DPC' holds complex64.*'iDPC'"):
        read_series([data_file(DPC)], channel="DPC")


def test_unknown_channel_lists_the_available_titles(data_file):
    with pytest.raises(
        FileFormatError, match=r"no channel 'HAADF'; available: 'B-D', 'DPC', 'iDPC'"
    ):
        read_series([data_file(DPC)], channel="HAADF")


def test_velox_v11_spectrum_images_are_not_image_series(data_file, tmp_path):
    with zipfile.ZipFile(data_file("rosettasciio/velox_emd_version11.zip")) as archive:
        names = [n for n in archive.namelist() if n.endswith(".emd")]
        archive.extractall(tmp_path)
    assert len(names) == 2
    for name in names:
        with pytest.raises(
            FileFormatError, match=r"not an image series \(it holds a spectrum image\)"
        ):
            read_series([tmp_path / name])
