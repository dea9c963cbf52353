"""Scan-distortion calibration of a 512 x 512 grating pair: rstem against scikit-image's dense
iterative Lucas-Kanade optical flow, side by side on the same synthetic pair.

Prints one JSON line: wall times and each method's RMS error against the simulator's true field
(over the frame, the afterglow delay removed as in ``rstem_core.analysis.truth_scores``). The peer
gets the same band-pass pre-filtered images and a 1.5-period window; its dense flow is
``rapid -> slow``, i.e. directly the map's definition.

    python benchmarks/calibration.py              # 512 px, seed 0
    python benchmarks/calibration.py --size 256 --seed 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from skimage.registration import optical_flow_ilk

from rstem_core.analysis.truth_scores import field_errors, measured_afterglow_delay_px
from rstem_core.calib import estimate_distortion
from rstem_core.calib.measure import prefilter
from rstem_core.simulate import SimulationConfig
from rstem_core.simulate.distortion import generate_scan_distortion
from rstem_core.simulate.experiment import simulate_grating_pair
from rstem_core.simulate.seeding import component_rng
from rstem_core.simulate.series import rapid_chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the fastest counts")
    args = parser.parse_args()
    config = SimulationConfig.scaled(size=args.size, frames=3, seed=args.seed)
    field = generate_scan_distortion(component_rng(args.seed, "distortion"), args.size, args.size, config.scan)
    slow, rapid, truth = simulate_grating_pair(config, field)
    slow_img, rapid_img = slow.frames[0], rapid.frames[0]

    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        dmap = estimate_distortion(slow_img, rapid_img, pixel_size_nm=config.pixel_size_nm)
        times.append(time.perf_counter() - t)
    q = dmap.quality
    delay = measured_afterglow_delay_px(
        truth.clean, rapid_chain(config).kernel, q["prefilter_sigma_px"], q["prefilter_highpass_px"]
    )
    ours = field_errors(dmap.dx_px, dmap.dy_px, field.dx_px, field.dy_px, delay)

    s = prefilter(slow_img, q["prefilter_sigma_px"], q["prefilter_highpass_px"])
    r = prefilter(rapid_img, q["prefilter_sigma_px"], q["prefilter_highpass_px"])
    t = time.perf_counter()
    flow_y, flow_x = optical_flow_ilk(s, r, radius=q["window_px"] // 2, num_warp=10)
    t_peer = time.perf_counter() - t
    peer = field_errors(flow_x, flow_y, field.dx_px, field.dy_px, delay)

    print(json.dumps({
        "benchmark": "calibration",
        "size": args.size,
        "seed": args.seed,
        "ours_s": round(min(times), 2),
        "ours_distortion_rms_px": round(ours["distortion_rms_px"], 4),
        "ours_shape_rms_px": round(ours["distortion_shape_rms_px"], 4),
        "ours_valid_windows": f"{q['n_valid_windows']}/{q['n_windows']}",
        "ours_model": {k: dmap.model[k] for k in ("x_intervals", "y_degree", "y_x_intervals", "dy_form")},
        "skimage_ilk_s": round(t_peer, 2),
        "skimage_ilk_distortion_rms_px": round(peer["distortion_rms_px"], 4),
        "true_field_range_px": round(float(np.ptp(field.dx_px)), 2),
        "afterglow_delay_px": round(delay, 3),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
