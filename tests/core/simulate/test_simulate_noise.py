"""Noise of the simulated rapid frames: Poisson-like, streaked along x, dominated by it (paper Fig. 1c-f)."""

from __future__ import annotations

import numpy as np
import pytest

from rstem_core.simulate import Experiment
from rstem_core.simulate.detector import PoissonSampler, afterglow_kernel, apply_afterglow
from rstem_core.simulate.series import rapid_chain


def _noise(exp: Experiment) -> np.ndarray:
    rt = exp.rapid_truth
    return exp.rapid.frames - rt.adu_per_unit * rt.clean


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean()))


def test_noise_is_correlated_along_rows_not_between_rows(experiment: Experiment) -> None:
    noise = _noise(experiment)
    along_x = np.mean([_corr(n[:, :-1], n[:, 1:]) for n in noise])
    along_y = np.mean([_corr(n[:-1], n[1:]) for n in noise])
    assert along_x > 0.2
    assert abs(along_y) < 0.05
    # streaks: row means vary far more than independent pixels would allow, column means do not
    rows = np.mean([n.mean(axis=1).var() * n.shape[1] / n.var() for n in noise])
    cols = np.mean([n.mean(axis=0).var() * n.shape[0] / n.var() for n in noise])
    assert rows > 4.0
    assert 0.5 < cols < 1.5


def test_noise_spectrum_is_concentrated_on_the_ky_axis(experiment: Experiment) -> None:
    noise = _noise(experiment)
    power = np.mean([np.abs(np.fft.fft2(n - n.mean())) ** 2 for n in noise], axis=0)
    ky_axis = power[1:, 0].mean()  # kx = 0: variation along y only
    kx_axis = power[0, 1:].mean()  # ky = 0
    assert ky_axis > 5 * kx_axis
    assert ky_axis > 5 * power.mean()


def test_shot_noise_variance_grows_linearly_with_the_mean(experiment: Experiment) -> None:
    rt = experiment.rapid_truth
    mean = rt.adu_per_unit * rt.clean
    noise = _noise(experiment)
    edges = np.quantile(mean, np.linspace(0.02, 0.98, 13))
    m, v, bias = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (mean >= lo) & (mean < hi)
        m.append(mean[sel].mean())
        v.append(noise[sel].var())
        bias.append(noise[sel].mean())
    m, v = np.array(m), np.array(v)
    slope, intercept = np.polyfit(m, v, 1)
    fit = slope * m + intercept
    r2 = 1 - np.sum((v - fit) ** 2) / np.sum((v - v.mean()) ** 2)
    poisson = rapid_chain(experiment.config).noise_variance_factor
    assert r2 > 0.98
    assert 0.9 * poisson < slope < 1.4 * poisson  # shot noise, plus a little from the gain streaks
    assert np.all(np.abs(bias) < 0.02 * m + 0.3)  # zero-mean: clean is the expected frame


def test_single_frames_are_dominated_by_noise(experiment: Experiment) -> None:
    rt = experiment.rapid_truth
    noise = _noise(experiment)
    snr = [(rt.adu_per_unit * c).std() / n.std() for c, n in zip(rt.clean, noise, strict=True)]
    assert max(snr) < 1.0
    slow_noise = (
        experiment.slow.frames - experiment.slow_truth.adu_per_unit * experiment.slow_truth.clean
    )
    rel_slow = slow_noise.std() / experiment.slow.frames.mean()
    rel_rapid = noise.std() / experiment.rapid.frames.mean()
    assert rel_slow < 0.25 * rel_rapid


@pytest.mark.parametrize("lam", [0.4, 2.0, 6.5, 15.0, 60.0])
def test_poisson_sampler_matches_poisson(lam: float) -> None:
    rng = np.random.default_rng(3)
    counts = PoissonSampler().sample(np.full((400, 500), lam, np.float32).T, rng)  # F-ordered input
    assert counts.shape == (500, 400)
    assert abs(counts.mean() - lam) < 4 * np.sqrt(lam / counts.size)
    assert abs(counts.var() / lam - 1) < 0.02
    assert abs((counts == 0).mean() - np.exp(-lam)) < 0.003


def test_afterglow_is_a_causal_tail_that_keeps_the_mean() -> None:
    kernel = afterglow_kernel(0.35, 2.5)
    impulse = np.zeros((1, 1, 32), np.float32)
    impulse[..., 10] = 1
    out = apply_afterglow(impulse, kernel)[0, 0]
    assert np.all(out[:10] == 0)
    assert out[10] == pytest.approx(0.65, abs=1e-3)  # prompt part (tail truncated at 0.1 %)
    assert np.all(np.diff(out[11:20]) < 0)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
