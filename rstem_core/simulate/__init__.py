"""The synthetic rapid-STEM dislocation tomography experiment: demo data and the test oracle.

A 300 nm steel slab with dislocations in inclined {111} slip planes is imaged in bright-field
two-beam contrast by (1) a rapid, continuously tilted, row-by-row scanned, distorted, very noisy tilt
series, (2) a slow stop-and-go reference series, (3) a cross-grating calibration pair and (4) many
training areas of repeated rapid frames, with every hidden quantity kept as truth.

Public API
----------
SimulationConfig
    All parameters; ``SimulationConfig.scaled(size, frames, seed)`` for smaller data.
simulate_experiment(config) -> Experiment
    Everything in memory except the training areas (``Experiment.training_areas()`` streams them).
write_demo_project(path, config, progress=, cancel=, previews_dir=, overwrite=) -> Path
    The complete project file (layout in :mod:`rstem_core.simulate.demo`).
write_demo_previews(directory, experiment)
    Fig. 1c-g style PNG previews.
training_plan, simulate_training_area, TrainingArea
    The training set.
ScanDistortion, warp_to_rapid
    The rapid scan's distortion field and its exact (bilinear) application.
DetectorChain
    Shot noise, streaks, afterglow and digitisation of one frame.
"""

from .config import SimulationConfig
from .demo import write_demo_previews, write_demo_project
from .detector import DetectorChain
from .distortion import ScanDistortion, warp_to_rapid
from .experiment import Experiment, simulate_experiment
from .params import ContrastParams, DetectorParams, ScanParams
from .training import AreaPlan, TrainingArea, simulate_training_area, training_plan

__all__ = [
    "AreaPlan",
    "ContrastParams",
    "DetectorChain",
    "DetectorParams",
    "Experiment",
    "ScanDistortion",
    "ScanParams",
    "SimulationConfig",
    "TrainingArea",
    "simulate_experiment",
    "simulate_training_area",
    "training_plan",
    "warp_to_rapid",
    "write_demo_previews",
    "write_demo_project",
]
