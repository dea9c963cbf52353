"""``rstem``: the command line of the workbench (DESIGN.md, "Command line contract").

User errors (missing file, wrong format, bad flag) exit with status 2 and one line on stderr;
``--json`` output is one JSON object on stdout; long work draws a progress bar on a terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from . import __version__
from .errors import Cancelled, RstemError
from .progress import CancelToken

EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130

#: commands that run one pipeline step on a project (a failure is recorded in its /log)
STEP_COMMANDS = ("calibrate", "curate", "train", "denoise", "refine", "reconstruct", "evaluate")


class UsageError(RstemError):
    """A bad command line (unknown flag, missing argument)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog.split()[0]} --help)")


class TerminalProgress:
    """A one-line progress bar on a terminal; silent when stderr is not a terminal."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = self.stream.isatty() and os.environ.get("TERM") != "dumb"
        self._last = 0.0
        self._start = time.perf_counter()

    def __call__(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and fraction < 1.0:
            return
        self._last = now
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(round(self.width * fraction))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = now - self._start
        self.stream.write(f"\r[{bar}] {100 * fraction:5.1f}% {elapsed:6.1f}s {message[:50]:<50}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _build_parser() -> _Parser:
    parser = _Parser(prog="rstem", description="Rapid STEM dislocation tomography workbench")
    parser.add_argument("--version", action="version", version=f"rstem {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="new project from the synthetic experiment")
    p.add_argument("project", type=Path)
    p.add_argument("--size", type=int, default=512, help="frame size in pixels (default 512)")
    p.add_argument("--frames", type=int, default=71, help="frames per tilt series (default 71)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--previews", type=Path, default=None, help="folder for PNG previews")

    p = sub.add_parser("import", help="import microscope files into a project")
    p.add_argument("project", type=Path)
    p.add_argument("role", help="rapid | slow | grating-rapid | grating-slow | training")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--angles", type=Path, help="tilt angles, one per frame (.rawtlt/.tlt)")
    p.add_argument("--acquisition", type=Path, help="acquisition.json (times, pixel size)")
    p.add_argument("--tilts", type=Path, help="JSON mapping training files to their stage tilt (deg)")
    p.add_argument("--pixel-size", type=float, help="pixel size in nm, if the file lacks it")
    p.add_argument("--tilt-axis", type=float, help="tilt-axis direction in the image (deg from +x)")
    p.add_argument("--channel", help="which image of a multi-image file (e.g. a Velox detector)")
    p.add_argument("--replace", action="store_true", help="replace data already imported for ROLE")

    p = sub.add_parser("info", help="what a project holds and the state of each step")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = sub.add_parser("export", help="write a volume or stack for other viewers")
    p.add_argument("project", type=Path)
    p.add_argument("out", type=Path, help="output file: .mrc, .tif/.tiff or .zarr")
    p.add_argument("--what", default="volume", choices=["volume", "aligned", "denoised", "raw", "distortion"])
    p.add_argument("--role", default="rapid", help="which raw series for --what raw (default rapid)")

    p = sub.add_parser("reconstruct", help="reconstruct the volume (SIRT by default)")
    p.add_argument("project", type=Path)
    p.add_argument("--algorithm", default="sirt", choices=["sirt", "fbp", "cgls"])
    p.add_argument("--iterations", type=int, default=50, help="SIRT/CGLS iterations (default 50)")
    p.add_argument("--relaxation", type=float, default=1.0, help="SIRT relaxation in (0, 2)")
    p.add_argument("--filter", default="ram-lak", help="FBP filter window")
    p.add_argument("--preprocess", default="normalize", choices=["normalize", "binarize", "none"],
                   help="contrast treatment before reconstruction (none for HAADF)")
    p.add_argument("--thickness", type=float, help="z extent in nm (default: estimated from the data)")
    p.add_argument("--binning", type=int, default=1, help="bin frames b x b for a quick preview")
    p.add_argument("--pad-rows", type=int, default=None,
                   help="volume rows reconstructed above and below the frame, then cut off "
                        "(default: what the most tilted view needs; 0 is faster, with bright edge rows)")
    p.add_argument("--no-time-lag", action="store_true", help="one angle per frame instead of per scan row")
    p.add_argument("--noisy-share", type=float, default=1.0,
                   help="share of the frames before denoising in the reconstructed signal when the denoised "
                        "series is reconstructed (default 1: those frames alone, with the refined geometry; "
                        "0: the denoised frames alone)")
    p.add_argument("--saturate", type=float, default=0.0,
                   help="clip each normalised frame at this fraction of its 99.5th percentile (e.g. 0.5), so "
                        "faint dislocations reach the strong ones' height: more of them found, placed less well "
                        "(default 0: off; denoised frames only, so with --noisy-share below 1)")
    p.add_argument("--source", default="auto", choices=["auto", "aligned", "denoised", "corrected", "raw"])
    p.add_argument("--backend", default="torch", choices=["torch", "astra", "tomopy"])
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")

    p = sub.add_parser("calibrate", help="distortion map of the rapid scan from the grating pair; corrected frames")
    p.add_argument("project", type=Path)
    p.add_argument("--window", type=int, help="correlation window edge in px (default 1.5 grating periods)")
    p.add_argument("--step", type=int, help="distance between windows in px (default a quarter window)")
    p.add_argument("--sigma", type=float, default=0.5, help="Gaussian noise smoothing before matching, px")
    p.add_argument("--iterations", type=int, default=5, help="refinement passes (default 5)")
    p.add_argument("--min-quality", type=float, default=0.25, help="correlation a window needs to count (0..1)")
    p.add_argument("--max-residual", type=float, default=1.0, help="reject when the fit residual exceeds this, px")
    p.add_argument("--order", type=int, default=3, choices=[1, 3], help="interpolation of the correction (1 or 3)")
    p.add_argument("--save-map", type=Path, help="also write the map to this file (a calibration library)")
    p.add_argument("--load-map", type=Path, help="use a saved map instead of the grating pair")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = sub.add_parser("curate", help="DCFI references and thickness matching of the training areas")
    p.add_argument("project", type=Path)
    p.add_argument("--threshold", type=float, default=0.17,
                   help="largest accepted relative thickness difference (default 0.17 = 17 %%)")
    p.add_argument("--statistic", default="background", choices=["background", "shot-noise"],
                   help="thickness statistic (shot-noise: when detector gain/offset differ)")
    p.add_argument("--accept", action="append", default=[], metavar="AREA", help="accept this area (repeatable)")
    p.add_argument("--reject", action="append", default=[], metavar="AREA", help="reject this area (repeatable)")
    p.add_argument("--clear-overrides", action="store_true", help="forget earlier --accept/--reject decisions")
    p.add_argument("--recompute", action="store_true", help="recompute existing DCFI references")
    p.add_argument("--nonrigid", type=int, default=0, metavar="BANDS",
                   help="DCFI non-rigid refinement with this many row bands (default 0: rigid)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    from .denoise.command import add_denoise_arguments, add_train_arguments

    try:
        from .align.command import add_refine_arguments
    except ImportError:
        def add_refine_arguments(p: argparse.ArgumentParser) -> None:
            p.add_argument("project", type=Path)

    add_train_arguments(sub.add_parser("train", help="train the U-Net denoiser on the curated training set"))
    add_denoise_arguments(sub.add_parser("denoise", help="denoise the rapid series (U-Net or a baseline)"))
    add_refine_arguments(sub.add_parser("refine", help="refine every frame's tilt angle and shift; aligned series"))

    p = sub.add_parser("evaluate", help="positional errors of the volume against the slow tomogram or the truth")
    p.add_argument("project", type=Path)
    p.add_argument("--reference", default="auto", choices=["auto", "slow", "truth"],
                   help="compare with the slow tomogram or (synthetic projects) the truth; auto picks")
    p.add_argument("--threshold", type=float, default=0.2,
                   help="weakest spot counted as a dislocation, as a fraction of a typical dislocation's brightness")
    p.add_argument("--noise-floor", type=float, default=4.5,
                   help="raise the threshold to this many times the volume's noise level where that is higher "
                        "(default 4.5; 0: off)")
    p.add_argument("--min-prominence", type=float, default=0.02,
                   help="how far (same fraction) two parts of a spot must rise above the pass between them to "
                        "count as two dislocations (default 0.02)")
    p.add_argument("--line-smooth", type=float, default=14.0, metavar="NM",
                   help="average the volume along its dislocation lines over this Gaussian sigma, nm, before "
                        "looking for centres (default 14; 0: off)")
    p.add_argument("--split-pileups", type=float, default=3.0, metavar="RATIO",
                   help="split a spot into one centre per dislocation where it is this many times longer than a "
                        "typical spot, discounted by its shift between sections (default 3; 0: off)")
    p.add_argument("--centroids-on-volume", action="store_true",
                   help="weigh each centre with the volume itself instead of the volume averaged along its lines")
    p.add_argument("--max-distance", type=float, default=30.0, help="largest paired distance, nm (default 30)")
    p.add_argument("--no-register", action="store_true", help="do not remove the overall offset first")
    p.add_argument("--no-denoise-scores", action="store_true", help="skip scoring the denoisers (faster)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")

    p = sub.add_parser("run", help="run every step that is not run or stale, with stored or default parameters")
    p.add_argument("project", type=Path)
    p.add_argument("--from", dest="start", choices=list(_step_names()), help="first step to consider")
    p.add_argument("--until", choices=list(_step_names()), help="last step to consider")
    p.add_argument("--force", action="store_true", help="run the chosen steps even when up to date")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return parser


def _step_names() -> tuple[str, ...]:
    from .pipeline import STEP_NAMES

    return STEP_NAMES


def _cmd_demo(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    if args.size < 32:
        raise RstemError(f"--size must be at least 32 pixels, got {args.size}")
    if args.frames < 3:
        raise RstemError(f"--frames must be at least 3, got {args.frames}")
    from .simulate import SimulationConfig, write_demo_project

    config = SimulationConfig.scaled(size=args.size, frames=args.frames, seed=args.seed)
    path = write_demo_project(args.project, config, progress=progress, cancel=cancel, previews_dir=args.previews)
    progress.close()
    print(f"wrote {path}")
    return 0


def _cmd_import(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .project import ROLES, Project

    if args.role not in ROLES:
        raise RstemError(f"unknown role {args.role!r}; choose one of: {', '.join(ROLES)}")
    from .importing import import_files, load_acquisition, load_tilts

    acquisition = load_acquisition(args.acquisition) if args.acquisition else None
    tilts = load_tilts(args.tilts) if args.tilts else None
    proj = Project.open(args.project, "a") if args.project.exists() else Project.create(args.project)
    with proj:
        written = import_files(
            proj, args.role, args.files, angles_file=args.angles, acquisition=acquisition, tilts=tilts,
            pixel_size_nm=args.pixel_size, tilt_axis_deg=args.tilt_axis, channel=args.channel,
            replace_existing=args.replace, progress=progress, cancel=cancel,
        )
        progress.close()
        for key in written:
            s = proj.read_series(key)
            print(
                f"{key}: {s.n_frames} frames of {s.shape[1]}x{s.shape[2]} px, "
                f"{s.pixel_size_nm:.4g} nm/px, {s.angles_deg.min():.2f} to {s.angles_deg.max():.2f} deg"
            )
    return 0


def _cmd_info(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .info import describe, format_text
    from .project import Project

    with Project.open(args.project, "r") as proj:
        info = describe(proj)
    if args.json:
        json.dump(info, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_text(info))
    return 0


def _cmd_export(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .exporting import export
    from .project import Project

    with Project.open(args.project, "r") as proj:
        out = export(proj, args.out, what=args.what, role=args.role, progress=progress)
    progress.close()
    print(f"wrote {out}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .binarize import BinarizeParams
    from .project import Project
    from .recon.step import ReconstructionParams, run_reconstruction

    try:
        params = ReconstructionParams(
            algorithm=args.algorithm, iterations=args.iterations, relaxation=args.relaxation,
            filter_window=args.filter, thickness_nm=args.thickness, binning=args.binning,
            pad_rows=args.pad_rows,
            time_lag=not args.no_time_lag, source=args.source, backend=args.backend, device=args.device,
            preprocessing=BinarizeParams(mode=args.preprocess), noisy_share=args.noisy_share,
            saturate=args.saturate,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with Project.open(args.project, "a") as proj:
        volume = run_reconstruction(proj, params, progress=progress, cancel=cancel)
    progress.close()
    z, y, x = volume.shape
    print(f"reconstruction/volume: {z}x{y}x{x} voxels (z, y, x) of {volume.voxel_size_nm:.4g} nm; "
          + "; ".join(volume.metadata["notes"]))
    return 0


def _cmd_calibrate(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .calib import CalibrationParams, run_calibration
    from .project import Project

    try:
        params = CalibrationParams(
            window_px=args.window, step_px=args.step, prefilter_sigma_px=args.sigma, iterations=args.iterations,
            min_window_quality=args.min_quality, max_residual_px=args.max_residual,
            interpolation_order=args.order,
            load_map=str(args.load_map) if args.load_map else None,
            save_map=str(args.save_map) if args.save_map else None,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with Project.open(args.project, "a") as proj:
        result = run_calibration(proj, params, progress=progress, cancel=cancel)
    progress.close()
    q = result.distortion_map.quality
    if args.json:
        json.dump({"quality": q, "corrected": result.corrected is not None, "notes": result.notes}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    dmap = result.distortion_map
    print(f"calibration/distortion_map: dx {dmap.dx_px.min():+.2f} .. {dmap.dx_px.max():+.2f} px, "
          f"dy {dmap.dy_px.min():+.2f} .. {dmap.dy_px.max():+.2f} px")
    if "residual_rms_px" in q:
        print(f"  {q['n_valid_windows']}/{q['n_windows']} windows of {q['window_px']} px valid, fit residual "
              f"{q['residual_rms_px']:.3f} px RMS, grating period {q['grating_period_px']:.1f} px")
    if result.corrected is not None:
        n, rows, cols = result.corrected.shape
        print(f"processed/corrected: {n} frames of {rows}x{cols} px")
    for note in result.notes:
        print(f"  {note}")
    return 0


def _cmd_curate(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .curate import CurationParams, run_curation
    from .project import Project

    try:
        params = CurationParams(
            threshold=args.threshold, statistic=args.statistic, accept=tuple(args.accept),
            reject=tuple(args.reject), clear_overrides=args.clear_overrides,
            recompute_references=args.recompute, dcfi_nonrigid_bands=args.nonrigid,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with Project.open(args.project, "a") as proj:
        result = run_curation(proj, params, progress=progress, cancel=cancel)
    progress.close()
    if args.json:
        json.dump({"decisions": result.decisions, "patches": result.patches, "beer_lambert": result.beer_lambert},
                  sys.stdout)
        sys.stdout.write("\n")
        return 0
    for d in result.decisions:
        mark = "accept" if d["accepted"] else "reject"
        print(f"{d['area']}  {d['stage_tilt_deg']:5.1f} deg  {mark}  {d['reason']}")
    for p in result.patches:
        print(f"tilt {p['stage_tilt_deg']:5.1f} deg: {p['accepted']}/{p['areas']} areas accepted, {p['frames']} frames, "
              f"{p['patches']} patches of {p['patch_px']}x{p['patch_px']} px")
    print(f"training/accepted: {len(result.accepted)} of {len(result.decisions)} areas")
    return 0


def _cmd_train(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .denoise.command import cmd_train

    return cmd_train(args, progress, cancel)


def _cmd_denoise(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .denoise.command import cmd_denoise

    return cmd_denoise(args, progress, cancel)


def _cmd_refine(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .align.command import cmd_refine

    return cmd_refine(args, progress, cancel)


def _cmd_evaluate(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .analysis.evaluate import EvaluationParams, run_evaluation
    from .project import Project

    try:
        params = EvaluationParams(reference=args.reference, threshold=args.threshold,
                                  noise_floor=args.noise_floor, min_prominence=args.min_prominence,
                                  line_smooth_nm=args.line_smooth,
                                  line_averaged_centroids=not args.centroids_on_volume,
                                  split_pileups=args.split_pileups,
                                  max_distance_nm=args.max_distance, register=not args.no_register,
                                  denoise_scores=not args.no_denoise_scores)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with Project.open(args.project, "a") as proj:
        report = run_evaluation(proj, params, progress=progress, cancel=cancel)
    progress.close()
    if args.json:
        json.dump({k: v for k, v in report.items() if k != "pairs_xyz_nm"}, sys.stdout, allow_nan=True)
        sys.stdout.write("\n")
        return 0
    print(format_evaluation(report))
    return 0


def format_evaluation(report: dict) -> str:
    """The evaluation report as a few lines of text."""
    lines = [f"reference: {report['reference']}"]
    if "position_error_nm" in report:
        e = report["position_error_nm"]
        pairs = report.get("pairs", {})
        lines.append(f"mean |dGx| {e['x']:.1f} nm, |dGy| {e['y']:.1f} nm, |dGz| {e['z']:.1f} nm "
                     f"({pairs.get('y', 0)} xz and {pairs.get('x', 0)} yz pairs); "
                     f"completeness {report['completeness']:.0%}, precision {report.get('precision', float('nan')):.0%}")
    for key, unit in (("distortion_rms_px", "px"), ("angle_rms_deg", "deg"), ("shift_rms_px", "px"),
                      ("curation_accept_matched", ""), ("curation_reject_mismatched", "")):
        if report.get(key) is not None:
            lines.append(f"{key}: {report[key]:.3g} {unit}".rstrip())
    if "denoise" in report:
        lines.append("denoise (PSNR dB by tilt): " + "; ".join(
            f"{m}: " + ", ".join(f"{t}: {v['psnr_db']:.1f}" for t, v in per.items() if isinstance(v, dict))
            for m, per in report["denoise"].items() if isinstance(per, dict)))
    for note in report.get("notes", []):
        lines.append(f"  {note}")
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace, progress: TerminalProgress, cancel: CancelToken) -> int:
    from .pipeline import RunRecord, run_pipeline
    from .project import Project

    def said(record: RunRecord) -> None:
        progress.close()
        if not args.json:
            took = f" in {record.seconds:.1f} s" if record.seconds else ""
            if record.action == "ran":
                why = "" if record.reason in ("", "not run") else f" ({record.reason})"
            else:
                why = f": {record.reason}" if record.reason else ""
            print(f"{record.step:<12} {record.action}{took}{why}", flush=True)

    with Project.open(args.project, "a") as proj:
        records = run_pipeline(proj, start=args.start, until=args.until, force=args.force,
                               progress=progress, cancel=cancel, on_step=said)
        report_path = None
        if not args.no_report:
            from .analysis.report import write_report

            report_path = write_report(proj)
    progress.close()
    failed = [r for r in records if r.action == "failed"]
    if args.json:
        json.dump({"steps": [r.__dict__ for r in records], "report": str(report_path) if report_path else None},
                  sys.stdout)
        sys.stdout.write("\n")
    elif report_path:
        print(f"report: {report_path}")
    return EXIT_USER_ERROR if failed else 0


_COMMANDS = {
    "demo": _cmd_demo,
    "import": _cmd_import,
    "info": _cmd_info,
    "export": _cmd_export,
    "reconstruct": _cmd_reconstruct,
    "calibrate": _cmd_calibrate,
    "curate": _cmd_curate,
    "train": _cmd_train,
    "denoise": _cmd_denoise,
    "refine": _cmd_refine,
    "evaluate": _cmd_evaluate,
    "run": _cmd_run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error, 130 cancelled)."""
    parser = _build_parser()
    progress = TerminalProgress()
    cancel = CancelToken()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USER_ERROR
        handler = _COMMANDS[args.command]
        try:
            return handler(args, progress, cancel)
        except RstemError as exc:
            _record_failure(args, exc)
            raise
    except Cancelled as exc:
        progress.close()
        print(f"rstem: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        progress.close()
        print("rstem: interrupted; the project is unchanged", file=sys.stderr)
        return EXIT_CANCELLED
    except RstemError as exc:
        progress.close()
        print(f"rstem: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        progress.close()
        print(f"rstem: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_USER_ERROR


def _record_failure(args: argparse.Namespace, exc: RstemError) -> None:
    """Note a failed step in the project's /log (when the project itself is fine)."""
    from .errors import ProjectError

    if args.command not in STEP_COMMANDS or isinstance(exc, (ProjectError, UsageError, Cancelled)):
        return
    from .pipeline import record_failure
    from .project import Project

    try:
        with Project.open(args.project, "a") as proj:
            record_failure(proj, args.command, exc)
    except (RstemError, OSError):
        return  # the project cannot take a note (locked, unreadable): the error line says enough


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
