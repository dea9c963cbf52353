"""A linear-interpolation (Joseph) projector and its exact adjoint, as sparse matrices in torch.

The matrix is built once per :class:`~rstem_core.recon.geometry.Geometry` with vectorised numpy
and applied to all x-slices at once: the volume is held as a (z*y, x) matrix and the tilt series as
a (frames*rows, x) matrix, so a projection is one sparse-times-dense product. The adjoint is the
transposed matrix, so the dot-product test holds to rounding. The same code runs on CPU and CUDA.

Joseph's method (Joseph, IEEE TMI 1982) steps along the axis the ray is closest to (z for
|theta| <= 45 deg, y beyond), interpolates linearly between the two nearest voxels of each step,
and weights by the path length per step (1/|cos| or 1/|sin|), as ASTRA's "linear" projector does.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from .geometry import Geometry

_CHUNK_RAYS = 4096


def _joseph_coo(geometry: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row (ray), column (voxel z*ny + y) and weight of every non-zero of the system matrix."""
    n_rows, ny, nz = geometry.n_rows, geometry.volume_rows, geometry.nz
    theta = np.deg2rad(geometry.row_angles_deg()).ravel()
    v = np.arange(n_rows) - (n_rows - 1) / 2
    v = np.broadcast_to(v, (geometry.n_frames, n_rows)).astype(np.float64)
    if geometry.shifts_px is not None:
        v = v - geometry.shifts_px[:, 0:1]
    v = v.ravel()
    cos, sin = np.cos(theta), np.sin(theta)
    steep = np.abs(cos) >= np.abs(sin)  # the ray runs mostly along z
    z_centres = np.arange(nz) - (nz - 1) / 2
    y_centres = np.arange(ny) - (ny - 1) / 2
    rows, cols, vals = [], [], []
    for along_z, rays in ((True, np.flatnonzero(steep)), (False, np.flatnonzero(~steep))):
        for chunk in np.array_split(rays, max(1, -(-rays.size // _CHUNK_RAYS))):
            if chunk.size == 0:
                continue
            c, s, vv = cos[chunk, None], sin[chunk, None], v[chunk, None]
            if along_z:  # one step per z plane: y = (v + z sin) / cos
                frac = (vv + z_centres[None, :] * s) / c + (ny - 1) / 2
                step = np.broadcast_to(np.arange(nz), frac.shape)
                n_other, weight = ny, 1.0 / np.abs(c)
            else:  # one step per y row: z = (y cos - v) / sin
                frac = (y_centres[None, :] * c - vv) / s + (nz - 1) / 2
                step = np.broadcast_to(np.arange(ny), frac.shape)
                n_other, weight = nz, 1.0 / np.abs(s)
            lower = np.floor(frac).astype(np.int64)
            upper_w = frac - lower
            ray = np.broadcast_to(chunk[:, None], frac.shape)
            for idx, w in ((lower, 1.0 - upper_w), (lower + 1, upper_w)):
                keep = (idx >= 0) & (idx < n_other) & (w > 1e-7)
                wk = (w * weight)[keep]
                rows.append(ray[keep])
                if along_z:
                    cols.append(step[keep] * ny + idx[keep])
                else:
                    cols.append(idx[keep] * ny + step[keep])
                vals.append(wk)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _to_torch(m: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    with warnings.catch_warnings():  # torch marks sparse CSR as beta; the products used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32)).to(dtype),
            size=m.shape,
            check_invariants=False,
        ).to(device)


class Projector:
    """Forward projection and its adjoint for one geometry, on one device.

    Volumes are passed as (z*y, x) matrices (a (z, y, x) array reshaped), tilt series as
    (frames*rows, x) matrices (a (frames, rows, x) array reshaped); use :meth:`project` and
    :meth:`backproject` for arrays in their natural shapes.

    Parameters
    ----------
    geometry : Geometry
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
    """

    def __init__(self, geometry: Geometry, device: str | torch.device = "cpu") -> None:
        if str(device) == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.geometry = geometry
        self.device = torch.device(device)
        n_rays = geometry.n_frames * geometry.n_rows
        n_vox = geometry.nz * geometry.volume_rows
        r, c, w = _joseph_coo(geometry)
        m = sp.csr_matrix((w, (r, c)), shape=(n_rays, n_vox), dtype=np.float64)
        self.nnz = int(m.nnz)
        self.row_sums = torch.from_numpy(np.asarray(m.sum(axis=1)).ravel().astype(np.float32)).to(self.device)
        self.col_sums = torch.from_numpy(np.asarray(m.sum(axis=0)).ravel().astype(np.float32)).to(self.device)
        self._a = _to_torch(m, self.device, torch.float32)
        self._at = _to_torch(m.T.tocsr(), self.device, torch.float32)

    @property
    def shape(self) -> tuple[int, int]:
        """(rays, voxels per slice)."""
        return (self.geometry.n_frames * self.geometry.n_rows, self.geometry.nz * self.geometry.volume_rows)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """A @ volume: (z*y, x) -> (frames*rows, x)."""
        return torch.sparse.mm(self._a, volume)

    def adjoint(self, sinogram: torch.Tensor) -> torch.Tensor:
        """A.T @ sinogram: (frames*rows, x) -> (z*y, x)."""
        return torch.sparse.mm(self._at, sinogram)

    def project(self, volume: np.ndarray) -> np.ndarray:
        """Project a (z, y, x) volume (y: :attr:`Geometry.volume_rows`) into a (frames, rows, x)
        tilt series (numpy in and out)."""
        g = self.geometry
        vol = torch.as_tensor(np.ascontiguousarray(volume, dtype=np.float32), device=self.device)
        out = self.forward(vol.reshape(g.nz * g.volume_rows, -1))
        return out.reshape(g.n_frames, g.n_rows, -1).cpu().numpy()

    def backproject(self, series: np.ndarray) -> np.ndarray:
        """The adjoint of :meth:`project`: (frames, rows, x) -> (z, y, x)."""
        g = self.geometry
        sino = torch.as_tensor(np.ascontiguousarray(series, dtype=np.float32), device=self.device)
        out = self.adjoint(sino.reshape(g.n_frames * g.n_rows, -1))
        return out.reshape(g.nz, g.volume_rows, -1).cpu().numpy()
