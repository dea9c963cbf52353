"""Image alignment of a tilt series: coarse cross-correlation, the tilt axis, the aligned stack.

The implementation lives in :mod:`rstem_core.align`; this module gathers the image-alignment
part of it under the name the design uses.
"""

from .align import (
    CoarseAlignment,
    alignment_signal,
    apply_alignment,
    blank_frames,
    coarse_align,
    detect_contrast,
    estimate_tilt_axis,
    rotate_frames,
)

__all__ = [
    "CoarseAlignment",
    "alignment_signal",
    "apply_alignment",
    "blank_frames",
    "coarse_align",
    "detect_contrast",
    "estimate_tilt_axis",
    "rotate_frames",
]
