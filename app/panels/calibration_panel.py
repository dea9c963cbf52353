"""Calibration page: grating pair, displacement map (heat map and arrows), residuals, overlay."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from rstem_core.calib import DistortionMap

from ..step_panel import StepPanel
from ..widgets.images import ImagePanel
from ..widgets.plots import make_plot

MAP_KEY = "calibration/distortion_map"


def two_colour(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Display overlay: ``a`` in magenta, ``b`` in green (grey where they agree), (rows, cols, 3)."""

    def unit(x: np.ndarray) -> np.ndarray:
        lo, hi = np.percentile(x, [1, 99])
        return np.clip((x - lo) / max(hi - lo, 1e-9), 0, 1)

    ua, ub = unit(np.asarray(a, np.float32)), unit(np.asarray(b, np.float32))
    return np.stack([ua, ub, ua], axis=-1)


class CalibrationPanel(StepPanel):
    """Measures the rapid scan's distortion from a cross-grating imaged slowly and rapidly."""

    key = "calibrate"
    title = "Calibration"
    description = ("Compares the cross-grating imaged with the slow and the rapid scan to measure "
                   "where each rapid pixel really was, then corrects every rapid frame (Fig. 1g).")
    steps = ("calibrate",)

    def build_result(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.slow = ImagePanel("Grating, slow scan (reference)", histogram=False)
        self.rapid = ImagePanel("Grating, rapid scan (distorted)", histogram=False)
        self.dmap = ImagePanel("Displacement along x (px, colour) and measured windows (arrows ×5)",
                               histogram=True)
        self.residuals = make_plot("Fit residuals per window", "|measured − fitted|", "windows",
                                   x_units="px")
        self.before = ImagePanel("Before: slow (magenta) over rapid (green)", histogram=False)
        self.after = ImagePanel("After correction: slow (magenta) over rapid (green)", histogram=False)
        grid.addWidget(self.summary, 0, 0, 1, 3)
        grid.addWidget(self.slow, 1, 0)
        grid.addWidget(self.rapid, 1, 1)
        grid.addWidget(self.dmap, 1, 2)
        grid.addWidget(self.before, 2, 0)
        grid.addWidget(self.after, 2, 1)
        grid.addWidget(self.residuals, 2, 2)
        return box

    def show_result(self) -> None:
        project = self.session.project
        if project is None:
            return
        px = 1.0
        if "raw/grating-slow" in project and "raw/grating-rapid" in project:
            slow = project.read_series("raw/grating-slow")
            rapid = project.read_series("raw/grating-rapid")
            px = slow.pixel_size_nm
            self.slow.set_image(slow.frames[0], px)
            self.rapid.set_image(rapid.frames[0], px)
            self.before.set_image(two_colour(slow.frames[0], rapid.frames[0]), px, levels=(0, 1))
        if MAP_KEY not in project:
            self.summary.setText("No calibration yet: press Run." if "raw/grating-rapid" in project else
                                 "No grating pair imported: distortion correction is skipped.")
            return
        dmap = DistortionMap.read_group(project.h5[MAP_KEY])
        q = dmap.quality
        self.summary.setText(
            "Residual RMS {r} px over {v} of {n} windows; displacement x from {lo:.2f} to {hi:.2f} px."
            .format(r=f"{q.get('residual_rms_px', float('nan')):.3g}", v=q.get("n_valid_windows", "?"),
                    n=q.get("n_windows", "?"), lo=float(dmap.dx_px.min()), hi=float(dmap.dx_px.max())))
        self.dmap.set_image(dmap.dx_px.astype(np.float32), px,
                            levels=(float(dmap.dx_px.min()), float(dmap.dx_px.max()) + 1e-6))
        self.dmap.set_colormap("viridis")
        self._arrows(dmap, px)
        win = dmap.windows
        if "window_residual_px" in win:
            res = np.hypot(*np.asarray(win["window_residual_px"], float).T)
            valid = np.asarray(win.get("window_valid", np.ones(len(res))), bool)
            counts, edges = np.histogram(res[valid], bins=20)
            self.residuals.clear()
            self.residuals.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts,
                                                   brush="#1f77b4"))
        if "raw/grating-rapid" in project and "raw/grating-slow" in project:
            order = int(project.params(MAP_KEY).get("interpolation_order", 3)) if project.params(MAP_KEY) else 3
            fixed = dmap.correct(rapid.frames[:1], order=order)[0]
            self.after.set_image(two_colour(slow.frames[0], fixed), px, levels=(0, 1))

    def _arrows(self, dmap: DistortionMap, px: float) -> None:
        win = dmap.windows
        plot = self.dmap.plot_item()
        if getattr(self, "_arrow_item", None) is not None:
            plot.removeItem(self._arrow_item)
            self._arrow_item = None
        if "window_centres_px" not in win:
            return
        centres = np.asarray(win["window_centres_px"], float)
        disp = np.asarray(win["window_displacement_px"], float)
        gain = 5.0
        start = centres[:, ::-1] * px  # (x, y) in nm
        end = start + disp[:, ::-1] * px * gain
        xy = np.empty((2 * len(start), 2))
        xy[0::2], xy[1::2] = start, end
        self._arrow_item = pg.PlotDataItem(xy[:, 0], xy[:, 1], connect="pairs", pen=pg.mkPen("w", width=1.5))
        plot.addItem(self._arrow_item)
