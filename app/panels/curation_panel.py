"""Training-set page: each training area's thickness match, its histogram, and overrides."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from rstem_core.curate.stats import normalised_histogram

from ..params_form import set_hidden_value
from ..step_panel import StepPanel
from ..widgets.plots import make_plot, pen

COLUMNS = ("Area", "Stage tilt", "Thickness vs series", "Decision", "Reason", "Your choice")
CHOICES = ("automatic", "accept", "reject")


class CurationPanel(StepPanel):
    """DCFI references of the training areas; keeps areas whose thickness matches the series."""

    key = "curate"
    title = "Training set"
    description = ("Integrates each training area's frames (DCFI) into a clean reference and keeps "
                   "only areas as thick as the tomography specimen at the same tilt (Fig. 2a). "
                   "Override a decision in the last column, then Run again.")
    steps = ("curate",)
    hidden_fields = {"curate": ("accept", "reject", "clear_overrides")}

    def build_result(self) -> QWidget:
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        col = QVBoxLayout(top)
        col.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("")
        col.addWidget(self.summary)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.currentCellChanged.connect(lambda r, *_: self._show_histogram(r))
        col.addWidget(self.table, 1)
        split.addWidget(top)
        self.hist = make_plot("Normalised intensity histogram: area vs series at that tilt",
                              "normalised intensity", "probability")
        split.addWidget(self.hist)
        split.setSizes([320, 300])
        self._decisions: list[dict[str, Any]] = []
        return split

    def show_result(self) -> None:
        project = self.session.project
        self._decisions = []
        self.table.setRowCount(0)
        self.hist.clear()
        if project is None or "training/decisions" not in project:
            self.summary.setText("No training set yet: press Run." if project is not None
                                 and "raw/training" in project else "No training areas imported.")
            return
        self._decisions = list(project.read_json("training/decisions"))
        accepted = sum(bool(d.get("accepted")) for d in self._decisions)
        self.summary.setText(f"{accepted} of {len(self._decisions)} areas accepted. Select a row to "
                             "compare its histogram with the series.")
        self.table.setRowCount(len(self._decisions))
        for r, d in enumerate(self._decisions):
            rel = d.get("relative_thickness")
            cells = (d["area"], f"{d.get('stage_tilt_deg', 0):g}°",
                     "—" if rel is None else f"{rel * 100:+.1f} %",
                     "accepted" if d.get("accepted") else "rejected", d.get("reason", ""))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 3:
                    item.setForeground(Qt.GlobalColor.darkGreen if d.get("accepted") else Qt.GlobalColor.red)
                self.table.setItem(r, c, item)
            combo = QComboBox()
            combo.addItems(list(CHOICES))
            override = d.get("override")
            combo.setCurrentText({"accept": "accept", "reject": "reject"}.get(str(override), "automatic"))
            combo.setToolTip("Accept or reject this area whatever the thickness test says; "
                             "'automatic' follows the test. Takes effect when you Run.")
            combo.currentTextChanged.connect(self._on_override)
            self.table.setCellWidget(r, 5, combo)
        self.table.resizeColumnsToContents()
        self.table.selectRow(0)
        self._show_histogram(0)

    def _on_override(self) -> None:
        accept, reject = [], []
        for r, d in enumerate(self._decisions):
            choice = self.table.cellWidget(r, 5).currentText()
            if choice == "accept":
                accept.append(d["area"])
            elif choice == "reject":
                reject.append(d["area"])
        form = self.forms["curate"]
        form._hidden_values["reject"] = tuple(reject)
        set_hidden_value(form, "accept", tuple(accept))
        set_hidden_value(form, "clear_overrides", True)

    def _show_histogram(self, row: int) -> None:
        self.hist.clear()
        project = self.session.project
        if project is None or not 0 <= row < len(self._decisions) or self.session.busy:
            return
        d = self._decisions[row]
        key = f"raw/training/{d['area']}"
        if key not in project or "raw/rapid" not in project:
            return
        area = project.h5[f"{key}/frames"][()]
        angles = project.h5["raw/rapid/angles_deg"][()]
        k = int(np.argmin(np.abs(angles - float(d.get("stage_tilt_deg", 0.0)))))
        series = project.h5["raw/rapid/frames"][k:k + 1]
        bins = 64
        centres = (np.arange(bins) + 0.5) / bins
        self.hist.plot(centres, normalised_histogram(series, bins), pen=pen(0),
                       name=f"series frame {k} ({angles[k]:.1f}°)")
        self.hist.plot(centres, normalised_histogram(area, bins), pen=pen(1 if d.get("accepted") else 3),
                       name=f"{d['area']} ({'accepted' if d.get('accepted') else 'rejected'})")
