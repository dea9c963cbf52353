"""Image quality of a denoised frame against a reference: PSNR, SSIM and dislocation-line measures.

The measures follow the denoising evaluation of Zhao et al. (paper Tables 1-3): PSNR relative to a
reference image, and the width and intensity (depth) of the dislocation dark lines relative to those
in the reference, measured on line profiles across the lines.

Normalisation convention
------------------------
No function here rescales its inputs: ``image`` and ``reference`` must be in the same intensity
units. The project convention is detector units (ADU): a raw or denoised frame in ADU against the
DCFI reference (an average of frames, ADU) or against the noise-free truth
``clean * adu_per_unit`` (ADU). The PSNR peak (``data_range``) is the reference's range
``max - min``, so the score does not depend on the image's own outliers, and both the MSE and the
peak scale together: PSNR and SSIM are unchanged when both images are multiplied by one gain.
The paper's per-image min-max normalisation is not used for the score, because the extremes of a
noisy frame are noise and would make the normalisation (and the score) depend on the noise.

Line measures
-------------
Dark lines are found in the *reference only* (a ridge filter for dark ridges, a threshold, a
skeleton), and profiles are taken across them at the same places in both images, so the image under
test cannot choose its own lines. Each profile is fitted with a Gaussian dip on a linear background,

    p(t) = a + b t - d exp(-(t - t0)^2 / (2 s^2)),

and the relative width is ``FWHM_image / FWHM_reference`` (``FWHM = 2 sqrt(2 ln 2) s``) and the
relative intensity ``d_image / d_reference`` (or, with ``relative_to_background``, the ratio of the
contrasts ``d / (a + b t0)``, which is independent of the images' gains). Medians over the profiles
are reported, as they are robust to the few profiles that cross another line.

The measures are meant for denoised images. On an image as noisy as a raw rapid frame (PSNR of a
few dB) each fit partly follows the noise: the depth comes out too large (intensity ratios of
1.2-2 on raw synthetic frames) and the width is not meaningful.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.feature import hessian_matrix
from skimage.filters import sato, threshold_otsu
from skimage.metrics import structural_similarity
from skimage.morphology import remove_small_objects, skeletonize

#: FWHM of a Gaussian in units of its standard deviation
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _pair(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(image, np.float64)
    ref = np.asarray(reference, np.float64)
    if img.ndim != 2 or ref.ndim != 2:
        raise ValueError(
            f"image and reference must be 2D (rows, cols), got {img.shape} and {ref.shape}"
        )
    if img.shape != ref.shape:
        raise ValueError(f"image {img.shape} and reference {ref.shape} must have the same shape")
    if not (np.all(np.isfinite(img)) and np.all(np.isfinite(ref))):
        raise ValueError("image and reference must be finite (no NaN or infinity)")
    return img, ref


def _data_range(ref: np.ndarray, data_range: float | None) -> float:
    peak = float(ref.max() - ref.min()) if data_range is None else float(data_range)
    if not peak > 0:
        raise ValueError(f"data_range must be > 0 (the reference is constant?), got {peak}")
    return peak


def psnr_db(image: np.ndarray, reference: np.ndarray, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio of an image against a reference, dB.

    Parameters
    ----------
    image, reference : ndarray, shape (rows, cols)
        The image under test and the reference, in the same intensity units (e.g. ADU; see the
        module's normalisation convention).
    data_range : float, optional
        The peak, in the images' units. Default: the reference's range ``max - min``.

    Returns
    -------
    float
        ``10 log10(data_range^2 / MSE)``; ``inf`` for identical images.

    Raises
    ------
    ValueError
        Different shapes, not 2D, non-finite values, or a non-positive range.

    Examples
    --------
    >>> ref = np.array([[0.0, 1.0], [0.0, 1.0]])
    >>> round(psnr_db(ref + 0.1, ref), 6)
    20.0
    """
    img, ref = _pair(image, reference)
    peak = _data_range(ref, data_range)
    mse = float(np.mean((img - ref) ** 2))
    if mse == 0.0:
        return math.inf
    return float(10.0 * math.log10(peak**2 / mse))


def ssim(image: np.ndarray, reference: np.ndarray, *, data_range: float | None = None) -> float:
    """Structural similarity (Wang et al. 2004) of an image against a reference.

    Parameters
    ----------
    image, reference : ndarray, shape (rows, cols)
        Same intensity units (see the module's normalisation convention); at least 7 x 7 px.
    data_range : float, optional
        Dynamic range used by the SSIM constants. Default: the reference's ``max - min``.

    Returns
    -------
    float
        Mean SSIM over the image (scikit-image's 7 x 7 uniform window), 1 for identical images.

    Raises
    ------
    ValueError
        As :func:`psnr_db`, or an image smaller than 7 x 7 px.
    """
    img, ref = _pair(image, reference)
    if min(img.shape) < 7:
        raise ValueError(f"ssim needs images of at least 7 x 7 px, got {img.shape}")
    return float(structural_similarity(img, ref, data_range=_data_range(ref, data_range)))


def _linear_fit(
    t: np.ndarray, y: np.ndarray, t0: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Background, slope and depth for fixed centres and widths, and the residual sum of squares.

    ``y`` (n, m); ``t0`` and ``s`` (n, k): k candidate (centre, sigma) pairs per profile.
    Returns coefficients (n, k, 3) and residual sums of squares (n, k).
    """
    g = np.exp(-0.5 * ((t[None, None, :] - t0[..., None]) / s[..., None]) ** 2)  # (n, k, m)
    m = float(t.size)
    st, stt = float(t.sum()), float((t * t).sum())
    sg, stg, sgg = g.sum(-1), (g * t).sum(-1), (g * g).sum(-1)
    normal = np.empty(g.shape[:2] + (3, 3))
    normal[..., 0, 0], normal[..., 0, 1], normal[..., 0, 2] = m, st, -sg
    normal[..., 1, 0], normal[..., 1, 1], normal[..., 1, 2] = st, stt, -stg
    normal[..., 2, 0], normal[..., 2, 1], normal[..., 2, 2] = -sg, -stg, sgg
    sy, sty = y.sum(-1), (y * t).sum(-1)
    rhs = np.stack(
        [
            np.broadcast_to(sy[:, None], sg.shape),
            np.broadcast_to(sty[:, None], sg.shape),
            -np.einsum("nkm,nm->nk", g, y),
        ],
        axis=-1,
    )
    det = np.linalg.det(normal)
    ok = np.abs(det) > 1e-12 * np.maximum(np.abs(normal).max(axis=(-1, -2)), 1e-300) ** 3
    normal[~ok] = np.eye(3)
    coef = np.linalg.solve(normal, rhs[..., None])[..., 0]
    rss = (y * y).sum(-1)[:, None] - np.einsum("nki,nki->nk", coef, rhs)
    rss[~ok] = np.inf
    return coef, rss


def _grid_step(
    t: np.ndarray, y: np.ndarray, centres: np.ndarray, offsets: np.ndarray, log_sigmas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best (centre, log sigma) per profile over per-profile grids ``centres[:, None] + offsets``
    (n, a) and ``log_sigmas`` (n, b)."""
    n, na, nb = len(y), offsets.shape[-1], log_sigmas.shape[-1]
    t0 = np.broadcast_to((centres[:, None] + offsets)[:, :, None], (n, na, nb)).reshape(n, -1)
    ls = np.broadcast_to(log_sigmas[:, None, :], (n, na, nb)).reshape(n, -1)
    _, rss = _linear_fit(t, y, t0, np.exp(ls))
    best = np.argmin(rss, axis=1)
    return t0[np.arange(n), best], ls[np.arange(n), best]


def fit_dips(
    t: np.ndarray,
    profiles: np.ndarray,
    *,
    centres: np.ndarray | None = None,
    centre_tolerance_px: float = 1.5,
    sigma_bounds_px: tuple[float, float] = (0.2, 8.0),
) -> np.ndarray:
    """Least-squares fits of a Gaussian dip on a linear background to many profiles at once.

    The model ``a + b t - d exp(-(t - t0)^2 / (2 s^2))`` is linear in ``(a, b, d)``, which are
    solved exactly for every candidate ``(t0, s)``; ``(t0, s)`` is found on a coarse and then a
    finer grids (``s`` log-spaced, final steps of 0.5 %, centre steps of 0.02 x the tolerance). Vectorised over profiles: a general
    nonlinear solver per profile is some hundred times slower here.

    Parameters
    ----------
    t : ndarray, shape (m,)
        Positions along the profiles, px.
    profiles : ndarray, shape (n, m)
        Intensities.
    centres : ndarray, shape (n,), optional
        Expected line centres, px (default 0).
    centre_tolerance_px : float
        The fitted centre lies within this distance of ``centres``, px.
    sigma_bounds_px : (float, float)
        Range of the Gaussian standard deviation ``s``, px.

    Returns
    -------
    ndarray, shape (n, 5)
        ``(a, b, d, t0, s)`` per profile: background, slope per px, depth (positive for a dark
        line), centre px, sigma px; a row of NaN where the fit is degenerate.
    """
    t = np.asarray(t, np.float64)
    y = np.atleast_2d(np.asarray(profiles, np.float64))
    c = np.zeros(len(y)) if centres is None else np.asarray(centres, np.float64).reshape(len(y))
    chunk = 64  # profiles per vectorised block (bounds the temporaries to some tens of MB)
    parts = [
        _fit_block(t, y[i : i + chunk], c[i : i + chunk], centre_tolerance_px, sigma_bounds_px)
        for i in range(0, len(y), chunk)
    ]
    return np.concatenate(parts) if parts else np.empty((0, 5))


def _fit_block(
    t: np.ndarray,
    y: np.ndarray,
    c: np.ndarray,
    centre_tolerance_px: float,
    sigma_bounds_px: tuple[float, float],
) -> np.ndarray:
    n = len(y)
    lo, hi = np.log(sigma_bounds_px[0]), np.log(sigma_bounds_px[1])
    coarse_s = np.linspace(lo, hi, max(int(np.ceil((hi - lo) / 0.1)) + 1, 2))
    coarse_t = np.linspace(-centre_tolerance_px, centre_tolerance_px, 9)
    t0, ls = _grid_step(t, y, c, coarse_t, np.broadcast_to(coarse_s, (n, coarse_s.size)))
    dt, ds = coarse_t[1] - coarse_t[0], coarse_s[1] - coarse_s[0]
    fine = np.linspace(-1.0, 1.0, 11)
    t0, ls = _grid_step(t, y, t0, fine * dt, np.clip(ls[:, None] + fine * ds, lo, hi))
    t0 = np.clip(t0, c - centre_tolerance_px, c + centre_tolerance_px)
    fine2 = np.linspace(-1.0, 1.0, 9)
    t0, ls = _grid_step(t, y, t0, fine2 * dt / 5, np.clip(ls[:, None] + fine2 * ds / 5, lo, hi))
    t0 = np.clip(t0, c - centre_tolerance_px, c + centre_tolerance_px)
    coef, rss = _linear_fit(t, y, t0[:, None], np.exp(ls)[:, None])
    out = np.column_stack([coef[:, 0, :], t0, np.exp(ls)])
    out[~np.isfinite(rss[:, 0]) | ~np.all(np.isfinite(out), axis=1)] = np.nan
    return out


def detect_dark_lines(
    reference: np.ndarray,
    *,
    sigmas_px: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0),
    min_length_px: int = 8,
    threshold: float | None = None,
) -> np.ndarray:
    """Centre lines (skeleton) of the dark lines of a bright-field reference.

    Parameters
    ----------
    reference : ndarray, shape (rows, cols)
        Reference image, dark lines on a brighter background.
    sigmas_px : tuple of float
        Scales of the ridge filter (Gaussian standard deviations, px) spanning the lines' widths.
    min_length_px : int
        Skeleton pieces with fewer pixels are dropped.
    threshold : float, optional
        Ridge-filter response above which a pixel is on a line; default Otsu's threshold of the
        response.

    Returns
    -------
    ndarray, shape (rows, cols), bool
        One-pixel-wide centre lines.
    """
    ref = np.asarray(reference, np.float64)
    scale = float(np.std(ref)) or 1.0
    response = sato(ref / scale, sigmas=sigmas_px, black_ridges=True, mode="reflect")
    level = threshold_otsu(response) if threshold is None else threshold
    mask = remove_small_objects(response > level, max_size=min_length_px)
    skeleton = skeletonize(mask)
    return remove_small_objects(skeleton, max_size=min_length_px - 1, connectivity=2)


def _sample_points(skeleton: np.ndarray, spacing_px: float, margin_px: float) -> np.ndarray:
    """Skeleton points at least ``spacing_px`` apart, away from junctions and the border."""
    neighbours = ndimage.convolve(
        skeleton.astype(np.int32), np.ones((3, 3), np.int32), mode="constant"
    )
    junctions = skeleton & (neighbours > 3)
    near_junction = ndimage.binary_dilation(junctions, iterations=max(int(spacing_px), 2))
    rows, cols = skeleton.shape
    rr, cc = np.nonzero(skeleton & ~near_junction)
    inside = (
        (rr >= margin_px) & (rr < rows - margin_px) & (cc >= margin_px) & (cc < cols - margin_px)
    )
    rr, cc = rr[inside], cc[inside]
    taken = np.zeros(skeleton.shape, bool)
    keep = []
    r_block = int(math.ceil(spacing_px))
    for r, c in zip(rr, cc, strict=True):
        if taken[r, c]:
            continue
        keep.append((r, c))
        taken[max(r - r_block, 0) : r + r_block + 1, max(c - r_block, 0) : c + r_block + 1] = True
    return np.asarray(keep, np.float64).reshape(-1, 2)


def _normals(reference: np.ndarray, points: np.ndarray, sigma_px: float) -> np.ndarray:
    """Unit vectors (dr, dc) across the dark line at each point: the Hessian's eigenvector of the
    largest (positive, for a dark ridge) curvature."""
    hrr, hrc, hcc = hessian_matrix(
        reference, sigma=sigma_px, order="rc", use_gaussian_derivatives=True
    )
    r, c = points[:, 0].astype(int), points[:, 1].astype(int)
    a, b, d = hrr[r, c], hrc[r, c], hcc[r, c]
    lam = 0.5 * (a + d) + np.sqrt(0.25 * (a - d) ** 2 + b**2)
    vr, vc = b, lam - a  # eigenvector of [[a, b], [b, d]] for eigenvalue lam
    flat = np.hypot(vr, vc) < 1e-12
    vr = np.where(flat, np.where(a >= d, 1.0, 0.0), vr)
    vc = np.where(flat, np.where(a >= d, 0.0, 1.0), vc)
    norm = np.hypot(vr, vc)
    return np.stack([vr / norm, vc / norm], axis=1)


def _profiles(
    image: np.ndarray, points: np.ndarray, normals: np.ndarray, t: np.ndarray, along: np.ndarray
) -> np.ndarray:
    """Profiles across the lines (n, len(t)), averaged over offsets ``along`` the line, px."""
    tangents = np.stack([-normals[:, 1], normals[:, 0]], axis=1)
    coords = (
        points[:, None, None, :]
        + t[None, None, :, None] * normals[:, None, None, :]
        + along[None, :, None, None] * tangents[:, None, None, :]
    )
    values = ndimage.map_coordinates(
        image, [coords[..., 0].ravel(), coords[..., 1].ravel()], order=3, mode="nearest"
    )
    return values.reshape(coords.shape[:3]).mean(axis=1)


def line_measures(
    image: np.ndarray,
    reference: np.ndarray,
    *,
    sigmas_px: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0),
    half_length_px: float = 8.0,
    step_px: float = 0.5,
    average_px: float = 3.0,
    spacing_px: float = 4.0,
    min_length_px: int = 8,
    fwhm_bounds_px: tuple[float, float] = (1.0, 10.0),
    max_ratio: float = 5.0,
    relative_to_background: bool = False,
    max_profiles: int = 400,
    centre_tolerance_px: float = 1.0,
) -> dict[str, Any]:
    """Width and intensity of the dark (dislocation) lines of an image relative to a reference.

    Lines are detected in ``reference`` (:func:`detect_dark_lines`); at points along them, at least
    ``spacing_px`` apart and away from junctions, profiles perpendicular to the line are taken from
    both images, averaged over ``+-average_px`` along the line, and fitted with a Gaussian dip on a
    linear background (see the module notes). A profile counts when the reference's fit succeeds
    with a dark dip whose FWHM lies within ``fwhm_bounds_px`` and the image's fit succeeds with a
    FWHM within ``max_ratio`` times (and at least ``1 / max_ratio`` of) the reference's.

    Parameters
    ----------
    image, reference : ndarray, shape (rows, cols)
        Image under test and reference, same geometry and intensity units (ADU by convention).
    sigmas_px : tuple of float
        Ridge-filter scales for detection, px (Gaussian standard deviations).
    half_length_px : float
        Profiles run from ``-half_length_px`` to ``+half_length_px`` across the line, px.
    step_px : float
        Sample spacing along a profile, px.
    average_px : float
        Profiles are averaged over offsets ``-average_px .. +average_px`` (1 px apart) along the line.
    spacing_px : float
        Minimum distance between profile positions, px.
    min_length_px : int
        Shortest detected line piece, px.
    fwhm_bounds_px : (float, float)
        Sane FWHM range of a reference line, px.
    max_ratio : float
        Largest accepted width ratio (and smallest ``1 / max_ratio``) of a single profile.
    relative_to_background : bool
        Compare line contrasts ``depth / background`` instead of depths: gain-free, for images in
        different units (the background is the fitted linear background at the line centre).
    max_profiles : int
        At most this many profiles (evenly chosen among the candidate points) are fitted.
    centre_tolerance_px : float
        The image's line centre may lie at most this far from the reference's, px (a small
        registration error; a larger freedom lets noise pull narrow fits onto noise dips).

    Returns
    -------
    dict
        ``width_ratio`` and ``intensity_ratio`` (medians over good profiles; NaN when none),
        ``n_profiles`` (good profiles), ``n_candidates`` (points measured),
        ``reference_fwhm_px`` and ``image_fwhm_px`` (medians, px), ``reference_depth`` (median
        depth of the reference's dips, in its units).

    Raises
    ------
    ValueError
        As :func:`psnr_db`.
    """
    img, ref = _pair(image, reference)
    t = np.arange(-half_length_px, half_length_px + 1e-9, step_px)
    along = np.arange(-average_px, average_px + 1e-9, 1.0)
    margin = half_length_px + average_px + 1.0
    points = _sample_points(
        detect_dark_lines(ref, sigmas_px=sigmas_px, min_length_px=min_length_px), spacing_px, margin
    )
    if len(points) > max_profiles:
        points = points[np.linspace(0, len(points) - 1, max_profiles).round().astype(int)]
    empty = {
        "width_ratio": math.nan,
        "intensity_ratio": math.nan,
        "n_profiles": 0,
        "n_candidates": int(len(points)),
        "reference_fwhm_px": math.nan,
        "image_fwhm_px": math.nan,
        "reference_depth": math.nan,
    }
    if len(points) == 0:
        return empty
    normals = _normals(ref, points, float(np.median(sigmas_px)))
    ref_profiles = _profiles(ref, points, normals, t, along)
    img_profiles = _profiles(img, points, normals, t, along)
    s_bounds = (fwhm_bounds_px[0] / FWHM_PER_SIGMA / max_ratio, half_length_px)
    fr = fit_dips(t, ref_profiles, centre_tolerance_px=1.5, sigma_bounds_px=s_bounds)
    w_ref = FWHM_PER_SIGMA * fr[:, 4]
    good = (fr[:, 2] > 0) & (w_ref >= fwhm_bounds_px[0]) & (w_ref <= fwhm_bounds_px[1])
    fr, w_ref = fr[good], w_ref[good]
    fi = fit_dips(
        t,
        img_profiles[good],
        centres=fr[:, 3],
        centre_tolerance_px=centre_tolerance_px,
        sigma_bounds_px=s_bounds,
    )
    w_img = FWHM_PER_SIGMA * fi[:, 4]
    with np.errstate(invalid="ignore", divide="ignore"):
        widths = w_img / w_ref
        if relative_to_background:
            bg_ref, bg_img = fr[:, 0] + fr[:, 1] * fr[:, 3], fi[:, 0] + fi[:, 1] * fi[:, 3]
            depths = (fi[:, 2] / bg_img) / (fr[:, 2] / bg_ref)
            valid = (bg_ref > 0) & (bg_img > 0)
        else:
            depths = fi[:, 2] / fr[:, 2]
            valid = np.ones(len(fr), bool)
    valid &= np.isfinite(widths) & (widths >= 1.0 / max_ratio) & (widths <= max_ratio)
    widths, depths, ref_widths, img_widths, ref_depths = (
        widths[valid],
        depths[valid],
        w_ref[valid],
        w_img[valid],
        fr[valid, 2],
    )
    if widths.size == 0:
        return empty
    return {
        "width_ratio": float(np.median(widths)),
        "intensity_ratio": float(np.median(depths)),
        "n_profiles": int(widths.size),
        "n_candidates": int(len(points)),
        "reference_fwhm_px": float(np.median(ref_widths)),
        "image_fwhm_px": float(np.median(img_widths)),
        "reference_depth": float(np.median(ref_depths)),
    }
