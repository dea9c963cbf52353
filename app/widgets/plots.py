"""Small pyqtgraph plot helpers with labelled axes and legends."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


def make_plot(title: str, x_label: str, y_label: str, parent: QWidget | None = None,
              x_units: str | None = None, y_units: str | None = None) -> pg.PlotWidget:
    """A white plot with a title, axis labels (units in the label, no SI prefixes) and a legend."""
    plot = pg.PlotWidget(parent=parent, background="w")
    item = plot.getPlotItem()
    item.setTitle(title, color="k")
    for side, label, units in (("bottom", x_label, x_units), ("left", y_label, y_units)):
        axis = item.getAxis(side)
        axis.setLabel(label, units=units, color="k")
        axis.enableAutoSIPrefix(False)
        axis.setPen("k")
        axis.setTextPen("k")
    item.showGrid(x=True, y=True, alpha=0.25)
    item.addLegend(offset=(-10, 10), labelTextColor="k")
    return plot


def pen(k: int, width: float = 2.0, dashed: bool = False) -> pg.QtGui.QPen:
    """The k-th palette colour as a pen."""
    p = pg.mkPen(PALETTE[k % len(PALETTE)], width=width)
    if dashed:
        p.setStyle(pg.QtCore.Qt.PenStyle.DashLine)
    return p
