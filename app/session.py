"""The open project and its step states: the model every view of the window reads.

One :class:`Session` per window. It opens the project for writing (the file lock tells other
processes it is in use), caches the pipeline's step states and tells the views when the project
or the states changed. It knows nothing about widgets.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from rstem_core import pipeline
from rstem_core.project import Project

#: the window's pages: key, title, the core steps whose state the page shows
PAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("project", "Project", ()),
    ("calibrate", "Calibration", ("calibrate",)),
    ("curate", "Training set", ("curate",)),
    ("denoise", "Denoise", ("train", "denoise")),
    ("refine", "Tilt refinement", ("refine",)),
    ("reconstruct", "Reconstruction", ("reconstruct",)),
    ("view3d", "3D view", ("reconstruct",)),
    ("evaluate", "Evaluate", ("evaluate",)),
    ("export", "Export", ()),
)
PAGE_KEYS = tuple(p[0] for p in PAGES)
_RANK = {"failed": 0, "stale": 1, "not run": 2, "done": 3}


class Session(QObject):
    """The open project, its step states and whether work is running.

    Signals
    -------
    project_changed()
        Another project was opened or created (or the project was closed).
    states_changed()
        The project's content or saved parameters changed; views re-read what they show.
    busy_changed(bool)
        Work started (True) or ended (False).
    """

    project_changed = Signal()
    states_changed = Signal()
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self._states: dict[str, pipeline.StepState] = {}
        self._busy = False
        self.quick = False

    # -- opening ------------------------------------------------------------------------------
    def open(self, path: str | Path) -> None:
        """Open ``path`` for writing (ProjectLockedError when another process has it)."""
        project = Project.open(path, "a")
        self._set(project)

    def create(self, path: str | Path) -> None:
        """Create an empty project at ``path`` (overwriting a file the user chose to replace)."""
        self._set(Project.create(path, overwrite=True))

    def save_as(self, path: str | Path) -> None:
        """Copy the project to ``path`` and continue there."""
        if self.project is None:
            return
        self._set(self.project.save_as(path), close_old=False)

    def close(self) -> None:
        """Close the project (releases its lock)."""
        if self.project is not None:
            self.project.close()
            self.project = None
            self._states = {}
            self.project_changed.emit()

    def _set(self, project: Project, close_old: bool = True) -> None:
        if close_old and self.project is not None and self.project is not project:
            self.project.close()
        self.project = project
        self._states = pipeline.step_states(project)
        self.project_changed.emit()
        self.states_changed.emit()

    # -- states -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the step states (after a run or a parameter change) and tell the views."""
        self._states = pipeline.step_states(self.project) if self.project is not None else {}
        self.states_changed.emit()

    def step_state(self, name: str) -> pipeline.StepState:
        """The cached state of core step ``name``."""
        return self._states.get(name, pipeline.StepState("not run"))

    def page_state(self, key: str) -> pipeline.StepState:
        """A page's state: the worst state of its core steps (a step that cannot run because
        its optional inputs are missing does not count against it)."""
        project = self.project
        if project is None:
            return pipeline.StepState("not run", "no project open")
        if key == "project":
            ok = "raw/rapid" in project
            return pipeline.StepState("done" if ok else "not run", "" if ok else "import a rapid series")
        if key == "export":
            ok = "reconstruction/volume" in project
            return pipeline.StepState("not run", "" if ok else "nothing to export yet")
        steps = dict((p[0], p[2]) for p in PAGES)[key]
        considered = [s for s in steps if pipeline.get_step(s).ready(project)
                      or self.step_state(s).state != "not run"]
        if not considered:
            step = pipeline.get_step(steps[-1])
            return pipeline.StepState("not run", step.missing)
        worst = min((self.step_state(s) for s in considered), key=lambda st: _RANK[st.state])
        return worst

    def next_page(self) -> str | None:
        """The page of the step the pipeline recommends next (None when all are done)."""
        if self.project is None:
            return None
        if "raw/rapid" not in self.project:
            return "project"
        name = pipeline.next_step(self.project)
        if name is None:
            return "export" if "reconstruction/volume" in self.project else None
        for key, _, steps in PAGES:
            if name in steps:
                return key
        return None

    # -- work ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a worker is changing the project (views must not read it then)."""
        return self._busy

    def set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)
