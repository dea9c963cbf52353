"""Plain data types shared by every step: :class:`TiltSeries` and :class:`Volume`.

Axis conventions (DESIGN.md): a tilt stack is ``(frame, y, x)`` with x the tilt axis and the
fast-scan direction (image columns) and y the slow-scan direction (rows, scanned top to bottom);
a volume is ``(z, y, x)``. Lengths are in nanometres, angles in degrees, times in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _as_1d_float(name: str, values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have one value per frame ({n}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite; frame {bad} has {arr[bad]}")
    return arr


def _check_monotone(name: str, values: np.ndarray) -> None:
    if values.size < 2:
        return
    d = np.diff(values)
    if not (np.all(d >= 0) or np.all(d <= 0)):
        i = int(np.flatnonzero(np.sign(d) != np.sign(d[np.flatnonzero(d)[0]]))[0])
        raise ValueError(
            f"{name} must be monotone (a tilt series in acquisition order); it turns at frame "
            f"{i + 1}: {values[i]:.3f} -> {values[i + 1]:.3f}"
        )


def _check_positive(name: str, value: float | None, allow_none: bool = True) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required")
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return v


def _check_json(name: str, meta: dict) -> dict:
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be JSON-serialisable: {exc}") from None
    return meta


@dataclass(frozen=True, eq=False)
class TiltSeries:
    """A stack of STEM frames recorded while the specimen tilts about the x axis.

    Parameters
    ----------
    frames : ndarray, shape (n, rows, cols)
        Image intensities, converted to float32. Rows are y (slow scan), columns x (fast scan).
    angles_deg : ndarray, shape (n,)
        Nominal tilt angle of each frame in degrees (what the microscope reported or planned).
        Monotone in acquisition order; constant for a stack of repeated frames of one area.
    pixel_size_nm : float
        Pixel size in nanometres, > 0.
    measured_angles_deg : ndarray, shape (n,), optional
        Angles measured by another means (e.g. a goniometer read-out), degrees.
    timestamps_s : ndarray, shape (n,), optional
        Start time of each frame in seconds from the first frame, non-decreasing.
    line_time_s : float, optional
        Time to scan one row in seconds (used by the time-lag model).
    tilt_axis_deg : float
        Direction of the tilt axis in the image, degrees from +x towards +y. Zero after import:
        importers rotate the frames so the axis lies along x and record the rotation in metadata.
    metadata : dict
        Free-form, JSON-serialisable acquisition metadata (source file, detector, dwell time, ...).

    Raises
    ------
    ValueError
        If shapes disagree, angles are not finite or not monotone, or the pixel size is not > 0.
    """

    frames: np.ndarray
    angles_deg: np.ndarray
    pixel_size_nm: float
    measured_angles_deg: np.ndarray | None = None
    timestamps_s: np.ndarray | None = None
    line_time_s: float | None = None
    tilt_axis_deg: float = 0.0
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise ValueError(f"frames must be a (frame, y, x) stack, got {frames.ndim} dimensions")
        if 0 in frames.shape:
            raise ValueError(f"frames must not be empty, got shape {frames.shape}")
        if np.iscomplexobj(frames):
            raise ValueError("frames must be real intensities, got complex values")
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        n = frames.shape[0]
        object.__setattr__(self, "frames", frames)
        angles = _as_1d_float("angles_deg", self.angles_deg, n)
        _check_monotone("angles_deg", angles)
        object.__setattr__(self, "angles_deg", angles)
        if self.measured_angles_deg is not None:
            object.__setattr__(
                self,
                "measured_angles_deg",
                _as_1d_float("measured_angles_deg", self.measured_angles_deg, n),
            )
        if self.timestamps_s is not None:
            ts = _as_1d_float("timestamps_s", self.timestamps_s, n)
            if np.any(np.diff(ts) < 0):
                raise ValueError("timestamps_s must be non-decreasing")
            object.__setattr__(self, "timestamps_s", ts)
        object.__setattr__(self, "pixel_size_nm", _check_positive("pixel_size_nm", self.pixel_size_nm, False))
        object.__setattr__(self, "line_time_s", _check_positive("line_time_s", self.line_time_s))
        axis = float(self.tilt_axis_deg)
        if not np.isfinite(axis):
            raise ValueError(f"tilt_axis_deg must be finite, got {self.tilt_axis_deg!r}")
        object.__setattr__(self, "tilt_axis_deg", axis)
        object.__setattr__(self, "metadata", _check_json("metadata", dict(self.metadata)))

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.frames.shape)  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class Volume:
    """A reconstructed volume.

    Parameters
    ----------
    data : ndarray, shape (z, y, x)
        Converted to float32. x is the tilt axis, z the beam direction at 0 degrees tilt; the
        volume centre lies on the tilt axis.
    voxel_size_nm : float
        Edge of a cubic voxel in nanometres, > 0.
    metadata : dict
        JSON-serialisable provenance (algorithm, iterations, source series ...).
    """

    data: np.ndarray
    voxel_size_nm: float
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 3:
            raise ValueError(f"a volume must be (z, y, x), got {data.ndim} dimensions")
        if 0 in data.shape:
            raise ValueError(f"a volume must not be empty, got shape {data.shape}")
        object.__setattr__(self, "data", np.ascontiguousarray(data, dtype=np.float32))
        object.__setattr__(self, "voxel_size_nm", _check_positive("voxel_size_nm", self.voxel_size_nm, False))
        object.__setattr__(self, "metadata", _check_json("metadata", dict(self.metadata)))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]
