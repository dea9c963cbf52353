"""The truth volume: dislocation lines rendered as Gaussian tubes on the reconstruction grid."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .projection import LinePoints

_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))


def render_density(
    points: LinePoints, shape: tuple[int, int, int], voxel_nm: float, tube_fwhm_nm: float = 12.0
) -> np.ndarray:
    """Dislocation density on a (z, y, x) grid.

    Parameters
    ----------
    points : LinePoints
        Densely sampled lines (spacing <= voxel / 2), positions in nm from the volume centre.
        Only the geometry is used (every line counts fully, whatever its image visibility).
    shape : tuple of int
        Volume shape (nz, ny, nx); voxel (k, j, i) is centred at
        ``((i - (nx-1)/2) v, (j - (ny-1)/2) v, (k - (nz-1)/2) v)`` in (x, y, z).
    voxel_nm : float
        Voxel edge in nm (= pixel size).
    tube_fwhm_nm : float
        Full width at half maximum of the tube cross-section.

    Returns
    -------
    ndarray, shape ``shape``, float32
        About 1 on a line's axis, falling as a Gaussian of the given FWHM across it, 0 elsewhere.
    """
    nz, ny, nx = shape
    sigma = tube_fwhm_nm / _FWHM / voxel_nm
    if len(points.weight) == 0:
        return np.zeros(shape, np.float32)
    # weight per point = its length in voxels x 2 pi sigma^2, so that a straight tube peaks near 1
    w = points.length / voxel_nm * 2 * np.pi * sigma**2
    pos = points.xyz / voxel_nm + (np.array([nx, ny, nz]) - 1) / 2.0
    i = pos[:, [2, 1, 0]]  # (z, y, x) in voxel units
    pad = int(math.ceil(3 * sigma)) + 1
    keep = np.all((i >= -pad) & (i <= np.array([nz, ny, nx]) - 1 + pad), axis=1)
    i, w = i[keep], w[keep]
    big = (nz + 2 * pad, ny + 2 * pad, nx + 2 * pad)
    i0 = np.floor(i).astype(np.int64) + pad
    f = i - np.floor(i)
    acc = np.zeros(int(np.prod(big)), np.float64)
    strides = np.array([big[1] * big[2], big[2], 1])
    for corner in range(8):
        o = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        wt = w * np.prod(np.where(o, f, 1 - f), axis=1)
        idx = (i0 + o) @ strides
        ok = np.all((i0 + o >= 0) & (i0 + o < np.array(big)), axis=1)
        acc += np.bincount(idx[ok], weights=wt[ok], minlength=acc.size)
    vol = ndimage.gaussian_filter(acc.reshape(big).astype(np.float32), sigma, truncate=3.5)
    return np.ascontiguousarray(vol[pad : pad + nz, pad : pad + ny, pad : pad + nx])
