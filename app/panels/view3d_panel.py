"""3D view page: the volume rendered with VisPy, a second volume, centre points, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..errors import show_error
from ..panel import Panel
from ..widgets.volume_view import COLORMAPS, METHODS, SECOND_COLORMAPS, VolumeView

SLOW_KEY = "reconstruction/slow"


def _slider(value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(0, 100)
    s.setValue(value)
    return s


class View3DPanel(Panel):
    """Render the reconstructed volume; superimpose the slow tomogram and dislocation centres."""

    key = "view3d"
    title = "3D view"
    description = ("Drag to turn the volume, scroll to zoom. Red/green/blue arrows are x (tilt axis), "
                   "y and z (beam); the white bar is the scale.")

    def __init__(self, session, parent: QWidget | None = None) -> None:  # noqa: ANN001
        super().__init__(session, parent)
        split = QSplitter(Qt.Orientation.Horizontal)
        controls = QWidget()
        controls.setMinimumWidth(300)
        col = QVBoxLayout(controls)
        col.setContentsMargins(0, 0, 6, 0)
        look = QGroupBox("Rendering")
        form = QFormLayout(look)
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.method.setToolTip("MIP: brightest voxel along each ray (dislocations stand out). "
                               "Iso-surface: the surface at the threshold. Translucent: every voxel "
                               "adds colour. Slice plane: one orthogonal slice through the volume.")
        self.cmap = QComboBox()
        self.cmap.addItems(list(COLORMAPS))
        self.cmap.setToolTip("Colour map of the main volume.")
        self.threshold = _slider(30)
        self.threshold.setToolTip("Iso-surface level, or the darkest shown value in the other modes "
                                  "(percent of the volume's range). Raise it to hide noise.")
        form.addRow("Mode", self.method)
        form.addRow("Colour map", self.cmap)
        form.addRow("Threshold", self.threshold)
        self.plane_axis = QComboBox()
        self.plane_axis.addItems(["z", "y", "x"])
        self.plane_axis.setToolTip("The slice is perpendicular to this axis (z: an x-y slice).")
        self.plane_pos = _slider(50)
        self.plane_pos.setToolTip("Where the slice cuts, percent of the depth along its axis.")
        form.addRow("Slice across", self.plane_axis)
        form.addRow("Slice position", self.plane_pos)
        col.addWidget(look)
        extra = QGroupBox("Overlays")
        oform = QFormLayout(extra)
        self.show_second = QCheckBox("slow tomogram")
        self.show_second.setToolTip("Superimpose the slow reference tomogram (computed by Evaluate) "
                                    "in a second colour, as in the paper's Fig. 5c.")
        self.second_cmap = QComboBox()
        self.second_cmap.addItems(list(SECOND_COLORMAPS))
        self.show_points = QCheckBox("dislocation centres")
        self.show_points.setToolTip("Centres found by Evaluate: yellow in this volume, cyan in the "
                                    "reference (Fig. 6).")
        oform.addRow(self.show_second)
        oform.addRow("Its colour", self.second_cmap)
        oform.addRow(self.show_points)
        col.addWidget(extra)
        self.shot_button = QPushButton("Save screenshot…")
        self.shot_button.clicked.connect(self._screenshot)
        self.movie_button = QPushButton("Save turntable movie…")
        self.movie_button.setToolTip("One turn about the vertical axis as an animated GIF.")
        self.movie_button.clicked.connect(self._movie)
        col.addWidget(self.shot_button)
        col.addWidget(self.movie_button)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        col.addWidget(self.info)
        col.addStretch(1)
        split.addWidget(controls)
        self.view = VolumeView()
        split.addWidget(self.view)
        split.setSizes([320, 1000])
        self.body.addWidget(split, 1)
        self.method.currentTextChanged.connect(self._on_method)
        self.cmap.currentTextChanged.connect(self.view.set_colormap)
        self.threshold.valueChanged.connect(lambda v: self.view.set_threshold(v / 100))
        self.plane_axis.currentTextChanged.connect(self._on_plane)
        self.plane_pos.valueChanged.connect(self._on_plane)
        self.show_second.toggled.connect(self._on_overlays)
        self.second_cmap.currentTextChanged.connect(self._on_overlays)
        self.show_points.toggled.connect(self._on_overlays)
        self._on_method(self.method.currentText())
        self._loaded_generation = -1

    def _on_method(self, label: str) -> None:
        self.view.set_method(label)
        plane = METHODS[label] == "plane"
        self.plane_axis.setEnabled(plane)
        self.plane_pos.setEnabled(plane)
        if plane:
            self._on_plane()

    def _on_plane(self) -> None:
        self.view.set_plane(self.plane_axis.currentText(), self.plane_pos.value() / 100)

    def _on_overlays(self) -> None:
        project = self.session.project
        if project is None or self.session.busy:
            return
        if self.show_second.isChecked() and SLOW_KEY in project:
            slow = project.read_volume(SLOW_KEY)
            self.view.set_second(slow.data, slow.voxel_size_nm, self.second_cmap.currentText())
        else:
            self.view.set_second(None)
        found = reference = None
        if self.show_points.isChecked() and "evaluation/report" in project:
            pairs = project.read_json("evaluation/report").get("pairs_xyz_nm", {})
            found = np.asarray([p for a in pairs.values() for p in a.get("found", [])], float)
            reference = np.asarray([p for a in pairs.values() for p in a.get("reference", [])], float)
        self.view.set_points(found, reference)

    def refresh(self) -> None:
        super().refresh()
        project = self.session.project
        has_volume = project is not None and "reconstruction/volume" in project
        for w in (self.shot_button, self.movie_button):
            w.setEnabled(has_volume)
        self.show_second.setEnabled(project is not None and SLOW_KEY in project)
        self.show_points.setEnabled(project is not None and "evaluation/report" in project)
        if not has_volume:
            self.info.setText("No volume yet: run the Reconstruction step.")
            return
        generation = project.generation("reconstruction/volume")
        if generation != self._loaded_generation:
            volume = project.read_volume("reconstruction/volume")
            self.view.set_volume(volume.data, volume.voxel_size_nm)
            self._loaded_generation = generation
            nz, ny, nx = volume.data.shape
            self.info.setText(f"Volume {nx} × {ny} × {nz} voxels of {volume.voxel_size_nm:.3g} nm.")
        if self.show_second.isEnabled() and not self.show_second.isChecked():
            self.show_second.setChecked(True)
        if self.show_points.isEnabled() and not self.show_points.isChecked():
            self.show_points.setChecked(True)
        self._on_overlays()

    def _screenshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", str(Path.home() / "volume.png"),
                                              "PNG image (*.png)")
        if path:
            try:
                self.view.save_png(path)
            except Exception as exc:  # noqa: BLE001
                show_error(self, exc, "Cannot save the screenshot")

    def _movie(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save turntable movie", str(Path.home() / "volume.gif"),
                                              "Animated GIF (*.gif)")
        if path:
            try:
                self.view.turntable_movie(path)
            except Exception as exc:  # noqa: BLE001
                show_error(self, exc, "Cannot save the movie")

    def shutdown(self) -> None:
        self.view.close_canvas()
