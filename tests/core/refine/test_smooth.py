"""The smooth angle-against-time and drift priors."""

from __future__ import annotations

import numpy as np

from rstem_core.align.smooth import ramp_tolerance, smooth_in_time


def test_smooth_curve_averages_noise_and_ignores_an_outlier() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 5.0, 71)
    truth = 28.0 * t - 70.0 + 0.3 * np.sin(2.0 * t)
    measured = truth + rng.normal(0.0, 0.3, t.size)
    measured[30] += 5.0
    curve, _ = smooth_in_time(measured, np.full(t.size, 0.3**2), t, 2.0)
    assert np.sqrt(np.mean((curve - truth) ** 2)) < 0.15  # half the per-frame noise
    assert abs(curve[30] - truth[30]) < 0.3


def test_frames_without_information_are_filled_by_the_curve() -> None:
    t = np.arange(10.0)
    values = 0.5 * t
    var = np.ones(10)
    var[4] = np.inf
    values[4] = 100.0
    curve, _ = smooth_in_time(values, var, t, 0.01)
    assert abs(curve[4] - 2.0) < 0.05


def test_ramp_tolerance_is_largest_at_the_start_and_end() -> None:
    t = np.linspace(0.0, 5.0, 71)
    tol = ramp_tolerance(t, 30.0, 0.2)
    assert tol[0] == tol.max() and tol[-1] > 200.0
    assert np.allclose(tol[30:40], 30.0, rtol=1e-3)
