"""Dislocation centres in cross-sections of a volume and their positional error against a reference.

Following the paper (eq. 1, Supp. F, Fig. 6-7): in every yz cross-section (one x column of the
volume) the dislocations cut the plane as bright spots; a spot's centre is the intensity-weighted
centroid of its voxels (one centre per spot, see :func:`find_centres_yz`). Centres of two volumes (or of a volume and the true
lines) in the same cross-section are paired by nearest neighbour, and the mean absolute
differences per axis are the positional errors |dGx|, |dGy|, |dGz|.

Coordinates returned are in nm, origin at the volume centre (DESIGN.md), axes (x, y, z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class Centres:
    """Dislocation centres found in cross-sections: one row per centre, columns x, y, z in nm."""

    xyz_nm: np.ndarray
    weight: np.ndarray


def _centre_offsets(shape: tuple[int, ...], voxel_nm: float) -> np.ndarray:
    return (np.asarray(shape, dtype=np.float64) - 1) / 2 * voxel_nm


def find_centres_yz(
    volume: np.ndarray,
    voxel_nm: float,
    *,
    threshold: float = 0.2,
    min_prominence: float = 0.1,
    smooth_px: float = 0.5,
    step: int = 1,
    border_px: int = 0,
    detect: np.ndarray | None = None,
    noise_floor: float = 0.0,
    weigh_detect: bool = False,
    split_ratio: float = 0.0,
) -> Centres:
    """Centres of bright spots in every yz cross-section (x column) of a (z, y, x) volume.

    One centre per spot: a spot is the catchment basin (watershed of the lightly smoothed section)
    of a maximum that rises at least ``min_prominence`` above the saddle to any brighter
    neighbour, cut at ``threshold``; its centre is the centroid of the voxels' brightness above the
    threshold over the whole basin (paper eq. 1, with the spot itself as the window). A fixed
    window around each local maximum does not do: a reconstructed dislocation crossing is often
    flat-topped or brighter at its rim (SIRT overshoot of a binarised line) or drawn out by an
    oblique line, and its several local maxima each gave a centre off the middle.

    Parameters
    ----------
    volume : ndarray, shape (z, y, x)
        Reconstructed dislocation signal (bright = dislocation).
    voxel_nm : float
        Voxel edge in nm.
    threshold : float
        Voxels whose smoothed value is below ``threshold`` times the typical line level belong to
        no spot. The typical line level (:func:`typical_line_level`) is the median over
        cross-sections of each section's brightest voxel (inside the border), in the yz or the
        xz sections, whichever is higher: robust to a few very bright voxels (a thick
        dislocation, an edge artefact), which a fraction of the volume's maximum is not.
    min_prominence : float
        A maximum starts its own spot only when it rises this far (times the typical line level)
        above the lowest pass to a brighter maximum; shallower bumps join their neighbour.
    smooth_px : float
        Gaussian sigma (voxels, within the section) of the smoothing used to find the spots and
        their basins; the centroid uses the unsmoothed values.
    step : int
        Use every ``step``-th cross-section.
    border_px : int
        Ignore spots whose centre lies this close to the section's edges (reconstruction edge
        artefacts), voxels.
    detect : ndarray, shape (z, y, x), optional
        The volume in which the spots and their basins are found, e.g. ``volume`` smoothed along
        its lines (:func:`smooth_along_lines`); ``threshold`` and ``min_prominence`` then refer
        to its typical line level. The centroids weigh the voxels of ``volume`` unless
        ``weigh_detect``.
    noise_floor : float
        Raise ``threshold`` where the volume's noise reaches it: spots are also cut at this
        many times the noise level of :func:`noise_level` (0: off); see :func:`spot_threshold`.
    weigh_detect : bool
        Weigh the centroids with ``detect`` (above its threshold) instead of ``volume``. With a
        volume averaged along its lines, the noise that moves a centroid is averaged out along
        the line, while a straight line's middle stays where it was.
    split_ratio : float
        Split spots that hold several lines of a pile-up into one centre per line, where a
        spot's length, discounted by its shift to the neighbouring sections, exceeds this many
        times the typical spot's (:func:`~.pileups.split_merged_spots`); 0: off.
    """
    from skimage.segmentation import watershed

    vol = np.asarray(volume, dtype=np.float32)[:, :, ::max(int(step), 1)]
    nz, ny, nx = vol.shape
    if vol.size == 0:
        return Centres(np.zeros((0, 3)), np.zeros(0))
    if detect is None:
        det = vol
    else:
        if np.shape(detect) != np.shape(volume):
            raise ValueError(f"detect has shape {np.shape(detect)}, the volume {np.shape(volume)}")
        det = np.asarray(detect, dtype=np.float32)[:, :, ::max(int(step), 1)]
    typical = typical_line_level(det, border_px)
    threshold = spot_threshold(det, threshold, noise_floor, border_px, typical=typical)
    level = threshold * typical
    smooth = ndi.gaussian_filter(det, (smooth_px, smooth_px, 0.0)) if smooth_px > 0 else det
    mask = smooth > level
    h = max(min_prominence * typical, 1e-12)
    masked = np.where(mask, smooth, 0.0)
    peaks = section_h_maxima(masked, mask, h)
    basins = np.zeros(vol.shape, dtype=np.int64)
    n = 0
    for ix in range(nx):  # sections are independent 2D problems
        m = mask[:, :, ix]
        if not m.any():
            continue
        sm = masked[:, :, ix].astype(np.float64)
        markers, k = ndi.label(peaks[:, :, ix])
        if k == 0:
            continue
        labels = watershed(-sm, markers, mask=m)
        basins[:, :, ix] = np.where(labels > 0, labels + n, 0)
        n += k
    if n == 0:
        return Centres(np.zeros((0, 3)), np.zeros(0))
    if det is vol or weigh_detect:
        w = np.clip(det - level, 0.0, None).astype(np.float64)
    else:
        w = np.clip(vol - threshold * typical_line_level(vol, border_px), 0.0, None).astype(np.float64)
    index = np.arange(1, n + 1)
    total = ndi.sum(w, basins, index)
    with np.errstate(invalid="ignore", divide="ignore"):  # a basin of zero weight gives NaN, dropped below
        cz, cy, cx = np.asarray(ndi.center_of_mass(w, basins, index), dtype=np.float64).reshape(-1, 3).T
    b = max(int(border_px), 0)
    keep = (total > 0) & (cz >= b) & (cz <= nz - 1 - b) & (cy >= b) & (cy <= ny - 1 - b)
    cz, cy, section, total = cz[keep], cy[keep], np.round(cx[keep]).astype(int), total[keep]
    if split_ratio > 0:
        from .pileups import split_merged_spots, spot_covariances

        czz, cyy, czy = spot_covariances(w, basins, n)
        cz, cy, section, total = split_merged_spots(cz, cy, section, total, czz[keep], cyy[keep], czy[keep],
                                                    split_ratio)
    z0, y0, _ = _centre_offsets(vol.shape, voxel_nm)
    x0 = (np.asarray(volume).shape[2] - 1) / 2 * voxel_nm
    xyz = np.stack([section * max(int(step), 1) * voxel_nm - x0, cy * voxel_nm - y0, cz * voxel_nm - z0], axis=1)
    order = np.lexsort((xyz[:, 1], xyz[:, 0]))
    return Centres(xyz[order], total[order])


def section_h_maxima(values: np.ndarray, mask: np.ndarray, h: float, *, width: int = 2048) -> np.ndarray:
    """The h-maxima (maxima rising at least ``h`` above the pass to any higher one) of every yz
    section (x column) of a (z, y, x) array, inside ``mask``.

    Each 8-connected piece of the mask counts on its own: its highest maximum always counts, the
    others where they rise ``h`` above the pass to a higher one. Where ``values`` exceed ``h``
    everywhere on the mask and are zero off it (as :func:`find_centres_yz` gives them), that is
    exactly ``skimage.morphology.h_maxima`` of each section. It is computed once, on a mosaic of
    the pieces set apart by a rim far below them: the grey reconstruction sorts every pixel it is
    given, and the pieces' boxes are a small part of the sections, which are mostly background
    (the 512 yz sections of a default-size volume: 1.2 s against 12 s section by section).
    """
    from skimage.morphology import h_maxima

    vals = np.asarray(values)
    m = np.asarray(mask, dtype=bool)
    out = np.zeros(m.shape, dtype=bool)
    pieces = []  # (x, label image of the section, piece number, box)
    for ix in range(m.shape[2]):
        if not m[:, :, ix].any():
            continue
        lab, _ = ndi.label(m[:, :, ix], structure=np.ones((3, 3), dtype=bool))
        pieces += [(ix, lab, k + 1, box) for k, box in enumerate(ndi.find_objects(lab)) if box is not None]
    if not pieces:
        return out
    width = max(width, max(b[1].stop - b[1].start for *_, b in pieces) + 2)
    places = []  # shelf packing: boxes left to right, a new shelf when the row is full
    row = col = shelf = 0
    for _, _, _, box in pieces:
        bh, bw = box[0].stop - box[0].start + 2, box[1].stop - box[1].start + 2  # a rim around each box
        if col + bw > width:
            row, col, shelf = row + shelf, 0, 0
        places.append((row + 1, col + 1))
        col += bw
        shelf = max(shelf, bh)
    top = float(np.max(np.abs(vals[m]))) if m.any() else 0.0
    mosaic = np.full((row + shelf, width), -(2.0 * top + 2.0 * abs(h) + 1.0))  # no pass between pieces
    own = []
    for (ix, lab, k, box), (r, c) in zip(pieces, places, strict=True):
        piece = lab[box] == k
        own.append(piece)
        target = mosaic[r : r + piece.shape[0], c : c + piece.shape[1]]
        target[piece] = vals[box[0], box[1], ix][piece]
    found = h_maxima(mosaic, h).astype(bool)
    for (ix, _, _, box), (r, c), piece in zip(pieces, places, own, strict=True):
        hit = found[r : r + piece.shape[0], c : c + piece.shape[1]] & piece
        out[box[0], box[1], ix] |= hit
    return out


def smooth_along_lines(
    volume: np.ndarray,
    sigma_px: float,
    *,
    gradient_px: float = 1.0,
    window_px: float = 2.0,
    where: np.ndarray | None = None,
) -> np.ndarray:
    """Average every voxel with its neighbours along the local line direction.

    The direction is the one in which the volume changes least: the eigenvector of the smallest
    eigenvalue of the structure tensor (gradients at ``gradient_px``, averaged over a Gaussian
    window of ``window_px``). Along a dislocation that is the line itself, so the noise of a
    reconstruction (streaks, speckle) averages out along the line while the gap between two
    neighbouring lines, across them, is kept: the weak splits between the lines of a pile-up
    survive where an isotropic smoothing would fill them.

    Parameters
    ----------
    volume : ndarray, shape (z, y, x)
    sigma_px : float
        Gaussian sigma of the average along the line, voxels; it reaches out to 2 sigma.
    gradient_px, window_px : float
        Scales of the structure tensor, voxels.
    where : ndarray of bool, optional
        Voxels to smooth (default all); the others keep their value. Restricting it to where
        the volume holds structure saves most of the time on a sparse volume.

    Returns
    -------
    ndarray, float32, the shape of ``volume``
    """
    v = np.asarray(volume, dtype=np.float32)
    out = v.copy()
    reach = int(np.ceil(2 * sigma_px))
    if sigma_px <= 0 or reach < 1 or v.ndim != 3 or v.size == 0:
        return out
    sel = np.ones(v.shape, dtype=bool) if where is None else np.asarray(where, dtype=bool)
    if sel.shape != v.shape:
        raise ValueError(f"where has shape {sel.shape}, the volume {v.shape}")
    idx = np.nonzero(sel)
    if idx[0].size == 0:
        return out
    grads = [ndi.gaussian_filter(v, gradient_px, order=o) for o in ((1, 0, 0), (0, 1, 0), (0, 0, 1))]
    tensor = np.empty((idx[0].size, 3, 3), dtype=np.float32)
    for i in range(3):
        for j in range(i, 3):
            tensor[:, i, j] = tensor[:, j, i] = ndi.gaussian_filter(grads[i] * grads[j], window_px)[idx]
    del grads
    direction = np.linalg.eigh(tensor)[1][:, :, 0]  # (n, 3): z, y, x of the least change
    del tensor
    here = np.stack(idx).astype(np.float32)
    total = v[idx].astype(np.float64)
    weight = 1.0
    for k in range(1, reach + 1):
        wk = float(np.exp(-0.5 * (k / sigma_px) ** 2))
        for sign in (1.0, -1.0):
            at = here + (sign * k) * direction.T
            total += wk * ndi.map_coordinates(v, at, order=1, mode="nearest")
        weight += 2 * wk
    out[idx] = (total / weight).astype(np.float32)
    return out


def noise_level(volume: np.ndarray, border_px: int = 0) -> float:
    """The 90th percentile of the volume's voxels (``border_px`` voxels from its x and y faces
    left out): the height of its noise. Dislocations fill well under a tenth of a specimen's
    voxels (default-size synthetic volumes: under 1 %), so this percentile lies in the
    background, whose spread is the reconstruction's noise. In a small crop made mostly of
    lines it is a line's brightness instead, and a noise floor built on it cuts real lines."""
    vol = np.asarray(volume)
    b = max(int(border_px), 0)
    inner = vol[:, b:vol.shape[1] - b or None, b:vol.shape[2] - b or None]
    if inner.size == 0:
        inner = vol
    return float(np.percentile(inner, 90))


def spot_threshold(volume: np.ndarray, threshold: float, noise_floor: float, border_px: int = 0, *,
                   typical: float | None = None) -> float:
    """The threshold of :func:`find_centres_yz` (a fraction of the typical line level), raised
    to ``noise_floor`` times the volume's :func:`noise_level` where that is higher, and never
    above 0.95 (a volume that is mostly noise still shows its brightest spots).

    A fixed fraction of the typical line does not suit every volume: where the lines are few or
    faint next to the noise (a sparse specimen, a volume of frames before denoising), the noise's
    peaks pass it and are counted as dislocations. Default-size synthetic volumes of the frames
    before denoising: 4.5 times the noise level is 0.29-0.44 of the typical line (seeds 0-4);
    at 3 times (0.20-0.29) seed 2's volume has 45 % of its found centres true, at 4.5 times 92 %.
    """
    if noise_floor <= 0:
        return float(threshold)
    if typical is None:
        typical = typical_line_level(volume, border_px)
    if not typical > 0:
        return float(threshold)
    return float(min(max(threshold, noise_floor * noise_level(volume, border_px) / typical), 0.95))


def typical_line_level(volume: np.ndarray, border_px: int = 0) -> float:
    """The intensity of a typical dislocation crossing: the median over the cross-sections of
    each section's brightest voxel (``border_px`` voxels from the volume's faces left out), in
    the yz sections or in the xz sections, whichever is higher.

    Both families give the same level to the spots of both, so a threshold means the same in
    either. The higher one is taken because sections that no line crosses pull a median down:
    where the lines run mostly along x, most xz sections hold none, and their median brightest
    voxel is a noise peak (synthetic seed 3, default size: a threshold relative to the xz
    sections' own median counted 18897 spots in them for 1276 true crossings, 1837 for 2255 in
    the yz sections)."""
    vol = np.asarray(volume)
    b = max(int(border_px), 0)
    inner = vol[b:vol.shape[0] - b or None, b:vol.shape[1] - b or None, b:vol.shape[2] - b or None]
    if inner.size == 0:
        inner = vol
    return float(max(np.median(inner.max(axis=(0, 1))), np.median(inner.max(axis=(0, 2)))))


def line_crossings_yz(lines_nm: list[np.ndarray], x_planes_nm: np.ndarray) -> np.ndarray:
    """Where polylines (each (k, 3) of x, y, z in nm) cross the planes x = const; (m, 3) in nm."""
    out = []
    for line in lines_nm:
        p = np.asarray(line, dtype=np.float64)
        for a, b in zip(p[:-1], p[1:], strict=True):
            lo, hi = min(a[0], b[0]), max(a[0], b[0])
            if hi == lo:
                continue
            xs = x_planes_nm[(x_planes_nm >= lo) & (x_planes_nm < hi)]
            if xs.size == 0:
                continue
            t = (xs - a[0]) / (b[0] - a[0])
            out.append(a[None, :] + t[:, None] * (b - a)[None, :])
    return np.concatenate(out) if out else np.zeros((0, 3))


@dataclass(frozen=True)
class PositionErrors:
    """Paired positional errors between found centres and reference centres."""

    dxyz_nm: np.ndarray  # (pairs, 3): found - reference
    found_xyz_nm: np.ndarray
    reference_xyz_nm: np.ndarray
    n_reference: int
    n_found: int

    @property
    def mean_abs_nm(self) -> dict[str, float]:
        if self.dxyz_nm.shape[0] == 0:
            return {"x": float("nan"), "y": float("nan"), "z": float("nan")}
        m = np.abs(self.dxyz_nm).mean(axis=0)
        return {"x": float(m[0]), "y": float(m[1]), "z": float(m[2])}

    @property
    def completeness(self) -> float:
        """Share of reference centres that found a partner."""
        return self.dxyz_nm.shape[0] / self.n_reference if self.n_reference else float("nan")


def pair_centres(found: np.ndarray, reference: np.ndarray, *, max_distance_nm: float, plane_tol_nm: float) -> PositionErrors:
    """Pair each reference centre with the nearest found centre in the same cross-section.

    A pair is kept when the partners are mutual nearest neighbours within ``max_distance_nm``
    (in the yz plane) and lie in the same x plane (within ``plane_tol_nm``).
    """
    found = np.asarray(found, dtype=np.float64).reshape(-1, 3)
    reference = np.asarray(reference, dtype=np.float64).reshape(-1, 3)
    if found.shape[0] == 0 or reference.shape[0] == 0:
        return PositionErrors(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), reference.shape[0], found.shape[0])
    # scale x so that different planes never pair: distance in x dominates
    big = 1e6
    f = found.copy()
    r = reference.copy()
    f[:, 0] = np.round(f[:, 0] / max(plane_tol_nm, 1e-9)) * big
    r[:, 0] = np.round(r[:, 0] / max(plane_tol_nm, 1e-9)) * big
    tf, tr = cKDTree(f), cKDTree(r)
    d_rf, i_rf = tf.query(r, distance_upper_bound=max_distance_nm)
    _, i_fr = tr.query(f, distance_upper_bound=max_distance_nm)
    keep = np.isfinite(d_rf)
    idx_r = np.flatnonzero(keep)
    idx_f = i_rf[keep]
    mutual = i_fr[idx_f] == idx_r
    idx_r, idx_f = idx_r[mutual], idx_f[mutual]
    return PositionErrors(
        found[idx_f] - reference[idx_r], found[idx_f], reference[idx_r], reference.shape[0], found.shape[0]
    )


def centroids_near(
    volume: np.ndarray, voxel_nm: float, points_nm: np.ndarray, *, window_px: int = 3, level: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted centroid (paper eq. 1) of the spot nearest each given point, in its yz section.

    For each point (x, y, z in nm, origin at the volume centre) the window of +-``window_px``
    voxels around it in the cross-section of its x is taken, voxels below ``level`` times the
    window's maximum are ignored, and the centroid of the rest is returned with the window's
    maximum (the spot's strength). Points outside the volume give NaN.
    """
    vol = np.asarray(volume, dtype=np.float32)
    nz, ny, nx = vol.shape
    off = _centre_offsets(vol.shape, voxel_nm)  # z, y, x
    pts = np.asarray(points_nm, dtype=np.float64).reshape(-1, 3)
    out = np.full_like(pts, np.nan)
    peak = np.zeros(pts.shape[0])
    for k, (x, y, z) in enumerate(pts):
        ix = int(round((x + off[2]) / voxel_nm))
        iy = int(round((y + off[1]) / voxel_nm))
        iz = int(round((z + off[0]) / voxel_nm))
        if not (0 <= ix < nx and 0 <= iy < ny and 0 <= iz < nz):
            continue
        z_lo, z_hi = max(iz - window_px, 0), min(iz + window_px + 1, nz)
        y_lo, y_hi = max(iy - window_px, 0), min(iy + window_px + 1, ny)
        w = vol[z_lo:z_hi, y_lo:y_hi, ix].astype(np.float64)
        top = w.max()
        if top <= 0:
            continue
        w = np.where(w >= level * top, w, 0.0)
        zz, yy = np.mgrid[z_lo:z_hi, y_lo:y_hi]
        out[k] = (x, (w * yy).sum() / w.sum() * voxel_nm - off[1], (w * zz).sum() / w.sum() * voxel_nm - off[0])
        peak[k] = top
    return out, peak


def errors_against_lines(
    volume: np.ndarray,
    voxel_nm: float,
    lines_nm: list[np.ndarray],
    *,
    reference_volume: np.ndarray | None = None,
    threshold: float = 0.05,
    max_distance_nm: float | None = None,
    y_bins: int = 8,
) -> dict[str, float | list[float]]:
    """Centres of a (z, y, x) volume against true polylines, per yz cross-section (paper Fig. 7).

    Every crossing of a true line with a cross-section seeds a weighted centroid in the volume
    (:func:`centroids_near`); crossings whose spot is weaker than ``threshold`` times the volume's
    maximum, or whose centroid lies farther than ``max_distance_nm``, count as not found.
    Returns mean |dy| and |dz| (nm), the share found, the mean dz in ``y_bins`` bands of y, and
    the convex part of dz against y: the quadratic coefficient of a fit times (half the field)^2.
    With ``reference_volume`` (e.g. the slow tomogram) the errors are taken between the two
    volumes' centroids seeded at the same true crossings, as the paper compares rapid and slow.
    """
    nz, ny, nx = volume.shape
    x_planes = (np.arange(nx) - (nx - 1) / 2) * voxel_nm
    reference = line_crossings_yz(lines_nm, x_planes)
    half_height = (nz - 1) / 2 * voxel_nm
    reference = reference[np.abs(reference[:, 2]) <= half_height]
    found, strength = centroids_near(volume, voxel_nm, reference)
    ok = np.isfinite(found[:, 1]) & (strength >= threshold * float(np.max(volume)))
    if reference_volume is not None:
        seeds = reference
        reference, ref_strength = centroids_near(reference_volume, voxel_nm, seeds)
        ok &= np.isfinite(reference[:, 1]) & (ref_strength >= threshold * float(np.max(reference_volume)))
        reference = np.where(np.isfinite(reference), reference, seeds)
    diff = found[ok] - reference[ok]
    close = np.hypot(diff[:, 1], diff[:, 2]) <= (max_distance_nm or 3 * voxel_nm)
    dz = diff[close, 2]
    dy = diff[close, 1]
    y = reference[ok][close, 1]
    half = (ny - 1) / 2 * voxel_nm
    edges = np.linspace(-half, half, y_bins + 1)
    band = [float(np.mean(dz[(y >= a) & (y < b)])) if np.any((y >= a) & (y < b)) else float("nan")
            for a, b in zip(edges[:-1], edges[1:], strict=True)]
    convex = float(np.polyfit(y, dz, 2)[0] * half**2) if dz.size > 3 else float("nan")
    return {
        "mean_abs_dy_nm": round(float(np.mean(np.abs(dy))), 3),
        "mean_abs_dz_nm": round(float(np.mean(np.abs(dz))), 3),
        "mean_dz_nm": round(float(np.mean(dz)), 3),
        "pairs": int(dz.size),
        "completeness": round(dz.size / max(reference.shape[0], 1), 3),
        "dz_by_y_band_nm": [round(v, 2) for v in band],
        "dz_convex_nm": round(convex, 3),
    }


# -- both kinds of cross-section, registration, the paper's summary ------------------------------
def section_centres(volume: np.ndarray, voxel_nm: float, *, axis: str = "x", detect: np.ndarray | None = None,
                    **kwargs: float | bool) -> np.ndarray:
    """Centres (x, y, z nm) of the spots in every cross-section normal to ``axis`` ("x": yz
    sections, "y": xz sections); ``detect`` and the keyword arguments as :func:`find_centres_yz`."""
    if axis == "x":
        return find_centres_yz(volume, voxel_nm, detect=detect, **kwargs).xyz_nm
    if axis != "y":
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    xyz = find_centres_yz(np.swapaxes(volume, 1, 2), voxel_nm,
                          detect=None if detect is None else np.swapaxes(detect, 1, 2), **kwargs).xyz_nm
    return xyz[:, [1, 0, 2]]


def line_crossings(lines_nm: list[np.ndarray], planes_nm: np.ndarray, *, axis: str = "x") -> np.ndarray:
    """Points (x, y, z nm) where polylines cross the planes ``axis = p`` for p in ``planes_nm``."""
    if axis == "x":
        return line_crossings_yz(lines_nm, planes_nm)
    if axis != "y":
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    swapped = [np.asarray(line, dtype=np.float64)[:, [1, 0, 2]] for line in lines_nm]
    return line_crossings_yz(swapped, planes_nm)[:, [1, 0, 2]]


def _pair(found: np.ndarray, reference: np.ndarray, axis: str, max_distance_nm: float, plane_tol_nm: float) -> PositionErrors:
    order = [0, 1, 2] if axis == "x" else [1, 0, 2]
    e = pair_centres(found[:, order], reference[:, order], max_distance_nm=max_distance_nm, plane_tol_nm=plane_tol_nm)
    return PositionErrors(e.dxyz_nm[:, order], e.found_xyz_nm[:, order], e.reference_xyz_nm[:, order],
                          e.n_reference, e.n_found)


def compare_centres(
    found: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    *,
    voxel_nm: float,
    max_distance_nm: float,
    register: bool = True,
    bins: int = 8,
    field_nm: tuple[float, float] | None = None,
) -> dict[str, object]:
    """The paper's positional comparison (Fig. 6-7) of centres found in a volume with reference
    centres, section by section.

    Parameters
    ----------
    found, reference : dict ``{"x": (n, 3), "y": (m, 3)}``
        Centres (x, y, z nm) in yz sections (key "x") and in xz sections (key "y").
    voxel_nm : float
        Section spacing; centres pair only within the same section.
    max_distance_nm : float
        Largest in-section distance of a pair.
    register : bool
        First remove the median offset of a coarse pairing (the two volumes' origins need not
        agree: a specimen translation is not an error of the 3D positions); reported as
        ``offset_nm``. Its depth is then set by the median over both section families' pairs.
    bins : int
        Bands of y and of x for the mean dz against y and x (paper Fig. 7).
    field_nm : (float, float), optional
        Extent (y, x) of the field for the bands; default from the reference points.

    Returns
    -------
    dict
        ``position_error_nm`` {x, y, z}: mean |dG| per axis (x from xz sections, y from yz
        sections, z from both); ``pairs`` and ``reference_centres`` per section kind;
        ``completeness``: share of reference centres paired; ``precision``: share of found
        centres paired (false detections lower it); ``offset_nm``; ``dz_by_y_nm`` and
        ``dz_by_x_nm`` with their band centres ``y_bands_nm``/``x_bands_nm``;
        ``completeness_by_z``: the share of reference centres paired in ``bins`` bands of depth
        (centres ``z_bands_nm``; where in the slab dislocations are missed, e.g. near its
        surfaces); ``pairs_xyz_nm``: (found, reference) point lists for plots.
    """
    axes = [a for a in ("x", "y") if a in found and a in reference]
    offset = np.zeros(3)  # x, y, z of found minus reference
    planes = {a: 0 for a in axes}  # whole-section shift of each section kind

    def moved(axis: str, plane_shift: int, radius: float) -> PositionErrors:
        shift = offset.copy()
        shift[0 if axis == "x" else 1] = plane_shift * voxel_nm  # a section moves by whole sections
        return _pair(found[axis] - shift, reference[axis], axis, radius, voxel_nm / 2)

    def spread(e: PositionErrors, axis: str) -> float:
        """Median in-plane distance of the pairs about their median offset: small only where the
        sections are lined up (a section too far pairs every centre with its line's crossing
        one section away, off by the line's slope)."""
        d = e.dxyz_nm[:, [2, 1 if axis == "x" else 0]]
        return float(np.median(np.hypot(*(d - np.median(d, axis=0)).T))) if d.shape[0] >= 3 else np.inf

    if register:
        for _ in range(3):  # alternate: line the sections up, then measure the in-plane offset
            for a in axes:
                tries = {k: moved(a, k, 3 * max_distance_nm) for k in range(-3, 4)}
                most = max(t.dxyz_nm.shape[0] for t in tries.values())
                usable = [k for k in tries if tries[k].dxyz_nm.shape[0] >= 0.5 * most]
                planes[a] = min(usable, key=lambda k: (round(spread(tries[k], a) / voxel_nm, 1), abs(k)))
                d = tries[planes[a]].dxyz_nm
                if d.shape[0] >= 3:
                    offset[1 if a == "x" else 0] += float(np.median(d[:, 1 if a == "x" else 0]))
                    offset[2] += float(np.median(d[:, 2]))
        for _ in range(2):  # one depth offset for both section families, from their final pairs
            depths = [moved(a, planes[a], max_distance_nm).dxyz_nm[:, 2] for a in axes]
            if sum(d.size for d in depths) >= 3:
                offset[2] += float(np.median(np.concatenate(depths)))
    results = {a: moved(a, planes[a], max_distance_nm) for a in axes}
    ex = results.get("x")
    ey = results.get("y")
    abs_x = np.abs(ey.dxyz_nm[:, 0]) if ey is not None else np.zeros(0)
    abs_y = np.abs(ex.dxyz_nm[:, 1]) if ex is not None else np.zeros(0)
    dz_parts = [r.dxyz_nm[:, 2] for r in results.values()]
    dz = np.concatenate(dz_parts) if dz_parts else np.zeros(0)
    refs = np.concatenate([r.reference_xyz_nm for r in results.values()]) if results else np.zeros((0, 3))
    n_ref = sum(r.n_reference for r in results.values())

    def mean_or_nan(v: np.ndarray) -> float:
        return round(float(np.mean(v)), 3) if v.size else float("nan")

    def bands(coord: np.ndarray, half: float) -> tuple[list[float], list[float]]:
        edges = np.linspace(-half, half, bins + 1)
        means = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            sel = (coord >= a) & (coord < b)
            means.append(round(float(np.mean(dz[sel])), 3) if np.any(sel) else float("nan"))
        return [round(float(c), 2) for c in (edges[:-1] + edges[1:]) / 2], means

    if field_nm is None:
        half_y = float(np.max(np.abs(refs[:, 1]))) if refs.size else 1.0
        half_x = float(np.max(np.abs(refs[:, 0]))) if refs.size else 1.0
    else:
        half_y, half_x = field_nm[0] / 2, field_nm[1] / 2
    y_centres, dz_y = bands(refs[:, 1], half_y) if refs.size else ([], [])
    x_centres, dz_x = bands(refs[:, 0], half_x) if refs.size else ([], [])
    pairs = {a: {"found": np.round(r.found_xyz_nm, 2).tolist(), "reference": np.round(r.reference_xyz_nm, 2).tolist()}
             for a, r in results.items()}
    z_centres, z_share = depth_completeness(
        np.concatenate([reference[a] for a in axes]) if axes else np.zeros((0, 3)), refs, bins)
    return {
        "position_error_nm": {"x": mean_or_nan(abs_x), "y": mean_or_nan(abs_y), "z": mean_or_nan(np.abs(dz))},
        "pairs": {a: int(r.dxyz_nm.shape[0]) for a, r in results.items()},
        "reference_centres": {a: int(r.n_reference) for a, r in results.items()},
        "found_centres": {a: int(r.n_found) for a, r in results.items()},
        "completeness": round(sum(r.dxyz_nm.shape[0] for r in results.values()) / n_ref, 4) if n_ref else float("nan"),
        "precision": round(sum(r.dxyz_nm.shape[0] for r in results.values())
                           / max(sum(r.n_found for r in results.values()), 1), 4),
        "offset_nm": {"x": round(float(offset[0]), 3), "y": round(float(offset[1]), 3), "z": round(float(offset[2]), 3)},
        "y_bands_nm": y_centres,
        "dz_by_y_nm": dz_y,
        "x_bands_nm": x_centres,
        "dz_by_x_nm": dz_x,
        "z_bands_nm": z_centres,
        "completeness_by_z": z_share,
        "pairs_xyz_nm": pairs,
    }


def depth_completeness(reference: np.ndarray, paired: np.ndarray, bins: int = 8) -> tuple[list[float], list[float]]:
    """Share of reference centres (x, y, z nm) that were paired, in ``bins`` equal bands of z
    spanning the reference centres: (band centres in nm, shares; NaN for an empty band)."""
    z = np.asarray(reference, dtype=np.float64).reshape(-1, 3)[:, 2]
    zp = np.asarray(paired, dtype=np.float64).reshape(-1, 3)[:, 2]
    if z.size == 0:
        return [], []
    edges = np.linspace(z.min(), z.max(), bins + 1)
    edges[-1] = np.nextafter(edges[-1], np.inf)  # the deepest centre in the last band
    total = np.histogram(z, edges)[0]
    found = np.histogram(zp, edges)[0]
    shares = [round(float(f / t), 4) if t else float("nan") for f, t in zip(found, total, strict=True)]
    return [round(float(c), 2) for c in (edges[:-1] + edges[1:]) / 2], shares
