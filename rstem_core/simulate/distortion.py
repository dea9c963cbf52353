"""The rapid scan's image distortion and the warp that applies it.

Definition (used by the truth datasets and the calibration step's scoring)
--------------------------------------------------------------------------
``distortion_x_px[r, c]`` is the specimen x position, in undistorted (slow-scan) pixels, that the
rapid scan images at rapid pixel (r, c), minus c; ``distortion_y_px[r, c]`` likewise for y. So

    rapid(r, c) = undistorted(r + distortion_y_px[r, c], c + distortion_x_px[r, c])

The field is a property of the scan system: the same for the rapid series, the rapid grating image
and the training areas. It models the coil hysteresis of the 114 ns/px scan (paper Fig. 1g):

* x: the local sampling step ``1 + dX/dc`` exceeds one pixel (the image is shrunk along x) by a
  uniform 3-5 % plus an extra 10-18 % at the scan start that decays over 8-14 % of the row
  (flyback hysteresis); the decaying part changes by up to 15 % from the top to the bottom row and
  the scan centre is offset by a couple of pixels, changing slowly with the row. At 512 px this
  spans about 30-40 px: the left edge looks ~20 px too far right, the right edge ~10 px too far left.
* y: a function of the row only, 0.3-0.9 px at the frame top (settling of the slow-scan coil after
  the frame flyback) decaying over the first 5 % of rows; zero elsewhere.

Pixel amplitudes are given at 512 px and scale with the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import ScanParams
from .projection import Canvas


@dataclass(frozen=True, eq=False)
class ScanDistortion:
    """Distortion field of the rapid scan (see module docstring for the definition).

    Attributes
    ----------
    dx_px : ndarray, shape (rows, cols)
        x displacement, undistorted px.
    dy_row_px : ndarray, shape (rows,)
        y displacement, undistorted px (a function of the row only).
    """

    dx_px: np.ndarray
    dy_row_px: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.dx_px.shape)  # type: ignore[return-value]

    @property
    def dy_px(self) -> np.ndarray:
        """The y field on the full (rows, cols) grid."""
        return np.repeat(self.dy_row_px[:, None], self.shape[1], axis=1)

    def canvas(self, extra_px: float = 0.0) -> Canvas:
        """A canvas whose margins cover the field plus ``extra_px`` (drift, jitter, blur)."""
        rows, cols = self.shape
        mr = int(np.ceil(np.max(np.abs(self.dy_row_px)) + extra_px)) + 2
        mc = int(np.ceil(np.max(np.abs(self.dx_px)) + extra_px)) + 2
        return Canvas(rows, cols, mr, mc)


def generate_scan_distortion(
    rng: np.random.Generator, rows: int, cols: int, scan: ScanParams
) -> ScanDistortion:
    """Draw the rapid scan's distortion field.

    Parameters
    ----------
    rng : numpy.random.Generator
    rows, cols : int
        Frame size.
    scan : ScanParams
        Ranges of the shrinkage parameters.

    Returns
    -------
    ScanDistortion
    """
    scale = cols / 512.0
    s0 = rng.uniform(*scan.shrink_uniform)
    s1 = rng.uniform(*scan.shrink_edge)
    length = rng.uniform(*scan.edge_length) * cols
    y_rel = np.linspace(-0.5, 0.5, rows)[:, None]
    row_factor = 1 + scan.shrink_y_dependence * rng.uniform(-1, 1) * 2 * y_rel
    centre_shift = (
        rng.uniform(-1, 1) * scan.x_offset_px * scale + rng.uniform(-1, 1) * 0.5 * scale * 2 * y_rel
    )
    c = np.arange(cols, dtype=np.float64)[None, :]
    cc = (cols - 1) / 2
    dx = (
        centre_shift
        + s0 * (c - cc)
        + s1 * row_factor * length * (np.exp(-cc / length) - np.exp(-c / length))
    )
    settle = rng.uniform(*scan.y_settle_px) * rows / 512.0
    dy = settle * np.exp(-np.arange(rows) / (0.05 * rows))
    return ScanDistortion(dx, dy)


def warp_to_rapid(
    images: np.ndarray,
    canvas: Canvas,
    distortion: ScanDistortion,
    *,
    shift_rows_px: np.ndarray | None = None,
    shift_cols_px: np.ndarray | None = None,
) -> np.ndarray:
    """Sample undistorted canvas images on the rapid scan's pixel grid (bilinear).

    ``out[k, r, c] = image_k(r + dy[r] + shift_rows[k, r], c + dx[r, c] + shift_cols[k, r])`` in
    frame coordinates, i.e. exactly ``scipy.ndimage.map_coordinates(..., order=1)`` at those
    positions, computed separably (rows first) because the y field depends on the row only.

    Parameters
    ----------
    images : ndarray, shape canvas.shape or (k,) + canvas.shape
        Undistorted images on ``canvas``; a single image is shared by all k outputs.
    canvas : Canvas
        Its margins must cover the field and shifts.
    distortion : ScanDistortion
    shift_rows_px, shift_cols_px : ndarray, shape (k, rows), optional
        Extra per-row sampling shifts (e.g. minus the drift, line jitter); default 0.

    Returns
    -------
    ndarray, shape (k, rows, cols), float32
    """
    rows, cols = distortion.shape
    if (canvas.rows, canvas.cols) != (rows, cols):
        raise ValueError(
            f"canvas frame {canvas.rows}x{canvas.cols} does not match the field {rows}x{cols}"
        )
    images = np.asarray(images, np.float32)
    shared = images.ndim == 2
    k = 1 if shared else images.shape[0]
    for name, arr in (("shift_rows_px", shift_rows_px), ("shift_cols_px", shift_cols_px)):
        if arr is not None:
            k = max(k, np.shape(arr)[0])
            if np.ndim(arr) != 2 or np.shape(arr)[1] != rows:
                raise ValueError(f"{name} must have shape (k, {rows}), got {np.shape(arr)}")
    sy = np.zeros((k, rows)) if shift_rows_px is None else np.broadcast_to(shift_rows_px, (k, rows))
    sx = np.zeros((k, rows)) if shift_cols_px is None else np.broadcast_to(shift_cols_px, (k, rows))
    h, w = canvas.shape

    # rows: one y position per (frame, row)
    yy = np.arange(rows)[None, :] + distortion.dy_row_px[None, :] + sy + canvas.margin_rows
    i0 = np.clip(np.floor(yy), 0, h - 2).astype(np.intp)
    f = np.clip(yy - i0, 0.0, 1.0).astype(np.float32)[..., None]
    if shared:
        a = images[i0]
        b = images[i0 + 1]
    else:
        fr = np.arange(k)[:, None]
        a = images[fr, i0]
        b = images[fr, i0 + 1]
    b -= a
    b *= f
    a += b
    del b

    # columns: one x position per (frame, row, col)
    xx = (
        np.arange(cols)[None, None, :] + distortion.dx_px[None] + sx[..., None] + canvas.margin_cols
    ).astype(np.float32)
    j0 = np.clip(np.floor(xx), 0, w - 2)
    g = np.clip(xx - j0, 0.0, 1.0)
    idx = j0.astype(np.int64)
    idx += (np.arange(k * rows, dtype=np.int64) * w).reshape(k, rows, 1)
    flat = a.reshape(-1)
    out = flat[idx]
    idx += 1
    nxt = flat[idx]
    nxt -= out
    nxt *= g
    out += nxt
    return out
