"""Denoise page: train the U-Net (live curves), denoise, compare raw / denoised / reference."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QGridLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from ..step_panel import StepPanel, replace_fields
from ..widgets.images import ImagePanel
from ..widgets.plots import make_plot, pen

#: (header, method or "", metric) of the score table's columns
SCORE_COLUMNS = (
    ("tilt", "", ""),
    ("PSNR raw (dB)", "raw", "psnr_db"),
    ("PSNR denoised (dB)", None, "psnr_db"),
    ("SSIM denoised", None, "ssim"),
    ("line width (%)", None, "width_ratio"),
    ("line intensity (%)", None, "intensity_ratio"),
)
EPOCH = re.compile(r"epoch (\d+): loss ([0-9.eE+-]+), validation PSNR ([0-9.eE+-]+) dB")


class DenoisePanel(StepPanel):
    """Training of the denoiser and denoising of the rapid series."""

    key = "denoise"
    title = "Denoise"
    description = ("Trains the U-Net on single frames against their DCFI references (Fig. 2), then "
                   "denoises every rapid frame. Drag the yellow line to compare profiles (Fig. 3e).")
    steps = ("train", "denoise")

    def build_result(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.curve = make_plot("Validation PSNR per epoch", "epoch", "PSNR", y_units="dB")
        self.raw = ImagePanel("Raw frame", histogram=False)
        self.denoised = ImagePanel("Denoised", histogram=False)
        self.reference = ImagePanel("Reference", histogram=False)
        self.profile = make_plot("Profile along the yellow line", "distance", "normalised intensity",
                                 x_units="nm")
        grid.addWidget(self.summary, 0, 0, 1, 3)
        grid.addWidget(self.raw, 1, 0)
        grid.addWidget(self.denoised, 1, 1)
        grid.addWidget(self.reference, 1, 2)
        grid.addWidget(self.curve, 2, 0)
        grid.addWidget(self.profile, 2, 1, 1, 2)
        self.scores = QTableWidget(0, len(SCORE_COLUMNS))
        self.scores.setHorizontalHeaderLabels([c[0] for c in SCORE_COLUMNS])
        self.scores.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.scores.verticalHeader().setVisible(False)
        self.scores.setMaximumHeight(170)
        self.scores.setToolTip("Against the noise-free truth on held-out training areas (paper Tables 1-3): "
                               "line width and intensity in % of the truth's; near 100 % the dislocations "
                               "keep their shape.")
        self.scores_label = QLabel("")
        grid.addWidget(self.scores_label, 3, 0, 1, 3)
        grid.addWidget(self.scores, 4, 0, 1, 3)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(2, 2)
        for column in range(3):  # the three frames side by side at one size
            grid.setColumnStretch(column, 1)
        self._live: list[tuple[int, float]] = []
        self._roi: pg.LineSegmentROI | None = None
        self._px = 1.0
        return box

    # -- live training curve ------------------------------------------------------------------
    def run(self) -> None:
        self._live = []
        super().run()

    def on_progress(self, fraction: float, message: str) -> None:
        super().on_progress(fraction, message)
        match = EPOCH.search(message)
        if match:
            self._live.append((int(match.group(1)), float(match.group(3))))
            e, v = np.array(self._live, float).T
            self.curve.clear()
            self.curve.plot(e, v, pen=pen(0), symbol="o", symbolSize=5, name="live")

    # -- result -------------------------------------------------------------------------------
    def show_result(self) -> None:
        project = self.session.project
        if project is None:
            return
        self._show_history(project)
        if "processed/denoised" not in project:
            self.summary.setText("No denoised series yet: press Run.")
            return
        den = project.read_series("processed/denoised")
        src_key = "processed/corrected" if "processed/corrected" in project else "raw/rapid"
        k = int(np.argmin(np.abs(den.angles_deg)))
        raw = project.h5[f"{src_key}/frames"][k].astype(np.float32)
        self._px = den.pixel_size_nm
        ref, ref_name = self._reference(project, float(den.angles_deg[k]), k)
        self.summary.setText(f"Frame {k} at {den.angles_deg[k]:.1f}°; method "
                             f"{project.params('processed/denoised') and project.params('processed/denoised').get('method', '?')}.")
        self.raw.set_title(f"Raw ({src_key.split('/')[-1]}) frame {k}")
        self.raw.set_image(raw, self._px)
        self.denoised.set_image(den.frames[k], self._px)
        self._images = [raw, den.frames[k].astype(np.float32)]
        if ref is not None:
            self.reference.set_title(ref_name)
            self.reference.set_image(ref, self._px)
            self._images.append(ref)
        self._add_line(raw.shape)
        self._show_scores(project)

    def _show_scores(self, project: Any) -> None:
        """The paper's quality table for the method used, per tilt (synthetic projects)."""
        raw_scores = project.attrs("processed/denoised").get("scores")
        method = (project.params("processed/denoised") or {}).get("method", "unet")
        self.scores.setRowCount(0)
        if not raw_scores:
            self.scores_label.setText("Quality per tilt: needs a reference (a synthetic project's truth).")
            return
        table = json.loads(raw_scores)
        self.scores_label.setText(f"<b>Quality per tilt</b> ({method} and the raw frame against the noise-free truth, "
                                  "mean ± std over held-out areas)")
        tilts = sorted(table.get(method, {}), key=float)
        self.scores.setRowCount(len(tilts))
        for r, tilt in enumerate(tilts):
            for c, (_, which, metric) in enumerate(SCORE_COLUMNS):
                if c == 0:
                    text = f"{float(tilt):.0f}°"
                else:
                    entry = table.get(method if which is None else which, {}).get(tilt, {})
                    text = _mean_std(entry.get(metric), entry.get(f"{metric}_std"), percent=metric.endswith("ratio"))
                self.scores.setItem(r, c, QTableWidgetItem(text))

    def _reference(self, project: Any, angle: float, k: int) -> tuple[np.ndarray | None, str]:
        if "truth/rapid_clean_undistorted" in project:
            return project.h5["truth/rapid_clean_undistorted"][k].astype(np.float32), "Reference (noise-free truth)"
        if "raw/slow" in project:
            angles = project.h5["raw/slow/angles_deg"][()]
            j = int(np.argmin(np.abs(angles - angle)))
            return project.h5["raw/slow/frames"][j].astype(np.float32), f"Reference (slow frame at {angles[j]:.1f}°)"
        return None, "Reference (none: no slow series)"

    def _show_history(self, project: Any) -> None:
        if "models/denoiser/description" not in project:
            return
        history = project.read_json("models/denoiser/description").get("training", {}).get("history", [])
        pts = [(h["epoch"], h["val_psnr_db"]) for h in history if h.get("val_psnr_db") is not None]
        if pts:
            e, v = np.array(pts, float).T
            self.curve.clear()
            self.curve.plot(e, v, pen=pen(0), symbol="o", symbolSize=5, name="trained")

    def _add_line(self, shape: tuple[int, ...]) -> None:
        plot = self.raw.plot_item()
        if self._roi is not None:
            plot.removeItem(self._roi)
        rows, cols = shape
        y = rows / 2 * self._px
        self._roi = pg.LineSegmentROI([[cols * 0.2 * self._px, y], [cols * 0.8 * self._px, y]],
                                      pen=pg.mkPen("y", width=2))
        plot.addItem(self._roi)
        self._roi.sigRegionChanged.connect(self._update_profile)
        self._update_profile()

    def _update_profile(self) -> None:
        if self._roi is None:
            return
        (x0, y0), (x1, y1) = [(p[1].x(), p[1].y()) for p in self._roi.getLocalHandlePositions()]
        pos = self._roi.pos()
        x0, x1, y0, y1 = x0 + pos.x(), x1 + pos.x(), y0 + pos.y(), y1 + pos.y()
        n = max(int(np.hypot(x1 - x0, y1 - y0) / self._px), 2)
        xs = np.linspace(x0, x1, n) / self._px
        ys = np.linspace(y0, y1, n) / self._px
        dist = np.linspace(0, np.hypot(x1 - x0, y1 - y0), n)
        self.profile.clear()
        for k, (img, name) in enumerate(zip(self._images, ("raw", "denoised", "reference"), strict=False)):
            r = np.clip(np.round(ys).astype(int), 0, img.shape[0] - 1)
            c = np.clip(np.round(xs).astype(int), 0, img.shape[1] - 1)
            line = img[r, c]
            lo, hi = np.percentile(img, [1, 99])
            self.profile.plot(dist, (line - lo) / max(hi - lo, 1e-9), pen=pen(k), name=name)

    def quick_params(self, name: str, params: Any) -> Any:
        if name == "train":
            return replace_fields(params, epochs=min(params.epochs, 12), patience=3, patches_per_frame=4)
        return params


def _mean_std(mean: float | None, std: float | None, *, percent: bool) -> str:
    if mean is None:
        return "–"
    scale, fmt = (100.0, "{:.0f}") if percent else (1.0, "{:.2f}")
    text = fmt.format(mean * scale)
    return text + (" ± " + fmt.format(std * scale) if std is not None else "")
