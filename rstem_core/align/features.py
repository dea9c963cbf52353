"""Feature points in 3D and their positions in every frame, measured by local correlation.

A dislocation image offers few true point features: a line crossing in projection is not a point
of the specimen, and a window on a line slides along it as the view turns. So features are taken
in 3D, as distinctive local maxima of a reconstruction (pieces of dislocation lines, their ends,
particles), and each is looked for in every frame near where the current geometry puts it:

* where the re-projected model shows a line there (coherent local structure), the frame is
  sampled across the line, averaged along it, and a line profile (a Gaussian of the line width)
  is correlated with it: the measurement fixes the position across the line only (a rank-one
  information matrix), which is all a line can tell;
* elsewhere (a blob, an end, a crossing) a round Gaussian is registered in both directions.

The templates are idealised and centred on the prediction, so a measurement says where the frame
has its structure, independently of how the current model renders it; the model only tells the
local line direction. Each measurement carries its information matrix (the template's gradients
over the frame's noise), and a correlation score.

Coordinates: features ``(x, y, z)`` in pixels from the volume centre (x = tilt axis); frame
positions ``(row, col)`` in pixels of the frame grid (index coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
from skimage.feature import peak_local_max, structure_tensor


@dataclass(frozen=True, eq=False)
class Tracks:
    """Measured positions of every feature in every frame.

    Attributes
    ----------
    positions_px : ndarray, shape (n, m, 2)
        Measured (row, col) of feature j in frame i, pixels; NaN where not measured.
    information : ndarray, shape (n, m, 2, 2)
        Inverse covariance of each measurement, 1/px^2 (zero where not measured; rank one for a
        line piece, which is known across the line only).
    score : ndarray, shape (n, m)
        Signal-to-noise ratio of the matched structure (0 where not measured).
    valid : ndarray, shape (n, m), bool
        Measured, inside the frame, and above the acceptance level.
    """

    positions_px: np.ndarray
    information: np.ndarray
    score: np.ndarray
    valid: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.positions_px.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.positions_px.shape[1])


def detect_features(
    volume: np.ndarray,
    *,
    scale_px: float,
    spacing_px: float,
    max_features: int,
    region: tuple[slice, slice, slice] | None = None,
    min_sigma: float = 2.0,
) -> np.ndarray:
    """Distinctive local maxima of a reconstruction, spread over the volume.

    Parameters
    ----------
    volume : ndarray, shape (nz, ny, nx)
        Reconstructed alignment signal (structure positive).
    scale_px : float
        Size of the structure looked for (Gaussian sigma of a blob, half width of a line), px.
    spacing_px : float
        Least distance between two features, pixels.
    max_features : int
        Strongest maxima kept.
    region : tuple of slices, optional
        Part of the volume to search (index ranges along z, y, x).
    min_sigma : float
        Maxima of the blob response below this many robust standard deviations of it are ignored.

    Returns
    -------
    ndarray, shape (m, 3)
        Feature indices (z, y, x) in the volume, float, strongest first.
    """
    v = np.asarray(volume, dtype=np.float32)
    blob = ndi.gaussian_filter(v, scale_px) - ndi.gaussian_filter(v, 3.0 * scale_px)
    mask = np.zeros(v.shape, dtype=bool)
    mask[region if region is not None else (slice(None),) * 3] = True
    border = max(2, int(round(2 * scale_px)))
    inner = np.zeros(v.shape, dtype=bool)
    inner[:, border:-border, border:-border] = True
    mask &= inner
    vals = blob[mask]
    if vals.size == 0:
        return np.zeros((0, 3))
    med = float(np.median(vals))
    sd = 1.4826 * float(np.median(np.abs(vals - med)))
    peaks = peak_local_max(
        np.where(mask, blob, med),
        min_distance=max(1, int(round(spacing_px))),
        threshold_abs=med + min_sigma * max(sd, 1e-12),
        exclude_border=False,
        num_peaks=int(max_features),
    )
    return peaks.astype(np.float64)


def local_orientation(
    models: np.ndarray, predicted_px: np.ndarray, *, sigma_px: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """The dominant gradient direction of the model around every predicted position.

    Parameters
    ----------
    models : ndarray, shape (n, rows, cols)
        Re-projections of the current reconstruction.
    predicted_px : ndarray, shape (n, m, 2)
        Predicted (row, col); NaN to skip.
    sigma_px : float
        Integration scale of the structure tensor, pixels.

    Returns
    -------
    normal : ndarray, shape (n, m, 2)
        Unit (row, col) direction across the local structure (across a line).
    coherence : ndarray, shape (n, m)
        (l1 - l2) / (l1 + l2) of the structure tensor: near 1 for a line, near 0 for a blob.
    """
    n, rows, cols = models.shape
    m = predicted_px.shape[1]
    normal = np.zeros((n, m, 2))
    coherence = np.zeros((n, m))
    for i in range(n):
        arr = structure_tensor(models[i], sigma=sigma_px, order="rc")
        p = np.nan_to_num(predicted_px[i], nan=0.0)
        coords = np.stack([np.clip(p[:, 0], 0, rows - 1), np.clip(p[:, 1], 0, cols - 1)])
        a_rr, a_rc, a_cc = (ndi.map_coordinates(x, coords, order=1) for x in arr)
        theta = 0.5 * np.arctan2(2 * a_rc, a_rr - a_cc)
        normal[i, :, 0], normal[i, :, 1] = np.cos(theta), np.sin(theta)
        coherence[i] = np.sqrt((a_rr - a_cc) ** 2 + 4 * a_rc**2) / np.maximum(a_rr + a_cc, 1e-30)
    return normal, coherence


def measure_features(
    frames: np.ndarray,
    predicted_px: np.ndarray,
    normal: np.ndarray,
    coherence: np.ndarray,
    *,
    width_px: float,
    search_px: int,
    along_px: int | None = None,
    line_coherence: float = 0.5,
    min_snr: float = 3.0,
) -> Tracks:
    """Find every feature on every frame near its prediction with an idealised template.

    Parameters
    ----------
    frames : ndarray, shape (n, rows, cols)
        Alignment signal (structure positive).
    predicted_px : ndarray, shape (n, m, 2)
        Predicted (row, col) of every feature; NaN to skip.
    normal, coherence : ndarray
        From :func:`local_orientation`.
    width_px : float
        Gaussian sigma of a line's (or blob's) profile, pixels.
    search_px : int
        Search radius across the line (or in each direction for a blob), pixels.
    along_px : int, optional
        Half length of the line piece averaged along the line (default 3 widths).
    line_coherence : float
        Coherence above which a feature is measured as a line piece.
    min_snr : float
        Measurements whose matched amplitude is below this many noise units are invalid.

    Returns
    -------
    Tracks
    """
    f = np.asarray(frames, dtype=np.float32)
    n, rows, cols = f.shape
    m = predicted_px.shape[1]
    reach = max(2, int(np.ceil(3 * width_px)))
    along = int(along_px) if along_px is not None else max(2, int(np.ceil(3 * width_px)))
    s = int(max(1, search_px))
    pos = np.full((n, m, 2), np.nan)
    info = np.zeros((n, m, 2, 2))
    score = np.zeros((n, m))
    valid = np.zeros((n, m), dtype=bool)
    prof_off = np.arange(-(reach + s), reach + s + 1, dtype=np.float64)
    line_off = np.arange(-along, along + 1, dtype=np.float64)
    g = np.exp(-0.5 * (np.arange(-reach, reach + 1) / width_px) ** 2)
    g0 = g - g.mean()
    dg = np.gradient(g)
    L = g.size
    for i in range(n):
        pred = predicted_px[i]
        ok = np.isfinite(pred).all(axis=1)
        lines = ok & (coherence[i] >= line_coherence)
        blobs = ok & ~lines
        # line pieces: a profile across the line, averaged along it
        idx = np.flatnonzero(lines)
        if idx.size:
            nr, nc = normal[i, idx, 0], normal[i, idx, 1]
            rr = pred[idx, 0, None, None] + prof_off[None, :, None] * nr[:, None, None] - line_off[None, None, :] * nc[:, None, None]
            cc = pred[idx, 1, None, None] + prof_off[None, :, None] * nc[:, None, None] + line_off[None, None, :] * nr[:, None, None]
            inside = (rr.min(axis=(1, 2)) >= 0) & (rr.max(axis=(1, 2)) <= rows - 1) & (cc.min(axis=(1, 2)) >= 0) & (cc.max(axis=(1, 2)) <= cols - 1)
            idx, rr, cc, nr, nc = idx[inside], rr[inside], cc[inside], nr[inside], nc[inside]
        if idx.size:
            prof = ndi.map_coordinates(f[i], np.stack([rr, cc]).reshape(2, -1), order=1).reshape(rr.shape).mean(axis=2)
            corr = np.stack([prof[:, k : k + L] @ g0 for k in range(2 * s + 1)], axis=1)
            k = corr.argmax(axis=1)
            delta = _subsample(corr, k) - s
            seg = np.stack([prof[j, kk : kk + L] for j, kk in enumerate(k)])
            amp, noise = _amplitude(seg, g)
            lam = amp**2 * float((dg**2).sum()) / noise**2
            snr = amp * float(np.sqrt((g0**2).sum())) / noise
            pos[i, idx, 0] = pred[idx, 0] + delta * nr
            pos[i, idx, 1] = pred[idx, 1] + delta * nc
            nn = np.stack([nr, nc], axis=1)
            info[i, idx] = lam[:, None, None] * nn[:, :, None] * nn[:, None, :]
            score[i, idx] = snr
            valid[i, idx] = (snr >= min_snr) & (np.abs(delta) < s)
        # blobs: a round Gaussian, searched in both directions (separably)
        idx = np.flatnonzero(blobs)
        if idx.size:
            r0, c0 = pred[idx, 0], pred[idx, 1]
            inside = (r0 - reach - s >= 0) & (r0 + reach + s <= rows - 1) & (c0 - reach - s >= 0) & (c0 + reach + s <= cols - 1)
            idx = idx[inside]
        if idx.size:
            r0, c0 = pred[idx, 0], pred[idx, 1]
            grid = np.arange(-(reach + s), reach + s + 1, dtype=np.float64)
            rr = r0[:, None, None] + grid[None, :, None]
            cc = c0[:, None, None] + grid[None, None, :]
            patch = ndi.map_coordinates(f[i], np.stack([np.broadcast_to(rr, (idx.size, grid.size, grid.size)),
                                                        np.broadcast_to(cc, (idx.size, grid.size, grid.size))]).reshape(2, -1),
                                        order=1).reshape(idx.size, grid.size, grid.size)
            t2 = np.outer(g0 + g.mean(), g0 + g.mean())
            t2 = t2 - t2.mean()
            corr2 = np.stack([np.stack([(patch[:, a : a + L, b : b + L] * t2).sum(axis=(1, 2)) for b in range(2 * s + 1)], axis=1)
                              for a in range(2 * s + 1)], axis=1)
            flat = corr2.reshape(idx.size, -1).argmax(axis=1)
            ka, kb = np.unravel_index(flat, corr2.shape[1:])
            dr = _subsample(corr2[np.arange(idx.size), :, kb], ka) - s
            dc = _subsample(corr2[np.arange(idx.size), ka, :], kb) - s
            seg = np.stack([patch[j, a : a + L, b : b + L].ravel() for j, (a, b) in enumerate(zip(ka, kb, strict=True))])
            amp, noise = _amplitude(seg, np.outer(g, g).ravel())
            gy, gx = np.gradient(np.outer(g, g))
            base = amp**2 / noise**2
            snr = amp * float(np.sqrt((t2**2).sum())) / noise
            pos[i, idx, 0] = r0 + dr
            pos[i, idx, 1] = c0 + dc
            info[i, idx, 0, 0] = base * float((gy * gy).sum())
            info[i, idx, 1, 1] = base * float((gx * gx).sum())
            info[i, idx, 0, 1] = info[i, idx, 1, 0] = base * float((gx * gy).sum())
            score[i, idx] = snr
            valid[i, idx] = (snr >= min_snr) & (np.abs(dr) < s) & (np.abs(dc) < s)
    return Tracks(pos, info, score, valid)


def _subsample(corr: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Position of each row's maximum ``k`` refined by a parabola through its neighbours."""
    rows = np.arange(corr.shape[0])
    inner = (k > 0) & (k < corr.shape[1] - 1)
    kk = np.clip(k, 1, corr.shape[1] - 2)
    a, b, c = corr[rows, kk - 1], corr[rows, kk], corr[rows, kk + 1]
    den = a - 2 * b + c
    off = np.where(inner & (den < 0), 0.5 * (a - c) / np.where(den < 0, den, -1.0), 0.0)
    return k + np.clip(off, -0.5, 0.5)


def _amplitude(segments: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares amplitude of ``template`` (plus an offset) in each segment, and the noise.

    The noise is the median over all segments of the residual standard deviation, so one frame
    gets one noise level.
    """
    a = np.stack([template, np.ones_like(template)], axis=1)
    coef, *_ = np.linalg.lstsq(a, segments.T, rcond=None)
    resid = segments - (a @ coef).T
    noise = float(np.median(resid.std(axis=1))) if resid.size else 1.0
    return coef[0], max(noise, 1e-12)
