"""Export page: what to export, in which format, and which viewers open it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from rstem_core.exporting import EXPORTABLE, export
from rstem_core.progress import CancelToken, ProgressFn

from ..errors import show_error
from ..panel import Panel
from ..worker import Worker

FORMATS = {
    "MRC (.mrc)": (".mrc", "Opened by IMOD (3dmod), ChimeraX, Fiji/ImageJ, napari (mrcfile plugin), "
                   "Amira/Avizo and tomviz. The voxel size is in the header."),
    "TIFF stack (.tif)": (".tif", "Opened by Fiji/ImageJ, napari, Amira/Avizo, Dragonfly and most image "
                          "programs, one page per slice or frame."),
    "OME-Zarr (.zarr)": (".zarr", "A folder opened by napari (napari-ome-zarr), Fiji (MoBIE / BigDataViewer) "
                         "and web viewers such as vizarr; good for large volumes."),
}
WHAT = {
    "volume": "Reconstructed volume (z, y, x)",
    "aligned": "Aligned tilt series (+ .tlt angles for IMOD)",
    "denoised": "Denoised tilt series",
    "raw": "Raw rapid tilt series",
    "distortion": "Calibrated distortion map",
}


class ExportPanel(Panel):
    """Write results for other viewers through :func:`rstem_core.exporting.export`."""

    key = "export"
    title = "Export"
    description = "Write the volume or a tilt series to a file other programs open."

    def __init__(self, session, parent: QWidget | None = None) -> None:  # noqa: ANN001
        super().__init__(session, parent)
        self.worker: Worker | None = None
        group = QGroupBox("Export")
        form = QFormLayout(group)
        self.what = QComboBox()
        for key, text in WHAT.items():
            self.what.addItem(text, key)
        self.format = QComboBox()
        self.format.addItems(list(FORMATS))
        self.viewers = QLabel()
        self.viewers.setWordWrap(True)
        self.viewers.setStyleSheet("color: #333; background: #f3f6fa; padding: 6px")
        self.path = QLineEdit()
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("What", self.what)
        form.addRow("Format", self.format)
        form.addRow("Opens in", self.viewers)
        form.addRow("File", row)
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self.run_export)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        col = QVBoxLayout()
        col.addWidget(group)
        col.addWidget(self.export_button)
        col.addWidget(self.progress)
        col.addWidget(self.result)
        col.addStretch(1)
        holder = QWidget()
        holder.setLayout(col)
        holder.setMaximumWidth(760)
        self.body.addWidget(holder)
        self.format.currentTextChanged.connect(self._on_format)
        self.what.currentIndexChanged.connect(self._on_format)
        self._on_format()

    def _on_format(self) -> None:
        suffix, viewers = FORMATS[self.format.currentText()]
        self.viewers.setText(viewers)
        project = self.session.project
        if project is not None:
            what = self.what.currentData()
            self.path.setText(str(project.path.with_name(f"{project.path.stem}_{what}{suffix}")))
        self._update_available()

    def _update_available(self) -> None:
        project = self.session.project
        what = self.what.currentData()
        key = "raw/rapid" if what == "raw" else EXPORTABLE.get(what, ("",))[0]
        ok = project is not None and key in project
        self.export_button.setEnabled(ok and not self.session.busy)
        if project is not None and not ok:
            self.result.setText(f"Nothing to export yet: run the step that makes the {what} first.")

    def _browse(self) -> None:
        suffix, _ = FORMATS[self.format.currentText()]
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(), f"*{suffix}")
        if path:
            self.path.setText(path if path.endswith(suffix) else path + suffix)

    def run_export(self) -> None:
        project = self.session.project
        if project is None or self.session.busy:
            return
        out = Path(self.path.text()).expanduser()
        what = self.what.currentData()

        def job(progress: ProgressFn, cancel: CancelToken) -> Path:
            return export(project, out, what=what, progress=progress)

        worker = Worker(job)
        self.worker = worker
        worker.progress.connect(lambda f, m: self.progress.setValue(int(f * 1000)))
        worker.finished.connect(lambda p: self.result.setText(f"Written: {p}"))
        worker.failed.connect(lambda exc: show_error(self, exc, "Export failed"))
        worker.done.connect(lambda: self.session.set_busy(False))
        self.session.set_busy(True)
        worker.start()

    def set_busy(self, busy: bool) -> None:
        self.export_button.setEnabled(not busy)
        if not busy:
            self._update_available()

    def refresh(self) -> None:
        super().refresh()
        self._on_format()
