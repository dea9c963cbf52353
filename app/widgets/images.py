"""Image views: pyqtgraph ImageView with histogram, frame slider, square pixels and a nm scale bar."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

NICE_LENGTHS_NM = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)


def nice_length(width_nm: float) -> float:
    """A round scale-bar length of about a fifth of ``width_nm``."""
    target = width_nm / 5.0
    return float(min(NICE_LENGTHS_NM, key=lambda v: abs(np.log(v / max(target, 1e-9)))))


class ImagePanel(QWidget):
    """A titled image or image stack (frames, rows, columns) in nm coordinates.

    The frame slider (pyqtgraph's timeline) runs along ``xvals`` (e.g. the tilt angle in
    degrees); rows are drawn top to bottom as scanned; the scale bar is in nm.
    """

    def __init__(self, title: str = "", parent: QWidget | None = None, histogram: bool = True,
                 axes: tuple[str, str] = ("x", "y")) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.title = QLabel(f"<b>{title}</b>")
        self.title.setWordWrap(True)  # a long title must not set the page's minimum width
        layout.addWidget(self.title)
        self.view = pg.ImageView(view=pg.PlotItem())
        self.view.ui.roiBtn.hide()
        self.view.ui.menuBtn.hide()
        if not histogram:
            self.view.ui.histogram.hide()
        plot = self.view.getView()
        plot.setAspectLocked(True)
        plot.invertY(True)
        plot.setLabel("bottom", axes[0], units="nm")
        plot.setLabel("left", axes[1], units="nm")
        plot.getAxis("bottom").enableAutoSIPrefix(False)
        plot.getAxis("left").enableAutoSIPrefix(False)
        layout.addWidget(self.view, 1)
        self._scale_bar: pg.ScaleBar | None = None
        self.image: np.ndarray | None = None

    def set_title(self, title: str) -> None:
        self.title.setText(f"<b>{title}</b>")

    def set_image(self, image: np.ndarray, pixel_size_nm: float = 1.0,
                  xvals: np.ndarray | None = None, levels: tuple[float, float] | None = None) -> None:
        """Show a 2D image (rows, cols) or a stack (frames, rows, cols) with ``pixel_size_nm``."""
        data = np.asarray(image, dtype=np.float32)
        self.image = data
        rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
        stack = data.ndim == 3 and not rgb
        if rgb:
            axes = {"y": 0, "x": 1, "c": 2}
        else:
            axes = {"y": 0, "x": 1} if data.ndim == 2 else {"t": 0, "y": 1, "x": 2}
        kwargs = {"xvals": np.asarray(xvals, float)} if (xvals is not None and stack) else {}
        if levels is None:
            lo, hi = np.percentile(data[np.isfinite(data)], [0.5, 99.5]) if np.isfinite(data).any() else (0, 1)
            levels = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        tr = pg.QtGui.QTransform.fromScale(pixel_size_nm, pixel_size_nm)
        self.view.setImage(data, axes=axes, levels=levels, transform=tr, autoRange=True, **kwargs)
        self.view.ui.roiPlot.setVisible(stack)
        self._place_scale_bar(data.shape[1 if rgb else -1] * pixel_size_nm)

    def _place_scale_bar(self, width_nm: float) -> None:
        length = nice_length(width_nm)
        if self._scale_bar is None:
            plot = self.view.getView()
            vb = plot.getViewBox() if hasattr(plot, "getViewBox") else plot
            bar = pg.ScaleBar(size=length, suffix="nm", brush=pg.mkBrush("w"), pen=pg.mkPen("k"))
            bar.setParentItem(vb)
            bar.anchor((1, 1), (1, 1), offset=(-14, -14))
            self._scale_bar = bar
        bar = self._scale_bar
        bar.size = length
        bar.text.setText(f"{length:g} nm")
        bar.updateBar()

    def set_colormap(self, name: str) -> None:
        self.view.setColorMap(pg.colormap.get(name))

    def plot_item(self) -> pg.PlotItem:
        """The PlotItem the image lives in (to add lines or markers in nm)."""
        return self.view.getView()
