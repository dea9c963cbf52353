"""The page of one or more core steps: parameters, Run, progress with Cancel, and the result.

Every step page is a :class:`StepPanel`: the parameter forms (generated from the steps'
parameter classes) on the left, the result view on the right. Run saves the edited parameters
(:func:`rstem_core.pipeline.save_params`) and runs the steps through the one :class:`Worker`;
the window keeps answering while they run, and Cancel leaves the project unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from rstem_core import pipeline
from rstem_core.progress import CancelToken, ProgressFn, sub_progress

from .errors import logger, show_error
from .panel import Panel
from .params_form import ParamsForm
from .session import Session
from .worker import Worker


class StepPanel(Panel):
    """A page that runs core ``steps`` (in order) with the parameters edited in its forms.

    Subclasses set :attr:`steps`, build their result view in :meth:`build_result` and show the
    project's result in :meth:`show_result`; :meth:`quick_params` may shorten slow steps when the
    window runs in quick (demo screenshot) mode.

    Signals
    -------
    run_finished(str)
        ``"done"``, ``"failed"`` or ``"cancelled"`` after a run.
    """

    steps: tuple[str, ...] = ()
    hidden_fields: dict[str, tuple[str, ...]] = {}
    run_finished = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.worker: Worker | None = None
        self.forms: dict[str, ParamsForm] = {}
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(800)
        self._save_timer.timeout.connect(self.save_params)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_controls())
        self.result_widget = self.build_result()
        splitter.addWidget(self.result_widget)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([420, 900])
        self.body.addWidget(splitter, 1)

    # -- layout -------------------------------------------------------------------------------
    def _build_controls(self) -> QWidget:
        box = QWidget()
        box.setMinimumWidth(400)
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 0, 6, 0)
        inner = QWidget()
        forms = QVBoxLayout(inner)
        for name in self.steps:
            step = pipeline.get_step(name)
            cls, _ = step.load()
            form = ParamsForm(cls, hidden=self.hidden_fields.get(name, ()))
            form.changed.connect(self._on_edit)
            self.forms[name] = form
            group = QGroupBox(f"{step.title} parameters")
            QVBoxLayout(group).addWidget(form)
            forms.addWidget(group)
        forms.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        col.addWidget(scroll, 1)
        self.invalid_label = QLabel()
        self.invalid_label.setWordWrap(True)
        self.invalid_label.setStyleSheet("color: #c62828")
        col.addWidget(self.invalid_label)
        buttons = QHBoxLayout()
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.setToolTip("Put every parameter of this page back to its default value.")
        self.reset_button.clicked.connect(self.reset_defaults)
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.setToolTip("Run this step with the parameters above (Ctrl+R).")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running step; the project stays as it was (Esc).")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        col.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("%p %")
        self.progress_label = QLabel("Ready.")
        self.progress_label.setWordWrap(True)
        col.addWidget(self.progress_bar)
        col.addWidget(self.progress_label)
        return box

    def build_result(self) -> QWidget:
        """The result view (right side); the default lists the step's output."""
        self._result_text = QLabel()
        self._result_text.setWordWrap(True)
        self._result_text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        return self._result_text

    def show_result(self) -> None:
        """Show the project's current result of the page's steps (default: output present?)."""
        project = self.session.project
        if project is None or not hasattr(self, "_result_text"):
            return
        lines = []
        for name in self.steps:
            step = pipeline.get_step(name)
            there = step.output in project
            lines.append(f"<b>{step.title}</b>: /{step.output} {'present' if there else 'not computed yet'}")
        self._result_text.setText("<br>".join(lines))

    def step_extras(self, name: str) -> dict[str, Any]:
        """Extra keyword arguments for step ``name``'s run function (e.g. a live preview); called
        in the GUI thread, the callables it returns run in the worker thread."""
        return {}

    def quick_params(self, name: str, params: Any) -> Any:
        """Shortened parameters for quick mode (default: unchanged)."""
        return params

    # -- parameters ---------------------------------------------------------------------------
    def refresh(self) -> None:
        super().refresh()
        project = self.session.project
        if project is None:
            return
        for name, form in self.forms.items():
            form.set_params(pipeline.params_for(project, name))
        self.invalid_label.clear()
        try:
            self.show_result()
        except Exception as exc:  # noqa: BLE001 - a view must never take the window down
            logger().exception("showing the result of %s", self.key)
            self.progress_label.setText(f"Could not show the result: {exc}")

    def _on_edit(self) -> None:
        try:
            for form in self.forms.values():
                form.params()
        except ValueError as exc:
            self.invalid_label.setText(str(exc))
            self.run_button.setEnabled(False)
            return
        self.invalid_label.clear()
        self.run_button.setEnabled(not self.session.busy)
        self._save_timer.start()

    def collect_params(self) -> dict[str, Any]:
        """The edited parameters of each step (ValueError when one is invalid)."""
        return {name: form.params() for name, form in self.forms.items()}

    def save_params(self) -> None:
        """Save edited parameters that differ from the ones the step would use (marks it stale)."""
        project = self.session.project
        if project is None or self.session.busy:
            return
        try:
            params = self.collect_params()
        except ValueError:
            return
        changed = False
        for name, value in params.items():
            if pipeline.params_to_dict(value) != pipeline.params_to_dict(pipeline.params_for(project, name)):
                pipeline.save_params(project, name, value)
                changed = True
        if changed:
            self.session.refresh()

    def reset_defaults(self) -> None:
        for form in self.forms.values():
            form.reset_defaults()

    # -- running ------------------------------------------------------------------------------
    def steps_to_run(self) -> list[str]:
        """The last step always; earlier ones of the page when they are not done and can run."""
        project = self.session.project
        chosen = []
        for name in self.steps[:-1]:
            if (self.session.step_state(name).state != "done"
                    and pipeline.get_step(name).ready(project)):
                chosen.append(name)
        return [*chosen, self.steps[-1]]

    def run(self) -> None:
        """Save the parameters and run the page's steps in the worker."""
        project = self.session.project
        if project is None or self.session.busy:
            return
        self._save_timer.stop()
        try:
            params = self.collect_params()
        except ValueError as exc:
            show_error(self, exc, f"{self.title}: invalid parameter")
            return
        if self.session.quick:
            params = {n: self.quick_params(n, p) for n, p in params.items()}
            for n, p in params.items():
                self.forms[n].set_params(p)
        self.save_params()
        names = self.steps_to_run()
        extras = {name: self.step_extras(name) for name in names}

        def job(progress: ProgressFn, cancel: CancelToken) -> None:
            for k, name in enumerate(names):
                title = pipeline.get_step(name).title
                part = sub_progress(progress, k / len(names), (k + 1) / len(names))
                pipeline.run_step(project, name, params[name],
                                  progress=lambda f, m, t=title, p=part: p(f, f"{t}: {m}"),
                                  cancel=cancel, **extras[name])

        self.start_worker(Worker(job))

    def start_worker(self, worker: Worker) -> None:
        """Run ``worker`` with this page's progress bar, Cancel button and result refresh."""
        self.worker = worker
        worker.progress.connect(self.on_progress)
        worker.finished.connect(lambda _r: self._ended("done", "Finished."))
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(lambda: self._ended("cancelled", "Cancelled: the project is unchanged."))
        self.progress_bar.setValue(0)
        self.progress_label.setText("Starting…")
        worker.start()  # first: set_busy enables Cancel only for the page whose worker runs
        self.session.set_busy(True)

    def on_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(round(fraction * 1000)))
        self.progress_label.setText(message)

    def cancel(self) -> None:
        if self.worker is not None and self.worker.running:
            self.progress_label.setText("Cancelling at the next safe point…")
            self.worker.cancel()

    def set_busy(self, busy: bool) -> None:
        """Enable or disable the inputs while any page's work runs."""
        mine = self.worker is not None and self.worker.running
        self.run_button.setEnabled(not busy)
        self.reset_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy and mine)
        for form in self.forms.values():
            form.setEnabled(not busy)

    def _on_failed(self, exc: object) -> None:
        self._ended("failed", f"Failed: {' '.join(str(exc).split())}")
        if isinstance(exc, BaseException):
            show_error(self, exc, f"{self.title} failed")

    def _ended(self, outcome: str, text: str) -> None:
        if outcome == "done":
            self.progress_bar.setValue(1000)
        self.progress_label.setText(text)
        self.session.set_busy(False)
        self.session.refresh()
        self.run_finished.emit(outcome)


def replace_fields(params: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` that ignores fields the class does not have (the core evolves)."""
    names = {f.name for f in dataclasses.fields(params)}
    return dataclasses.replace(params, **{k: v for k, v in changes.items() if k in names})
