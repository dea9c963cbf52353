"""Tilt-refinement page: nominal versus refined angles, shifts and residuals per frame."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyqtgraph as pg
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
        # no intensity histogram here: beside four plots it took most of the column, leaving the
        # frames a sliver
        self.aligned = ImagePanel("Aligned series (slider: tilt angle in °)", histogram=False)
        grid.addWidget(self.summary, 0, 0, 1, 3)
        grid.addWidget(self.angles, 1, 0)
        grid.addWidget(self.delta, 1, 1)
        grid.addWidget(self.aligned, 1, 2, 2, 1)
        grid.addWidget(self.shifts, 2, 0)
        grid.addWidget(self.residuals, 2, 1)
        for column, stretch in enumerate((1, 1, 1)):
            grid.setColumnStretch(column, stretch)
        self._tracks: np.ndarray | None = None
        self._track_marks: pg.ScatterPlotItem | None = None
        self._track_px = 1.0
        return box

    def show_result(self) -> None:
        project = self.session.project
        for p in (self.angles, self.delta, self.shifts, self.residuals):
            p.clear()
        self.residuals.setTitle("Residual per frame")
        for axis in ("left", "bottom"):
            self.residuals.showAxis(axis)
        self.residuals.enableAutoRange()
        if project is None or KEY not in project:
            self.summary.setText("No refinement yet: press Run.")
            return
        a = project.attrs(KEY)
        notes = json.loads(a.get("notes", "[]"))
        self.summary.setText(f"Method: {a.get('method', '?')}, {int(a.get('n_features', 0))} features, "
                             f"source {a.get('source', '?')}." + (" " + "; ".join(notes[-2:]) + "." if notes else ""))
        refined = project.read_array(f"{KEY}/angles_deg")
        nominal = project.read_array(f"{KEY}/nominal_angles_deg")
        frames = np.arange(len(refined))
        self.angles.plot(frames, nominal, pen=pen(0, dashed=True), name="nominal")
        self.angles.plot(frames, refined, pen=pen(1), symbol="o", symbolSize=4, name="refined")
        if "truth/rapid_angles_deg" in project:
            self.angles.plot(frames, project.read_array("truth/rapid_angles_deg"), pen=pen(2, 1),
                             name="true (synthetic)")
        self.delta.plot(frames, refined - nominal, pen=pen(1), symbol="o", symbolSize=4, name="refined − nominal")
        if f"{KEY}/angle_sd_deg" in project:  # ± one standard deviation of each refined angle
            sd = project.read_array(f"{KEY}/angle_sd_deg")
            ok = np.isfinite(sd)
            self.delta.addItem(pg.ErrorBarItem(x=frames[ok], y=(refined - nominal)[ok], height=2 * sd[ok], beam=0.3,
                                               pen=pen(1)))
        if f"{KEY}/round_angles_deg" in project:  # how far the last feature round still moved them
            rounds = project.read_array(f"{KEY}/round_angles_deg")
            if len(rounds) >= 2:
                self.delta.plot(frames, rounds[-2] - nominal, pen=pen(4, 1.5, dashed=True), name="one round before")
        if "truth/rapid_angles_deg" in project:
            self.delta.plot(frames, project.read_array("truth/rapid_angles_deg") - nominal, pen=pen(2, 1),
                            name="true − nominal (synthetic)")
        shifts = project.read_array(f"{KEY}/shifts_px")
        self.shifts.plot(frames, shifts[:, 0], pen=pen(0), name="dy")
        self.shifts.plot(frames, shifts[:, 1], pen=pen(1), name="dx")
        res = project.read_array(f"{KEY}/residuals_px")
        measured = np.isfinite(res)
        if measured.any():
            self.residuals.plot(frames[measured], res[measured], pen=pen(3), symbol="o", symbolSize=4,
                                name="residual")
        else:  # a plain note instead of empty axes
            self.residuals.setTitle("No residuals (no features)")
            for axis in ("left", "bottom"):
                self.residuals.hideAxis(axis)
            note = pg.TextItem("No features were followed:\nthe angles and shifts are\nthose of the "
                               "coarse alignment.", color="#555555", anchor=(0.5, 0.5))
            self.residuals.addItem(note)
            note.setPos(0.5, 0.5)
            self.residuals.disableAutoRange()
            self.residuals.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self._tracks = None
        if "processed/aligned" in project:
            s = project.read_series("processed/aligned")
            self._track_px = s.pixel_size_nm
            if f"{KEY}/tracks_px" in project:
                self._tracks = project.read_array(f"{KEY}/tracks_px")
                self.aligned.set_title(f"Aligned series with the {self._tracks.shape[1]} followed features "
                                       "(green; slider: tilt angle in °)")
            else:
                self.aligned.set_title("Aligned series (slider: tilt angle in °)")
            self.aligned.set_image(s.frames, s.pixel_size_nm, xvals=s.angles_deg)
            self.aligned.view.setCurrentIndex(int(np.argmin(np.abs(s.angles_deg))))
        self._show_tracks()

    def _show_tracks(self) -> None:
        """Mark where the followed features were measured in the frame on show."""
        if self._track_marks is None:
            self._track_marks = pg.ScatterPlotItem(size=9, pen=pg.mkPen("#33ff66", width=1.5), brush=None,
                                                   symbol="o")
            self.aligned.plot_item().addItem(self._track_marks)
            self.aligned.view.sigTimeChanged.connect(lambda *_: self._show_tracks())
        if self._tracks is None:
            self._track_marks.setData([], [])
            return
        k = min(max(int(self.aligned.view.currentIndex), 0), self._tracks.shape[0] - 1)
        pts = self._tracks[k]
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        px = self._track_px
        self._track_marks.setData((pts[:, 1] + 0.5) * px, (pts[:, 0] + 0.5) * px)

    def quick_params(self, name: str, params: Any) -> Any:
        return replace_fields(params, rounds=1, polish_rounds=0, max_features=150, split_halves=False,
                              bootstrap_resamples=0)
