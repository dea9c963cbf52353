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

from limits import add_project_options, ready_project, say

from rstem_core.analysis.angle_limits import ANGLE_LIMITS, angle_limits
from rstem_core.analysis.refine_scores import nominal_angle_rms_deg
from rstem_core.project import Project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_project_options(parser, "refine")
    parser.add_argument("--only", nargs="+", choices=ANGLE_LIMITS, default=list(ANGLE_LIMITS))
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = ready_project(args, tmp, "refine")
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
