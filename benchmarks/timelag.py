"""Time-lag correction on the synthetic experiment: dislocation depth errors with and without it.

Reconstructs the noise-free, undistorted rapid frames of a demo project twice, with the true
frame angles (one angle per frame, as the paper did) and with every scan row at its own true
angle (time-lag-aware geometry), both with the true drift, and compares the dislocation centres of
every yz cross-section with the true lines (paper Fig. 7a). Prints one JSON line.

    python benchmarks/timelag.py --size 256 --frames 71
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from rstem_core.analysis.positions import errors_against_lines
from rstem_core.binarize import BinarizeParams, preprocess
from rstem_core.project import Project
from rstem_core.recon import Geometry, reconstruct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=71)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--project", type=Path, help="use this demo project instead of making one")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.project
        if path is None:
            from rstem_core.simulate import SimulationConfig, write_demo_project

            path = Path(tmp) / "demo.h5"
            config = SimulationConfig.scaled(size=args.size, frames=args.frames, seed=args.seed,
                                             areas_per_tilt=1, frames_per_area=2)
            write_demo_project(path, config)
        with Project.open(path) as proj:
            frames = proj.read_array("truth/rapid_clean_undistorted")
            frame_angles = proj.read_array("truth/rapid_angles_deg")
            row_angles = proj.read_array("truth/rapid_row_angles_deg")
            drift = proj.read_array("truth/rapid_drift_px")
            lines = [np.asarray(line) for line in proj.read_json("truth/lines")]
            voxel = float(proj.attrs("truth")["pixel_size_nm"])
            thickness = float(proj.attrs("truth")["thickness_nm"])
    signal = preprocess(frames, BinarizeParams(mode="normalize", smooth_px=0.0))
    nz = int(round(thickness * 1.3 / voxel))
    result: dict[str, object] = {"benchmark": "timelag", "size": frames.shape[1], "frames": frames.shape[0],
                                 "voxel_nm": voxel}
    for name, angles in (("frame_angles", frame_angles), ("row_angles", row_angles)):
        geometry = Geometry(angles, frames.shape[1], frames.shape[2], nz, shifts_px=drift)
        vol = reconstruct(signal, geometry, iterations=args.iterations, device="cpu")
        result[name] = errors_against_lines(vol, voxel, lines)
    f, r = result["frame_angles"], result["row_angles"]
    result["dz_ratio_row_over_frame"] = round(r["mean_abs_dz_nm"] / f["mean_abs_dz_nm"], 3)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
