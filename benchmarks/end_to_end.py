"""The headless main job on the synthetic experiment: `rstem demo` then `rstem run`, scored
against the truth. Prints one JSON line with every step's time and the quality numbers.

    python benchmarks/end_to_end.py                    # default size: 512 px, 71 frames
    python benchmarks/end_to_end.py --size 128 --frames 31
    python benchmarks/end_to_end.py --train-epochs 8   # shorter denoiser training (said in the JSON)
    python benchmarks/end_to_end.py --no-training      # curation and training skipped: the shipped starter

Targets (the end-to-end issue): mean positional error of the dislocation centres at most one
pixel of the default experiment (4.56 nm) on each of x, y and z, completeness at least 90 %;
every step's time reported. ``precision`` (share of found centres that pair with a true one)
shows how many detections are noise.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from rstem_core import pipeline
from rstem_core.analysis.evaluate import EvaluationParams, run_evaluation
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig, write_demo_project

KEYS = ("distortion_rms_px", "curation_accept_matched", "curation_reject_mismatched", "angle_rms_deg", "angle_sd_rms_deg",
        "nominal_angle_rms_deg", "shift_rms_px", "position_error_nm", "completeness", "precision", "pairs",
        "reference_centres", "found_centres", "offset_nm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=71)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-epochs", type=int, help="denoiser training epochs (default: the step's own)")
    parser.add_argument("--no-training", action="store_true",
                        help="skip curation and training: denoise with the shipped starter model")
    parser.add_argument("--keep", type=Path, help="write the project here instead of a temporary folder")
    args = parser.parse_args()

    def say(fraction: float, message: str) -> None:
        print(f"\r{100 * fraction:5.1f} % {message[:100]:<100}", end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "demo.h5"
        started = time.perf_counter()
        write_demo_project(path, SimulationConfig.scaled(size=args.size, frames=args.frames, seed=args.seed),
                           progress=say)
        demo_s = time.perf_counter() - started
        with Project.open(path, "a") as proj:
            if args.train_epochs:
                params = pipeline.params_for(proj, "train")
                import dataclasses

                pipeline.save_params(proj, "train", dataclasses.replace(params, epochs=args.train_epochs))
            t0 = time.perf_counter()
            if args.no_training:
                records = (pipeline.run_pipeline(proj, until="calibrate", progress=say)
                           + pipeline.run_pipeline(proj, start="denoise", until="reconstruct", progress=say))
            else:
                records = pipeline.run_pipeline(proj, until="reconstruct", progress=say)
            run_s = time.perf_counter() - t0
            report = run_evaluation(proj, EvaluationParams(reference="truth"), progress=say)
        print(file=sys.stderr)
    pos = report.get("position_error_nm", {})
    out = {
        "size_px": args.size, "frames": args.frames, "seed": args.seed,
        "train_epochs": "none (shipped starter)" if args.no_training else args.train_epochs or "default",
        "steps": {r.step: {"action": r.action, "seconds": round(r.seconds, 2), **({"reason": r.reason} if r.reason not in ("", "not run") else {})}
                  for r in records},
        "demo_s": round(demo_s, 1),
        "run_s": round(run_s, 1),
        **{k: report[k] for k in KEYS if k in report},
        "denoise": report.get("denoise"),
        "targets": {
            "position_error_le_4.56_nm_each_axis": bool(pos) and all(
                v is not None and v <= 4.56 for v in (pos.get("x"), pos.get("y"), pos.get("z"))),
            "completeness_ge_0.9": (report.get("completeness") or 0) >= 0.9,
        },
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.is_available()},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
