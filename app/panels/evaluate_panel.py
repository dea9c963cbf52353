"""Evaluate page: positional errors of the dislocation centres and the paper's Fig. 6-7 plots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGridLayout, QTableWidget, QTableWidgetItem, QWidget

from ..step_panel import StepPanel, replace_fields
from ..widgets.plots import make_plot, pen

ROWS = (
    ("reference", "Compared with", ""),
    ("position_error_nm.x", "Mean |error| in x", "nm"),
    ("position_error_nm.y", "Mean |error| in y", "nm"),
    ("position_error_nm.z", "Mean |error| in z (depth)", "nm"),
    ("completeness", "Share of reference centres found", ""),
    ("precision", "Share of found centres matching the reference", ""),
    ("threshold_used", "Weakest spot counted (of a typical dislocation)", ""),
    ("pairs.y", "Paired centres (y–z sections)", ""),
    ("pairs.x", "Paired centres (x–z sections)", ""),
    ("angle_rms_deg", "Tilt angle error (RMS)", "°"),
    ("shift_rms_px", "Frame shift error (RMS)", "px"),
    ("distortion_rms_px", "Distortion map error (RMS)", "px"),
    ("voxel_nm", "Voxel size", "nm"),
)


def _get(report: dict[str, Any], path: str) -> Any:
    value: Any = report
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not np.isfinite(value):
            return "— (no pairs)"
        return f"{value:.3g} {unit}".strip()
    return f"{value} {unit}".strip()


class EvaluatePanel(StepPanel):
    """Compares the volume's dislocation centres with a reference (truth or slow tomogram)."""

    key = "evaluate"
    title = "Evaluate"
    description = ("Finds dislocation centres in cross-sections of the volume, pairs them with the "
                   "reference's and reports the positional error per axis (paper Fig. 6-7).")
    steps = ("evaluate",)

    def build_result(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Quantity", "Value"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.pairs_yz = make_plot("Centres in y–z sections (Fig. 6)", "y", "z", x_units="nm", y_units="nm")
        self.dz_y = make_plot("Depth error against y (Fig. 7)", "y", "mean Δz", x_units="nm", y_units="nm")
        self.dz_x = make_plot("Depth error against x (Fig. 7)", "x", "mean Δz", x_units="nm", y_units="nm")
        grid.addWidget(self.table, 0, 0)
        grid.addWidget(self.pairs_yz, 0, 1)
        grid.addWidget(self.dz_y, 1, 0)
        grid.addWidget(self.dz_x, 1, 1)
        return box

    def show_result(self) -> None:
        project = self.session.project
        for plot in (self.pairs_yz, self.dz_y, self.dz_x):
            plot.clear()
        if project is None or "evaluation/report" not in project:
            self.table.setRowCount(1)
            self.table.setItem(0, 0, QTableWidgetItem("No evaluation yet"))
            self.table.setItem(0, 1, QTableWidgetItem("press Run"))
            return
        report = project.read_json("evaluation/report")
        rows = [(label, _fmt(_get(report, key), unit)) for key, label, unit in ROWS
                if _get(report, key) is not None]
        for step, seconds in (report.get("timings_s") or {}).items():
            rows.append((f"Time: {step}", f"{seconds:.3g} s"))
        for note in report.get("notes") or []:
            rows.append(("Note", str(note)))
        self.table.setRowCount(len(rows))
        for r, (a, b) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(a))
            self.table.setItem(r, 1, QTableWidgetItem(b))
        self.table.resizeColumnToContents(0)
        pairs = (report.get("pairs_xyz_nm") or {}).get("y", {})
        for k, (name, symbol) in enumerate((("reference", "o"), ("found", "x"))):
            pts = np.asarray(pairs.get(name, []), float).reshape(-1, 3)
            if len(pts):
                self.pairs_yz.plot(pts[:, 1], pts[:, 2], pen=None, symbol=symbol, symbolSize=9,
                                   symbolBrush=pg.mkBrush(pen(k).color()), symbolPen=pen(k), name=name)
        for plot, bands, values in ((self.dz_y, "y_bands_nm", "dz_by_y_nm"),
                                    (self.dz_x, "x_bands_nm", "dz_by_x_nm")):
            x = np.asarray(report.get(bands) or [], float)
            y = np.asarray([np.nan if v is None else v for v in report.get(values) or []], float)
            if len(x) and len(x) == len(y):
                plot.plot(x, y, pen=pen(1), symbol="o", symbolBrush=pg.mkBrush(pen(1).color()),
                          name="mean z error", connect="finite")
                plot.addLine(y=0, pen=pg.mkPen("k", style=pg.QtCore.Qt.PenStyle.DotLine))

    def quick_params(self, name: str, params: Any) -> Any:
        return replace_fields(params, denoise_scores=False)
