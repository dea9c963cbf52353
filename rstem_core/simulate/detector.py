"""The bright-field detector chain of a scanned frame: what turns a clean image into recorded data.

For clean intensity ``I`` (fraction of the beam on the detector) the recorded value in digital units
(ADU) is

    N   ~ Poisson(dose * I * (1 + g * G + hum))          detected electrons (shot noise)
    S   = afterglow(N) + b * B                           causal exponential tail along +x
    ADU = round(gain * S), clipped at 0

* ``G`` and ``B`` are unit-variance AR(1) processes running along the *scan path* (row after row,
  including the flyback), with a correlation length of ``streak_length`` rows: each row gets its own
  slowly varying gain / baseline offset, nearly independent of its neighbours. Frame minus mean then
  shows horizontal streaks, and its Fourier transform concentrates energy along the ky axis (paper
  Fig. 1e-f). ``hum`` is a 50 Hz modulation across the rows.
* The afterglow releases ``afterglow_fraction`` of each pixel's signal over the following pixels of
  the row with decay length ``afterglow_px``; it smooths the noise along x and keeps the mean.
* The expected recording is ``gain * dose * afterglow(I)``: the truth "clean" frames include the
  afterglow (a deterministic detector blur), so ``frame - gain * dose * clean`` is zero-mean noise
  whose variance is ``gain^2 * dose * I * sum(h^2)`` (Poisson, reduced by the afterglow kernel h)
  plus the small streak terms: linear in the mean.

Values are clipped at 0 ADU (no black-level offset): where fewer than ~1 electron per pixel arrives
(thick areas at 70 deg) the baseline noise is half cut off and the mean rises by up to ~0.2 ADU.

Slow scans use the same chain with the afterglow and streak lengths divided by the dwell ratio
(in pixels) and the streak amplitudes divided by its square root.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal, stats

from .params import DetectorParams

#: stochastic-rounding grid of the Poisson mean (electrons); keeps the mean exact
_LAMBDA_STEP = 1.0 / 32.0
_GUIDE_BINS = 256
#: largest mean served by the table; larger means use numpy's (fast, PTRS) sampler
_TABLE_MAX = 40.0


class PoissonSampler:
    """Poisson samples for arrays of low means, about twice as fast as numpy's below a mean of 10.

    Means are stochastically rounded to a 1/32 electron grid (the mean stays exact, the variance
    grows by < 1e-4) and inverted through tabulated CDFs with a guide table. Frames with a mean
    above 40 electrons use :meth:`numpy.random.Generator.poisson`. The table is built once.
    """

    def __init__(self) -> None:
        n_levels = int(_TABLE_MAX / _LAMBDA_STEP) + 2
        self._kmax = int(_TABLE_MAX + 12 * math.sqrt(_TABLE_MAX) + 16)
        means = np.arange(n_levels)[:, None] * _LAMBDA_STEP
        cdf = stats.poisson.cdf(np.arange(self._kmax)[None, :], means).astype(np.float32)
        cdf[:, -1] = 1.0
        guide = np.stack(
            [np.searchsorted(row, np.arange(_GUIDE_BINS) / _GUIDE_BINS, side="left") for row in cdf]
        )
        self._cdf = cdf.ravel()
        self._guide = guide.astype(np.int32).ravel()

    def sample(self, lam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw ``Poisson(lam)`` elementwise.

        Parameters
        ----------
        lam : ndarray
            Non-negative finite means.
        rng : numpy.random.Generator

        Returns
        -------
        ndarray, same shape, float32
        """
        shape = np.shape(lam)
        lam = np.ascontiguousarray(lam, np.float32).reshape(-1)
        if lam.size == 0:
            return lam.reshape(shape)
        lo, hi = float(lam.min()), float(lam.max())
        if lo < 0 or not math.isfinite(hi):
            raise ValueError("Poisson means must be finite and >= 0")
        if hi > _TABLE_MAX:
            return rng.poisson(lam).astype(np.float32).reshape(shape)
        q = lam * np.float32(1.0 / _LAMBDA_STEP)
        level = q.astype(np.int32)
        q -= level
        level += rng.random(lam.size, dtype=np.float32) < q
        u = rng.random(lam.size, dtype=np.float32)
        index = level * _GUIDE_BINS
        index += (u * _GUIDE_BINS).astype(np.int32)
        k = self._guide[index]
        base = level
        base *= self._kmax
        todo = np.flatnonzero(u > self._cdf[base + k])
        while todo.size:
            k[todo] += 1
            todo = todo[u[todo] > self._cdf[base[todo] + k[todo]]]
        return k.astype(np.float32).reshape(shape)


def afterglow_kernel(fraction: float, length_px: float) -> np.ndarray:
    """Causal detector response along the row: ``h[0] = 1 - f``, ``h[m] ~ f exp(-(m-1)/L)``; sums to 1."""
    if fraction <= 0 or length_px < 0.05:
        return np.ones(1)
    a = math.exp(-1.0 / length_px)
    m = max(1, int(math.ceil(length_px * math.log(1e3))))
    tail = fraction * (1 - a) * a ** np.arange(m)
    h = np.concatenate([[1.0 - fraction], tail])
    return h / h.sum()


def apply_afterglow(frames: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every row with a causal kernel along +x (``y[c] = sum_m h[m] x[c - m]``)."""
    if len(kernel) == 1:
        return np.array(frames, np.float32)
    return ndimage.convolve1d(
        np.asarray(frames, np.float32),
        kernel.astype(np.float32),
        axis=-1,
        mode="nearest",
        origin=-(len(kernel) // 2),
    )


def scan_path_noise(
    rng: np.random.Generator, shape: tuple[int, int], correlation_px: float, flyback: float
) -> np.ndarray:
    """Unit-variance AR(1) noise along the scan path of one frame.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
        (rows, cols).
    correlation_px : float
        Correlation length along the path, in pixel dwell times.
    flyback : float
        Flyback time per row as a fraction of the active row.

    Returns
    -------
    ndarray, shape ``shape``, float32
    """
    rows, cols = shape
    step = max(1, int(correlation_px // 16))
    per_row = int(math.ceil(cols * (1 + flyback) / step)) + 2
    rho = math.exp(-step / max(correlation_px, 1e-6))
    e = rng.standard_normal(rows * per_row)
    e[0] /= math.sqrt(max(1 - rho * rho, 1e-12))
    path = (
        signal.lfilter([math.sqrt(1 - rho * rho)], [1.0, -rho], e)
        .astype(np.float32)
        .reshape(rows, per_row)
    )
    if step == 1:
        return np.ascontiguousarray(path[:, :cols])
    pos = np.arange(cols) / step
    i0 = np.floor(pos).astype(np.intp)
    f = (pos - i0).astype(np.float32)
    return np.ascontiguousarray(path[:, i0] * (1 - f) + path[:, i0 + 1] * f)


class DetectorChain:
    """Records clean frames as a scanning bright-field detector would.

    Parameters
    ----------
    dose_e_per_px : float
        Electrons per pixel reaching the detector at intensity 1.
    gain_adu_per_e : float
        Digital units per electron.
    detector : DetectorParams
        Afterglow and streak parameters (given for the rapid dwell time).
    line_time_s : float
        Time per row (for the 50 Hz hum).
    dwell_ratio : float
        Dwell time relative to the rapid scan (1 for rapid frames, ~53 for slow frames).
    flyback : float
        Flyback time per row as a fraction of the active row.
    """

    def __init__(
        self,
        *,
        dose_e_per_px: float,
        gain_adu_per_e: float,
        detector: DetectorParams,
        line_time_s: float,
        dwell_ratio: float = 1.0,
        flyback: float = 0.15,
    ) -> None:
        if dose_e_per_px <= 0 or gain_adu_per_e <= 0 or dwell_ratio <= 0:
            raise ValueError("dose_e_per_px, gain_adu_per_e and dwell_ratio must be > 0")
        self.dose_e_per_px = float(dose_e_per_px)
        self.gain_adu_per_e = float(gain_adu_per_e)
        self.detector = detector
        self.line_time_s = float(line_time_s)
        self.dwell_ratio = float(dwell_ratio)
        self.flyback = float(flyback)
        self.kernel = afterglow_kernel(
            detector.afterglow_fraction, detector.afterglow_px / dwell_ratio
        )
        self._poisson = PoissonSampler()

    @property
    def adu_per_unit(self) -> float:
        """Expected ADU of a pixel of clean intensity 1 (``gain * dose``)."""
        return self.gain_adu_per_e * self.dose_e_per_px

    @property
    def noise_variance_factor(self) -> float:
        """Shot-noise variance per unit mean, in ADU: ``gain * sum(h^2)`` (variance = factor x mean)."""
        return self.gain_adu_per_e * float(np.sum(self.kernel**2))

    def expected(self, clean: np.ndarray) -> np.ndarray:
        """Noise-free recording in clean-intensity units: the afterglow-blurred clean image."""
        return apply_afterglow(clean, self.kernel)

    def record(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Record one clean frame.

        Parameters
        ----------
        clean : ndarray, shape (rows, cols)
            Clean intensity on the recorded pixel grid (after any scan distortion), 0..1.
        rng : numpy.random.Generator
            This frame's noise stream.

        Returns
        -------
        ndarray, shape (rows, cols), float32
            Integer ADU values.
        """
        clean = np.asarray(clean, np.float32)
        if clean.ndim != 2:
            raise ValueError(f"clean must be one (rows, cols) frame, got shape {clean.shape}")
        rows, cols = clean.shape
        d = self.detector
        amp = 1.0 / math.sqrt(self.dwell_ratio)
        length = d.streak_length * cols / self.dwell_ratio
        lam = scan_path_noise(rng, clean.shape, length, self.flyback)
        lam *= np.float32(d.streak_gain * amp)
        t_rows = np.arange(rows) * self.line_time_s
        hum = 1.0 + d.hum * amp * np.sin(2 * np.pi * 50.0 * t_rows + rng.uniform(0, 2 * np.pi))
        lam += hum.astype(np.float32)[:, None]
        np.clip(lam, 0.0, None, out=lam)
        lam *= clean
        lam *= np.float32(self.dose_e_per_px)
        counts = self._poisson.sample(lam, rng)
        sig = apply_afterglow(counts, self.kernel)
        baseline = scan_path_noise(rng, clean.shape, length, self.flyback)
        baseline *= np.float32(d.streak_baseline_e * amp)
        sig += baseline
        sig *= np.float32(self.gain_adu_per_e)
        np.rint(sig, out=sig)
        np.clip(sig, 0.0, 65535.0, out=sig)
        return sig
