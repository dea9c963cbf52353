"""User errors on import: one clear line naming the file, never a library traceback."""

from __future__ import annotations

import numpy as np
import pytest

from rstem_core.errors import FileFormatError
from rstem_core.io import read_series


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nothing.mrc"
    with pytest.raises(FileFormatError, match=f"{missing}: file not found"):
        read_series([missing])


def test_unknown_suffix_lists_the_supported_formats(tmp_path):
    path = tmp_path / "notes.xyz"
    path.write_text("not an image")
    with pytest.raises(FileFormatError) as info:
        read_series([path])
    message = str(info.value)
    assert "notes.xyz: unknown image format '.xyz'" in message
    for suffix in (".mrc", ".st", ".ali", ".mrcs", ".tif", ".tiff", ".dm3", ".dm4", ".emd"):
        assert suffix in message


def test_side_file_given_as_image_says_so(data_file):
    with pytest.raises(FileFormatError, match="is a side file"):
        read_series([data_file("etspy/HAADF.rawtlt")])


def test_folder_and_empty_list_are_refused(tmp_path):
    with pytest.raises(FileFormatError, match="is a folder"):
        read_series([tmp_path])
    with pytest.raises(FileFormatError, match="no image files given"):
        read_series([])


def test_unknown_suffix_with_mrc_content_is_recognised(copy_data):
    """A SerialEM stack renamed to .dat still opens: its header has the MAP stamp."""
    path = copy_data("etspy/serialem_multitilt/test_000.mrc")
    renamed = path.rename(path.with_suffix(".dat"))
    series = read_series([renamed], angles_file=_angles(renamed.parent, 2), tilt_axis_deg=0)
    assert series.frames.shape == (2, 1024, 1024)
    assert series.pixel_size_nm == pytest.approx(0.788)


def _angles(folder, n):
    path = folder / "given.rawtlt"
    path.write_text("\n".join("0" for _ in range(n)))
    return path


def test_corrupt_dm_and_emd_give_one_line(tmp_path):
    for name in ("broken.dm4", "broken.emd", "broken.tif"):
        path = tmp_path / name
        path.write_bytes(b"\x00\x00\x00\x04" + bytes(range(256)) * 4)
        with pytest.raises(FileFormatError) as info:
            read_series([path])
        assert str(path) in str(info.value)
        assert "\n" not in str(info.value)


def test_side_angle_file_with_wrong_count(copy_data):
    path = copy_data("etspy/HAADF.mrc")
    path.with_suffix(".rawtlt").write_text("\n".join(str(a) for a in np.arange(10)))
    with pytest.raises(
        FileFormatError, match=r"HAADF.rawtlt: holds 10 tilt angles but HAADF.mrc has 77 frames"
    ):
        read_series([path])


def test_bad_pixel_size_argument(data_file):
    with pytest.raises(FileFormatError, match="pixel_size_nm must be a positive number"):
        read_series([data_file("etspy/HAADF.mrc")], pixel_size_nm=-1.0)
