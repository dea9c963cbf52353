"""Project page: import files per role (dialog or drag and drop), thumbnails and metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from rstem_core.importing import import_files
from rstem_core.info import describe
from rstem_core.io.formats import READ_SUFFIXES
from rstem_core.progress import CancelToken, ProgressFn
from rstem_core.project import ROLES

from ..errors import show_error
from ..panel import Panel
from ..worker import Worker

ROLE_HELP = {
    "rapid": ("Rapid tilt series", "The fast (about 5 s) continuous-tilt series to reconstruct."),
    "slow": ("Slow reference series", "A conventional slow series of the same area (optional): the "
             "reference the Evaluate page compares with."),
    "grating-rapid": ("Grating, rapid scan", "A cross-grating imaged with the rapid scan settings: "
                      "measures the scan distortion (Calibration)."),
    "grating-slow": ("Grating, slow scan", "The same grating imaged slowly (undistorted reference)."),
    "training": ("Training areas", "Repeated frames of other areas (one file per area) to train "
                 "the denoiser (Training set page)."),
}
FILE_FILTER = ("Microscope images (" + " ".join(f"*{s}" for s in READ_SUFFIXES) + ");;All files (*)")


def thumbnail(frame: np.ndarray, size: int = 96) -> QPixmap:
    """An 8-bit grey thumbnail of one frame (contrast from its 1-99 % percentiles)."""
    f = np.asarray(frame, dtype=np.float32)
    lo, hi = np.percentile(f, [1, 99])
    g = np.clip((f - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
    g = np.ascontiguousarray(g)
    image = QImage(g.data, g.shape[1], g.shape[0], g.strides[0], QImage.Format.Format_Grayscale8)
    return QPixmap.fromImage(image.copy()).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation)


class RoleBox(QFrame):
    """One role: what is imported, an Import button, and a drop target for files."""

    files_chosen = Signal(str, list)

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        title, help_text = ROLE_HELP[role]
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(f"{help_text}\nDrop files here or press Import.")
        row = QHBoxLayout(self)
        text = QVBoxLayout()
        text.addWidget(QLabel(f"<b>{title}</b>"))
        self.status = QLabel("not imported")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #555")
        text.addWidget(self.status)
        row.addLayout(text, 1)
        self.button = QPushButton("Import…")
        self.button.clicked.connect(self.choose)
        row.addWidget(self.button)

    def choose(self) -> None:
        """Ask for files of this role and import them."""
        files, _ = QFileDialog.getOpenFileNames(self, f"Import {ROLE_HELP[self.role][0].lower()}",
                                                str(Path.home()), FILE_FILTER)
        if files:
            self.files_chosen.emit(self.role, files)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
            self.setStyleSheet("RoleBox { background: #e3f2fd; }")

    def dragLeaveEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        self.setStyleSheet("")

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.setStyleSheet("")
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.files_chosen.emit(self.role, files)


class ProjectPanel(Panel):
    """Import data per role; see the rapid series as thumbnails and the project's metadata."""

    key = "project"
    title = "Project"
    description = ("Bring the microscope files into the project, one role at a time (drop files on a "
                   "role or press Import). Everything is written to the project file at once.")

    def __init__(self, session, parent: QWidget | None = None) -> None:  # noqa: ANN001
        super().__init__(session, parent)
        self.worker: Worker | None = None
        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 6, 0)
        self.roles: dict[str, RoleBox] = {}
        for role in ROLES:
            box = RoleBox(role)
            box.files_chosen.connect(self.import_role)
            self.roles[role] = box
            col.addWidget(box)
        options = QGroupBox("Import options")
        form = QFormLayout(options)
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setRange(0.0, 1000.0)
        self.pixel_size.setDecimals(3)
        self.pixel_size.setSuffix(" nm")
        self.pixel_size.setSpecialValueText("from the file")
        self.pixel_size.setToolTip("Pixel size of the imported images. Leave at 'from the file' unless "
                                   "the file's calibration is missing or wrong.")
        form.addRow("Pixel size", self.pixel_size)
        col.addWidget(options)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress_label = QLabel("")
        self.cancel_button = QPushButton("Cancel import")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self.worker.cancel() if self.worker else None)
        col.addWidget(self.progress)
        col.addWidget(self.progress_label)
        col.addWidget(self.cancel_button)
        col.addStretch(1)
        split.addWidget(left)
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(6, 0, 0, 0)
        rcol.addWidget(QLabel("<b>Rapid series</b> (every frame, with its tilt angle)"))
        self.strip = QListWidget()
        self.strip.setViewMode(QListWidget.ViewMode.IconMode)
        self.strip.setFlow(QListWidget.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setIconSize(QSize(96, 96))
        self.strip.setFixedHeight(140)
        self.strip.setMovement(QListWidget.Movement.Static)
        rcol.addWidget(self.strip)
        rcol.addWidget(QLabel("<b>Metadata</b>"))
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Property", "Value"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        rcol.addWidget(self.table, 1)
        split.addWidget(right)
        split.setSizes([420, 900])
        self.body.addWidget(split, 1)

    # -- import -------------------------------------------------------------------------------
    def import_role(self, role: str, files: list[str]) -> None:
        """Import ``files`` as ``role`` in the worker (asks before replacing a series)."""
        project = self.session.project
        if project is None or self.session.busy:
            return
        replace = False
        if f"raw/{role}" in project and role != "training":
            answer = QMessageBox.question(self, "Replace?", f"The project already has a {role} series. "
                                          "Replace it? Results computed from it become stale.")
            if answer != QMessageBox.StandardButton.Yes:
                return
            replace = True
        pixel = self.pixel_size.value() or None

        def job(progress: ProgressFn, cancel: CancelToken) -> list[str]:
            return import_files(project, role, files, pixel_size_nm=pixel, replace_existing=replace,
                                progress=progress, cancel=cancel)

        worker = Worker(job)
        self.worker = worker
        worker.progress.connect(lambda f, m: (self.progress.setValue(int(f * 1000)),
                                              self.progress_label.setText(m)))
        worker.finished.connect(lambda keys: self.progress_label.setText(
            f"Imported {len(files)} file(s) as {role}."))
        worker.failed.connect(lambda exc: show_error(self, exc, f"Import of the {role} files failed"))
        worker.cancelled.connect(lambda: self.progress_label.setText("Import cancelled: nothing changed."))
        worker.done.connect(self._import_done)
        self.cancel_button.setEnabled(True)
        self.session.set_busy(True)
        worker.start()

    def _import_done(self) -> None:
        self.cancel_button.setEnabled(False)
        self.session.set_busy(False)
        self.session.refresh()

    def set_busy(self, busy: bool) -> None:
        for box in self.roles.values():
            box.button.setEnabled(not busy)
            box.setAcceptDrops(not busy)

    # -- view ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        super().refresh()
        project = self.session.project
        self.strip.clear()
        self.table.setRowCount(0)
        if project is None:
            return
        info = describe(project)
        for role, box in self.roles.items():
            s = info["roles"].get(role)
            if s is None:
                box.status.setText("not imported")
            elif role == "training":
                box.status.setText(f"{s['areas']} areas, {s['frames']} frames, stage tilts "
                                   + ", ".join(f"{t:g}°" for t in s["stage_tilts_deg"]))
            else:
                box.status.setText(f"{s['frames']} frames of {s['cols']}×{s['rows']} px at "
                                   f"{s['pixel_size_nm']:.3g} nm, {s['angle_min_deg']:g}° to "
                                   f"{s['angle_max_deg']:g}°")
        if "raw/rapid" in project:
            frames = project.h5["raw/rapid/frames"]
            angles = project.h5["raw/rapid/angles_deg"][()]
            for k in range(frames.shape[0]):
                item = QListWidgetItem(QIcon(thumbnail(frames[k])), f"{k}: {angles[k]:.1f}°")
                item.setToolTip(f"frame {k}, nominal tilt {angles[k]:.2f}°")
                self.strip.addItem(item)
        self._fill_table(info)

    def _fill_table(self, info: dict[str, Any]) -> None:
        rows: list[tuple[str, str]] = [
            ("File", info["path"]), ("Created", info["created"]), ("Modified", info["modified"]),
            ("Software", info["software"]), ("Synthetic (has ground truth)", "yes" if info["truth"] else "no"),
        ]
        for role, s in info["roles"].items():
            if role == "training":
                rows.append((f"{role}: areas", str(s["areas"])))
                continue
            rows += [(f"{role}: frames", f"{s['frames']} × {s['rows']} × {s['cols']} px"),
                     (f"{role}: pixel size", f"{s['pixel_size_nm']:.4g} nm"),
                     (f"{role}: tilt range", f"{s['angle_min_deg']:g}° to {s['angle_max_deg']:g}°")]
            if "duration_s" in s:
                rows.append((f"{role}: duration", f"{s['duration_s']:.3g} s"))
            if "line_time_s" in s:
                rows.append((f"{role}: line time", f"{s['line_time_s'] * 1e6:.4g} µs"))
        self.table.setRowCount(len(rows))
        for r, (name, value) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(name))
            self.table.setItem(r, 1, QTableWidgetItem(value))
        self.table.resizeColumnToContents(0)
