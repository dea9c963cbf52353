"""What limits the refined tilt angles on the synthetic experiment: the refinement, with the step's
parameters, of noise-free undistorted frames, of noise-free frames as the rapid scan records them
after the distortion correction, and of the frames before denoising, beside the step's own result
(:mod:`rstem_core.analysis.angle_limits`). Prints one JSON line.

    python benchmarks/angle_limits.py --project P.h5   # a synthetic project after `rstem run`
    python benchmarks/angle_limits.py --seed 1         # demo (default size) and the pipeline first

The issue's targets (0.15 deg, 0.3 px RMS) are judged against these: what the noise-free frames
do not reach, no denoiser can give the refinement; what the noise-free corrected frames lose is
the scan's geometry and its calibration.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rstem_core import pipeline
from rstem_core.analysis.angle_limits import ANGLE_LIMITS, angle_limits
from rstem_core.analysis.refine_scores import nominal_angle_rms_deg
from rstem_core.project import Project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a synthetic project whose pipeline has run (refine at least)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=71)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=ANGLE_LIMITS, default=list(ANGLE_LIMITS))
    args = parser.parse_args()

    def say(fraction: float, message: str) -> None:
        print(f"\r{100 * fraction:5.1f} % {message[:100]:<100}", end="", file=sys.stderr, flush=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.project
        if path is None:
            from rstem_core.simulate import SimulationConfig, write_demo_project

            path = Path(tmp) / "demo.h5"
            write_demo_project(path, SimulationConfig.scaled(size=args.size, frames=args.frames, seed=args.seed),
                               progress=say)
            with Project.open(path, "a") as proj:
                pipeline.run_pipeline(proj, until="calibrate", progress=say)
                pipeline.run_pipeline(proj, start="denoise", until="refine", progress=say)
        with Project.open(path) as proj:
            scores = angle_limits(proj, which=tuple(args.only), progress=say)
            seed = proj.attrs("truth").get("seed")
            nominal = nominal_angle_rms_deg(proj)
    print(file=sys.stderr)
    print(json.dumps({"project": str(args.project) if args.project else None, "seed": None if seed is None else int(seed),
                      "nominal_angle_rms_deg": round(nominal, 3), **scores,
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
