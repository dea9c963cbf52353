"""Tilt-angle refinement: features, least squares, projection matching, the whole refinement.

The implementation lives in :mod:`rstem_core.align`; this module gathers the geometry-refinement
part of it under the name the design uses.
"""

from .align import (
    AlignmentResult,
    BundleResult,
    FrameTiming,
    MatchResult,
    Tracks,
    bundle_adjust,
    detect_features,
    measure_features,
    predict_positions,
    projection_matching,
    refine_alignment,
    tlt_text,
)

__all__ = [
    "AlignmentResult",
    "BundleResult",
    "FrameTiming",
    "MatchResult",
    "Tracks",
    "bundle_adjust",
    "detect_features",
    "measure_features",
    "predict_positions",
    "projection_matching",
    "refine_alignment",
    "tlt_text",
]
