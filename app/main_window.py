"""The main window: the page list on the left, one page per step on the right, a status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from rstem_core.errors import ProjectLockedError
from rstem_core.progress import CancelToken, ProgressFn

from .about import about_dialog, guide_dialog
from .errors import logger, open_log_folder, show_error, user_data_dir
from .panel import Panel
from .panels import build_panels
from .session import PAGE_KEYS, Session
from .step_list import StepList
from .step_panel import StepPanel
from .welcome import WelcomePage, app_icon
from .worker import Worker

MAX_RECENT = 8
PROJECT_FILTER = "rstem projects (*.h5 *.hdf5);;All files (*)"


def demo_folder() -> Path:
    """Where New demo project puts its file: the user's data folder."""
    return user_data_dir()


class MainWindow(QMainWindow):
    """The workbench window.

    Signals
    -------
    demo_ready()
        A demo project built by :meth:`new_demo` was opened.
    """

    demo_ready = Signal()

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings()
        self.session = Session(self)
        self.job: Worker | None = None
        self.setWindowTitle("rstem — rapid STEM tomography")
        self.step_list = StepList(self.session)
        self.stack = QStackedWidget()
        self.panels: dict[str, Panel] = build_panels(self.session)
        for key in PAGE_KEYS:
            self.stack.addWidget(self.panels[key])
        self._dirty: set[str] = set(PAGE_KEYS)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.step_list)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        self.steps_view = splitter
        self.welcome = WelcomePage(self._recent)
        self.welcome.open_demo.connect(lambda: self.new_demo())
        self.welcome.import_series.connect(self.import_series)
        self.welcome.open_project.connect(self.open_dialog)
        self.welcome.open_recent.connect(self.open_project)
        self.front = QStackedWidget()
        self.front.addWidget(self.welcome)
        self.front.addWidget(splitter)
        self.setCentralWidget(self.front)
        self.setWindowIcon(app_icon())
        self._build_status_bar()
        self._build_menus()
        self.step_list.currentRowChanged.connect(self._show_row)
        self.session.states_changed.connect(self._on_states)
        self.session.project_changed.connect(self._on_project)
        self.session.busy_changed.connect(self._on_busy)
        for panel in self.panels.values():
            if isinstance(panel, StepPanel):
                panel.run_finished.connect(lambda outcome, p=panel: self._on_run(p, outcome))
        self.step_list.setCurrentRow(0)
        self.resize(1400, 880)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        self._on_project()

    # -- building -----------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.project_label = QLabel("No project open")
        self.quick_label = QLabel("")
        self.quick_label.setStyleSheet("color: #8a5a00; font-weight: bold")
        self.job_bar = QProgressBar()
        self.job_bar.setRange(0, 1000)
        self.job_bar.setMaximumWidth(220)
        self.job_cancel = QPushButton("Cancel")
        self.job_cancel.clicked.connect(lambda: self.job.cancel() if self.job else None)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.job_bar)
        row.addWidget(self.job_cancel)
        box.setVisible(False)
        self.job_box = box
        bar.addWidget(self.project_label, 1)
        bar.addPermanentWidget(self.quick_label)
        bar.addPermanentWidget(box)

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:  # noqa: ANN001
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.setStatusTip(tip)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&New project…", self.new_project, QKeySequence.StandardKey.New,
                     "Create an empty project file and import data into it")
        self._action(file_menu, "&Open…", self.open_dialog, QKeySequence.StandardKey.Open,
                     "Open an existing project")
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._action(file_menu, "&Save", self.save, QKeySequence.StandardKey.Save,
                     "Every change is written at once; this also stores edited parameters")
        self._action(file_menu, "Save &as…", self.save_as_dialog, QKeySequence.StandardKey.SaveAs,
                     "Copy the project to a new file and continue there")
        file_menu.addSeparator()
        self._action(file_menu, "New &demo project", lambda: self.new_demo(), "Ctrl+Shift+D",
                     "Simulate a small rapid-STEM experiment and open it")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        go = self.menuBar().addMenu("&Go")
        self._action(go, "Next recommended step", self.go_next, "Ctrl+Return")
        for k, key in enumerate(PAGE_KEYS, start=1):
            self._action(go, self.panels[key].title, lambda _=False, r=k - 1: self.step_list.setCurrentRow(r),
                         f"Ctrl+{k}")
        run_menu = self.menuBar().addMenu("&Run")
        self._action(run_menu, "Run this step", self.run_current, "Ctrl+R")
        self._action(run_menu, "Cancel", self.cancel_current, "Esc")
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Guide", lambda: guide_dialog(self).exec(), QKeySequence.StandardKey.HelpContents,
                     "What each step does and how to judge its result")
        self._action(help_menu, "Open log folder", self._open_log)
        self._action(help_menu, "&About rstem", lambda: about_dialog(self).exec(),
                     tip="Version and the licences of the parts rstem is built with")
        QShortcut(QKeySequence("F5"), self, activated=self.session.refresh)
        self._update_recent()

    # -- pages --------------------------------------------------------------------------------
    def current_panel(self) -> Panel:
        return self.panels[PAGE_KEYS[max(self.step_list.currentRow(), 0)]]

    def show_page(self, key: str) -> None:
        """Show page ``key`` (one of :data:`~rstem_app.session.PAGE_KEYS`)."""
        self.step_list.setCurrentRow(PAGE_KEYS.index(key))

    def _show_row(self, row: int) -> None:
        if row < 0:
            return
        key = PAGE_KEYS[row]
        self.stack.setCurrentWidget(self.panels[key])
        self._refresh_page(key)

    def _refresh_page(self, key: str) -> None:
        if self.session.busy or key not in self._dirty:
            return
        self._dirty.discard(key)
        try:
            self.panels[key].refresh()
        except Exception as exc:  # noqa: BLE001 - a page that cannot draw must not close the window
            show_error(self, exc, f"Showing the {self.panels[key].title} page")

    def _on_states(self) -> None:
        self.step_list.update_states()
        self._dirty = set(PAGE_KEYS)
        self._refresh_page(PAGE_KEYS[max(self.step_list.currentRow(), 0)])

    def _on_project(self) -> None:
        project = self.session.project
        if project is None:
            self.project_label.setText("No project open: File › Open, New, or New demo project")
            self.setWindowTitle("rstem — rapid STEM tomography")
            self.welcome.refresh()
            self.front.setCurrentWidget(self.welcome)
        else:
            self.front.setCurrentWidget(self.steps_view)
            self.project_label.setText(f"Project: {project.path}  (saved automatically)")
            self.setWindowTitle(f"{project.path.name} — rstem")
            self._add_recent(project.path)
        self.quick_label.setText(
            "Quick demo mode: slow steps use shortened parameters" if self.session.quick else "")
        self._on_states()

    def _on_busy(self, busy: bool) -> None:
        for panel in self.panels.values():
            if hasattr(panel, "set_busy"):
                panel.set_busy(busy)
        if not busy:
            self._on_states()

    def _on_run(self, panel: StepPanel, outcome: str) -> None:
        self.statusBar().showMessage(f"{panel.title}: {outcome}", 8000)

    def go_next(self) -> None:
        key = self.session.next_page()
        if key:
            self.show_page(key)

    def run_current(self) -> None:
        panel = self.current_panel()
        if isinstance(panel, StepPanel) and not self.session.busy:
            panel.run()

    def cancel_current(self) -> None:
        for panel in self.panels.values():
            if isinstance(panel, StepPanel):
                panel.cancel()
        if self.job is not None and self.job.running:
            self.job.cancel()

    # -- files --------------------------------------------------------------------------------
    def open_project(self, path: str | Path) -> bool:
        """Open ``path``; tell the user plainly when it cannot be opened. True on success."""
        if self.session.busy:
            return False
        self._flush_params()
        try:
            self.session.open(path)
        except ProjectLockedError as exc:
            show_error(self, exc, "The project is in use")
            return False
        except Exception as exc:  # noqa: BLE001 - shown in plain words, trace in the log
            show_error(self, exc, "Cannot open the project")
            return False
        return True

    def open_dialog(self) -> None:
        start = str(self.settings.value("files/last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, PROJECT_FILTER)
        if path:
            self.settings.setValue("files/last_folder", str(Path(path).parent))
            self.open_project(path)

    def import_series(self) -> None:
        """New project, then straight to importing its rapid tilt series (the welcome page's way in)."""
        self.new_project()
        if self.session.project is not None and "raw/rapid" not in self.session.project:
            self.show_page("project")
            self.panels["project"].roles["rapid"].choose()

    def new_project(self) -> None:
        start = str(self.settings.value("files/last_folder", str(Path.home())))
        path, _ = QFileDialog.getSaveFileName(self, "New project", str(Path(start) / "project.h5"),
                                              PROJECT_FILTER)
        if not path or self.session.busy:
            return
        try:
            self.session.create(path)
        except Exception as exc:  # noqa: BLE001
            show_error(self, exc, "Cannot create the project")
            return
        self.show_page("project")

    def save(self) -> None:
        self._flush_params()
        self.statusBar().showMessage("All changes are saved in the project file.", 5000)

    def save_as_dialog(self) -> None:
        if self.session.project is None or self.session.busy:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", str(self.session.project.path),
                                              PROJECT_FILTER)
        if path:
            self._flush_params()
            try:
                self.session.save_as(path)
            except Exception as exc:  # noqa: BLE001
                show_error(self, exc, "Cannot save the project there")

    def new_demo(self, path: str | Path | None = None, size: int = 128, frames: int = 31) -> None:
        """Simulate the quick demo experiment into ``path`` (default: the user data folder) in
        the worker, then open it (emits :attr:`demo_ready`)."""
        if self.session.busy:
            return
        target = Path(path) if path else demo_folder() / f"demo-{size}px.h5"
        if self.session.project is not None and self.session.project.path == target.absolute():
            self.session.close()

        def job(progress: ProgressFn, cancel: CancelToken) -> Path:
            from rstem_core.simulate import SimulationConfig, write_demo_project

            config = SimulationConfig.scaled(size=size, frames=frames, seed=0)
            return write_demo_project(target, config, progress=progress, cancel=cancel)

        worker = Worker(job)
        # open once the job has ended (the session is busy until then)
        worker.finished.connect(lambda p: QTimer.singleShot(0, lambda: self._open_demo(p)))
        worker.failed.connect(lambda exc: show_error(self, exc, "Cannot build the demo project"))
        self.run_job(worker, "Building the demo project…")

    def _open_demo(self, path: Path) -> None:
        if self.open_project(path):
            self.show_page("project")
            self.demo_ready.emit()

    def run_job(self, worker: Worker, message: str) -> None:
        """Run window-level work (demo, pipeline) with the status-bar progress and Cancel."""
        self.job = worker
        self.job_box.setVisible(True)
        self.job_bar.setValue(0)
        self.statusBar().showMessage(message)
        worker.progress.connect(lambda f, m: (self.job_bar.setValue(int(f * 1000)),
                                              self.statusBar().showMessage(m)))
        worker.cancelled.connect(lambda: self.statusBar().showMessage("Cancelled.", 5000))
        worker.done.connect(self._job_done)
        self.session.set_busy(True)
        worker.start()

    def _job_done(self) -> None:
        self.job_box.setVisible(False)
        self.statusBar().clearMessage()
        self.session.set_busy(False)

    def _flush_params(self) -> None:
        for panel in self.panels.values():
            if isinstance(panel, StepPanel) and panel._save_timer.isActive():
                panel._save_timer.stop()
                panel.save_params()

    def _add_recent(self, path: Path) -> None:
        recent = [p for p in self._recent() if p != str(path)]
        self.settings.setValue("files/recent", [str(path), *recent][:MAX_RECENT])
        self._update_recent()

    def _recent(self) -> list[str]:
        value = self.settings.value("files/recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _update_recent(self) -> None:
        self.recent_menu.clear()
        for k, path in enumerate(self._recent(), start=1):
            act = self.recent_menu.addAction(f"&{k} {path}")
            act.triggered.connect(lambda _=False, p=path: self.open_project(p))
        self.recent_menu.setEnabled(bool(self._recent()))

    def _open_log(self) -> None:
        open_log_folder()

    # -- closing ------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.session.project is None and self.property("closed"):
            event.accept()
            return
        running = [p for p in self.panels.values() if isinstance(p, StepPanel)
                   and p.worker is not None and p.worker.running]
        if self.job is not None and self.job.running:
            running.append(self.job)  # type: ignore[arg-type]
        if running and not self.property("force_close"):
            answer = QMessageBox.question(
                self, "A step is running",
                "A step is still running. Stop it and quit? The project keeps its state from before "
                "the step started.")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        for item in running:
            worker = item.worker if isinstance(item, StepPanel) else item
            worker.cancel()
            worker.wait()
        self._flush_params()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        for panel in self.panels.values():
            closer = getattr(panel, "shutdown", None)
            if closer is not None:
                closer()
        self.session.close()
        self.setProperty("closed", True)
        logger().info("window closed")
        event.accept()
