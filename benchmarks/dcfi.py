"""Drift-corrected frame integration of 50 frames of 512 x 512: rstem against a naive peer
(every frame registered to the first with scikit-image's phase correlation, plain mean) and the
plain unregistered average, on one synthetic training area.

Prints one JSON line: wall times, PSNR of each result against the area's clean image (each moved
to its best sub-pixel match first) and the RMS error of the drift found. The area is the
simulator's 0 deg area at the paper's settings, with a larger drift than the default (``--drift``
nm over the 50 frames) so that registration matters.

    python benchmarks/dcfi.py                     # 50 frames of 512 px, 40 nm drift
    python benchmarks/dcfi.py --frames 50 --drift 8
    python benchmarks/dcfi.py --frame-time 0.48  # 16x the dose: drift blur, not noise, limits
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from rstem_core.analysis.truth_scores import psnr_db
from rstem_core.dcfi import dcfi
from rstem_core.simulate import SimulationConfig
from rstem_core.simulate.distortion import generate_scan_distortion
from rstem_core.simulate.seeding import component_rng
from rstem_core.simulate.series import slow_chain
from rstem_core.simulate.training import AreaPlan, simulate_training_area


def naive(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each raw frame registered to the first (upsampled phase correlation), then averaged."""
    drift = np.zeros((len(frames), 2))
    moved = [frames[0]]
    for k in range(1, len(frames)):
        shift, _, _ = phase_cross_correlation(frames[0], frames[k], upsample_factor=10)
        drift[k] = -shift
        moved.append(ndimage.shift(frames[k], shift, order=3, mode="nearest"))
    return np.mean(moved, axis=0), drift


def drift_rms(found: np.ndarray, true: np.ndarray) -> float:
    err = found - (true - true[0])
    err -= err.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(err**2, axis=1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--drift", type=float, default=40.0, help="largest drift of the area, nm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--frame-time", type=float, default=None,
        help="record the frames with this frame time, s (dose grows with it; default: the rapid 30 ms)",
    )
    args = parser.parse_args()
    config = SimulationConfig.scaled(
        size=args.size, frames=71, seed=args.seed, frames_per_area=args.frames, area_drift_nm=args.drift
    )
    field = generate_scan_distortion(component_rng(args.seed, "distortion"), args.size, args.size, config.scan)
    chain = slow_chain(config, args.frame_time) if args.frame_time else None
    area = simulate_training_area(config, AreaPlan(0, 0.0, config.thickness_nm, True), field, chain=chain)
    frames = area.series.frames
    clean = area.clean * area.adu_per_unit
    margin = int(np.ceil(np.abs(area.drift_px - area.drift_px[0]).max())) + 3

    t = time.perf_counter()
    result = dcfi(frames)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    peer, peer_drift = naive(frames)
    t_peer = time.perf_counter() - t
    plain = psnr_db(frames.mean(axis=0), clean, margin)
    true_drift = area.drift_px - area.drift_px[0]
    perfect = np.mean(
        [ndimage.shift(f, -d, order=3, mode="nearest") for f, d in zip(frames, true_drift, strict=True)], axis=0
    )

    print(json.dumps({
        "benchmark": "dcfi",
        "frames": args.frames,
        "size": args.size,
        "drift_nm": args.drift,
        "frame_time_s": args.frame_time or config.frame_time_s,
        "largest_drift_px": round(float(np.abs(area.drift_px - area.drift_px[0]).max()), 2),
        "ours_s": round(t_ours, 2),
        "ours_psnr_db": round(psnr_db(result.reference, clean, margin), 2),
        "ours_drift_rms_px": round(drift_rms(result.drift_px, area.drift_px), 3),
        "naive_s": round(t_peer, 2),
        "naive_psnr_db": round(psnr_db(peer, clean, margin), 2),
        "naive_drift_rms_px": round(drift_rms(peer_drift, area.drift_px), 3),
        "plain_average_psnr_db": round(plain, 2),
        "perfect_registration_psnr_db": round(psnr_db(perfect, clean, margin), 2),
        "gain_over_plain_db": round(psnr_db(result.reference, clean, margin) - plain, 2),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
