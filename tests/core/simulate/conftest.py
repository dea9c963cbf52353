"""One small synthetic experiment, built once for the simulate tests."""

from __future__ import annotations

import pytest

from rstem_core.simulate import Experiment, SimulationConfig, TrainingArea, simulate_experiment


@pytest.fixture(scope="session")
def small_config() -> SimulationConfig:
    """128 px, 15 frames, 3 training areas of 8 frames per tilt."""
    return SimulationConfig.scaled(size=128, frames=15, seed=5, areas_per_tilt=3, frames_per_area=8)


@pytest.fixture(scope="session")
def experiment(small_config: SimulationConfig) -> Experiment:
    return simulate_experiment(small_config)


@pytest.fixture(scope="session")
def areas(experiment: Experiment) -> list[TrainingArea]:
    return list(experiment.training_areas())
