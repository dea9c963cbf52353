"""The unattended demo tour behind ``rstem-gui --demo --screenshot DIR``.

Builds the quick demo project, runs each step through its page (the same worker and buttons a
user has), visits every page and saves one PNG per page into DIR, then quits. Nothing here
blocks the event loop: each stage starts the next from a signal or a timer.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication

from .main_window import MainWindow
from .session import PAGE_KEYS
from .step_panel import StepPanel

SETTLE_MS = 600


class ScreenshotTour(QObject):
    """Drive ``window`` through the pipeline and save ``NN_page.png`` files into ``folder``."""

    def __init__(self, window: MainWindow, folder: Path, size: int = 128, frames: int = 31,
                 *, quit_when_done: bool = True) -> None:
        super().__init__(window)
        self.quit_when_done = quit_when_done
        self.window = window
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="rstem-demo-")
        self.size, self.frames = size, frames
        self.saved: list[Path] = []
        self.outcomes: dict[str, str] = {}
        # Evaluate runs before the 3D view is shot so that its centres and the slow tomogram show
        order = list(PAGE_KEYS)
        order.remove("evaluate")
        order.insert(order.index("view3d"), "evaluate")
        self._pages = order

    def start(self) -> None:
        self.window.session.quick = True
        self.window.demo_ready.connect(self._next_page)
        self.window.new_demo(Path(self._tmp.name) / "demo.h5", self.size, self.frames)

    def _later(self, fn: Callable[[], None], ms: int = SETTLE_MS) -> None:
        QTimer.singleShot(ms, fn)

    def _next_page(self) -> None:
        if not self._pages:
            self._finish()
            return
        key = self._pages.pop(0)
        self.window.show_page(key)
        panel = self.window.panels[key]
        if isinstance(panel, StepPanel) and key != "view3d":
            panel.run_finished.connect(lambda outcome, k=key: self._ran(k, outcome))
            print(f"rstem-gui: running {panel.title} …", file=sys.stderr, flush=True)
            panel.run()
        elif key == "export":
            self._export()
        else:
            self._later(lambda k=key: self._shoot(k))

    def _ran(self, key: str, outcome: str) -> None:
        panel = self.window.panels[key]
        panel.run_finished.disconnect()
        self.outcomes[key] = outcome
        print(f"rstem-gui: {panel.title}: {outcome}", file=sys.stderr, flush=True)
        self._later(lambda: self._shoot(key))

    def _export(self) -> None:
        panel = self.window.panels["export"]
        panel.refresh()
        panel.path.setText(str(Path(self._tmp.name) / "demo_volume.mrc"))
        if panel.export_button.isEnabled():
            panel.run_export()
            panel.worker.done.connect(lambda: self._later(lambda: self._shoot("export")))
        else:
            self._later(lambda: self._shoot("export"))

    def _shoot(self, key: str) -> None:
        image = self.window.grab().toImage()
        view3d = self.window.panels["view3d"]
        if key == "view3d":
            self._paint_canvas(image, view3d)
        path = self.folder / f"{PAGE_KEYS.index(key) + 1:02d}_{key}.png"
        image.save(str(path))
        self.saved.append(path)
        self._next_page()

    def _paint_canvas(self, image: QImage, panel) -> None:  # noqa: ANN001
        """Draw the GL canvas's own rendering over its place (grab() may miss GL content)."""
        native = panel.view.canvas.native
        rgba = panel.view.render()  # what the widget shows on the screen
        h, w = rgba.shape[:2]
        frame = QImage(rgba.tobytes(), w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        ratio = image.devicePixelRatio() or 1.0
        top_left = native.mapTo(self.window, native.rect().topLeft())
        painter = QPainter(image)
        painter.drawImage(top_left.x() * ratio, top_left.y() * ratio,
                          frame.scaled(int(native.width() * ratio), int(native.height() * ratio)))
        painter.end()

    def _finish(self) -> None:
        print(f"rstem-gui: saved {len(self.saved)} screenshots in {self.folder}", file=sys.stderr, flush=True)
        if not self.quit_when_done:
            return
        self.window.setProperty("force_close", True)
        self.window.close()
        QApplication.instance().exit(0 if len(self.saved) >= len(PAGE_KEYS) else 1)
