"""How the shipped starter denoiser is made: train on a simulated, curated synthetic experiment.

    python -m rstem_core.denoise.starter resources/denoiser_starter.safetensors --size 256 --epochs 16

writes the weights (with the description in the safetensors metadata) and the same description as
``denoiser_starter.json`` beside them. The starter is what ``rstem denoise`` uses on a project
without a trained model; it knows the simulator's detector, not a real microscope's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ..curate import run_curation
from ..project import Project
from ..simulate import SimulationConfig, write_demo_project
from .training import TrainParams, train_denoiser
from .weights import export_safetensors


def make_starter(out: Path, *, project: Path | None = None, size: int = 256, seed: int = 0,
                 params: TrainParams | None = None) -> dict:
    """Train the starter model and write ``out`` (.safetensors) and its ``.json`` description."""
    params = params or TrainParams(start_from="scratch")
    with tempfile.TemporaryDirectory() as tmp:
        if project is None:
            project = Path(tmp) / "starter.h5"
            write_demo_project(project, SimulationConfig.scaled(size=size, frames=31, seed=seed))
            with Project.open(project, "a") as proj:
                run_curation(proj)
        with Project.open(project, "r") as proj:
            model = train_denoiser(proj, params, progress=lambda f, m: print(f"{100 * f:5.1f} % {m}", flush=True))
    model.description["training"]["source"] = f"synthetic experiment ({project.name}), rstem_core.denoise.starter"
    export_safetensors(model, out)
    out.with_suffix(".json").write_text(json.dumps(model.description, indent=1, sort_keys=True) + "\n")
    return model.description


def main() -> None:
    parser = argparse.ArgumentParser(description="train the starter denoiser on the synthetic experiment")
    parser.add_argument("out", type=Path, help="output .safetensors file")
    parser.add_argument("--project", type=Path, help="a curated synthetic project to train on (default: simulate)")
    parser.add_argument("--size", type=int, default=256, help="frame size of the simulation, px")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--shape", default="3,16,2,2", metavar="D,W,U,C")
    parser.add_argument("--patches-per-frame", type=int, default=6)
    parser.add_argument("--exclude", nargs="*", default=[], metavar="AREA", help="areas kept out of training")
    args = parser.parse_args()
    d, w, u, c = (int(v) for v in args.shape.split(","))
    params = TrainParams(depth=d, base_channels=w, unshuffle=u, convs_per_level=c, epochs=args.epochs,
                         patience=max(3, args.epochs // 5), patches_per_frame=args.patches_per_frame,
                         exclude_areas=tuple(args.exclude), start_from="scratch")
    desc = make_starter(args.out, project=args.project, size=args.size, params=params)
    print(json.dumps(desc["metrics"]))


if __name__ == "__main__":
    main()
