"""The processing steps in order, where each writes its result, and each step's state.

A step is ``done`` when its output exists in the project, ``not run`` otherwise. Staleness
(an upstream change after a step ran) and failure are tracked from the ``/log`` entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from .project import Project


@dataclass(frozen=True)
class Step:
    """One processing step: its name (as on the command line), its title and its output key."""

    name: str
    title: str
    output: str


STEPS: tuple[Step, ...] = (
    Step("calibrate", "Calibration", "calibration/distortion_map"),
    Step("curate", "Training set", "training/accepted"),
    Step("train", "Denoiser training", "models/denoiser"),
    Step("denoise", "Denoise", "processed/denoised"),
    Step("refine", "Tilt refinement", "processed/alignment"),
    Step("reconstruct", "Reconstruction", "reconstruction/volume"),
    Step("evaluate", "Evaluate", "evaluation/report"),
)

STATES = ("not run", "done", "stale", "failed")


def step_states(project: Project) -> dict[str, str]:
    """The state of every step, in pipeline order."""
    failed = {e.get("step") for e in project.log_entries() if e.get("status") == "failed"}
    states: dict[str, str] = {}
    for step in STEPS:
        if step.output in project:
            states[step.name] = "done"
        elif step.name in failed:
            states[step.name] = "failed"
        else:
            states[step.name] = "not run"
    return states
