"""What limits the dislocation centres on the synthetic experiment: the evaluation of the step's
volume beside volumes that leave out one source of error each (:mod:`rstem_core.analysis.limits`):
the true line density, the noise-free frames with the true geometry, and the step's own frames with
the true geometry. Prints one JSON line.

    python benchmarks/limits.py --project P.h5     # a synthetic project after `rstem run`
    python benchmarks/limits.py --seed 1           # demo (default size) and the pipeline first

The issue's targets (completeness 90 %, 4.56 nm per axis) are judged against these: what the
noise-free frames with the true geometry do not reach, no change of the alignment or of the noise
handling can reach with the same reconstruction and centre finder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rstem_core import pipeline
from rstem_core.analysis.evaluate import EvaluationParams
from rstem_core.analysis.limits import LIMITS, completeness_limits
from rstem_core.project import Project


def add_project_options(parser: argparse.ArgumentParser, needs: str) -> None:
    """The options that name a synthetic project, or the demo to make (``needs``: the step it must have run)."""
    parser.add_argument("--project", type=Path, help=f"a synthetic project whose pipeline has run ({needs} at least)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=71)
    parser.add_argument("--seed", type=int, default=0)


def say(fraction: float, message: str) -> None:
    """Progress on one line of stderr."""
    print(f"\r{100 * fraction:5.1f} % {message[:100]:<100}", end="", file=sys.stderr, flush=True)


def ready_project(args: argparse.Namespace, tmp: str, until: str) -> Path:
    """``args.project``, or a demo made in ``tmp`` (calibrated, then denoised up to ``until``)."""
    if args.project is not None:
        return args.project
    from rstem_core.simulate import SimulationConfig, write_demo_project

    path = Path(tmp) / "demo.h5"
    write_demo_project(path, SimulationConfig.scaled(size=args.size, frames=args.frames, seed=args.seed), progress=say)
    with Project.open(path, "a") as proj:
        pipeline.run_pipeline(proj, until="calibrate", progress=say)
        pipeline.run_pipeline(proj, start="denoise", until=until, progress=say)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_project_options(parser, "reconstruct")
    parser.add_argument("--only", nargs="+", choices=LIMITS, default=list(LIMITS))
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = ready_project(args, tmp, "reconstruct")
        with Project.open(path) as proj:
            scores = completeness_limits(proj, EvaluationParams(reference="truth"), which=tuple(args.only),
                                         progress=say)
            seed = proj.attrs("truth").get("seed")
    print(file=sys.stderr)
    print(json.dumps({"project": str(args.project) if args.project else None, "seed": None if seed is None else int(seed), **scores,
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
