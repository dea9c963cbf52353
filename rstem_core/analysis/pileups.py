"""Spots that hold several dislocations of a pile-up, split into one centre per dislocation.

The lines of a pile-up run side by side in one slip plane, 10-40 nm apart. Where the plane's trace
in a cross-section is steep, their crossings lie along a direction in which the reconstruction is
blurred (the missing wedge draws spots out along z), and several crossings merge into one long
spot, which counts as a single centre. A single line gives a long spot too where it lies
obliquely in the section, but then its spot moves by about its own length from one section to
the next; the crossings of a pile-up of steep lines hardly move. So a spot counts as merged when
its length along its major axis, discounted by how far it moves between neighbouring sections,
is several times that of the typical spot.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

NEIGHBOUR_PX = 8.0  # farthest a spot's partner in the next section may lie, voxels
MOST_PER_SPOT = 4


def spot_covariances(w: np.ndarray, basins: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted covariance (zz, yy, zy) of every basin 1..n of a (z, y, x) label array within its
    section, voxels^2, weighed with ``w`` (basins of zero weight give NaN)."""
    z, y, x = np.nonzero(basins)
    label = basins[z, y, x]
    ww = w[z, y, x]
    total = np.bincount(label, ww, minlength=n + 1)[1:]

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(label, ww * values, minlength=n + 1)[1:] / total

    with np.errstate(invalid="ignore", divide="ignore"):
        mz, my = mean(z), mean(y)
        return mean(z * z) - mz**2, mean(y * y) - my**2, mean(z * y) - mz * my


def neighbour_shift_sq(z: np.ndarray, y: np.ndarray, section: np.ndarray) -> np.ndarray:
    """Mean squared distance (voxels^2) from each spot to the nearest spot in the neighbouring
    sections (``section`` +- 1, within ``NEIGHBOUR_PX``); 0 where there is none."""
    out = np.zeros(z.size)
    members: dict[int, np.ndarray] = {}
    for s in np.unique(section):
        members[int(s)] = np.flatnonzero(section == s)
    trees = {s: cKDTree(np.stack([z[i], y[i]], axis=1)) for s, i in members.items()}
    for s, here in members.items():
        points = np.stack([z[here], y[here]], axis=1)
        total = np.zeros(here.size)
        count = np.zeros(here.size)
        for other in (s - 1, s + 1):
            if other not in trees:
                continue
            d, _ = trees[other].query(points, distance_upper_bound=NEIGHBOUR_PX)
            ok = np.isfinite(d)
            total[ok] += d[ok] ** 2
            count[ok] += 1
        out[here] = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return out


def split_merged_spots(
    cz: np.ndarray, cy: np.ndarray, section: np.ndarray, weight: np.ndarray,
    czz: np.ndarray, cyy: np.ndarray, czy: np.ndarray, ratio: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replace every merged spot by several centres along its major axis.

    Parameters
    ----------
    cz, cy : ndarray, shape (m,)
        Spot centroids in their sections, voxels.
    section : ndarray of int, shape (m,)
        The section each spot lies in (consecutive numbers for neighbouring sections).
    weight : ndarray, shape (m,)
        Each spot's total weight (shared equally by its parts).
    czz, cyy, czy : ndarray, shape (m,)
        Each spot's weighted covariance, voxels^2.
    ratio : float
        A spot is merged when its variance along its major axis over (1 + its squared shift to
        the neighbouring sections' spots) exceeds ``ratio`` times the median of that score; it
        becomes round(sqrt(score / median)) centres (at most 4), spaced as equal sources
        spread over its length would be. A spot more than 4.5^2 times the median is a line lying
        in the section, not a pile-up, and keeps one centre.

    Returns
    -------
    cz, cy, section, weight : ndarray
        The centres after splitting (a spot that is not split keeps its centre).
    """
    if cz.size == 0 or ratio <= 0:
        return cz, cy, section, weight
    half_trace = (czz + cyy) / 2
    spread = np.sqrt(np.maximum(half_trace**2 - (czz * cyy - czy**2), 0.0))
    major = half_trace + spread
    ez, ey = czy, major - czz  # the major axis (z, y)
    norm = np.hypot(ez, ey)
    flat = norm < 1e-9  # a round spot: any axis
    ez, ey = np.where(flat, 1.0, ez), np.where(flat, 0.0, ey)
    norm = np.where(flat, 1.0, norm)
    ez, ey = ez / norm, ey / norm
    score = major / (1.0 + neighbour_shift_sq(cz, cy, section))
    typical_score = float(np.median(score))
    typical_major = float(np.median(major))
    if not typical_score > 0:
        return cz, cy, section, weight
    parts = np.ones(cz.size, dtype=int)
    # far longer than MOST_PER_SPOT merged lines could make it: a line lying in the section
    merged = (score > ratio * typical_score) & (score <= (MOST_PER_SPOT + 0.5) ** 2 * typical_score)
    parts[merged] = np.clip(np.round(np.sqrt(score[merged] / typical_score)), 1, MOST_PER_SPOT).astype(int)
    out_z, out_y, out_s, out_w = [], [], [], []
    for i in range(cz.size):
        k = int(parts[i])
        if k == 1:
            offsets = np.zeros(1)
        else:  # k equal sources spaced by L have a variance of L^2 (k^2 - 1) / 12 about their middle
            spacing = np.sqrt(12.0 * max(major[i] - typical_major, 0.0) / (k * k - 1))
            offsets = (np.arange(k) - (k - 1) / 2) * spacing
        out_z.append(cz[i] + offsets * ez[i])
        out_y.append(cy[i] + offsets * ey[i])
        out_s.append(np.full(k, section[i]))
        out_w.append(np.full(k, weight[i] / k))
    return np.concatenate(out_z), np.concatenate(out_y), np.concatenate(out_s), np.concatenate(out_w)
