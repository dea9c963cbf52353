"""On the synthetic experiment, the time-lag-aware geometry removes the convex depth error (Fig. 7a)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rstem_core.analysis.timelag import time_lag_depth_errors
from rstem_core.project import Project
from rstem_core.simulate import SimulationConfig, write_demo_project


@pytest.mark.slow
def test_time_lag_geometry_halves_depth_errors_against_the_slow_tomogram(tmp_path: Path) -> None:
    config = SimulationConfig.scaled(size=256, frames=71, seed=3, areas_per_tilt=1, frames_per_area=2)
    path = write_demo_project(tmp_path / "d.h5", config)
    with Project.open(path) as proj:
        r = time_lag_depth_errors(proj, iterations=30, device="cpu")
    frame, row = r["frame_angles_vs_slow"], r["row_angles_vs_slow"]
    assert frame["pairs"] > 200 and row["pairs"] > 200
    assert row["mean_abs_dz_nm"] <= 0.5 * frame["mean_abs_dz_nm"]
    # the frame-angle error is convex in y (largest at the top and bottom rows), the corrected one flat
    assert frame["dz_convex_nm"] > 3 * abs(row["dz_convex_nm"])
    # against the true lines the row-angle rapid tomogram is as good as the slow one
    assert abs(r["row_angles"]["mean_abs_dz_nm"] - r["slow_vs_truth"]["mean_abs_dz_nm"]) < 0.5
