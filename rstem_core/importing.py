"""Bring microscope files into a project under a role (rapid, slow, grating pair, training).

The file readers live in :mod:`rstem_core.io`; this module decides where the result goes in the
project, merges the acquisition description, and keeps ``/raw`` append-only unless asked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RstemError
from .io import read_series
from .model import TiltSeries
from .progress import CancelToken, ProgressFn, sub_progress
from .project import ROLES, Project

#: keys allowed in ``--acquisition FILE.json`` (DESIGN.md), all in SI units or degrees
ACQUISITION_KEYS = (
    "pixel_size_nm",
    "dwell_time_s",
    "line_time_s",
    "frame_time_s",
    "frame_interval_s",
    "tilt_start_deg",
    "tilt_end_deg",
    "nominal_tilt_rate_deg_s",
    "fast_scan_axis",
)


def role_key(role: str) -> str:
    """Where a role's data lives in the project (``training`` is a group of areas)."""
    if role not in ROLES:
        raise RstemError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    return f"raw/{role}"


def load_acquisition(path: str | Path) -> dict[str, Any]:
    """Read and check an ``acquisition.json`` (see DESIGN.md for its keys).

    Raises
    ------
    RstemError
        If the file is missing, not JSON, has unknown keys or non-positive times and sizes.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RstemError(f"{path}: no such acquisition file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RstemError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RstemError(f"{path}: must hold one JSON object with keys {', '.join(ACQUISITION_KEYS)}")
    unknown = sorted(set(data) - set(ACQUISITION_KEYS))
    if unknown:
        raise RstemError(
            f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(ACQUISITION_KEYS)}"
        )
    for key, value in data.items():
        if key == "fast_scan_axis":
            if value not in ("x", "y"):
                raise RstemError(f"{path}: fast_scan_axis must be 'x' or 'y', got {value!r}")
            continue
        if not isinstance(value, (int, float)) or not np.isfinite(value):
            raise RstemError(f"{path}: {key} must be a number, got {value!r}")
        if key.endswith(("_s", "_nm")) and value <= 0:
            raise RstemError(f"{path}: {key} must be positive, got {value}")
    return data


def load_tilts(path: str | Path) -> dict[str, float]:
    """Read ``--tilts FILE.json``: ``{"file name or path": stage_tilt_deg, ...}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RstemError(f"{path}: no such tilts file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RstemError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise RstemError(f'{path}: must map file names to stage tilts in degrees, e.g. {{"area1.emd": 20}}')
    return {str(k): float(v) for k, v in data.items()}


def apply_acquisition(series: TiltSeries, acq: dict[str, Any]) -> TiltSeries:
    """Merge an acquisition description into a series: times, pixel size and metadata."""
    if not acq:
        return series
    changes: dict[str, Any] = {"metadata": {**series.metadata, "acquisition": acq}}
    if "pixel_size_nm" in acq:
        changes["pixel_size_nm"] = float(acq["pixel_size_nm"])
    rows = series.frames.shape[1]
    if "line_time_s" in acq:
        changes["line_time_s"] = float(acq["line_time_s"])
    elif "frame_time_s" in acq:
        changes["line_time_s"] = float(acq["frame_time_s"]) / rows
    elif "dwell_time_s" in acq:
        changes["line_time_s"] = float(acq["dwell_time_s"]) * series.frames.shape[2]
    if series.timestamps_s is None and "frame_interval_s" in acq:
        changes["timestamps_s"] = np.arange(series.n_frames) * float(acq["frame_interval_s"])
    return replace(series, **changes)


def _tilt_for(file: Path, tilts: dict[str, float]) -> float | None:
    for key in (str(file), file.name, file.stem):
        if key in tilts:
            return tilts[key]
    return None


def import_files(
    project: Project,
    role: str,
    files: Sequence[str | Path],
    *,
    angles_file: str | Path | None = None,
    acquisition: dict[str, Any] | None = None,
    tilts: dict[str, float] | None = None,
    pixel_size_nm: float | None = None,
    tilt_axis_deg: float | None = None,
    channel: str | None = None,
    replace_existing: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Import files into ``project`` under ``role``; returns the project keys written.

    For ``training`` every file is one area (a stack of repeated frames at one stage tilt); the
    tilt comes from ``tilts`` (file name -> degrees) or from the file's own stage metadata. For the
    other roles all files together form one series (one stack, or one file per tilt).

    Raises
    ------
    RstemError
        Unknown role, unreadable file, or the role is already filled and ``replace_existing`` is
        False.
    """
    key = role_key(role)
    if not files:
        raise RstemError("no files given to import")
    acquisition = acquisition or {}
    tilts = tilts or {}
    cancel = cancel or CancelToken()
    if key in project and not replace_existing and role != "training":
        raise RstemError(
            f"{project.path.name} already has a {role} series; add --replace to replace it"
        )
    started = time.perf_counter()
    read_opts = {
        "pixel_size_nm": pixel_size_nm if pixel_size_nm is not None else acquisition.get("pixel_size_nm"),
        "tilt_axis_deg": tilt_axis_deg,
        "channel": channel,
    }
    written: list[str] = []
    if role == "training":
        areas: list[TiltSeries] = []
        for i, f in enumerate(files):
            cancel.check()
            f = Path(f)
            tilt = _tilt_for(f, tilts)
            series = read_series(
                [f],
                angles_file=angles_file,
                angles_deg=tilt,
                progress=sub_progress(progress, i / len(files), (i + 1) / len(files)),
                **read_opts,
            )
            series = apply_acquisition(series, acquisition)
            stage = float(np.median(series.angles_deg))
            areas.append(replace(series, metadata={**series.metadata, "stage_tilt_deg": stage}))
        with project.edit() as w:
            if replace_existing:
                w.delete(key)
            start = 0 if replace_existing else len(project.groups(key))
            for j, s in enumerate(areas):
                k = f"{key}/area_{start + j:03d}"
                w.write_series(k, s)
                written.append(k)
            w.append_log(_log_entry(role, files, written, started))
    else:
        # a grating image is taken untilted; its angle is not needed and often not recorded
        fixed = 0.0 if role.startswith("grating") and angles_file is None else None
        series = read_series(
            files, angles_file=angles_file, angles_deg=fixed, progress=progress, **read_opts
        )
        cancel.check()
        series = apply_acquisition(series, acquisition)
        with project.edit() as w:
            w.write_series(key, series)
            written.append(key)
            w.append_log(_log_entry(role, files, written, started))
    if progress:
        progress(1.0, f"imported {role}")
    return written


def _log_entry(role: str, files: Sequence[str | Path], written: list[str], started: float) -> dict[str, Any]:
    return {
        "step": "import",
        "params": {"role": role, "files": [str(Path(f).absolute()) for f in files]},
        "outputs": written,
        "duration_s": round(time.perf_counter() - started, 3),
    }
