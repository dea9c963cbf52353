"""Denoising quality on the synthetic experiment: the U-Net's training modes against BM3D and the
simple filters, per stage tilt, on held-out training areas (paper Tables 1-3).

A synthetic project is simulated and curated (or ``--project`` reuses one); the test areas of
``rstem_core.analysis.denoise_scores.heldout_areas`` are kept out of training; each training mode
trains one network; every method denoises one frame of each test area, scored against the
noise-free truth and against the DCFI reference (PSNR, SSIM, relative line width and intensity).
The default method is the training mode with the best mean PSNR against the truth among those whose
line width stays within 90-110 % at every tilt. Prints one JSON line::

    {"default_method", "methods": {name: {tilt: {psnr_db, ssim, width_ratio, intensity_ratio}}},
     "methods_vs_dcfi": {...}, "targets": {...}, "training": {mode: {...}}, "config": {...}}

    python benchmarks/denoise_quality.py --quick      # fewer areas, brief training (< 15 min on 2 cores)
    python benchmarks/denoise_quality.py              # 256 px, full training
    python benchmarks/denoise_quality.py --size 512 --modes supervised --epochs 10 --patches-per-frame 6
        # the paper's 4.56 nm pixel and full training set (35 areas x 50 frames per tilt): the
        # targets' measurement; about an hour on 2 cores (simulation 6 min, curation 16, training 31)
    python benchmarks/denoise_quality.py --project P.h5 --modes --average-flips \
        --model starter=resources/denoiser_starter_4.56nm.safetensors   # no training; each U-Net also
        # averaged over the frame and its two flips; P need not be curated (then no DCFI table)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from rstem_core.analysis.denoise_scores import (
    baseline_denoisers,
    heldout_areas,
    score_table,
    test_images,
    unet_denoiser,
    with_tilt,
)
from rstem_core.curate import run_curation
from rstem_core.denoise.inference import denoise_frames
from rstem_core.denoise.training import TrainParams, train_denoiser
from rstem_core.denoise.weights import export_safetensors, import_safetensors
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig, write_demo_project

MODES = ("supervised", "noise2noise", "noise2void")
KEEP = ("psnr_db", "ssim", "width_ratio", "intensity_ratio")


def time_to_fraction(history: list[dict], fraction: float = 0.95) -> float | None:
    """Training seconds until the validation PSNR first reached ``fraction`` of its final best."""
    best = max(h["val_psnr_db"] for h in history)
    for h in history:
        if h["val_psnr_db"] >= fraction * best:
            return h["elapsed_s"]
    return None


def compact(table: dict) -> dict:
    return {m: {t: {k: (None if v[k] is None else round(v[k], 4)) for k in KEEP} for t, v in per.items()}
            for m, per in table.items()}


def meets(table: dict, name: str) -> dict:
    tilts = table["bm3d"].keys()
    psnr_ok = all((table[name][t]["psnr_db"] or -1e9) >= (table["bm3d"][t]["psnr_db"] or 1e9) for t in tilts)
    width_ok = all(0.9 <= (table[name][t]["width_ratio"] or 0) <= 1.1 for t in tilts)
    return {"psnr_ge_bm3d_every_tilt": psnr_ok, "width_within_90_110_every_tilt": width_ok}


def add_unet(denoisers: dict, name: str, model, average_flips: bool = False) -> None:
    """The network as trained (with its line-width restoration) and, when it has one, without it;
    with ``average_flips`` also the mean over the frame and its two flips (``NAME-flips``)."""
    denoisers[name] = with_tilt(unet_denoiser(model, device="cpu"))
    if average_flips:
        denoisers[f"{name}-flips"] = with_tilt(unet_denoiser(model, device="cpu", average_flips=True))
    if model.width_restoration is not None:
        denoisers[f"{name}-unrestored"] = lambda frame, m=model: denoise_frames(frame, m, device="cpu",
                                                                                 restore_width=False)


def memoised(fn):
    """Denoise each test frame once even when it is scored against two references."""
    seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    tilted = getattr(fn, "uses_tilt", False)

    def run(frame: np.ndarray, tilt_deg: float | None = None) -> np.ndarray:
        key = id(frame)
        if key not in seen or seen[key][0] is not frame:
            seen[key] = (frame, fn(frame, tilt_deg) if tilted else fn(frame))
        return seen[key][1]

    return with_tilt(run) if tilted else run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic set, brief training")
    parser.add_argument("--project", type=Path, help="reuse this curated synthetic project")
    parser.add_argument("--size", type=int, help="frame size of the simulated set, px (default 256; 512 and up "
                                                 "simulate the default experiment with its whole training set)")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    parser.add_argument("--shape", default="3,16,2,2", metavar="D,W,U,C",
                        help="U-Net depth,width,unshuffle,convs_per_level (default 3,16,2,2)")
    parser.add_argument("--epochs", type=int, help="training epochs (default 8 quick, 40 full)")
    parser.add_argument("--patches-per-frame", type=int, help="patches per training frame (default 6 quick, 8 full)")
    parser.add_argument("--loss", default="mse", choices=["mse", "l1"], help="training loss (default mse)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE.safetensors",
                        help="also score this trained model (repeatable); with --modes and no names, no training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--average-flips", action="store_true",
                        help="also score every U-Net averaged over the frame and its two flips (NAME-flips)")
    parser.add_argument("--start-from", default="scratch", choices=["scratch", "starter"],
                        help="initial weights (default scratch: the shipped starter was trained on the same "
                             "simulated specimen, so starting from it would carry the test areas' specimen in)")
    parser.add_argument("--save-models", type=Path, metavar="DIR", help="write each trained model as safetensors here")
    args = parser.parse_args()
    started = time.perf_counter()
    depth, width, unshuffle, convs = (int(v) for v in args.shape.split(","))
    epochs = args.epochs or (8 if args.quick else 40)
    ppf = args.patches_per_frame or (12 if args.quick else 8)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.project
        if path is None:
            size, frames, apt, fpa = (256, 9, 8, 16) if args.quick else (256, 31, 12, 23)
            if args.size:
                size = args.size
                if size >= 512:
                    frames, apt, fpa = 71, None, None  # the default experiment's own training set
            path = Path(tmp) / "synthetic.h5"
            write_demo_project(path, SimulationConfig.scaled(size=size, frames=frames, seed=args.seed,
                                                             areas_per_tilt=apt, frames_per_area=fpa))
            with Project.open(path, "a") as proj:
                run_curation(proj)
        setup_s = time.perf_counter() - started
        with Project.open(path, "r") as proj:
            held = heldout_areas(proj)
            test = sorted(a for names in held.values() for a in names)
            records = test_images(proj, held)
            denoisers = baseline_denoisers()
            training = {}
            for mode in args.modes:
                params = TrainParams(mode=mode, depth=depth, base_channels=width, unshuffle=unshuffle,
                                     convs_per_level=convs, epochs=epochs, patience=max(3, epochs // 4),
                                     patches_per_frame=ppf, seed=args.seed, exclude_areas=tuple(test), device="cpu",
                                     loss=args.loss, start_from=args.start_from)
                t0 = time.perf_counter()
                model = train_denoiser(proj, params)
                history = model.description["training"]["history"]
                training[mode] = {"time_s": round(time.perf_counter() - t0, 1), "epochs": len(history) - 1,
                                  "time_to_95pct_val_psnr_s": time_to_fraction(history),
                                  "val_psnr_db": model.description["metrics"]["validation_psnr_db"],
                                  "val_psnr_initial_db": model.description["metrics"]["validation_psnr_initial_db"],
                                  "train_patches": model.description["training"]["train_patches"]}
                if args.save_models is not None:
                    args.save_models.mkdir(parents=True, exist_ok=True)
                    export_safetensors(model, args.save_models / f"{mode}.safetensors")
                training[mode]["width_restoration"] = model.description.get("width_restoration")
                add_unet(denoisers, f"unet-{mode}", model, args.average_flips)
            for item in args.model:
                name, file = item.split("=", 1)
                add_unet(denoisers, f"unet-{name}", import_safetensors(file), args.average_flips)
            cached = {name: memoised(fn) for name, fn in denoisers.items()}
            vs_truth = compact(score_table(cached, records, reference="truth"))
            has_dcfi = any(r.dcfi is not None for r in records)
            vs_dcfi = compact(score_table(cached, records, reference="dcfi")) if has_dcfi else None
    unets = [n for n in vs_truth if n.startswith("unet-")]
    checks = {name: meets(vs_truth, name) for name in unets}

    def mean_psnr(name: str) -> float:
        return float(np.mean([v["psnr_db"] for v in vs_truth[name].values()]))

    trained = [n for n in unets if not n.endswith("-unrestored")]  # what the product runs
    good = [n for n in trained if checks[n]["width_within_90_110_every_tilt"]] or trained
    default = max(good, key=mean_psnr)
    print(json.dumps({
        "default_method": default, "methods": vs_truth, "methods_vs_dcfi": vs_dcfi,
        "targets": {**checks[default], "per_mode": checks}, "training": training,
        "test_areas": {str(int(round(t))): v for t, v in held.items()},
        "config": {"quick": args.quick, "size": args.size, "start_from": args.start_from, "shape": args.shape, "epochs": epochs, "patches_per_frame": ppf,
                   "project": str(args.project) if args.project else "simulated", "setup_s": round(setup_s, 1),
                   "total_s": round(time.perf_counter() - started, 1)},
    }))


if __name__ == "__main__":
    main()
