"""Tilt-refinement page: nominal versus refined angles, shifts and residuals per frame."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from ..step_panel import StepPanel, replace_fields
from ..widgets.images import ImagePanel
from ..widgets.plots import make_plot, pen

KEY = "processed/alignment"


class RefinePanel(StepPanel):
    """Finds each frame's true tilt angle and shift (continuous tilt, Supp. H)."""

    key = "refine"
    title = "Tilt refinement"
    description = ("Aligns the frames and solves each frame's true tilt angle and shift from features "
                   "followed through the series; the angles follow a smooth curve in time.")
    steps = ("refine",)

    def build_result(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.angles = make_plot("Tilt angle per frame", "frame", "angle", y_units="°")
        self.delta = make_plot("Refined − nominal angle", "frame", "Δ angle", y_units="°")
        self.shifts = make_plot("Frame shifts", "frame", "shift", y_units="px")
        self.residuals = make_plot("Residual per frame", "frame", "RMS residual", y_units="px")
        self.aligned = ImagePanel("Aligned series (slider: tilt angle in °)")
        grid.addWidget(self.summary, 0, 0, 1, 3)
        grid.addWidget(self.angles, 1, 0)
        grid.addWidget(self.delta, 1, 1)
        grid.addWidget(self.aligned, 1, 2, 2, 1)
        grid.addWidget(self.shifts, 2, 0)
        grid.addWidget(self.residuals, 2, 1)
        grid.setColumnStretch(2, 1)
        return box

    def show_result(self) -> None:
        project = self.session.project
        for p in (self.angles, self.delta, self.shifts, self.residuals):
            p.clear()
        self.residuals.setTitle("Residual per frame")
        if project is None or KEY not in project:
            self.summary.setText("No refinement yet: press Run.")
            return
        a = project.attrs(KEY)
        notes = json.loads(a.get("notes", "[]"))
        self.summary.setText(f"Method: {a.get('method', '?')}, {int(a.get('n_features', 0))} features, "
                             f"source {a.get('source', '?')}." + (" " + " ".join(notes[-2:]) if notes else ""))
        refined = project.read_array(f"{KEY}/angles_deg")
        nominal = project.read_array(f"{KEY}/nominal_angles_deg")
        frames = np.arange(len(refined))
        self.angles.plot(frames, nominal, pen=pen(0, dashed=True), name="nominal")
        self.angles.plot(frames, refined, pen=pen(1), symbol="o", symbolSize=4, name="refined")
        if "truth/rapid_angles_deg" in project:
            self.angles.plot(frames, project.read_array("truth/rapid_angles_deg"), pen=pen(2, 1),
                             name="true (synthetic)")
        self.delta.plot(frames, refined - nominal, pen=pen(1), symbol="o", symbolSize=4, name="refined − nominal")
        shifts = project.read_array(f"{KEY}/shifts_px")
        self.shifts.plot(frames, shifts[:, 0], pen=pen(0), name="dy")
        self.shifts.plot(frames, shifts[:, 1], pen=pen(1), name="dx")
        res = project.read_array(f"{KEY}/residuals_px")
        measured = np.isfinite(res)
        if measured.any():
            self.residuals.plot(frames[measured], res[measured], pen=pen(3), symbol="o", symbolSize=4,
                                name="residual")
        else:
            self.residuals.setTitle("Residual per frame (none: no features were followed)")
        if "processed/aligned" in project:
            s = project.read_series("processed/aligned")
            self.aligned.set_image(s.frames, s.pixel_size_nm, xvals=s.angles_deg)

    def quick_params(self, name: str, params: Any) -> Any:
        return replace_fields(params, rounds=1, max_features=150)
