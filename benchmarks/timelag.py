"""Time-lag correction on the synthetic experiment: dislocation depth errors with and without it.

See :mod:`rstem_core.analysis.timelag`: frame-angle and row-angle reconstructions of the
noise-free rapid frames against the true lines and against the slow tomogram (paper Fig. 7a).
Prints one JSON line.

    python benchmarks/timelag.py --size 512 --frames 71
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rstem_core.analysis.timelag import time_lag_depth_errors
from rstem_core.project import Project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
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
            result = time_lag_depth_errors(proj, iterations=args.iterations)
            size = proj.h5["raw/rapid/frames"].shape
    result = {"benchmark": "timelag", "size": size[1], "frames": size[0], **result}
    for suffix in ("", "_vs_slow"):
        f, r = result["frame_angles" + suffix], result["row_angles" + suffix]
        result["dz_ratio_row_over_frame" + suffix] = round(r["mean_abs_dz_nm"] / f["mean_abs_dz_nm"], 3)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
