"""Denoising speed per 512 x 512 frame: U-Net shapes (tiled inference as the step runs it) against
BM3D in the same run.

The frames are rapid-scan-like (Poisson noise around a smooth image with dark lines). Each U-Net is
untrained (speed does not depend on the weights); the time per frame is the best of ``--repeats``
runs of ``denoise_frames`` over ``--frames`` frames, divided by the frame count. BM3D runs on one
frame (the default baseline settings). Prints one JSON line:
``{"threads", "frame_px", "unet": {shape: s_per_frame}, "chosen", "chosen_s_per_frame",
"series_71_s", "bm3d_s_per_frame", "series_faster_than_one_bm3d_frame"}``.

    python benchmarks/denoise_speed.py                  # chosen shape and alternatives, 2 threads
    python benchmarks/denoise_speed.py --threads 2 --frames 8 --no-bm3d
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from rstem_core.denoise.inference import denoise_frames
from rstem_core.denoise.network import UNet
from rstem_core.denoise.step import DenoiseParams
from rstem_core.denoise.weights import DenoiserModel

#: (depth, base_channels, unshuffle, convs_per_level) to compare; the first is the default shape
SHAPES = [(3, 16, 2, 2), (3, 8, 2, 2), (3, 16, 1, 2), (3, 32, 1, 2)]


def frames_like_rapid(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 6 + 3 * np.sin(7 * xx) * np.cos(5 * yy)
    for _ in range(12):
        a, c = rng.uniform(0, np.pi), rng.uniform(0, 1)
        img -= 3 * np.exp(-(((xx - c) * np.cos(a) + (yy - 0.5) * np.sin(a)) * size) ** 2 / 4)
    return (4.0 * rng.poisson(np.clip(img, 0.1, None), (n, size, size))).astype(np.float32)


def time_unet(shape: tuple[int, int, int, int], frames: np.ndarray, repeats: int, tile: int) -> float:
    depth, width, unshuffle, convs = shape
    torch.manual_seed(0)
    model = DenoiserModel(UNet(depth, width, unshuffle=unshuffle, convs_per_level=convs))
    denoise_frames(frames[:1], model, tile_px=tile, device="cpu")
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        denoise_frames(frames, model, tile_px=tile, device="cpu")
        best = min(best, time.perf_counter() - t)
    return best / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--frames", type=int, default=8, help="frames per timed run (default 8)")
    parser.add_argument("--size", type=int, default=512, help="frame edge, px (default 512)")
    parser.add_argument("--tile", type=int, default=DenoiseParams().tile_px,
                        help="largest tile edge, px (default: the denoise step's own)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per shape; the best counts")
    parser.add_argument("--shapes", nargs="*", default=None, metavar="D,W,U,C",
                        help="U-Net shapes depth,width,unshuffle,convs (default: a comparison set)")
    parser.add_argument("--no-bm3d", action="store_true", help="skip BM3D")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else SHAPES
    frames = frames_like_rapid(args.frames, args.size)
    unet = {}
    for shape in shapes:
        unet["d{}w{}u{}c{}".format(*shape)] = round(time_unet(shape, frames, args.repeats, args.tile), 4)
    chosen = "d{}w{}u{}c{}".format(*shapes[0])
    bm3d_s = None
    if not args.no_bm3d:
        from rstem_core.denoise.baselines import denoise_baseline

        t = time.perf_counter()
        denoise_baseline(frames[0], "bm3d")
        bm3d_s = round(time.perf_counter() - t, 3)
    per_frame = unet[chosen]
    print(json.dumps({
        "threads": args.threads, "frame_px": args.size, "tile_px": args.tile, "frames_timed": args.frames,
        "unet": unet, "chosen": chosen, "chosen_s_per_frame": per_frame, "series_71_s": round(71 * per_frame, 3),
        "bm3d_s_per_frame": bm3d_s,
        "series_faster_than_one_bm3d_frame": None if bm3d_s is None else bool(71 * per_frame < bm3d_s),
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
