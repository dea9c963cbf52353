"""Tilt refinement on the synthetic experiment: refined angles and shifts against the truth.

Builds the demo project (default size: 512 px, 71 frames; ``--quick``: 128 px, 31 frames) with a
minimal training set, runs ``run_refinement`` with its default parameters on the most processed
rapid series (the raw one; with ``--pipeline`` the distortion-corrected frames denoised as
``rstem run`` gives them to the refinement: by the shipped starter model, or by the project's
trained model when a reused project has one), and prints one JSON line: ``angle_rms_deg`` and
``shift_rms_px`` (as ``rstem evaluate --reference truth`` reports them), the angles' common
offset from the truth and their RMS error without it (the offset is the gauge no image can tell,
fixed from the nominal start and end angles), the RMS of the refinement's own standard deviation
of each angle (``angle_sd_rms_deg``, null when no features were followed), the angles' RMS error
after each feature round (``round_angle_rms_deg``: how the rounds converge, or wander), the nominal
angles' RMS error, the method used, the refinement's wall time and the project-building time.

    python benchmarks/refine.py            # 512 px, 71 frames, seed 0
    python benchmarks/refine.py --quick --seed 1
    python benchmarks/refine.py --pipeline  # calibrate and denoise first, as the pipeline does
    python benchmarks/refine.py --pipeline --rounds 16  # more feature rounds than the default 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from rstem_core import pipeline
from rstem_core.analysis.refine_scores import (
    angle_errors_deg,
    angle_rms_deg,
    angle_sd_rms_deg,
    nominal_angle_rms_deg,
    round_angle_rms_deg,
    shift_rms_px,
)
from rstem_core.project import Project
from rstem_core.refine_step import OUTPUT, RefineParams, run_refinement
from rstem_core.simulate import SimulationConfig, write_demo_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 px, 31 frames")
    parser.add_argument("--size", type=int, default=None, help="frame size in px (default 512)")
    parser.add_argument("--frames", type=int, default=None, help="frames (default 71)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipeline", action="store_true",
                        help="calibrate and denoise (shipped starter model) before refining")
    parser.add_argument("--project", type=Path, default=None,
                        help="reuse this demo project (written there when missing)")
    parser.add_argument("--rounds", type=int, default=RefineParams.rounds, help="feature rounds")
    args = parser.parse_args()
    size = args.size or (128 if args.quick else 512)
    frames = args.frames or (31 if args.quick else 71)
    config = SimulationConfig.scaled(size=size, frames=frames, seed=args.seed, areas_per_tilt=1, frames_per_area=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.project or Path(tmp) / "demo.h5"
        t = time.perf_counter()
        if not path.exists():
            write_demo_project(path, config)
        t_build = time.perf_counter() - t
        with Project.open(path, "a") as proj:
            t_prepare = 0.0
            if args.pipeline:
                t = time.perf_counter()
                pipeline.run_pipeline(proj, until="calibrate")  # what is not run yet, as `rstem run` does
                pipeline.run_pipeline(proj, start="denoise", until="denoise")
                t_prepare = time.perf_counter() - t
            t = time.perf_counter()
            result = run_refinement(proj, RefineParams(rounds=args.rounds))
            t_refine = time.perf_counter() - t
            offset, relative = angle_errors_deg(proj)
            report = {
                "benchmark": "refine",
                "size": size,
                "frames": frames,
                "seed": args.seed,
                "source": str(proj.h5[OUTPUT].attrs["source"]),
                "method": result.method,
                "angle_rms_deg": round(angle_rms_deg(proj), 4),
                "angle_offset_deg": round(offset, 4),
                "angle_rms_offset_removed_deg": round(relative, 4),
                "angle_sd_rms_deg": round(angle_sd_rms_deg(proj), 4) if f"{OUTPUT}/angle_sd_deg" in proj else None,
                "round_angle_rms_deg": [round(v, 4) for v in round_angle_rms_deg(proj)],
                "nominal_angle_rms_deg": round(nominal_angle_rms_deg(proj), 4),
                "shift_rms_px": round(shift_rms_px(proj), 4),
                "seconds": round(t_refine, 2),
                "build_seconds": round(t_build, 2),
                "calibrate_denoise_seconds": round(t_prepare, 2),
                "notes": list(result.notes),
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
            }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
