"""Bend contours: broad dark bands from the foil's slight bending that sweep across it with tilt.

A contour family j darkens the background by ``depth_j * exp(-d^2 / (2 width_j^2))`` where d is the
distance (nm, wrapped to a repeat ``period_j``) of the mid-plane point (X, Y) from the contour line

    X cos(b_j) + Y sin(b_j) + kappa_j (X^2 + Y^2) / field = offset_j + speed_j * theta

so the bands are gently curved, repeat every ``period_j`` (+-g, +-2g ...) and move by
``speed_j`` nm per degree of tilt. They are attached to the specimen: they drift with it and are
foreshortened by the tilt like every other feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import ContrastParams


@dataclass(frozen=True, eq=False)
class BendContours:
    """Parameters of the bend-contour families (one array entry per family; lengths in nm)."""

    direction_rad: np.ndarray
    curvature: np.ndarray
    offset_nm: np.ndarray
    speed_nm_per_deg: np.ndarray
    width_nm: np.ndarray
    depth: np.ndarray
    period_nm: np.ndarray
    field_nm: float

    def factor(
        self, x_nm: np.ndarray, y_nm: np.ndarray, angle_deg: np.ndarray | float
    ) -> np.ndarray:
        """Multiplicative background factor (<= 1) at specimen mid-plane points.

        Parameters
        ----------
        x_nm, y_nm : ndarray
            Specimen coordinates (broadcastable).
        angle_deg : ndarray or float
            Tilt angle (broadcastable with the coordinates).
        """
        out = np.ones(
            np.broadcast_shapes(np.shape(x_nm), np.shape(y_nm), np.shape(angle_deg)), np.float32
        )
        r2 = (x_nm**2 + y_nm**2) / self.field_nm
        for j in range(len(self.depth)):
            d = (
                x_nm * np.cos(self.direction_rad[j])
                + y_nm * np.sin(self.direction_rad[j])
                + self.curvature[j] * r2
                - self.offset_nm[j]
                - self.speed_nm_per_deg[j] * angle_deg
            )
            p = self.period_nm[j]
            d = (d + p / 2) % p - p / 2
            out *= (1.0 - self.depth[j] * np.exp(-0.5 * (d / self.width_nm[j]) ** 2)).astype(
                np.float32
            )
        return out


def generate_bend_contours(
    rng: np.random.Generator, contrast: ContrastParams, field_nm: float
) -> BendContours:
    """Random bend-contour families for one foil area.

    Parameters
    ----------
    rng : numpy.random.Generator
    contrast : ContrastParams
        Ranges of the number, depth, width and speed of the contours.
    field_nm : float
        Field width; sets the curvature scale and the repeat distance (1.5-3 fields).
    """
    n = int(rng.integers(contrast.bend_contours[0], contrast.bend_contours[1] + 1))
    period = rng.uniform(1.5, 3.0, n) * field_nm
    return BendContours(
        direction_rad=rng.uniform(0, np.pi, n),
        curvature=rng.uniform(-0.3, 0.3, n),
        offset_nm=rng.uniform(0, 1, n) * period,
        speed_nm_per_deg=rng.uniform(*contrast.bend_speed_nm_per_deg, n)
        * rng.choice([-1.0, 1.0], n),
        width_nm=rng.uniform(*contrast.bend_width_nm, n),
        depth=rng.uniform(*contrast.bend_depth, n),
        period_nm=period,
        field_nm=float(field_nm),
    )
