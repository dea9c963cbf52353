"""Smooth curves through noisy per-frame estimates: the continuous-tilt and drift priors.

A goniometer turning continuously cannot change its speed abruptly, and a specimen drifts
smoothly, so the angle and the shift of a frame are each a smooth function of time. Given one
noisy estimate per frame (with its variance), :func:`smooth_in_time` returns the maximum a
posteriori curve under a random-acceleration prior: it minimises

``sum_i w_i (a_i - m_i)^2 + sum_i ((a_{i+1} - 2 a_i + a_{i-1}) / dt_i^2)^2 / acc^2``

(a Whittaker smoother with the second derivative in physical units), with robust weights that
shrink the influence of estimates far off the curve. This is written here because
``scipy.interpolate.make_smoothing_spline`` takes neither per-point variances with a physical
penalty scale nor robust reweighting.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def second_difference(times: np.ndarray) -> sp.csr_matrix:
    """Operator (n - 2, n) giving the second derivative of samples at ``times`` (per unit time^2)."""
    t = np.asarray(times, dtype=np.float64)
    n = t.size
    if n < 3:
        return sp.csr_matrix((0, n))
    h0 = t[1:-1] - t[:-2]
    h1 = t[2:] - t[1:-1]
    rows = np.repeat(np.arange(n - 2), 3)
    cols = (np.arange(n - 2)[:, None] + np.arange(3)[None, :]).ravel()
    vals = np.stack([2 / (h0 * (h0 + h1)), -2 / (h0 * h1), 2 / (h1 * (h0 + h1))], axis=1).ravel()
    return sp.csr_matrix((vals, (rows, cols)), shape=(n - 2, n))


def smooth_in_time(
    values: np.ndarray,
    variances: np.ndarray,
    times: np.ndarray,
    acceleration: float | np.ndarray,
    *,
    robust_k: float = 2.5,
    rescale: bool = True,
    iterations: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """The smooth curve through per-frame estimates under a random-acceleration prior.

    Parameters
    ----------
    values : ndarray, shape (n,)
        One estimate per frame (degrees or pixels); entries with infinite or NaN variance carry
        no information and are filled by the curve.
    variances : ndarray, shape (n,)
        Variance of each estimate (unit of ``values`` squared).
    times : ndarray, shape (n,)
        Time of each frame (seconds, or frame numbers), strictly increasing.
    acceleration : float or ndarray, shape (n,)
        Expected size of the second time derivative (unit of ``values`` per unit time^2),
        one value, or one per frame (e.g. larger where a goniometer starts and stops).
    robust_k : float
        Estimates further than ``robust_k`` standard deviations from the curve get Huber
        weights (less say), recomputed over ``iterations`` passes.
    rescale : bool
        Scale the variances up by the scatter of the estimates around the curve when that is
        larger than they claim (noise correlated between pixels makes fits over-confident).

    Returns
    -------
    curve : ndarray, shape (n,)
        The smoothed values.
    scale : float
        Factor by which the variances were scaled (1 when not rescaled).
    """
    m = np.asarray(values, dtype=np.float64)
    var = np.asarray(variances, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    acc = np.broadcast_to(np.asarray(acceleration, dtype=np.float64), m.shape)
    if not np.all(acc > 0):
        raise ValueError(f"acceleration must be positive, got {acceleration}")
    ok = np.isfinite(m) & np.isfinite(var) & (var > 0)
    if ok.sum() < 2:
        return np.where(np.isfinite(m), m, np.nanmean(m) if np.isfinite(m).any() else 0.0), 1.0
    m0 = np.where(ok, m, 0.0)
    w0 = np.where(ok, 1.0 / np.where(ok, var, 1.0), 0.0)
    d = second_difference(t)
    d = sp.diags(1.0 / acc[1:-1]) @ d if m.size >= 3 else d
    penalty = d.T @ d
    scale = 1.0
    robust = np.ones_like(w0)
    curve = m0
    for _ in range(max(1, iterations)):
        w = w0 * robust / scale
        a = sp.diags(w) + penalty + sp.identity(m.size) * 1e-12 * max(float(w.max()), 1.0)
        curve = spla.spsolve(a.tocsc(), w * m0)
        z = np.abs(m0 - curve) * np.sqrt(w0)
        if rescale and ok.sum() > 4:
            scale = max(1.0, float(np.median(z[ok]) / 0.6745) ** 2)
        z = z / np.sqrt(scale)
        robust = np.where(z > robust_k, robust_k / np.maximum(z, 1e-12), 1.0)
    return np.asarray(curve, dtype=np.float64), scale


def ramp_tolerance(times: np.ndarray, acceleration: float, ramp_time: float, factor: float = 10.0) -> np.ndarray:
    """Expected angular acceleration at each frame: larger where the goniometer starts and stops.

    A continuously turning goniometer speeds up from rest at the start of the series and slows
    down at its end within a few tenths of a second, with accelerations some ten times those
    of its speed ripple in between; the allowance rises towards the ends as
    ``acceleration * (1 + (factor - 1) (exp(-(t - t0) / ramp_time) + exp(-(t1 - t) / ramp_time)))``.

    Parameters
    ----------
    times : ndarray, shape (k,)
        Frame mid-times (s), or frame numbers, increasing.
    acceleration : float
        Allowance in the middle of the series (deg/s^2, or deg per frame^2).
    ramp_time : float
        Duration of the start and stop ramps, in the unit of ``times``.
    factor : float
        Allowance at the very ends relative to the middle.

    Returns
    -------
    ndarray, shape (k,)
    """
    t = np.asarray(times, dtype=np.float64)
    rise = np.exp(-(t - t[0]) / ramp_time) + np.exp(-(t[-1] - t) / ramp_time)
    return acceleration * (1.0 + (factor - 1.0) * np.minimum(rise, 1.0))
