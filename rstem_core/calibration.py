"""The calibration step's public door (the implementation lives in :mod:`rstem_core.calib`).

>>> from rstem_core.calibration import estimate_distortion, DistortionMap    # doctest: +SKIP
"""

from .calib import (
    CalibrationParams,
    CalibrationResult,
    DistortionMap,
    GratingPeriod,
    estimate_distortion,
    find_grating_period,
    run_calibration,
)

__all__ = [
    "CalibrationParams",
    "CalibrationResult",
    "DistortionMap",
    "GratingPeriod",
    "estimate_distortion",
    "find_grating_period",
    "run_calibration",
]
