"""Validation of the plain data types: bad values raise a ValueError that says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from rstem_core.model import TiltSeries, Volume


def test_frames_become_float32_and_2d_becomes_one_frame() -> None:
    s = TiltSeries(np.ones((8, 9), np.uint16), [0.0], 4.56)
    assert s.frames.dtype == np.float32 and s.shape == (1, 8, 9) and s.n_frames == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"angles_deg": [0.0, 1.0]}, r"one value per frame \(3\)"),
        ({"angles_deg": [0.0, np.nan, 2.0]}, "frame 1 has nan"),
        ({"angles_deg": [0.0, 2.0, 1.0]}, "monotone.*frame 2: 2.000 -> 1.000"),
        ({"pixel_size_nm": 0.0}, "pixel_size_nm must be a positive number"),
        ({"pixel_size_nm": float("inf")}, "pixel_size_nm must be a positive number"),
        ({"timestamps_s": [0.0, 0.2, 0.1]}, "timestamps_s must be non-decreasing"),
        ({"line_time_s": -1e-5}, "line_time_s must be a positive number"),
        ({"measured_angles_deg": [1.0]}, "measured_angles_deg must have one value per frame"),
        ({"metadata": {"f": object()}}, "metadata must be JSON-serialisable"),
        ({"frames": np.zeros((3, 4))[None, None]}, "frames must be a .frame, y, x. stack"),
        ({"frames": np.zeros((3, 4, 4), complex)}, "complex"),
    ],
)
def test_bad_series_values_are_named(kwargs: dict, message: str) -> None:
    args = {"frames": np.zeros((3, 4, 4)), "angles_deg": [-2.0, 0.0, 2.0], "pixel_size_nm": 4.56}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        TiltSeries(**args)


def test_descending_and_constant_angles_are_monotone() -> None:
    TiltSeries(np.zeros((3, 2, 2)), [70.0, 0.0, -70.0], 1.0)
    TiltSeries(np.zeros((3, 2, 2)), [20.0, 20.0, 20.0], 1.0)


def test_volume_validation() -> None:
    v = Volume(np.zeros((2, 3, 4), np.float64), 4.56)
    assert v.data.dtype == np.float32 and v.shape == (2, 3, 4)
    with pytest.raises(ValueError, match=r"\(z, y, x\)"):
        Volume(np.zeros((3, 4)), 4.56)
    with pytest.raises(ValueError, match="voxel_size_nm"):
        Volume(np.zeros((2, 3, 4)), -1)
