"""The calibration specimen: a cross-grating replica decorated with gold particles.

A square cross grating (two perpendicular families of ridges, period ``field / grating_periods``,
~195 nm at the defaults, turned by 2-6 deg against the scan axes) darkens the bright-field image by
~25 % on its ridges; 10-30 nm gold particles, about one per (70 nm)^2, mostly dark (strong
scatterers), a fifth of them bright, break the grating's periodicity so that local cross-correlation
finds a unique match even where the distortion exceeds half a period. The slow scan images it
undistorted with low noise; the rapid scan with the rapid scan's distortion field, line jitter and
detector chain (one frame each, at 0 deg).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .projection import Canvas, splat

#: gold particle radius classes (nm) used for rendering
_RADII = np.array([5.0, 8.0, 11.0, 14.0])


@dataclass(frozen=True, eq=False)
class Grating:
    """A cross-grating replica (lengths in nm, origin at the field centre).

    Attributes
    ----------
    period_nm : float
    angle_rad : float
        Rotation of the grating against the scan axes.
    phase_nm : ndarray, shape (2,)
        Offsets of the two ridge families.
    duty : float
        Ridge width as a fraction of the period.
    ridge_contrast : float
        Darkening on a ridge.
    transmission : float
        Intensity through the bare replica film.
    particles_nm : ndarray, shape (m, 2)
        Particle centres (x, y).
    radius_nm : ndarray, shape (m,)
    particle_contrast : ndarray, shape (m,)
        Darkening at the particle centre (negative: bright particle).
    """

    period_nm: float
    angle_rad: float
    phase_nm: np.ndarray
    duty: float
    ridge_contrast: float
    transmission: float
    particles_nm: np.ndarray
    radius_nm: np.ndarray
    particle_contrast: np.ndarray


def generate_grating(
    rng: np.random.Generator, field_nm: float, periods: float, margin_nm: float
) -> Grating:
    """Draw a grating replica covering the field plus ``margin_nm`` on each side.

    Parameters
    ----------
    rng : numpy.random.Generator
    field_nm : float
        Field width.
    periods : float
        Grating periods across the field.
    margin_nm : float
        Extra width around the field that also gets particles (the rapid scan sees beyond it).
    """
    period = field_nm / periods
    extent = field_nm / 2 + margin_nm
    n = int(rng.poisson((2 * extent) ** 2 / 70.0**2))
    radius = rng.uniform(5.0, 15.0, n)
    bright = rng.random(n) < 0.2
    contrast = np.where(bright, -rng.uniform(0.2, 0.4, n), rng.uniform(0.5, 0.8, n))
    return Grating(
        period_nm=period,
        angle_rad=math.radians(rng.uniform(2.0, 6.0) * rng.choice([-1, 1])),
        phase_nm=rng.uniform(0, period, 2),
        duty=rng.uniform(0.3, 0.45),
        ridge_contrast=rng.uniform(0.2, 0.3),
        transmission=0.9,
        particles_nm=rng.uniform(-extent, extent, (n, 2)),
        radius_nm=radius,
        particle_contrast=contrast,
    )


def _ridges(u: np.ndarray, period: float, duty: float, softness: float = 0.12) -> np.ndarray:
    """Smooth square wave: ~1 on ridges of width ``duty * period``, ~0 between."""
    return 0.5 * (
        1 + np.tanh((np.cos(2 * np.pi * u / period) - math.cos(math.pi * duty)) / softness)
    )


def render_grating(grating: Grating, canvas: Canvas, pixel_size_nm: float) -> np.ndarray:
    """Clean bright-field intensity of the grating at 0 deg on the canvas (undistorted).

    Parameters
    ----------
    grating : Grating
    canvas : Canvas
    pixel_size_nm : float

    Returns
    -------
    ndarray, shape canvas.shape, float32
        Fraction of the beam on the detector.
    """
    px = pixel_size_nm
    y = ((canvas.frame_rows() - (canvas.rows - 1) / 2) * px)[:, None]
    x = ((canvas.frame_cols() - (canvas.cols - 1) / 2) * px)[None, :]
    ca, sa = math.cos(grating.angle_rad), math.sin(grating.angle_rad)
    u = x * ca + y * sa + grating.phase_nm[0]
    v = -x * sa + y * ca + grating.phase_nm[1]
    su = _ridges(u, grating.period_nm, grating.duty)
    sv = _ridges(v, grating.period_nm, grating.duty)
    ridge = 1 - (1 - su) * (1 - sv)
    image = grating.transmission * (1 - grating.ridge_contrast * ridge)

    # particles: Gaussian blobs of the same area as their disc, one blur per radius class
    rows = grating.particles_nm[:, 1] / px + (canvas.rows - 1) / 2 + canvas.margin_rows
    cols = grating.particles_nm[:, 0] / px + (canvas.cols - 1) / 2 + canvas.margin_cols
    cls = np.argmin(np.abs(grating.radius_nm[:, None] - _RADII[None, :]), axis=1)
    blobs = np.zeros(canvas.shape)
    for k, r in enumerate(_RADII):
        sel = cls == k
        sigma = r / math.sqrt(2) / px
        weight = grating.particle_contrast[sel] * 2 * np.pi * sigma**2
        acc = splat(canvas.shape, rows[sel], cols[sel], weight)
        blobs += ndimage.gaussian_filter(acc, max(sigma, 0.5), truncate=3.5)
    return (image * (1 - np.clip(blobs, -0.5, 0.85))).astype(np.float32)
