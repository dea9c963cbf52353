"""The processing steps in order: what each reads and writes, its state, and how to run it.

State of a step (:func:`step_states`)
-------------------------------------
``not run``
    Its output is absent (and its last run did not fail).
``failed``
    Its output is absent and its last run failed (the ``/log`` entry says why).
``stale``
    Its output exists but is out of date: an input it reads changed after it ran (every project
    transaction stamps what it changed with a generation number, see
    :meth:`rstem_core.project.Project.generation`), the parameters saved for it
    (:func:`save_params`, e.g. from the GUI) differ from the ones it ran with, or a step it
    depends on is stale.
``done``
    Its output exists and nothing it depends on changed since.

Each step's science lives in its own module (a frozen parameter dataclass and a run function
taking the project, the parameters, ``progress`` and ``cancel``); this module only knows their
names, so importing it stays cheap (no torch).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import Cancelled, RstemError
from .progress import CancelToken, ProgressFn, no_progress
from .project import Project, to_json

STATES = ("not run", "done", "stale", "failed")
PARAMS_ATTR = "step_params"


def _has(*keys: str) -> Callable[[Project], bool]:
    return lambda project: all(k in project for k in keys)


def _accepted_areas(project: Project) -> bool:
    return "training/accepted" in project and len(project.read_json("training/accepted")) > 0


@dataclass(frozen=True)
class Step:
    """One processing step.

    Attributes
    ----------
    name, title : str
        Command-line name and the title shown to users.
    output : str
        Project key whose presence means the step has run.
    inputs : tuple of str
        Project keys the step reads when present (a change to any of them makes it stale).
    upstream : tuple of str
        Steps whose results it depends on (a stale upstream step makes it stale too).
    module, params_class, run_function : str
        Where its parameters and run function live (imported when needed).
    ready : callable
        ``ready(project) -> bool``: whether the step's required inputs are there.
    missing : str
        The one-line reason it is skipped when not ready.
    """

    name: str
    title: str
    output: str
    inputs: tuple[str, ...]
    upstream: tuple[str, ...]
    module: str
    params_class: str
    run_function: str
    ready: Callable[[Project], bool]
    missing: str

    def load(self) -> tuple[type, Callable[..., Any]]:
        """The step's parameter class and run function."""
        mod = importlib.import_module(self.module)
        return getattr(mod, self.params_class), getattr(mod, self.run_function)


STEPS: tuple[Step, ...] = (
    Step("calibrate", "Calibration", "calibration/distortion_map",
         ("raw/grating-rapid", "raw/grating-slow", "raw/rapid"), (),
         "rstem_core.calib.step", "CalibrationParams", "run_calibration",
         _has("raw/rapid", "raw/grating-rapid", "raw/grating-slow"),
         "no grating pair imported: distortion correction skipped"),
    Step("curate", "Training set", "training/accepted", ("raw/training", "raw/rapid"), (),
         "rstem_core.curate.step", "CurationParams", "run_curation",
         _has("raw/rapid", "raw/training"),
         "no training areas imported: the starter denoiser will be used"),
    Step("train", "Denoiser training", "models/denoiser", ("training/accepted", "training/references"),
         ("curate",), "rstem_core.denoise.step", "TrainParams", "run_training",
         _accepted_areas, "no accepted training areas: the starter denoiser will be used"),
    Step("denoise", "Denoise", "processed/denoised", ("models/denoiser", "processed/corrected", "raw/rapid"),
         ("calibrate", "train"), "rstem_core.denoise.step", "DenoiseParams", "run_denoise",
         _has("raw/rapid"), "no rapid series imported"),
    Step("refine", "Tilt refinement", "processed/alignment",
         ("processed/denoised", "processed/corrected", "raw/rapid"), ("calibrate", "denoise"),
         "rstem_core.refine_step", "RefineParams", "run_refinement",
         _has("raw/rapid"), "no rapid series imported"),
    Step("reconstruct", "Reconstruction", "reconstruction/volume",
         ("processed/aligned", "processed/alignment", "processed/denoised", "processed/corrected", "raw/rapid"),
         ("calibrate", "denoise", "refine"), "rstem_core.recon.step", "ReconstructionParams",
         "run_reconstruction", _has("raw/rapid"), "no rapid series imported"),
    Step("evaluate", "Evaluate", "evaluation/report", ("reconstruction/volume", "raw/slow"), ("reconstruct",),
         "rstem_core.analysis.evaluate", "EvaluationParams", "run_evaluation",
         _has("reconstruction/volume"), "no reconstruction to evaluate"),
)
STEP_NAMES = tuple(s.name for s in STEPS)


def get_step(name: str) -> Step:
    """The step called ``name`` (ValueError listing the names otherwise)."""
    for step in STEPS:
        if step.name == name:
            return step
    raise ValueError(f"unknown step {name!r}; the steps are {', '.join(STEP_NAMES)}")


@dataclass(frozen=True)
class StepState:
    """A step's state and, unless done, why."""

    state: str
    reason: str = ""


# -- parameters ---------------------------------------------------------------------------------
def params_to_dict(params: Any) -> dict[str, Any]:
    """A parameter dataclass as plain JSON-able values."""
    return json.loads(to_json(params))


def params_from_dict(cls: type, values: dict[str, Any] | None) -> Any:
    """Build a parameter dataclass from stored values, ignoring unknown keys (older versions)."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        value = values[f.name]
        hint = hints.get(f.name)
        if isinstance(value, dict) and dataclasses.is_dataclass(hint):
            value = params_from_dict(hint, value)
        elif isinstance(value, list) and "tuple" in str(hint or ""):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[f.name] = value
    return cls(**kwargs)


def saved_params(project: Project) -> dict[str, dict[str, Any]]:
    """The parameters saved for each step (:func:`save_params`), by step name."""
    raw = project.attrs("/").get(PARAMS_ATTR)
    return json.loads(raw) if raw else {}


def save_params(project: Project, name: str, params: Any) -> None:
    """Save the parameters the next run of step ``name`` uses (marks its result stale when they
    differ from the ones it ran with)."""
    get_step(name)
    stored = saved_params(project)
    stored[name] = params_to_dict(params)
    with project.edit() as w:
        w.set_attrs("/", {PARAMS_ATTR: json.dumps(stored)})


def params_for(project: Project, name: str) -> Any:
    """The parameters step ``name`` runs with: the saved ones, else the ones its result was made
    with, else the defaults."""
    step = get_step(name)
    cls, _ = step.load()
    stored = saved_params(project).get(name)
    if stored is None and step.output in project:
        stored = _output_params(project, step)
    return params_from_dict(cls, stored)


def _output_params(project: Project, step: Step) -> dict[str, Any] | None:
    parent = step.output.rsplit("/", 1)[0] if "/" in step.output else step.output
    for key in (step.output, parent):
        if key in project:
            raw = project.attrs(key).get("params")
            if raw:
                return json.loads(raw)
    return None


# -- states -------------------------------------------------------------------------------------
def _last_run_failed(project: Project, name: str) -> str | None:
    for entry in reversed(project.log_entries()):
        if entry.get("step") == name:
            return entry.get("error", "failed") if entry.get("status") == "failed" else None
    return None


def step_states(project: Project) -> dict[str, StepState]:
    """The state of every step, in pipeline order (see the module notes)."""
    saved = saved_params(project)
    states: dict[str, StepState] = {}
    for step in STEPS:
        if step.output not in project:
            error = _last_run_failed(project, step.name)
            states[step.name] = StepState("failed", error) if error else StepState("not run")
            continue
        made = project.generation(step.output)
        newer = [k for k in step.inputs if k in project and project.generation(k) > made]
        stale_up = [u for u in step.upstream if states[u].state == "stale"]
        if newer:
            states[step.name] = StepState("stale", f"/{newer[0]} changed after this step ran")
        elif step.name in saved and saved[step.name] != (_output_params(project, step) or {}):
            states[step.name] = StepState("stale", "its parameters changed since it ran")
        elif stale_up:
            states[step.name] = StepState("stale", f"the {get_step(stale_up[0]).title.lower()} step is stale")
        else:
            states[step.name] = StepState("done")
    return states


def next_step(project: Project) -> str | None:
    """The step to run next: the first one ready to run that is not done (None when all are)."""
    for name, st in step_states(project).items():
        if st.state != "done" and get_step(name).ready(project):
            return name
    return None


# -- running ------------------------------------------------------------------------------------
def record_failure(project: Project, name: str, error: BaseException | str, params: Any = None) -> None:
    """Append a failed run of step ``name`` to ``/log`` (its results stay as they were)."""
    entry: dict[str, Any] = {"step": name, "status": "failed", "error": " ".join(str(error).split())}
    if params is not None:
        entry["params"] = params_to_dict(params)
    with project.edit() as w:
        w.append_log(entry)


def run_step(
    project: Project,
    name: str,
    params: Any = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **extra: Any,
) -> Any:
    """Run one step with ``params`` (default :func:`params_for`) and return its result.

    ``extra`` keyword arguments go to the step's run function (e.g. ``preview`` of the
    reconstruction).

    A failure is recorded in ``/log`` and raised again; the step's own transaction guarantees the
    project's data are as before. A cancel records nothing and raises :class:`Cancelled`.
    """
    step = get_step(name)
    _, run = step.load()
    if params is None:
        params = params_for(project, name)
    if not step.ready(project):
        raise RstemError(f"{step.title}: {step.missing}")
    try:
        result = run(project, params, progress=progress or no_progress, cancel=cancel, **extra)
    except (Cancelled, KeyboardInterrupt):
        raise
    except (RstemError, ValueError, RuntimeError, MemoryError) as exc:
        if project.mode == "a":
            record_failure(project, name, exc, params)
        raise
    if name in saved_params(project):
        # what the step recorded with its output: a step may complete its parameters (e.g. the
        # training step adds the held-out areas), and those are the ones the result was made with
        stored = saved_params(project)
        stored[name] = _output_params(project, step) or params_to_dict(params)
        with project.edit() as w:
            w.set_attrs("/", {PARAMS_ATTR: json.dumps(stored)})
    return result


@dataclass(frozen=True)
class RunRecord:
    """What :func:`run_pipeline` did with one step: ``ran``, ``skipped``, ``up to date`` or
    ``failed``, why, and how long it took (s)."""

    step: str
    action: str
    reason: str = ""
    seconds: float = 0.0


def run_pipeline(
    project: Project,
    *,
    start: str | None = None,
    until: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_step: Callable[[RunRecord], None] | None = None,
) -> list[RunRecord]:
    """Run the steps from ``start`` to ``until`` that are not run, stale or failed (all of them
    with ``force``), with their saved or default parameters, in order.

    A step whose inputs are missing is skipped with its reason; the run stops at the first step
    that fails (the failure is in the returned records and in ``/log``).
    """
    progress = progress or no_progress
    names = list(STEP_NAMES)
    lo = names.index(get_step(start).name) if start else 0
    hi = names.index(get_step(until).name) if until else len(names) - 1
    if lo > hi:
        raise RstemError(f"--from {start} comes after --until {until}")
    chosen = names[lo:hi + 1]
    records: list[RunRecord] = []
    for k, name in enumerate(chosen):
        step = get_step(name)
        state = step_states(project)[name]
        if not step.ready(project):
            record = RunRecord(name, "skipped", step.missing)
        elif state.state == "done" and not force:
            record = RunRecord(name, "up to date")
        else:
            def scaled(fraction: float, message: str, k: int = k, title: str = step.title) -> None:
                progress((k + min(max(fraction, 0.0), 1.0)) / len(chosen), f"{title}: {message}")

            started = time.perf_counter()
            try:
                run_step(project, name, progress=scaled, cancel=cancel)
            except (RstemError, ValueError, RuntimeError, MemoryError) as exc:
                record = RunRecord(name, "failed", " ".join(str(exc).split()), time.perf_counter() - started)
                records.append(record)
                if on_step:
                    on_step(record)
                break
            record = RunRecord(name, "ran", state.reason or state.state, time.perf_counter() - started)
        records.append(record)
        if on_step:
            on_step(record)
    progress(1.0, "pipeline finished")
    return records
