"""The processing report: one HTML page with PNG figures in a folder beside the project.

``write_report(project)`` writes ``NAME_report/index.html`` next to ``NAME.h5`` with: the steps,
their state, parameters and times; the evaluation numbers; the denoising table per tilt; the
tilt angles (nominal, refined, true when known); the distortion map; orthogonal slices and a
maximum-intensity projection of the volume; the paired dislocation centres (paper Fig. 6) and
the depth error against y and x (Fig. 7). Figures are made with matplotlib (Agg, no screen).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..pipeline import STEPS, step_states
from ..project import Project


def report_folder(project: Project) -> Path:
    """The report's folder: ``NAME_report`` beside ``NAME.h5``."""
    return project.path.with_name(project.path.stem + "_report")


def _figure(width: float, height: float):  # noqa: ANN202 - matplotlib types
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, folder: Path, name: str) -> str:
    fig.savefig(folder / name)
    return name


def plot_angles(project: Project, folder: Path) -> str | None:
    """Nominal, refined and (synthetic) true frame angles, and refined minus nominal."""
    if "raw/rapid" not in project:
        return None
    nominal = project.read_array("raw/rapid/angles_deg")
    frames = np.arange(nominal.size)
    fig = _figure(9, 3.6)
    ax, dev = fig.subplots(1, 2)
    ax.plot(frames, nominal, "k--", lw=1, label="nominal")
    curves = {}
    if "processed/alignment/angles_deg" in project:
        curves["refined"] = project.read_array("processed/alignment/angles_deg")
    if "truth/rapid_angles_deg" in project:
        curves["true"] = project.read_array("truth/rapid_angles_deg")
    for (name, angles), style in zip(curves.items(), ("C0o-", "C3-"), strict=False):
        ax.plot(frames, angles, style, ms=3, lw=1, label=name)
        dev.plot(frames, angles - nominal, style, ms=3, lw=1, label=f"{name} - nominal")
    if "refined" in curves and "processed/alignment/angle_sd_deg" in project:
        sd = project.read_array("processed/alignment/angle_sd_deg")
        d = curves["refined"] - nominal
        dev.fill_between(frames, d - sd, d + sd, color="C0", alpha=0.2, lw=0, label="refined ± 1 sd")
    ax.set(xlabel="frame", ylabel="tilt angle (deg)", title="Tilt angles")
    dev.set(xlabel="frame", ylabel="difference (deg)", title="Departure from the nominal angles")
    ax.legend(fontsize=8)
    if curves:
        dev.legend(fontsize=8)
    dev.axhline(0, color="k", lw=0.5)
    return _save(fig, folder, "angles.png")


def plot_distortion(project: Project, folder: Path) -> str | None:
    """The calibrated distortion map (x and y displacement, px)."""
    key = "calibration/distortion_map"
    if key not in project:
        return None
    grp = project.h5[key]
    fig = _figure(9, 3.8)
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, ("dx_px", "dy_px"), strict=True):
        data = grp[name][()]
        im = ax.imshow(data, cmap="coolwarm", vmin=-np.abs(data).max(), vmax=np.abs(data).max())
        ax.set(title=f"{name[:2]} displacement (px)", xlabel="x (px)", ylabel="y (px)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, folder, "distortion.png")


def plot_volume(project: Project, folder: Path) -> str | None:
    """Central orthogonal slices and maximum-intensity projections of the volume."""
    if "reconstruction/volume" not in project:
        return None
    vol = project.read_volume("reconstruction/volume")
    data, v = vol.data, vol.voxel_size_nm
    nz, ny, nx = data.shape
    fig = _figure(11, 6.4)
    axes = fig.subplots(2, 3, gridspec_kw={"height_ratios": [3, 1]})
    lo, hi = np.percentile(data, [1, 99.8])
    ext_xy = (-nx * v / 2, nx * v / 2, ny * v / 2, -ny * v / 2)
    ext_xz = (-nx * v / 2, nx * v / 2, nz * v / 2, -nz * v / 2)
    ext_yz = (-ny * v / 2, ny * v / 2, nz * v / 2, -nz * v / 2)
    panels = (
        (axes[0, 0], data[nz // 2], ext_xy, "xy slice (z = 0)", "x (nm)", "y (nm)"),
        (axes[0, 1], data.max(axis=0), ext_xy, "projection along z (MIP)", "x (nm)", "y (nm)"),
        (axes[0, 2], data[:, :, nx // 2].T, (ext_yz[2], ext_yz[3], ext_yz[1], ext_yz[0]),
         "yz slice (x = 0)", "z (nm)", "y (nm)"),
        (axes[1, 0], data[:, ny // 2, :], ext_xz, "xz slice (y = 0)", "x (nm)", "z (nm)"),
        (axes[1, 1], data.max(axis=1), ext_xz, "projection along y (MIP)", "x (nm)", "z (nm)"),
        (axes[1, 2], data.max(axis=2), ext_yz, "projection along x (MIP)", "y (nm)", "z (nm)"),
    )
    for ax, img, extent, title, xl, yl in panels:
        mip = "MIP" in title
        ax.imshow(img, cmap="gray", vmin=lo, vmax=img.max() if mip else hi, extent=extent, aspect="equal")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
        ax.tick_params(labelsize=7)
    return _save(fig, folder, "volume.png")


def plot_positions(report: dict[str, Any], folder: Path) -> list[str]:
    """Paired centres in y-z and x-z (Fig. 6) and dz against y and x (Fig. 7)."""
    pairs = report.get("pairs_xyz_nm")
    if not pairs:
        return []
    reference = report.get("reference", "reference")
    fig = _figure(11, 3.8)
    axes = fig.subplots(1, 2)
    for ax, (axis, (h, name)) in zip(axes, {"x": (1, "y"), "y": (0, "x")}.items(), strict=True):
        pts = pairs.get(axis)
        if not pts or not pts["found"]:
            ax.set_title(f"no pairs in the {name}z sections")
            continue
        f, r = np.asarray(pts["found"]), np.asarray(pts["reference"])
        ax.scatter(r[:, h], r[:, 2], s=10, c="tab:red", label=reference, alpha=0.7)
        ax.scatter(f[:, h], f[:, 2], s=10, c="tab:cyan", label="volume", alpha=0.7)
        ax.set(xlabel=f"{name} (nm)", ylabel="z (nm)", title=f"paired centres, {name}z sections")
        ax.legend(fontsize=8)
    names = [_save(fig, folder, "centres.png")]
    fig = _figure(15, 3.4)
    axes = fig.subplots(1, 3)
    for ax, (bands, values, name) in zip(
            axes[:2], ((report.get("y_bands_nm"), report.get("dz_by_y_nm"), "y"),
                       (report.get("x_bands_nm"), report.get("dz_by_x_nm"), "x")), strict=True):
        if bands:
            ax.plot(bands, values, "o-", color="tab:blue")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(xlabel=f"{name} (nm)", ylabel="mean dz (nm)", title=f"depth error against {name}")
    depth, share = report.get("z_bands_nm"), report.get("completeness_by_z")
    if depth:
        axes[2].plot(depth, 100 * np.asarray(share, dtype=float), "o-", color="tab:green")
    axes[2].set(xlabel="z (nm)", ylabel=f"{reference} centres found (%)", ylim=(0, 105),
                title="completeness against depth")
    names.append(_save(fig, folder, "dz.png"))
    return names


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.4g}"
    return html.escape(str(value))


def _denoise_table(table: dict[str, Any]) -> str:
    rows = []
    for method, per in table.items():
        if not isinstance(per, dict):
            continue
        for tilt, scores in per.items():
            if isinstance(scores, dict) and "psnr_db" in scores:
                rows.append([html.escape(method), html.escape(str(tilt))] + [
                    _fmt(scores.get(k, float("nan"))) for k in ("psnr_db", "ssim", "width_ratio", "intensity_ratio")])
    return _table(rows, ["method", "tilt (deg)", "PSNR (dB)", "SSIM", "width ratio", "intensity ratio"]) if rows else ""


def write_report(project: Project, folder: Path | None = None) -> Path:
    """Write the HTML report and its figures; returns the path of ``index.html``."""
    folder = Path(folder) if folder is not None else report_folder(project)
    folder.mkdir(parents=True, exist_ok=True)
    states = step_states(project)
    last: dict[str, dict[str, Any]] = {}
    for entry in project.log_entries():
        if "step" in entry:
            last[str(entry["step"])] = entry
    rows = []
    for step in STEPS:
        entry = last.get(step.name, {})
        st = states[step.name]
        params = entry.get("params")
        said = [str(n) for n in entry.get("notes", []) or []]
        if st.state == "not run" and not step.ready(project):
            said = [f"skipped: {step.missing}"]
        elif entry.get("status") == "failed":
            said = [f"failed: {entry.get('error', '')}"]
        rows.append([
            html.escape(step.title), html.escape(st.state + (f" ({st.reason})" if st.reason else "")),
            _fmt(entry.get("duration_s", "")), html.escape("; ".join(said)),
            f"<code>{html.escape(json.dumps(params))}</code>" if params else "",
        ])
    parts = [f"<h1>rstem report: {html.escape(project.path.name)}</h1>",
             f"<p>{html.escape(str(project.attrs('/').get('software', '')))}, "
             f"modified {html.escape(str(project.attrs('/').get('modified', '')))}</p>",
             "<h2>Steps</h2>", _table(rows, ["step", "state", "time (s)", "what happened", "parameters"])]
    report = project.read_json("evaluation/report") if "evaluation/report" in project else {}
    if report:
        numbers = [[html.escape(k), _fmt(v)] for k, v in report.items()
                   if isinstance(v, (int, float, str)) and k not in ("voxel_nm",)]
        for k in ("position_error_nm", "offset_nm"):
            if k in report:
                numbers.append([k, ", ".join(f"{a}: {_fmt(b)}" for a, b in report[k].items())])
        parts += ["<h2>Evaluation</h2>", _table(numbers, ["quantity", "value"])]
        if "denoise" in report:
            parts += ["<h2>Denoising against the truth (held-out areas)</h2>", _denoise_table(report["denoise"])]
    figures = [("Tilt angles", plot_angles(project, folder)),
               ("Distortion map", plot_distortion(project, folder)),
               ("Volume", plot_volume(project, folder))]
    for name in plot_positions(report, folder):
        figures.append(("Dislocation centres" if name == "centres.png" else "Depth error", name))
    for title, name in figures:
        if name:
            parts += [f"<h2>{html.escape(title)}</h2>", f'<img src="{name}" alt="{html.escape(title)}">']
    style = ("body{font-family:sans-serif;max-width:1150px;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}"
             "code{font-size:11px}img{max-width:100%}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>rstem report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    out = folder / "index.html"
    out.write_text(page, encoding="utf-8")
    return out
