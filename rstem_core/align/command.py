"""Command-line glue for ``rstem refine`` (no heavy imports at module level)."""

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


def add_refine_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rstem refine PROJECT.h5``."""
    parser.add_argument("project", type=Path)
    parser.add_argument("--method", default="auto", choices=["auto", "features", "projection", "coarse"],
                        help="auto: feature tracking, projection matching when too few features can be "
                             "followed; coarse: cross-correlation only, nominal angles kept (default auto)")
    parser.add_argument("--source", default="auto", choices=["auto", "denoised", "corrected", "raw"],
                        help="rapid series to refine; auto takes the most processed one (default auto)")
    parser.add_argument("--contrast", default="auto", choices=["auto", "dark", "bright"],
                        help="dark lines on bright (bright field) or bright on dark (HAADF) (default auto)")
    parser.add_argument("--no-find-axis", action="store_true",
                        help="do not look for the tilt-axis direction in the images (trust the file)")
    parser.add_argument("--axis-search", type=float, default=20.0, metavar="DEG",
                        help="largest departure of the tilt axis from x that is looked for, in degrees; "
                             "90 for files that do not record the axis direction (default 20)")
    parser.add_argument("--fit-axis", action="store_true",
                        help="also refine a small remaining tilt-axis rotation (deg) in the least squares")
    parser.add_argument("--no-smooth", action="store_true",
                        help="leave every frame's angle free instead of a smooth angle-against-time curve")
    parser.add_argument("--acceleration", type=float, default=5.0, metavar="DEG_S2",
                        help="expected goniometer angular acceleration in deg/s^2 (deg per frame^2 without "
                             "timestamps); larger lets the angles follow the data more freely (default 5)")
    parser.add_argument("--angle-sd", type=float, default=1.0, metavar="DEG",
                        help="expected error of the nominal angles in degrees: every angle is pulled towards "
                             "its nominal value with this tolerance; larger trusts the images more (default 1)")
    parser.add_argument("--drift-acceleration", type=float, default=5.0, metavar="PX_S2",
                        help="expected drift acceleration in px/s^2 of a continuously tilted series: shifts "
                             "follow a smooth drift path (default 5)")
    parser.add_argument("--free-shifts", action="store_true",
                        help="leave every frame's shift free (no smooth drift path)")
    parser.add_argument("--thickness", type=float, default=None, metavar="NM",
                        help="specimen thickness in nm (default: estimated from the data)")
    parser.add_argument("--binning", type=int, default=0,
                        help="work binning in px per px; 0 brings the frames to about 256 px (default 0)")
    parser.add_argument("--rounds", type=int, default=8, help="feature-refinement rounds (default 8)")
    parser.add_argument("--polish-rounds", type=int, default=4,
                        help="projection-matching rounds of the shifts after the features (default 4; 0: none)")
    parser.add_argument("--one-volume", action="store_true",
                        help="measure every frame against one volume of all frames, instead of each half "
                             "(even, odd frames) against the other half's volume (faster, less robust to noise)")
    parser.add_argument("--bootstrap", type=int, default=16, metavar="N",
                        help="feature resamples of the last round: its angles and shifts averaged over them "
                             "and the angles' standard deviations taken from their spread (default 16; 0: one "
                             "solution)")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _flag_summary(flags: Any) -> dict[str, list[int]]:
    """Frame indices per flag name, only the flags that occur."""
    import numpy as np

    from .refine import FLAG_NAMES

    out: dict[str, list[int]] = {}
    for bit, name in FLAG_NAMES.items():
        idx = np.flatnonzero(np.asarray(flags) & bit)
        if idx.size:
            out[name] = [int(i) for i in idx]
    return out


def cmd_refine(args: argparse.Namespace, progress: Any, cancel: Any) -> int:
    """``rstem refine``: refine every frame's tilt angle and shift; store them and the aligned series."""
    import numpy as np

    from ..project import Project
    from ..refine_step import OUTPUT, RefineParams, run_refinement
    from .refine import FLAG_EXCLUDED, last_round_change_deg

    try:
        params = RefineParams(
            method=args.method, source=args.source, contrast=args.contrast,
            find_tilt_axis=not args.no_find_axis, axis_search_deg=args.axis_search, fit_tilt_axis=args.fit_axis,
            smooth_angles=not args.no_smooth, angle_acceleration_deg_s2=args.acceleration,
            nominal_angle_sd_deg=args.angle_sd,
            drift_acceleration_px_s2=None if args.free_shifts else args.drift_acceleration, thickness_nm=args.thickness,
            binning=args.binning, rounds=args.rounds, polish_rounds=args.polish_rounds,
            split_halves=not args.one_volume, bootstrap_resamples=args.bootstrap, device=args.device,
        )
    except ValueError as exc:
        raise _usage_error(str(exc)) from None
    with Project.open(args.project, "a") as proj:
        result = run_refinement(proj, params, progress=progress, cancel=cancel)
        source = str(proj.h5[OUTPUT].attrs["source"])
        nominal = proj.read_array(f"{OUTPUT}/nominal_angles_deg")
    progress.close()
    flags = _flag_summary(result.flags)
    change = result.angles_deg - nominal
    residual = result.residuals_px[np.isfinite(result.residuals_px)]
    report = {
        "source": source,
        "method": result.method,
        "contrast": result.contrast,
        "frames": int(result.angles_deg.size),
        "angle_range_deg": [float(result.angles_deg.min()), float(result.angles_deg.max())],
        "angle_change_rms_deg": float(np.sqrt(np.mean(change**2))),
        "angle_change_max_deg": float(np.max(np.abs(change))),
        "shift_max_px": float(np.max(np.abs(result.shifts_px))),
        "tilt_axis_deg": float(result.tilt_axis_deg),
        "features": int(result.n_features),
        "residual_median_px": float(np.median(residual)) if residual.size else None,
        "angle_sd_median_deg": float(np.nanmedian(result.angle_sd_deg))
        if result.angle_sd_deg is not None and np.isfinite(result.angle_sd_deg).any() else None,
        "last_round_change_deg": last_round_change_deg(result.round_angles_deg, (result.flags & FLAG_EXCLUDED) == 0),
        "flags": flags,
        "notes": list(result.notes),
    }
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"source: {source}")
    print(f"method: {result.method} ({result.contrast} contrast, {result.n_features} features)")
    print(f"angles: {report['angle_range_deg'][0]:.2f} to {report['angle_range_deg'][1]:.2f} deg over "
          f"{report['frames']} frames; changed from nominal by {report['angle_change_rms_deg']:.2f} deg RMS "
          f"(at most {report['angle_change_max_deg']:.2f} deg)")
    print(f"shifts: at most {report['shift_max_px']:.2f} px; tilt axis {result.tilt_axis_deg:.2f} deg from x")
    if report["residual_median_px"] is not None:
        print(f"residuals: median {report['residual_median_px']:.2f} px per frame")
    if flags:
        for name, idx in flags.items():
            print(f"flagged {name}: frames {', '.join(str(i) for i in idx)}")
    else:
        print("flags: none")
    for note in result.notes:
        print(f"note: {note}")
    print(f"stored: /{OUTPUT} and /processed/aligned")
    return 0
