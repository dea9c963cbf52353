"""Parameters of the synthetic rapid-STEM experiment: one frozen dataclass, JSON-serialisable.

The defaults reproduce the acquisition of Zhao et al. (Sci. Rep.): a 300 nm thick austenitic steel
slab, 512 x 512 px frames of 4.56 nm, 71 rapid frames of 30 ms every 70 ms while the goniometer turns
continuously from -70 to +70 deg (about 28 deg/s, 5 s in all), a stop-and-go slow series of 1.6 s
frames every 2 deg, a cross-grating calibration pair and 5 x 35 training areas of 50 rapid frames.

Scaling (:meth:`SimulationConfig.scaled`)
-----------------------------------------
Smaller test data keep the *physics* comparable to the full-size data:

* The field of view shrinks with the square root of the size and the pixel grows with it:
  ``pixel = 4.56 nm * sqrt(512 / size)``, ``field = 2335 nm * sqrt(size / 512)``. Keeping the field
  with a 4x larger pixel would make the 12 nm dislocation lines and the 0.8 deg time lag sub-pixel and
  the slab only 16 px thick; keeping the pixel would leave one or two dislocations in a 0.6 um field.
  At size 128 the pixel is 9.12 nm, the slab 33 px thick and the field 1.17 um.
* The dislocation count follows the field area (constant dislocation density), at least 6 to 10.
* The frame time (30 ms, hence the 0.86 deg sweep inside a frame), the electron dose *per pixel* and
  the detector artefacts in pixels stay those of the full-size rapid scan, so single frames are as
  noisy and as streaked as real 512 px frames. The reported dwell time is ``frame_time / size**2``.
* With ``frames=K`` the angular range stays -70..+70 deg and the series still lasts ~4.9 s: the
  goniometer keeps its speed and the frame interval becomes ``4.9 s / (K - 1)``.
* The training set shrinks: ``areas_per_tilt = round(35 (size/512)^1.5)`` (>= 2) and
  ``frames_per_area = round(50 (size/512)^1.15)`` (>= 6), e.g. 4 x 10 at size 128.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .params import ContrastParams, DetectorParams, ScanParams

DEFAULT_SIZE = 512
DEFAULT_PIXEL_NM = 4.56
DEFAULT_FRAMES = 71
DEFAULT_SERIES_S = (DEFAULT_FRAMES - 1) * 0.070


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines one synthetic experiment; same config + seed = same data.

    Attributes
    ----------
    size : int
        Frame size in pixels (square, rows = columns).
    n_frames : int
        Frames in the rapid series and in the slow series.
    seed : int
        Seed of every random part (each part has its own stream; see :mod:`.seeding`).
    thickness_nm : float
        Slab thickness of the tomography specimen.
    pixel_size_nm : float
        Pixel size of every frame and voxel size of the truth volume.
    n_dislocations : tuple of int
        Range of the number of dislocations anchored inside the reconstructed volume.
    tilt_start_deg, tilt_end_deg : float
        Tilt range of both series.
    frame_time_s : float
        Time to scan one rapid frame (30 ms); the line time is ``frame_time_s / size``.
    frame_interval_s : float
        Start-to-start time of consecutive rapid frames (30 ms scan + 40 ms storing).
    slow_frame_time_s : float
        Time to scan one slow frame (1.6 s); the slow dose per pixel is larger by the ratio.
    slow_step_time_s : float
        Time between slow frames spent tilting and settling (stop-and-go).
    angle_error_deg : tuple of float
        Range of the largest difference between true and nominal rapid frame angles.
    dose_e_per_px : float
        Electrons per pixel and rapid frame reaching the bright-field detector without specimen.
    drift_nm : float
        Largest random specimen drift during the rapid series.
    slow_drift_nm : float
        Largest random specimen drift during the slow series.
    eucentric_error_nm : float
        Largest height of the specimen centre above the tilt axis (gives an image shift
        ``-h sin(theta)`` along y).
    training_tilts_deg : tuple of float
        Stage tilts of the training areas.
    areas_per_tilt : int
        Training areas per stage tilt.
    frames_per_area : int
        Rapid frames per training area.
    training_thickness_nm : tuple of float
        Thickness range of the training areas.
    matched_fraction : float
        Share of training areas whose thickness is within ``matched_tolerance`` of the specimen's.
    matched_tolerance : float
        Relative thickness difference below which an area counts as matched.
    mismatch_min : float
        Mismatched areas differ from the specimen thickness by at least this fraction.
    area_drift_nm : float
        Largest drift during one training area's frames.
    grating_periods : float
        Cross-grating periods across the field (sets the grating period).
    contrast, scan, detector : ContrastParams, ScanParams, DetectorParams
        Image formation, scan artefacts and detector chain.
    """

    size: int = DEFAULT_SIZE
    n_frames: int = DEFAULT_FRAMES
    seed: int = 0
    thickness_nm: float = 300.0
    pixel_size_nm: float = DEFAULT_PIXEL_NM
    n_dislocations: tuple[int, int] = (20, 40)
    tilt_start_deg: float = -70.0
    tilt_end_deg: float = 70.0
    frame_time_s: float = 0.030
    frame_interval_s: float = 0.070
    slow_frame_time_s: float = 1.6
    slow_step_time_s: float = 20.0
    angle_error_deg: tuple[float, float] = (1.1, 1.6)
    dose_e_per_px: float = 10.0
    drift_nm: float = 20.0
    slow_drift_nm: float = 18.0
    eucentric_error_nm: float = 10.0
    training_tilts_deg: tuple[float, ...] = (0.0, 20.0, 40.0, 60.0, 70.0)
    areas_per_tilt: int = 35
    frames_per_area: int = 50
    training_thickness_nm: tuple[float, float] = (150.0, 500.0)
    matched_fraction: float = 0.6
    matched_tolerance: float = 0.08
    mismatch_min: float = 0.2
    area_drift_nm: float = 8.0
    grating_periods: float = 12.0
    contrast: ContrastParams = field(default_factory=ContrastParams)
    scan: ScanParams = field(default_factory=ScanParams)
    detector: DetectorParams = field(default_factory=DetectorParams)

    def __post_init__(self) -> None:
        _check(self.size >= 16, f"size must be >= 16 pixels, got {self.size}")
        _check(self.n_frames >= 2, f"n_frames must be >= 2, got {self.n_frames}")
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        for name in (
            "thickness_nm",
            "pixel_size_nm",
            "frame_time_s",
            "frame_interval_s",
            "slow_frame_time_s",
            "dose_e_per_px",
            "grating_periods",
        ):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"{name} must be > 0, got {value}")
        _check(
            self.frame_interval_s >= self.frame_time_s,
            f"frame_interval_s ({self.frame_interval_s}) must be >= frame_time_s ({self.frame_time_s})",
        )
        _check(
            -89 < self.tilt_start_deg < self.tilt_end_deg < 89,
            f"need -89 < tilt_start_deg < tilt_end_deg < 89, got {self.tilt_start_deg}, {self.tilt_end_deg}",
        )
        lo, hi = self.n_dislocations
        _check(
            1 <= lo <= hi,
            f"n_dislocations must be a range (lo, hi) with 1 <= lo <= hi, got {self.n_dislocations}",
        )
        _check(
            all(0 <= abs(t) < 89 for t in self.training_tilts_deg),
            f"training_tilts_deg must lie within +-89 deg, got {self.training_tilts_deg}",
        )
        _check(self.areas_per_tilt >= 0, f"areas_per_tilt must be >= 0, got {self.areas_per_tilt}")
        _check(
            self.frames_per_area >= 2, f"frames_per_area must be >= 2, got {self.frames_per_area}"
        )
        t_lo, t_hi = self.training_thickness_nm
        _check(
            0 < t_lo < self.thickness_nm < t_hi,
            f"training_thickness_nm {self.training_thickness_nm} must bracket thickness_nm {self.thickness_nm}",
        )
        _check(
            0 <= self.matched_fraction <= 1,
            f"matched_fraction must be in [0, 1], got {self.matched_fraction}",
        )

    # -- derived quantities -----------------------------------------------------------------
    @property
    def field_nm(self) -> float:
        """Width of the field of view (and of the truth volume) in nm."""
        return self.size * self.pixel_size_nm

    @property
    def line_time_s(self) -> float:
        """Time to scan one rapid row (s); row r of frame i starts at ``t_i + r * line_time_s``."""
        return self.frame_time_s / self.size

    @property
    def dwell_time_s(self) -> float:
        """Rapid-scan time per pixel (s), flyback ignored (114 ns at the defaults)."""
        return self.frame_time_s / (self.size * self.size)

    @property
    def slow_dwell_ratio(self) -> float:
        """How many times longer a slow-scan pixel is exposed than a rapid-scan pixel."""
        return self.slow_frame_time_s / self.frame_time_s

    @property
    def nominal_tilt_rate_deg_s(self) -> float:
        """Goniometer rate implied by the nominal angles and frame interval (deg/s)."""
        return (self.tilt_end_deg - self.tilt_start_deg) / (
            (self.n_frames - 1) * self.frame_interval_s
        )

    @property
    def nz(self) -> int:
        """Number of z slices of the truth volume: the slab plus a 10 % (>= 3 voxel) margin each side."""
        slab = self.thickness_nm / self.pixel_size_nm
        return int(math.ceil(slab + 2 * max(3.0, 0.1 * slab)))

    @property
    def volume_shape(self) -> tuple[int, int, int]:
        """Shape (z, y, x) of the truth volume; voxel edge = ``pixel_size_nm``."""
        return (self.nz, self.size, self.size)

    @property
    def n_training_areas(self) -> int:
        return self.areas_per_tilt * len(self.training_tilts_deg)

    def nominal_angles_deg(self) -> np.ndarray:
        """Nominal (reported) angles of the rapid frames: linear from start to end, degrees."""
        return np.linspace(self.tilt_start_deg, self.tilt_end_deg, self.n_frames)

    def slow_angles_deg(self) -> np.ndarray:
        """Exact angles of the stop-and-go slow series, degrees (2 deg steps at the defaults)."""
        return np.linspace(self.tilt_start_deg, self.tilt_end_deg, self.n_frames)

    def frame_start_times_s(self) -> np.ndarray:
        """Start time of each rapid frame, seconds from the first."""
        return np.arange(self.n_frames) * self.frame_interval_s

    def acquisition_metadata(self) -> dict[str, Any]:
        """The rapid acquisition as the microscope reports it (the ``acquisition.json`` keys)."""
        return {
            "pixel_size_nm": self.pixel_size_nm,
            "dwell_time_s": self.dwell_time_s,
            "line_time_s": self.line_time_s,
            "frame_time_s": self.frame_time_s,
            "frame_interval_s": self.frame_interval_s,
            "tilt_start_deg": self.tilt_start_deg,
            "tilt_end_deg": self.tilt_end_deg,
            "nominal_tilt_rate_deg_s": self.nominal_tilt_rate_deg_s,
            "fast_scan_axis": "x",
        }

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def scaled(
        cls,
        size: int = DEFAULT_SIZE,
        frames: int = DEFAULT_FRAMES,
        seed: int = 0,
        *,
        areas_per_tilt: int | None = None,
        frames_per_area: int | None = None,
        **overrides: Any,
    ) -> SimulationConfig:
        """The default experiment at another frame size and frame count (see the module notes).

        Parameters
        ----------
        size : int
            Frame size in pixels (>= 16); 512 gives the paper's experiment.
        frames : int
            Frames in each tilt series (>= 2); 71 gives 2 deg steps.
        seed : int
            Random seed.
        areas_per_tilt, frames_per_area : int, optional
            Override the scaled training-set size.
        **overrides
            Any other field of :class:`SimulationConfig`.

        Examples
        --------
        >>> c = SimulationConfig.scaled(size=128, frames=31, seed=3)
        >>> round(c.pixel_size_nm, 2), c.areas_per_tilt, c.frames_per_area
        (9.12, 4, 10)
        """
        if size < 16:
            raise ValueError(f"size must be >= 16 pixels, got {size}")
        if frames < 2:
            raise ValueError(f"frames must be >= 2, got {frames}")
        ratio = size / DEFAULT_SIZE
        area = ratio  # field area relative to the default (field ~ sqrt(size))
        lo = max(6, round(20 * area))
        hi = max(lo + 4, round(40 * area))
        if size >= DEFAULT_SIZE:
            lo, hi = 20, 40
        params: dict[str, Any] = {
            "size": int(size),
            "n_frames": int(frames),
            "seed": int(seed),
            "pixel_size_nm": DEFAULT_PIXEL_NM * math.sqrt(1.0 / ratio),
            "n_dislocations": (lo, hi),
            "frame_interval_s": max(DEFAULT_SERIES_S / (frames - 1), 0.030),
            "areas_per_tilt": areas_per_tilt
            if areas_per_tilt is not None
            else (35 if size >= DEFAULT_SIZE else max(2, round(35 * ratio**1.5))),
            "frames_per_area": frames_per_area
            if frames_per_area is not None
            else (50 if size >= DEFAULT_SIZE else max(6, round(50 * ratio**1.15))),
        }
        params.update(overrides)
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (nested dicts, lists) for JSON."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        """Rebuild a config from :meth:`to_dict` output (lists become tuples again)."""
        data = dict(data)
        nested = {"contrast": ContrastParams, "scan": ScanParams, "detector": DetectorParams}
        for name, kind in nested.items():
            if name in data and isinstance(data[name], dict):
                data[name] = kind(**{k: _tuple(v) for k, v in data[name].items()})
        return cls(**{k: _tuple(v) for k, v in data.items()})


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
