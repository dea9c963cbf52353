"""Time from acquisition to volume: the denoise, refine and reconstruct steps on this machine.

The paper's acquisition takes 5 s; the goal is to process the series as fast (the end-to-end
issue: under 5 s for denoise + refine + reconstruct on a GPU). A synthetic project is simulated
with a token training set (the steps timed here do not use it: the denoiser is the shipped starter),
distortion-corrected, then the three steps run ``--repeats`` times through the pipeline module, as
``rstem run`` runs them, project writes included; the first repeat pays the device's start-up
(CUDA context, kernel selection), the later ones are what a running application sees. Finally
the volume is scored against the truth, so a fast path that lost quality shows. Prints one JSON line.

    python benchmarks/step_speed.py                       # default size, GPU when present
    python benchmarks/step_speed.py --size 128 --frames 31 --device cpu
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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

TIMED = ("denoise", "refine", "reconstruct")
QUALITY = ("angle_rms_deg", "shift_rms_px", "position_error_nm", "completeness", "precision")


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=71)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--repeats", type=int, default=2, help="runs of the three steps (default 2)")
    parser.add_argument("--no-evaluate", action="store_true", help="skip the scoring against the truth")
    args = parser.parse_args()

    def say(fraction: float, message: str) -> None:
        print(f"\r{100 * fraction:5.1f} % {message[:100]:<100}", end="", file=sys.stderr, flush=True)

    out: dict = {"size_px": args.size, "frames": args.frames, "seed": args.seed, "device": args.device}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speed.h5"
        t0 = time.perf_counter()
        config = SimulationConfig.scaled(size=args.size, frames=args.frames, seed=args.seed,
                                         areas_per_tilt=1, frames_per_area=6)
        write_demo_project(path, config, progress=say)
        out["demo_s"] = round(time.perf_counter() - t0, 1)
        print(f"\ndemo: {out['demo_s']} s", file=sys.stderr, flush=True)
        with Project.open(path, "a") as proj:
            t0 = time.perf_counter()
            pipeline.run_step(proj, "calibrate", progress=say)
            out["calibrate_s"] = round(time.perf_counter() - t0, 2)
            for name in TIMED:
                params = pipeline.params_for(proj, name)
                if hasattr(params, "device"):
                    pipeline.save_params(proj, name, dataclasses.replace(params, device=args.device))
            runs = []
            for _ in range(args.repeats):
                times = {}
                for name in TIMED:
                    synchronize()
                    t0 = time.perf_counter()
                    pipeline.run_step(proj, name, progress=say)
                    synchronize()
                    times[name] = round(time.perf_counter() - t0, 2)
                    print(f"\n{name}: {times[name]} s", file=sys.stderr, flush=True)
                times["total"] = round(sum(times[n] for n in TIMED), 2)
                runs.append(times)
            out["runs_s"] = runs
            out["best_total_s"] = min(r["total"] for r in runs)
            if not args.no_evaluate:
                t0 = time.perf_counter()
                report = run_evaluation(proj, EvaluationParams(reference="truth", denoise_scores=False),
                                        progress=say)
                out["evaluate_s"] = round(time.perf_counter() - t0, 1)
                out.update({k: report[k] for k in QUALITY if k in report})
        print(file=sys.stderr)
    out["targets"] = {"denoise_refine_reconstruct_under_5_s": out["best_total_s"] < 5.0}
    out["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                      "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                      "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
