"""The synthetic specimen: a thick fcc slab holding dislocation lines in inclined {111} slip planes.

Coordinates (DESIGN.md): nanometres, origin at the centre of the reconstructed volume, x along the
tilt axis (image columns), y along the image rows, z along the beam at 0 deg; the slab fills
``|z| <= thickness / 2``.

The crystal has [100] along the tilt axis (as in the paper) and is turned about x by a random angle
of up to 20 deg, so the four {111} planes are inclined by 35-90 deg to the slab surface. Each
dislocation runs from the bottom surface to the top surface inside one slip plane, gently curved
in-plane by a low-order Fourier bow along the plane's horizontal direction (so it stays in its
plane and inside the slab). Some lie in pile-ups: 3-6 near-parallel lines in one plane whose spacing
grows from ~20-50 nm at the head. Dislocations are anchored (mid-thickness point) inside the field;
the same density of *surrounding* dislocations is placed around it out to where a 70 deg view
still sees them, because a tilted slab shows specimen far outside the reconstructed box.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: shortest allowed |z| component of a line direction (limits length to thickness / 0.3)
_MIN_DIP = 0.3
#: Fourier bow amplitudes (fractions of the line length) of the first three modes
_BOW = (0.06, 0.03, 0.015)


@dataclass(frozen=True, eq=False)
class Dislocation:
    """One dislocation line.

    Attributes
    ----------
    points_nm : ndarray, shape (m, 3)
        Polyline (x, y, z) in nm from the bottom surface (z = -t/2) to the top (z = +t/2).
    plane_normal : ndarray, shape (3,)
        Unit normal of its slip plane.
    visibility : float
        Contrast factor (0..1) standing for |g.b| and the line character.
    image_side : int
        +1 or -1: which side of the core the dark image lies on (sign of g.b s).
    pileup : int
        Index of its pile-up, or -1 for a single dislocation.
    anchored_inside : bool
        Whether its mid-thickness point lies inside the field.
    """

    points_nm: np.ndarray
    plane_normal: np.ndarray
    visibility: float
    image_side: int
    pileup: int
    anchored_inside: bool

    def info(self) -> dict:
        """JSON-ready description (without the points)."""
        return {
            "plane_normal": [round(float(v), 6) for v in self.plane_normal],
            "visibility": round(float(self.visibility), 4),
            "image_side": int(self.image_side),
            "pileup": int(self.pileup),
            "anchored_inside": bool(self.anchored_inside),
        }


@dataclass(frozen=True, eq=False)
class Specimen:
    """A slab with dislocations.

    Attributes
    ----------
    thickness_nm : float
        Slab thickness.
    field_nm : float
        Width of the field of view (the reconstructed box is ``field x field`` in x, y).
    dislocations : tuple of Dislocation
        All lines, inside and around the field.
    wedge : tuple of float
        Relative thickness gradient (per field width) along x and y: the local thickness is
        ``t (1 + wx x / field + wy y / field)`` (affects the background intensity only).
    crystal_rotation_deg : float
        Rotation of the crystal about x (foil normal away from [001]).
    """

    thickness_nm: float
    field_nm: float
    dislocations: tuple[Dislocation, ...]
    wedge: tuple[float, float]
    crystal_rotation_deg: float

    def in_box(self, half_z_nm: float) -> list[bool]:
        """Which lines have a point inside the box ``|x|, |y| <= field/2, |z| <= half_z_nm``."""
        h = self.field_nm / 2
        out = []
        for d in self.dislocations:
            p = d.points_nm
            out.append(
                bool(
                    np.any(
                        (np.abs(p[:, 0]) <= h)
                        & (np.abs(p[:, 1]) <= h)
                        & (np.abs(p[:, 2]) <= half_z_nm)
                    )
                )
            )
        return out


def slip_plane_normals(rotation_deg: float) -> np.ndarray:
    """The four {111} normals of an fcc crystal with [100] along x, turned about x.

    Parameters
    ----------
    rotation_deg : float
        Rotation of the crystal about +x in degrees.

    Returns
    -------
    ndarray, shape (4, 3)
        Unit normals with a non-negative z component.
    """
    c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    normals = []
    for nx in (1.0, -1.0):
        for ny in (1.0, -1.0):
            n = np.array([nx, ny * c - s, ny * s + c]) / math.sqrt(3.0)
            normals.append(n if n[2] >= 0 else -n)
    return np.array(normals)


def _plane_axes(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dip direction (steepest, z > 0) and horizontal direction of a plane."""
    ez = np.array([0.0, 0.0, 1.0])
    dip = ez - normal[2] * normal
    dip /= np.linalg.norm(dip)
    horizontal = np.cross(normal, dip)
    horizontal /= np.linalg.norm(horizontal)
    return dip, horizontal


def _line(
    anchor: np.ndarray,
    direction: np.ndarray,
    horizontal: np.ndarray,
    bow: np.ndarray,
    thickness_nm: float,
    step_nm: float,
) -> np.ndarray:
    """Polyline from z = -t/2 to +t/2 through ``anchor`` (at z = 0), bowed along ``horizontal``."""
    length = thickness_nm / direction[2]
    m = max(16, int(math.ceil(length / step_nm)) + 1)
    s = np.linspace(0.0, 1.0, m)
    modes = np.arange(1, len(bow) + 1)
    w = np.sin(np.pi * np.outer(s, modes)) @ bow
    return anchor + np.outer((s - 0.5) * length, direction) + np.outer(w, horizontal)


def _group(
    rng: np.random.Generator,
    normals: np.ndarray,
    anchor: np.ndarray,
    count: int,
    pileup: int,
    thickness_nm: float,
    step_nm: float,
    visibility: tuple[float, float],
    inside: bool,
) -> list[Dislocation]:
    """``count`` lines in one slip plane: a single line (count 1) or a pile-up.

    The lines of a pile-up share their Burgers vector, hence visibility and image side.
    """
    normal = normals[rng.integers(len(normals))]
    dip, horizontal = _plane_axes(normal)
    psi_max = math.acos(min(1.0, _MIN_DIP / dip[2]))
    psi = rng.uniform(-psi_max, psi_max)
    direction = math.cos(psi) * dip + math.sin(psi) * horizontal
    length = thickness_nm / direction[2]
    shared_bow = rng.normal(0.0, 1.0, 3) * np.array(_BOW) * length
    if count == 1:
        offsets = np.zeros(1)
    else:
        gaps = rng.uniform(20.0, 50.0) * rng.uniform(1.15, 1.4) ** np.arange(count - 1)
        offsets = np.concatenate([[0.0], np.cumsum(gaps)]) * rng.choice([-1.0, 1.0])
    group_visibility = float(rng.uniform(*visibility))
    side = int(rng.choice([-1, 1]))
    lines = []
    for off in offsets:
        own = rng.normal(0.0, 1.0, 3) * np.array([4.0, 2.0, 1.0])
        pts = _line(
            anchor + off * horizontal,
            direction,
            horizontal,
            shared_bow + own,
            thickness_nm,
            step_nm,
        )
        lines.append(Dislocation(pts, normal.copy(), group_visibility, side, pileup, inside))
    return lines


def _fill(
    rng: np.random.Generator,
    normals: np.ndarray,
    n_lines: int,
    sample_anchor: Callable[[], np.ndarray],
    inside: bool,
    thickness_nm: float,
    step_nm: float,
    visibility: tuple[float, float],
    first_pileup: int,
) -> tuple[list[Dislocation], int]:
    """Groups (35 % pile-ups of 3-6 lines) until exactly ``n_lines`` lines are placed."""
    out: list[Dislocation] = []
    pileup = first_pileup
    while len(out) < n_lines:
        left = n_lines - len(out)
        if left >= 3 and rng.random() < 0.35:
            count, tag = int(min(left, rng.integers(3, 7))), pileup
            pileup += 1
        else:
            count, tag = 1, -1
        out += _group(
            rng, normals, sample_anchor(), count, tag, thickness_nm, step_nm, visibility, inside
        )
    return out, pileup


def generate_specimen(
    rng: np.random.Generator,
    *,
    thickness_nm: float,
    field_nm: float,
    n_dislocations: tuple[int, int],
    max_tilt_deg: float = 70.0,
    step_nm: float = 2.0,
    visibility: tuple[float, float] = (0.45, 1.0),
    wedge: float = 0.03,
) -> Specimen:
    """Draw a random dislocation arrangement in a slab.

    Parameters
    ----------
    rng : numpy.random.Generator
        The specimen's random stream.
    thickness_nm : float
        Slab thickness.
    field_nm : float
        Width of the field of view.
    n_dislocations : tuple of int
        Range (inclusive) of the number of lines anchored inside the field.
    max_tilt_deg : float
        Largest tilt of the series; sets how far the surrounding dislocations extend along y.
    step_nm : float
        Point spacing of the polylines.
    visibility : tuple of float
        Range of the per-line visibility factor.
    wedge : float
        Maximum relative thickness change across the field.

    Returns
    -------
    Specimen
    """
    if thickness_nm <= 0 or field_nm <= 0:
        raise ValueError(f"thickness_nm and field_nm must be > 0, got {thickness_nm}, {field_nm}")
    rotation = float(rng.uniform(-20.0, 20.0))
    normals = slip_plane_normals(rotation)
    half = field_nm / 2
    n_in = int(rng.integers(n_dislocations[0], n_dislocations[1] + 1))

    def inside() -> np.ndarray:
        return np.array([rng.uniform(-half, half), rng.uniform(-half, half), 0.0])

    lines, pileup = _fill(rng, normals, n_in, inside, True, thickness_nm, step_nm, visibility, 0)

    # surroundings: same density, out to where the most tilted view still reaches
    reach = thickness_nm / _MIN_DIP / 2
    y_ext = (
        half / math.cos(math.radians(max_tilt_deg))
        + thickness_nm * math.tan(math.radians(max_tilt_deg)) / 2
        + reach
    )
    x_ext = half + reach
    outer_area = (2 * x_ext) * (2 * y_ext) - field_nm**2
    n_out = int(rng.poisson(n_in / field_nm**2 * outer_area))

    def outside() -> np.ndarray:
        while True:
            p = np.array([rng.uniform(-x_ext, x_ext), rng.uniform(-y_ext, y_ext), 0.0])
            if abs(p[0]) > half or abs(p[1]) > half:
                return p

    more, _ = _fill(rng, normals, n_out, outside, False, thickness_nm, step_nm, visibility, pileup)
    tilt = rng.uniform(-1.0, 1.0, 2)
    tilt *= wedge / max(np.abs(tilt).sum(), 1e-9)
    return Specimen(
        float(thickness_nm),
        float(field_nm),
        tuple(lines + more),
        (float(tilt[0]), float(tilt[1])),
        rotation,
    )
