"""Tilt-series alignment and tilt-angle refinement: every frame's angle, shift and the tilt axis.

Public API
----------
refine_alignment(frames, angles_deg, ...) -> AlignmentResult
    The whole refinement (coarse alignment, tilt axis, feature refinement or projection
    matching) as one function of arrays.
alignment_signal, detect_contrast, blank_frames
    What the alignment looks at.
coarse_align -> CoarseAlignment
    Neighbour cross-correlation with cosine stretching, chained from the zero-tilt frame.
estimate_tilt_axis, rotate_frames
    The tilt-axis direction in the image.
detect_features, local_orientation, measure_features -> Tracks
    3D feature points and their positions in every frame.
bundle_adjust -> BundleResult, FrameTiming, predict_positions
    Least-squares refinement of angles, shifts and feature positions.
angle_sd
    The standard deviation of every refined angle, from the solution's curvature.
projection_matching -> MatchResult
    The fallback for series with few trackable features.
apply_alignment, tlt_text
    The aligned stack; the angles as an IMOD .tlt file.

Conventions (DESIGN.md): frames (n, rows, cols) with x = tilt axis = columns; shifts (dy, dx)
mean a feature expected at (r, c) is seen at (r + dy, c + dx); angles in degrees, the angle of a
frame being the angle at its mid-time.
"""

from .apply import apply_alignment, tlt_text
from .axis import estimate_tilt_axis, rotate_frames
from .bundle import BundleResult, FrameTiming, bundle_adjust, predict_positions
from .coarse import CoarseAlignment, coarse_align
from .features import Tracks, detect_features, local_orientation, measure_features
from .projmatch import MatchResult, projection_matching
from .refine import METHODS, AlignmentResult, neighbour_agreement, refine_alignment
from .signal import alignment_signal, blank_frames, detect_contrast
from .uncertainty import angle_sd

__all__ = [
    "METHODS",
    "angle_sd",
    "AlignmentResult",
    "neighbour_agreement",
    "BundleResult",
    "CoarseAlignment",
    "FrameTiming",
    "MatchResult",
    "Tracks",
    "alignment_signal",
    "apply_alignment",
    "blank_frames",
    "bundle_adjust",
    "coarse_align",
    "detect_contrast",
    "detect_features",
    "estimate_tilt_axis",
    "local_orientation",
    "measure_features",
    "predict_positions",
    "projection_matching",
    "refine_alignment",
    "rotate_frames",
    "tlt_text",
]
