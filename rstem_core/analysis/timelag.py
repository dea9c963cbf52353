"""How much the time-lag-aware geometry changes dislocation depths, on a synthetic project.

The noise-free, undistorted rapid frames in ``/truth`` are reconstructed with one angle per frame
(as the paper did) and with every scan row at its own angle, both with the true drift, and so is
the slow stop-and-go series (no time lag). Dislocation centres are compared with the true lines and
with the slow tomogram (the paper's reference, Fig. 7): comparing with the slow tomogram cancels
what both share (the bright-field line image sits a few nm off the core), leaving the time lag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..binarize import BinarizeParams, preprocess
from ..project import Project
from ..recon import Geometry, reconstruct
from .positions import errors_against_lines


def time_lag_depth_errors(project: Project, *, iterations: int = 50, device: str = "auto") -> dict[str, Any]:
    """Positional errors of frame-angle and row-angle reconstructions (see the module docstring).

    Returns a dict with ``frame_angles``, ``row_angles`` (against the true lines),
    ``frame_angles_vs_slow``, ``row_angles_vs_slow`` (against the slow tomogram) and
    ``slow_vs_truth``, each as :func:`~rstem_core.analysis.positions.errors_against_lines` gives.
    """
    t = "truth/"
    frames = project.read_array(t + "rapid_clean_undistorted")
    voxel = float(project.attrs("truth")["pixel_size_nm"])
    thickness = float(project.attrs("truth")["thickness_nm"])
    lines = [np.asarray(line) for line in project.read_json(t + "lines")]
    normalise = BinarizeParams(mode="normalize", smooth_px=0.0)
    nz = int(round(thickness * 1.3 / voxel))
    shape = frames.shape[1:]
    slow = preprocess(project.read_array(t + "slow_clean"), normalise)
    slow_geometry = Geometry(project.read_array(t + "slow_angles_deg"), *shape, nz,
                             shifts_px=project.read_array(t + "slow_drift_px"))
    slow_vol = reconstruct(slow, slow_geometry, iterations=iterations, device=device)
    signal = preprocess(frames, normalise)
    drift = project.read_array(t + "rapid_drift_px")
    out: dict[str, Any] = {"voxel_nm": voxel, "slow_vs_truth": errors_against_lines(slow_vol, voxel, lines)}
    for name, key in (("frame_angles", "rapid_angles_deg"), ("row_angles", "rapid_row_angles_deg")):
        geometry = Geometry(project.read_array(t + key), *shape, nz, shifts_px=drift)
        vol = reconstruct(signal, geometry, iterations=iterations, device=device)
        out[name] = errors_against_lines(vol, voxel, lines)
        out[name + "_vs_slow"] = errors_against_lines(vol, voxel, lines, reference_volume=slow_vol)
    return out
