"""Measurements on a grating pair: its period, a global alignment and local window displacements.

Every displacement here follows the calibration's definition: the rapid image at pixel (r, c) shows
what the slow image shows at ``(r + dy, c + dx)``.

Local measurements run in two kinds of pass over a grid of windows:

* a *search* pass (:func:`measure_windows_xcorr`): windowed cross-correlation of the rapid window
  with the slow image warped by the current model, peak searched within ``radius_px`` (less than
  half a grating period, so the periodic grating cannot produce a wrong match), sub-pixel position
  by a parabola through the peak;
* *refinement* passes (:func:`measure_windows_gradient`): the sub-pixel peak of the linearised
  cross-correlation, i.e. the Lucas-Kanade least-squares solution of
  ``rapid = a * slow(r + dy, c + dx) + b`` per window, which also gives each window's standard error
  and a correlation coefficient. Repeating it after re-warping with the updated model removes the
  bias of averaging a curved field over a window.

Window sums use integral images, so a pass over all windows costs a few image operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

#: a grating's strongest Fourier peak must exceed the median power at its spatial frequency by this
MIN_PERIOD_STRENGTH = 60.0


@dataclass(frozen=True)
class GratingPeriod:
    """The strongest periodicity of an image.

    Attributes
    ----------
    period_px : float
        Period in pixels.
    angle_deg : float
        Direction of the wave vector, degrees from +x towards +y, folded into [-45, 45).
    strength : float
        Peak power over the median power at the same spatial frequency (noise gives ~10-20,
        a grating hundreds).
    """

    period_px: float
    angle_deg: float
    strength: float


def find_grating_period(image: np.ndarray, *, min_periods: float = 4.0) -> GratingPeriod:
    """Find the dominant period of a (cross-)grating image from its power spectrum.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
    min_periods : float
        Only periods that fit at least this many times across the smaller image side count.

    Returns
    -------
    GratingPeriod
    """
    a = np.asarray(image, np.float64)
    a = a - a.mean()
    rows, cols = a.shape
    taper = np.hanning(rows)[:, None] * np.hanning(cols)[None, :]
    power = np.abs(fft.fft2(a * taper)) ** 2
    ky = fft.fftfreq(rows)[:, None]
    kx = fft.fftfreq(cols)[None, :]
    k = np.hypot(ky, kx)
    usable = (k >= min_periods / min(rows, cols)) & (k <= 0.4)
    i = np.unravel_index(np.argmax(np.where(usable, power, 0.0)), power.shape)
    kk = float(k[i])
    ring = usable & (np.abs(k - kk) <= 0.1 * kk + 1.0 / min(rows, cols))
    strength = float(power[i] / max(np.median(power[ring]), 1e-30))
    angle = float(np.degrees(np.arctan2(ky[i[0], 0], kx[0, i[1]])))
    angle = (angle + 45.0) % 90.0 - 45.0
    return GratingPeriod(1.0 / kk, angle, strength)


def aperiodic_part(image: np.ndarray, threshold: float = 10.0) -> np.ndarray:
    """The image without its periodic (grating) part: Fourier peaks far above their surroundings
    (power over ``threshold`` times the local median) and their neighbours are removed.

    What is left of a grating image are the gold particles, which break its periodicity: only they
    show whether two grating images are of the same field, since any two gratings of one period
    line up somewhere.
    """
    spectrum = fft.fft2(np.asarray(image, np.float64))
    power = np.abs(spectrum) ** 2
    peaks = power > threshold * ndimage.median_filter(power, size=9, mode="wrap")
    peaks[0, 0] = False
    spectrum[ndimage.binary_dilation(peaks, iterations=1)] = 0
    return np.real(fft.ifft2(spectrum))


def prefilter(image: np.ndarray, sigma_px: float, highpass_px: float) -> np.ndarray:
    """Band-pass an image for matching: Gaussian smoothing minus a broad Gaussian, unit variance.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
    sigma_px : float
        Noise smoothing (Gaussian sigma, px).
    highpass_px : float
        Sigma of the broad Gaussian removed (slow intensity variations, px).
    """
    a = np.asarray(image, np.float64)
    out = ndimage.gaussian_filter(a, sigma_px, mode="reflect") if sigma_px > 0 else a.copy()
    out -= ndimage.gaussian_filter(a, highpass_px, mode="reflect")
    std = out.std()
    return out / std if std > 0 else out


def warp(image: np.ndarray, dy: np.ndarray, dx: np.ndarray, order: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` at ``(r + dy, c + dx)``; also return where that lies inside the image.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
    dy, dx : ndarray, shape (rows, cols)
        Displacements, px.
    order : int
        Spline order of the interpolation.

    Returns
    -------
    warped : ndarray, shape (rows, cols)
    inside : ndarray of bool, shape (rows, cols)
    """
    rows, cols = image.shape
    rr = np.arange(rows, dtype=np.float64)[:, None] + dy
    cc = np.arange(cols, dtype=np.float64)[None, :] + dx
    inside = (rr >= 0) & (rr <= rows - 1) & (cc >= 0) & (cc <= cols - 1)
    out = ndimage.map_coordinates(image, [rr, cc], order=order, mode="nearest")
    return out, inside


def global_alignment(
    slow: np.ndarray, rapid: np.ndarray, scales: np.ndarray
) -> tuple[float, float, float, float]:
    """Best x scale and translation mapping the rapid image onto the slow one.

    Model: ``dx = (scale - 1) * (c - cc) + shift_x``, ``dy = shift_y`` with ``cc`` the centre
    column. For each trial scale the slow image is resampled and cross-correlated with the rapid
    one over every translation (FFT); the scale is refined by a parabola through the best three.

    Parameters
    ----------
    slow, rapid : ndarray, shape (rows, cols)
        Pre-filtered images (see :func:`prefilter`).
    scales : ndarray
        Trial x scales, increasing, evenly spaced.

    Returns
    -------
    scale, shift_y, shift_x : float
        px for the shifts.
    ncc : float
        Normalised correlation at the best match (0 = unrelated, 1 = identical).
    """
    rows, cols = slow.shape
    centre = (cols - 1) / 2
    taper = np.hanning(rows)[:, None] * np.hanning(cols)[None, :]
    shape = (2 * rows, 2 * cols)
    fr = fft.rfft2(rapid * taper, shape)
    er = float(np.sum((rapid * taper) ** 2))
    c_idx = np.arange(cols, dtype=np.float64)
    peaks, shifts = [], []
    for s in scales:
        dx = np.broadcast_to((s - 1.0) * (c_idx - centre), (rows, cols))
        warped, inside = warp(slow, np.zeros((rows, cols)), dx, order=1)
        b = warped * inside * taper
        corr = fft.irfft2(fr * np.conj(fft.rfft2(b, shape)), shape)
        corr /= np.sqrt(er * float(np.sum(b**2))) + 1e-30
        i = np.unravel_index(int(np.argmax(corr)), corr.shape)
        peaks.append(float(corr[i]))
        shifts.append(tuple(int(v if v < n else v - 2 * n) for v, n in zip(i, (rows, cols), strict=True)))
    k = int(np.argmax(peaks))
    scale = float(scales[k])
    if 0 < k < len(scales) - 1:
        y0, y1, y2 = peaks[k - 1], peaks[k], peaks[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            scale += float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)) * float(scales[1] - scales[0])
    # corr[m] = sum rapid(p + m) warped(p): the rapid image at q = p + m shows the slow image at
    # p + dx(p), so the displacement at q is dx(q - m) - m = (scale - 1)(q - cc) - scale * m
    my, mx = shifts[k]
    return scale, float(-my), float(-scale * mx), peaks[k]


@dataclass(frozen=True)
class WindowGrid:
    """A grid of square windows covering the frame.

    Attributes
    ----------
    starts : ndarray, shape (n, 2), int
        Top-left (row, col) of each window.
    size : int
        Window edge, px.
    shape : tuple of int
        Frame (rows, cols).
    """

    starts: np.ndarray
    size: int
    shape: tuple[int, int]

    @property
    def centres(self) -> np.ndarray:
        """Window centres (row, col), px, shape (n, 2)."""
        return self.starts + (self.size - 1) / 2.0

    @property
    def n(self) -> int:
        return int(self.starts.shape[0])


def _positions(length: int, size: int, step: int) -> np.ndarray:
    pos = list(range(0, length - size + 1, step))
    if pos[-1] != length - size:
        pos.append(length - size)
    return np.asarray(pos, np.intp)


def window_grid(shape: tuple[int, int], size_px: int, step_px: int) -> WindowGrid:
    """Windows of ``size_px`` every ``step_px`` from edge to edge (the last one flush with it)."""
    rows, cols = shape
    if size_px > min(rows, cols):
        raise ValueError(f"window {size_px} px is larger than the {rows}x{cols} px frame")
    r = _positions(rows, size_px, step_px)
    c = _positions(cols, size_px, step_px)
    starts = np.stack(np.meshgrid(r, c, indexing="ij"), axis=-1).reshape(-1, 2)
    return WindowGrid(starts, int(size_px), (int(rows), int(cols)))


def _window_sums(image: np.ndarray, grid: WindowGrid) -> np.ndarray:
    """Sum of ``image`` over every window (integral image)."""
    ii = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
    ii[1:, 1:] = np.cumsum(np.cumsum(image, axis=0), axis=1)
    r0, c0 = grid.starts[:, 0], grid.starts[:, 1]
    r1, c1 = r0 + grid.size, c0 + grid.size
    return ii[r1, c1] - ii[r0, c1] - ii[r1, c0] + ii[r0, c0]


@dataclass(frozen=True)
class WindowMeasurements:
    """Displacements measured in every window (rapid relative to the warped slow image).

    Attributes
    ----------
    shift_px : ndarray, shape (n, 2)
        (dy, dx) residual displacement of each window, px.
    std_px : ndarray, shape (n, 2)
        Standard error of (dy, dx), px (inf where nothing could be measured).
    ncc : ndarray, shape (n,)
        Correlation coefficient of the rapid window with the matched slow window.
    coverage : ndarray, shape (n,)
        Share of the window whose slow counterpart lies inside the slow image.
    """

    shift_px: np.ndarray
    std_px: np.ndarray
    ncc: np.ndarray
    coverage: np.ndarray


def measure_windows_gradient(
    rapid: np.ndarray,
    slow_warped: np.ndarray,
    gradient_warped: tuple[np.ndarray, np.ndarray],
    inside: np.ndarray,
    grid: WindowGrid,
    *,
    noise_correlation_px2: float = 1.0,
) -> WindowMeasurements:
    """Sub-pixel residual displacement of every window by linearised least squares.

    Solves ``rapid = a * S + b + a * Sx * dx + a * Sy * dy`` per window, ``S`` the warped slow
    image and ``Sx``, ``Sy`` the slow image's gradients sampled at the same points, over the pixels
    whose slow counterpart exists.

    Parameters
    ----------
    rapid, slow_warped : ndarray, shape (rows, cols)
        Pre-filtered rapid image; slow image warped onto the rapid grid by the current model.
    gradient_warped : tuple of ndarray
        (d/dy, d/dx) of the pre-filtered slow image, warped the same way.
    inside : ndarray of bool, shape (rows, cols)
        Where the warp sampled inside the slow image.
    grid : WindowGrid
    noise_correlation_px2 : float
        Area over which the pre-filtered noise is correlated (4 pi sigma^2 for a Gaussian
        pre-filter); widens the standard errors accordingly.

    Returns
    -------
    WindowMeasurements
    """
    m = inside.astype(np.float64)
    gy, gx = gradient_warped
    basis = (slow_warped, np.ones_like(slow_warped), gx, gy)
    n = grid.n
    normal = np.empty((n, 4, 4))
    rhs = np.empty((n, 4))
    for i in range(4):
        rhs[:, i] = _window_sums(m * basis[i] * rapid, grid)
        for j in range(i, 4):
            normal[:, i, j] = normal[:, j, i] = _window_sums(m * basis[i] * basis[j], grid)
    count = normal[:, 1, 1]
    r_sum = rhs[:, 1]
    r2_sum = _window_sums(m * rapid * rapid, grid)
    coverage = count / grid.size**2
    shift = np.zeros((n, 2))
    std = np.full((n, 2), np.inf)
    ncc = np.zeros(n)
    ok = count > 16
    ok &= np.linalg.cond(np.where(ok[:, None, None], normal, np.eye(4))) < 1e10
    if np.any(ok):
        a = normal[ok]
        sol = np.linalg.solve(a, rhs[ok][..., None])[..., 0]
        ssr = np.maximum(r2_sum[ok] - np.einsum("ni,ni->n", sol, rhs[ok]), 0.0)
        sst = np.maximum(r2_sum[ok] - r_sum[ok] ** 2 / count[ok], 1e-30)
        alpha = sol[:, 0]
        good = alpha > 0
        ncc_ok = np.where(good, np.sqrt(np.clip(1 - ssr / sst, 0, 1)), 0.0)
        dof = np.maximum(count[ok] - 4, 1.0)
        sigma2 = ssr / dof * noise_correlation_px2
        cov = np.linalg.inv(a) * sigma2[:, None, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.stack([sol[:, 3], sol[:, 2]], axis=1) / alpha[:, None]
            s = np.sqrt(np.stack([cov[:, 3, 3], cov[:, 2, 2]], axis=1)) / np.abs(alpha[:, None])
        shift[ok] = np.where(good[:, None], d, 0.0)
        std[ok] = np.where(good[:, None], s, np.inf)
        ncc[ok] = ncc_ok
    return WindowMeasurements(shift, std, ncc, coverage)


def measure_windows_xcorr(
    rapid: np.ndarray,
    slow_warped: np.ndarray,
    inside: np.ndarray,
    grid: WindowGrid,
    *,
    radius_px: float,
) -> WindowMeasurements:
    """Residual displacement of every window from the peak of its cross-correlation.

    The peak is searched within ``radius_px`` of zero (keep it below half a grating period) and
    located to sub-pixel precision by a parabola through it along each axis.

    Parameters
    ----------
    rapid, slow_warped, inside, grid
        As in :func:`measure_windows_gradient`.
    radius_px : float
        Largest displacement searched, px.

    Returns
    -------
    WindowMeasurements
        ``std_px`` is a nominal quarter pixel where a peak was found.
    """
    w = grid.size
    taper = np.hanning(w)[:, None] * np.hanning(w)[None, :]
    shape = (2 * w, 2 * w)
    lag = np.arange(2 * w)
    lag = np.where(lag < w, lag, lag - 2 * w)
    near = np.hypot(lag[:, None], lag[None, :]) <= radius_px
    n = grid.n
    shift = np.zeros((n, 2))
    std = np.full((n, 2), np.inf)
    ncc = np.zeros(n)
    coverage = np.zeros(n)
    for k, (r0, c0) in enumerate(grid.starts):
        sl = (slice(r0, r0 + w), slice(c0, c0 + w))
        m = inside[sl]
        coverage[k] = m.mean()
        if coverage[k] < 0.5:
            continue
        a = np.where(m, rapid[sl], 0.0)
        b = np.where(m, slow_warped[sl], 0.0)
        a = (a - a[m].mean()) * m * taper
        b = (b - b[m].mean()) * m * taper
        norm = np.sqrt(np.sum(a * a) * np.sum(b * b))
        if norm <= 0:
            continue
        corr = fft.irfft2(fft.rfft2(a, shape) * np.conj(fft.rfft2(b, shape)), shape) / norm
        masked = np.where(near, corr, -np.inf)
        i, j = np.unravel_index(int(np.argmax(masked)), corr.shape)
        sub = []
        for axis_vals in (
            (corr[(i - 1) % shape[0], j], corr[i, j], corr[(i + 1) % shape[0], j]),
            (corr[i, (j - 1) % shape[1]], corr[i, j], corr[i, (j + 1) % shape[1]]),
        ):
            y0, y1, y2 = axis_vals
            denom = y0 - 2 * y1 + y2
            sub.append(float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)) if denom < 0 else 0.0)
        # corr[m] = sum a(p + m) b(p): the rapid window shows at p + m what the slow shows at p
        shift[k] = (-(lag[i] + sub[0]), -(lag[j] + sub[1]))
        std[k] = 0.25
        ncc[k] = float(corr[i, j])
    return WindowMeasurements(shift, std, ncc, coverage)
