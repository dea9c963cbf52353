"""Reconstruction page: algorithm and iterations; the volume's slices as the result."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
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
    #: (iteration, iterations, x-z section) from the worker thread, shown while SIRT iterates
    preview_ready = Signal(int, int, object)
    PREVIEW_INTERVAL_S = 0.25

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
        self.preview_ready.connect(self.show_preview)
        self.previews_shown = 0
        return box

    def step_extras(self, name: str) -> dict[str, Any]:
        if name != "reconstruct":
            return {}
        project = self.session.project
        source = next((k for k in ("processed/aligned", "processed/denoised", "processed/corrected", "raw/rapid")
                       if project is not None and k in project), None)
        pixel_nm = float(project.attrs(source).get("pixel_size_nm", 1.0)) if source else 1.0
        voxel_nm = pixel_nm * self.forms["reconstruct"].params().binning
        last = [0.0]

        def preview(k: int, total: int, section: np.ndarray) -> None:  # runs in the worker thread
            now = time.perf_counter()
            if k == total or now - last[0] >= self.PREVIEW_INTERVAL_S:
                last[0] = now
                self.preview_ready.emit(k, total, (section, voxel_nm))

        return {"preview": preview}

    def show_preview(self, k: int, total: int, payload: tuple[np.ndarray, float]) -> None:
        """The x-z cross-section of the volume as it converges (live, while the step runs)."""
        section, voxel_nm = payload
        self.xz.set_title(f"x–z cross-section at the central y, live: iteration {k} of {total}")
        self.xz.set_image(section, voxel_nm)
        self.previews_shown += 1

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
        self.xz.set_title("x–z cross-section at the central y (beam direction vertical)")
        self.xz.set_image(data[:, ny // 2, :], voxel)

    def quick_params(self, name: str, params: Any) -> Any:
        return replace_fields(params, iterations=min(params.iterations, 20))
