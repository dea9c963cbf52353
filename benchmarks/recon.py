"""SIRT-50 of a 71-frame, 512-row tilt series: rstem's engine against ASTRA's CPU SIRT, side by side.

Prints one JSON line. Both reconstruct the same slab geometry (512 rows x nz voxels per x-slice,
71 angles from -70 to +70 degrees) from the same data in this process: ours all slices at once,
ASTRA slice by slice with its "linear" projector (the same matrix as ours).

    python benchmarks/recon.py --quick        # 64 x-slices (a few minutes on 2 cores)
    python benchmarks/recon.py                # all 512 x-slices (ASTRA takes long)
    python benchmarks/recon.py --device cuda  # our engine on the GPU (ASTRA stays on the CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from rstem_core.recon import Geometry, Projector, reconstruct


def dislocation_phantom(nz: int, rows: int, cols: int, n_lines: int = 30, seed: int = 0) -> np.ndarray:
    """Inclined tubes from the top to the bottom of a slab: a dislocation-like test volume."""
    rng = np.random.default_rng(seed)
    vol = np.zeros((nz, rows, cols), np.float32)
    z = np.arange(nz)
    for _ in range(n_lines):
        y0, x0 = rng.uniform(0, rows), rng.uniform(0, cols)
        dy, dx = rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5)
        ys = np.clip(np.round(y0 + dy * (z - nz / 2)).astype(int), 0, rows - 1)
        xs = np.clip(np.round(x0 + dx * (z - nz / 2)).astype(int), 0, cols - 1)
        vol[z, ys, xs] = 1.0
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(vol, 1.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 x-slices instead of 512")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--frames", type=int, default=71)
    parser.add_argument("--nz", type=int, default=80, help="slab voxels (300 nm at 4.56 nm + margin)")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-astra", action="store_true", help="time only our engine (e.g. on a GPU box)")
    args = parser.parse_args()
    cols = 64 if args.quick else args.rows
    angles = np.linspace(-70, 70, args.frames)
    geometry = Geometry(angles, args.rows, cols, args.nz)
    truth = dislocation_phantom(args.nz, args.rows, cols)
    series = Projector(geometry, "cpu").project(truth)
    series += np.random.default_rng(1).normal(0, 0.05 * series.std(), series.shape).astype(np.float32)

    if args.device.startswith("cuda"):
        reconstruct(series[:, :, :8], Geometry(angles, args.rows, 8, args.nz), iterations=2, device=args.device)
        torch.cuda.synchronize()
    t = time.perf_counter()
    ours = reconstruct(series, geometry, iterations=args.iterations, device=args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - t
    result = {
        "benchmark": "recon_sirt",
        "quick": args.quick,
        "frames": args.frames,
        "rows": args.rows,
        "x_slices": cols,
        "nz": args.nz,
        "iterations": args.iterations,
        "device": args.device,
        "ours_s": round(t_ours, 2),
        "ours_rel_rms_vs_truth": round(float(np.sqrt(np.mean((ours - truth) ** 2)) / np.sqrt(np.mean(truth**2))), 4),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    if not args.no_astra:
        t = time.perf_counter()
        theirs = reconstruct(series, geometry, iterations=args.iterations, backend="astra")
        t_astra = time.perf_counter() - t
        rel = float(np.sqrt(np.mean((ours - theirs) ** 2)) / np.sqrt(np.mean(theirs**2)))
        result.update(
            astra_s=round(t_astra, 2),
            speedup_vs_astra=round(t_astra / t_ours, 2),
            relative_rms_vs_astra=round(rel, 6),
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
