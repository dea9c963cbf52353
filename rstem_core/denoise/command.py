"""Command-line glue for ``rstem train`` and ``rstem denoise`` (no heavy imports at module level)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import RstemError


def _usage_error(message: str) -> RstemError:
    from ..cli import UsageError

    return UsageError(message)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rstem train PROJECT.h5``."""
    parser.add_argument("project", type=Path)
    parser.add_argument("--mode", default="supervised", choices=["supervised", "noise2noise", "noise2void"],
                        help="single frame -> DCFI reference (default), frame -> frame, or blind-spot")
    parser.add_argument("--epochs", type=int, default=40, help="most passes over the patch pool (default 40)")
    parser.add_argument("--patience", type=int, default=6,
                        help="stop after this many epochs without validation gain (default 6)")
    parser.add_argument("--patch", type=int, default=64, metavar="PX", help="training patch edge in px (default 64)")
    parser.add_argument("--batch", type=int, default=16, help="patches per optimiser step (default 16)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam step size (default 0.002)")
    parser.add_argument("--depth", type=int, default=3, help="U-Net down-sampling steps (default 3)")
    parser.add_argument("--width", type=int, default=16, metavar="CHANNELS",
                        help="U-Net channels at the top level (default 16)")
    parser.add_argument("--validation", type=float, default=0.2, metavar="FRACTION",
                        help="share of training areas held out for validation (default 0.2)")
    parser.add_argument("--max-memory", type=float, default=1024.0, metavar="MIB",
                        help="memory for the training patches in MiB (default 1024)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--no-restore-width", action="store_true",
                        help="do not calibrate the line-width restoration after training")
    parser.add_argument("--max-psnr-loss", type=float, default=1.5, metavar="DB",
                        help="most PSNR the line-width restoration may cost at any tilt (default 1.5 dB)")
    parser.add_argument("--from-scratch", action="store_true",
                        help="begin from random weights, not from the shipped starter model")
    parser.add_argument("--resume", action="store_true", help="continue training the stored model")
    parser.add_argument("--export", type=Path, metavar="FILE.safetensors",
                        help="also write the trained weights to this file")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def cmd_train(args: argparse.Namespace, progress: Any, cancel: Any) -> int:
    """``rstem train``: train the denoiser and store it in the project."""
    from ..project import Project
    from .step import run_training
    from .training import TrainParams
    from .weights import export_safetensors

    try:
        params = TrainParams(mode=args.mode, epochs=args.epochs, patience=args.patience, patch_px=args.patch,
                             batch_size=args.batch, learning_rate=args.learning_rate, depth=args.depth,
                             base_channels=args.width, validation_fraction=args.validation,
                             max_memory_mb=args.max_memory, seed=args.seed, device=args.device,
                             restore_width=not args.no_restore_width, max_psnr_loss_db=args.max_psnr_loss,
                             start_from="scratch" if args.from_scratch else "starter")
    except ValueError as exc:
        raise _usage_error(str(exc)) from None
    if args.export is not None and args.export.suffix != ".safetensors":
        raise _usage_error(f"--export must name a .safetensors file, got {args.export}")
    with Project.open(args.project, "a") as proj:
        model = run_training(proj, params, resume=args.resume, progress=progress, cancel=cancel)
    progress.close()
    if args.export is not None:
        export_safetensors(model, args.export)
    metrics = model.description["metrics"]
    training = model.description["training"]
    if args.json:
        json.dump({"metrics": metrics, "mode": training["mode"], "epochs": len(training["history"]) - 1,
                   "history": training["history"], "data_hash": training["data_hash"],
                   "validation_areas": training["validation_areas"], "duration_s": training["duration_s"],
                   "width_restoration": model.description.get("width_restoration"),
                   "width_restoration_note": training.get("width_restoration_note"),
                   "model": "/models/denoiser", "exported": str(args.export) if args.export else None}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"{training['mode']} training: {len(training['history']) - 1} epochs in {training['duration_s']:.0f} s; "
          f"validation PSNR {metrics['validation_psnr_initial_db']:.2f} -> {metrics['validation_psnr_db']:.2f} dB "
          f"(best epoch {metrics['best_epoch']}, against {metrics['validation_target']})")
    restoration = model.width_restoration
    if restoration is not None:
        steps = ", ".join(f"{t:g} deg: gain {g:.2f} (width {b:.2f} -> {a:.2f})" for t, g, b, a in zip(
            restoration.tilts_deg, restoration.gains, restoration.width_before, restoration.width_after, strict=True))
        print(f"line-width restoration (sigma {restoration.sigma_px:.2f} px, widths against the DCFI references): {steps}")
    else:
        print(f"line-width restoration {training.get('width_restoration_note', 'off')}")
    print("stored in /models/denoiser" + (f"; exported to {args.export}" if args.export else ""))
    return 0


def add_denoise_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rstem denoise PROJECT.h5``."""
    parser.add_argument("project", type=Path)
    parser.add_argument("--method", default="unet", choices=["unet", "bm3d", "gaussian", "median", "nlm"],
                        help="the trained U-Net (default; the starter model when none is trained) or a baseline")
    parser.add_argument("--source", default="auto", choices=["auto", "corrected", "raw"],
                        help="frames to denoise (auto: distortion-corrected when present)")
    parser.add_argument("--tile", type=int, default=576, metavar="PX",
                        help="largest U-Net tile edge in px (default 576: a 512 px frame with its border is one tile)")
    parser.add_argument("--overlap", type=int, default=32, metavar="PX", help="U-Net tile overlap in px (default 32)")
    parser.add_argument("--batch", type=int, default=4, help="U-Net tiles per network call (default 4)")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--no-restore-width", action="store_true",
                        help="leave out the model's calibrated line-width restoration")
    parser.add_argument("--average-flips", action="store_true",
                        help="U-Net: average the results of the frames and their top-bottom and left-right "
                             "flips (+0.3 to +0.7 dB PSNR, 3x the time)")
    parser.add_argument("--weights", type=Path, metavar="FILE.safetensors",
                        help="use these weights instead of the project's model (stored into the project)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def cmd_denoise(args: argparse.Namespace, progress: Any, cancel: Any) -> int:
    """``rstem denoise``: denoise the tomography series into /processed/denoised."""
    from ..project import Project
    from .step import DenoiseParams, run_denoise
    from .weights import MODEL_KEY, import_safetensors, save_to_project

    try:
        params = DenoiseParams(method=args.method, source=args.source, tile_px=args.tile, overlap_px=args.overlap,
                               batch_size=args.batch, device=args.device, restore_width=not args.no_restore_width,
                               average_flips=args.average_flips)
    except ValueError as exc:
        raise _usage_error(str(exc)) from None
    model = import_safetensors(args.weights) if args.weights is not None else None
    with Project.open(args.project, "a") as proj:
        if model is not None:
            with proj.edit() as w:
                save_to_project(w, MODEL_KEY, model)
                w.append_log({"step": "import-weights", "source": str(args.weights), "outputs": [MODEL_KEY]})
        result = run_denoise(proj, params, progress=progress, cancel=cancel)
    progress.close()
    if args.json:
        json.dump({"method": params.method, "source": result.source, "model": result.model,
                   "frames": result.series.n_frames, "output": "/processed/denoised", "notes": result.notes}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    for note in result.notes:
        print(f"note: {note}")
    print(f"{result.series.n_frames} frames from {result.source} denoised with {params.method} "
          f"(model {result.model}) -> /processed/denoised")
    return 0
