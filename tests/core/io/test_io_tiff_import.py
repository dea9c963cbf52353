"""TIFF import: ImageJ and OME pixel-size metadata, side-file angles, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from rstem_core.errors import FileFormatError
from rstem_core.io import read_series

FRAMES = np.arange(3 * 5 * 7, dtype=np.uint16).reshape(3, 5, 7)


def _angles_beside(path, angles):
    path.with_suffix(".rawtlt").write_text("".join(f"{a:.2f}\n" for a in angles))


def test_imagej_tiff_in_micrometres(tmp_path):
    path = tmp_path / "stack.tif"
    # 250 pixels per micrometre = 4 nm pixels
    tifffile.imwrite(
        path,
        FRAMES,
        imagej=True,
        resolution=(250.0, 250.0),
        metadata={"unit": "micron", "axes": "ZYX"},
    )
    _angles_beside(path, [-30, 0, 30])

    series = read_series([path])

    assert series.pixel_size_nm == pytest.approx(4.0)
    assert series.metadata["pixel_size_source"] == "ImageJ metadata"
    np.testing.assert_array_equal(series.angles_deg, [-30.0, 0.0, 30.0])
    np.testing.assert_array_equal(series.frames, FRAMES)
    assert series.metadata["original_dtype"] == "uint16"


def test_ome_tiff_physical_size(tmp_path):
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(
        path,
        FRAMES,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.25, "PhysicalSizeXUnit": "nm"},
    )

    series = read_series([path], angles_file=_write_angles(tmp_path, [1, 2, 3]))

    assert series.pixel_size_nm == pytest.approx(0.25)
    assert series.metadata["pixel_size_source"] == "OME metadata"


def _write_angles(folder, angles):
    path = folder / "angles.rawtlt"
    path.write_text("\n".join(str(a) for a in angles))
    return path


def test_plain_tiff_needs_a_pixel_size(tmp_path):
    path = tmp_path / "image.tiff"
    tifffile.imwrite(path, FRAMES[0])
    angles = _write_angles(tmp_path, [12.0])

    with pytest.raises(FileFormatError, match=r"image.tiff: no pixel size found.*--pixel-size"):
        read_series([path], angles_file=angles)

    series = read_series([path], angles_file=angles, pixel_size_nm=2.0)
    assert series.frames.shape == (1, 5, 7)  # a 2D image is a one-frame series


def test_explicit_tilt_axis_rotates_a_tiff(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(
        path, FRAMES, imagej=True, resolution=(1.0, 1.0), metadata={"unit": "nm", "axes": "ZYX"}
    )
    _angles_beside(path, [-30, 0, 30])

    series = read_series([path], tilt_axis_deg=-90.0)

    np.testing.assert_array_equal(series.frames, np.rot90(FRAMES, k=-1, axes=(1, 2)))
    assert series.metadata["tilt_axis_source"] == "given"
    assert series.metadata["import_rotation_deg"] == -90.0


def test_colour_tiff_is_refused(tmp_path):
    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, np.zeros((8, 8, 3), dtype=np.uint8), photometric="rgb")
    with pytest.raises(FileFormatError, match="colour or multi-channel"):
        read_series([path], angles_file=_write_angles(tmp_path, [0]), pixel_size_nm=1.0)
