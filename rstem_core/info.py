"""A summary of a project's contents for ``rstem info`` and the GUI's project page."""

from __future__ import annotations

from typing import Any

import numpy as np

from .pipeline import get_step, step_states
from .project import ROLES, Project


def _series_summary(project: Project, key: str) -> dict[str, Any]:
    grp = project.h5[key]
    n, rows, cols = grp["frames"].shape
    angles = grp["angles_deg"][()]
    out: dict[str, Any] = {
        "key": "/" + key,
        "frames": int(n),
        "rows": int(rows),
        "cols": int(cols),
        "pixel_size_nm": float(grp.attrs["pixel_size_nm"]),
        "angle_min_deg": round(float(np.min(angles)), 4),
        "angle_max_deg": round(float(np.max(angles)), 4),
        "angles_deg": [round(float(a), 4) for a in angles],
    }
    if "line_time_s" in grp.attrs:
        out["line_time_s"] = float(grp.attrs["line_time_s"])
    if "timestamps_s" in grp:
        out["duration_s"] = round(float(grp["timestamps_s"][-1] - grp["timestamps_s"][0]), 4)
    return out


def describe(project: Project) -> dict[str, Any]:
    """Everything ``rstem info --json`` prints: files, series per role, datasets, step states."""
    attrs = project.attrs("/")
    roles: dict[str, Any] = {}
    for role in ROLES:
        key = f"raw/{role}"
        if key not in project:
            continue
        if role == "training":
            areas = [_series_summary(project, f"{key}/{a}") for a in sorted(project.groups(key))]
            tilts = sorted({round(float(np.median(a["angles_deg"])), 2) for a in areas})
            roles[role] = {
                "areas": len(areas),
                "frames": int(sum(a["frames"] for a in areas)),
                "stage_tilts_deg": tilts,
                "area_list": [{k: v for k, v in a.items() if k != "angles_deg"} for a in areas],
            }
        else:
            roles[role] = _series_summary(project, key)
    truth = "truth" in project and len(project.h5["truth"]) > 0
    states = step_states(project)
    return {
        "path": str(project.path),
        "schema_version": int(attrs["schema_version"]),
        "created": str(attrs.get("created", "")),
        "modified": str(attrs.get("modified", "")),
        "software": str(attrs.get("software", "")),
        "roles": roles,
        "truth": truth,
        "steps": {name: st.state for name, st in states.items()},
        "step_reasons": {name: st.reason for name, st in states.items() if st.reason},
        "next_step": next((n for n, st in states.items() if st.state != "done" and get_step(n).ready(project)), None),
        "datasets": project.datasets(),
        "log": project.log_entries(),
    }


def format_text(info: dict[str, Any]) -> str:
    """A human-readable rendering of :func:`describe`."""
    lines = [f"{info['path']}  (schema {info['schema_version']}, {info['software']}, modified {info['modified']})"]
    if not info["roles"]:
        lines.append("  no data imported yet: use `rstem import PROJECT ROLE FILE...`")
    for role, s in info["roles"].items():
        if role == "training":
            lines.append(
                f"  training        {s['areas']} areas, {s['frames']} frames, stage tilts "
                + ", ".join(f"{t:g}" for t in s["stage_tilts_deg"]) + " deg"
            )
        else:
            lines.append(
                f"  {role:<15} {s['frames']} frames of {s['rows']}x{s['cols']} px at {s['pixel_size_nm']:.4g} nm,"
                f" {s['angle_min_deg']:g} to {s['angle_max_deg']:g} deg"
            )
    if info["truth"]:
        lines.append("  truth           ground truth of the synthetic experiment")
    lines.append("steps:")
    reasons = info.get("step_reasons", {})
    for name, state in info["steps"].items():
        why = f"  ({reasons[name]})" if name in reasons else ""
        mark = "  <- next" if name == info.get("next_step") else ""
        lines.append(f"  {name:<12} {state}{why}{mark}")
    return "\n".join(lines) + "\n"
