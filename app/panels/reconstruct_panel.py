"""Reconstruction page: algorithm and iterations; the volume's slices as the result."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from ..step_panel import StepPanel, replace_fields
from ..widgets.images import ImagePanel


class ReconstructPanel(StepPanel):
    """SIRT / FBP / CGLS of the best available series; shows x-y slices and a y cross-section."""

    key = "reconstruct"
    title = "Reconstruction"
    description = ("Computes the 3D volume from the tilt series. SIRT with 50 iterations is the "
                   "paper's choice; raise the binning for a quick preview.")
    steps = ("reconstruct",)

    def build_result(self) -> QWidget:
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 0, 0)
        self.info = QLabel("No volume yet: press Run.")
        self.info.setWordWrap(True)
        col.addWidget(self.info)
        split = QSplitter(Qt.Orientation.Vertical)
        self.xy = ImagePanel("x–y slices (slider: depth z in nm)")
        self.xz = ImagePanel("x–z cross-section at the central y (beam direction vertical)", axes=("x", "z"))
        split.addWidget(self.xy)
        split.addWidget(self.xz)
        col.addWidget(split, 1)
        return box

    def show_result(self) -> None:
        project = self.session.project
        if project is None or "reconstruction/volume" not in project:
            self.info.setText("No volume yet: press Run.")
            self.xy.view.clear()
            self.xz.view.clear()
            return
        volume = project.read_volume("reconstruction/volume")
        data = volume.data
        voxel = volume.voxel_size_nm
        meta = volume.metadata
        nz, ny, nx = data.shape
        self.info.setText(
            f"Volume {nx} × {ny} × {nz} voxels (x × y × z) of {voxel:.3g} nm, "
            f"{meta.get('algorithm', '?').upper()}"
            + (f" with {meta.get('iterations')} iterations" if meta.get("algorithm") != "fbp" else "")
            + f", from {meta.get('source', '?')}"
            + ("; time-lag geometry on" if meta.get("time_lag") else "")
            + (". Notes: " + "; ".join(meta["notes"]) if meta.get("notes") else "."))
        zs = (np.arange(nz) - (nz - 1) / 2) * voxel
        self.xy.set_image(data, voxel, xvals=zs)
        self.xy.view.setCurrentIndex(nz // 2)
        self.xz.set_image(data[:, ny // 2, :], voxel)

    def quick_params(self, name: str, params: Any) -> Any:
        return replace_fields(params, iterations=min(params.iterations, 20))
