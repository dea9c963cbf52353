"""Scan-distortion calibration of the rapid scan from a cross-grating (paper Fig. 1g, Supp. A).

>>> dmap = estimate_distortion(slow_grating, rapid_grating)          # doctest: +SKIP
>>> corrected = dmap.correct(rapid_frames)                           # doctest: +SKIP

``estimate_distortion`` measures the displacement field by local correlation on a grid of windows
and fits a smooth model; :class:`DistortionMap` holds the field (``rapid(r, c) =
undistorted(r + dy, c + dx)``), corrects frames and is saved to / loaded from a standalone file;
:func:`run_calibration` is the project step behind ``rstem calibrate``.
"""

from .distortion_map import DistortionMap
from .estimate import estimate_distortion
from .measure import GratingPeriod, find_grating_period
from .step import CalibrationParams, CalibrationResult, run_calibration

__all__ = [
    "CalibrationParams",
    "CalibrationResult",
    "DistortionMap",
    "GratingPeriod",
    "estimate_distortion",
    "find_grating_period",
    "run_calibration",
]
