"""Rotation on import: the tilt axis ends up along +x (image columns)."""

from __future__ import annotations

import numpy as np
import pytest

from rstem_core.io.orient import normalise_angle, rotate_to_x

FRAMES = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)


@pytest.mark.parametrize(
    ("axis_deg", "k"),
    [(0.0, 0), (90.0, 1), (-90.0, -1), (180.0, 2), (270.0, -1), (-180.0, 2), (450.0, 1)],
)
def test_quarter_turns_are_exact_rot90(axis_deg, k):
    np.testing.assert_array_equal(rotate_to_x(FRAMES, axis_deg), np.rot90(FRAMES, k=k, axes=(1, 2)))


def test_plus_90_maps_rows_onto_columns():
    """A vertical axis (+y, along rows) becomes +x: new column index = old row index."""
    frames = np.zeros((1, 5, 3), dtype=np.float32)
    frames[0, :, 1] = np.arange(1, 6)  # a vertical line, brighter downwards (+y)
    rotated = rotate_to_x(frames, 90.0)
    assert rotated.shape == (1, 3, 5)
    row = int(np.argmax(rotated[0].sum(axis=1)))
    np.testing.assert_array_equal(rotated[0, row], np.arange(1, 6))  # brighter towards +x


def test_oblique_axis_is_rotated_onto_x():
    size = 65
    c = size // 2
    frames = np.zeros((1, size, size), dtype=np.float32)
    theta = np.deg2rad(30.0)  # axis direction: 30 degrees from +x towards +y (rows)
    for t in np.linspace(-25, 25, 400):
        frames[0, int(round(c + t * np.sin(theta))), int(round(c + t * np.cos(theta)))] = 1.0

    rotated = rotate_to_x(frames, 30.0)

    assert rotated.shape == frames.shape
    profile = rotated[0, :, c - 15 : c + 16].sum(axis=1)
    assert int(np.argmax(profile)) == c
    assert profile[c - 1 : c + 2].sum() > 0.9 * profile.sum()


@pytest.mark.parametrize(
    ("angle", "expected"), [(-90, -90), (270, -90), (-180, 180), (180, 180), (360, 0), (45.5, 45.5)]
)
def test_normalise_angle(angle, expected):
    assert normalise_angle(angle) == expected
