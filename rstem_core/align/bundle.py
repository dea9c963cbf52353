"""Least-squares refinement of every frame's angle and shift with the features' 3D positions.

Projection model (DESIGN.md): a feature at (x, y, z) pixels from the volume centre is seen in
frame i at column ``x + dx_i`` and row coordinate ``v = y cos(theta) - z sin(theta) + dy_i``
(both from the frame centre), after a rotation by the tilt-axis direction ``phi`` when the axis
is not exactly along x. ``theta`` is the angle at the moment the feature's row was scanned: the
frame angles are the angles at the frames' mid-times and the angle of any other moment is
interpolated linearly between them (as the reconstruction step does), so a feature seen near the
top of a frame pulls on that frame's and the previous frame's angle. Without timestamps every
row has its frame's angle.

Unknowns: the frame angles, shifts (dy, dx), every feature's (x, y, z) and optionally ``phi``.
Residuals: the measured minus the predicted positions, whitened by each measurement's information
matrix; optionally the angular acceleration between consecutive frames divided by its expected
size (a smooth goniometer), and the gauge conditions. The problem is solved by
:func:`scipy.optimize.least_squares` with an analytic sparse Jacobian and a robust loss.

Gauge (what images cannot tell): a common rotation of all angles together with a rotation of the
specimen, and a translation of the specimen together with compensating shifts, leave every image
unchanged. They are fixed by (1) the mean of the first and last frames' angles equal to the mean
of their nominal angles (a goniometer that runs unevenly still starts and ends where it reports),
(2) zero shift for the reference frame (nearest zero tilt), (3) the features' mean depth at zero
(the caller re-centres the slab afterwards).

Uncertainty (:mod:`.uncertainty`): the standard deviation of every refined angle follows from the
solution's Gauss-Newton curvature (measurements, the goniometer and reading priors, the gauge; not
the pull of the features towards their starting positions), the feature positions and shifts
marginalised out, scaled by the fit's residual per degree of freedom. It is relative to the angle
gauge: the end frames' readings are taken as exact, so an error they share with every frame is
not in it.

Feature bootstrap (:func:`bootstrap_adjust`): the solution solved again on resamples of the
features drawn with replacement. The spread of the resampled angles holds what the curvature
leaves out, errors that follow a feature through the series (a measurement locked beside the
line in every frame, a feature that is two lines crossing); their mean is less swayed by the
few features that the robust weights and the rejections happen to keep or drop.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields, replace

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

from ..progress import CancelToken, ProgressFn
from .features import Tracks
from .frame_model import FrameTiming, interpolation_weights, next_usable, predict_positions
from .smooth import ramp_tolerance
from .uncertainty import angle_sd

_GAUGE_SIGMA = 1e-3


@dataclass(frozen=True, eq=False)
class BundleResult:
    """Result of :func:`bundle_adjust`.

    Attributes
    ----------
    angles_deg : ndarray, shape (n,)
        Refined angle of every frame at its mid-time, degrees.
    shifts_px : ndarray, shape (n, 2)
        Refined (dy, dx), pixels.
    points_px : ndarray, shape (m, 3)
        Feature positions (x, y, z), pixels from the volume centre.
    tilt_axis_deg : float
        Refined tilt-axis direction (degrees from +x towards +y).
    frame_residual_px : ndarray, shape (n,)
        RMS distance of measured and predicted positions in each frame, along the directions the
        measurements inform (across a line piece), pixels (NaN without measurements).
    feature_residual : ndarray, shape (m,)
        RMS whitened residual of each feature (about 1 for a consistent track).
    used : ndarray, shape (n, m), bool
        Measurements kept (valid and not rejected as outliers).
    kept_features : ndarray, shape (m,), bool
        Features kept (not rejected as bad tracks).
    angle_sd_deg : ndarray, shape (n,)
        Standard deviation of each refined angle, degrees, relative to the angle gauge (see the
        module notes); NaN for frames not refined, and all NaN when not asked for.
    """

    angles_deg: np.ndarray
    shifts_px: np.ndarray
    points_px: np.ndarray
    tilt_axis_deg: float
    frame_residual_px: np.ndarray
    feature_residual: np.ndarray
    used: np.ndarray
    kept_features: np.ndarray
    angle_sd_deg: np.ndarray


def _whitening(info: np.ndarray, floor_px: float) -> np.ndarray:
    """U with U^T U = H / (1 + floor^2 H) along each principal direction, for every 2x2 H.

    The floor caps the weight of the most precise measurements; a rank-1 H (a line piece, known
    only across the line) gives a U with one zero row.
    """
    h = 0.5 * (info + np.transpose(info, (0, 2, 1)))
    lam, vec = np.linalg.eigh(h)
    lam = np.clip(lam, 0.0, None)
    lam_eff = lam / (1.0 + floor_px**2 * lam)
    return np.sqrt(lam_eff)[:, :, None] * np.transpose(vec, (0, 2, 1))


class _Problem:
    """Residuals and sparse Jacobian of the bundle adjustment for one set of observations."""

    def __init__(
        self,
        obs_frame: np.ndarray,
        obs_point: np.ndarray,
        measured: np.ndarray,
        whiten: np.ndarray,
        n: int,
        m: int,
        shape: tuple[int, int],
        timing: FrameTiming | None,
        usable: np.ndarray,
        nominal_deg: np.ndarray,
        reference: int,
        smooth_deg_s2: float | None,
        fit_axis: bool,
        points0: np.ndarray,
        point_sigma_px: float,
        nominal_sigma_deg: float,
        shift_smooth_px_s2: float | None = None,
        anchor_frames: int = 1,
    ) -> None:
        self.f, self.p, self.meas, self.u = obs_frame, obs_point, measured, whiten
        self.points0, self.point_sigma = np.asarray(points0, float), float(point_sigma_px)
        self.sqrt_w = np.ones(obs_frame.size)
        self.nominal, self.nominal_sigma = nominal_deg, float(nominal_sigma_deg)
        self.shift_smooth = float(shift_smooth_px_s2) if shift_smooth_px_s2 is not None and usable.sum() >= 3 else None
        self.n, self.m, self.shape = n, m, shape
        self.timing = timing
        self.k, self.w = interpolation_weights(timing, obs_frame, measured[:, 0], n, usable)
        self.k2 = next_usable(usable)[self.k]
        self.usable, self.reference, self.fit_axis = usable, reference, fit_axis
        order = np.flatnonzero(usable)
        k = max(1, min(int(anchor_frames), order.size // 2))
        ends = np.concatenate([order[:k], order[-k:]])
        self.anchor = (ends, float(np.mean(nominal_deg[ends])))
        self.smooth = None
        if smooth_deg_s2 is not None and order.size >= 5:
            t = timing.mid_times_s[order] if timing is not None else order.astype(float)
            self.smooth = (order, t, ramp_tolerance(t, float(smooth_deg_s2), 0.2 if timing is not None else 2.0))
        self.n_params = 3 * n + 3 * m + (1 if fit_axis else 0)
        self._prior_jac: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def with_point_sigma(self, point_sigma_px: float) -> _Problem:
        """The same problem with another pull of the features towards their starting positions."""
        other = copy.copy(self)
        other.point_sigma, other._prior_jac = float(point_sigma_px), None
        return other

    def _times(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.flatnonzero(self.usable)
        t = self.timing.mid_times_s[order] if self.timing is not None else order.astype(float)
        return order, t

    def unpack(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        n, m = self.n, self.m
        angles = q[:n]
        shifts = np.stack([q[n : 2 * n], q[2 * n : 3 * n]], axis=1)
        points = q[3 * n : 3 * n + 3 * m].reshape(m, 3)
        phi = float(q[-1]) if self.fit_axis else 0.0
        return angles, shifts, points, phi

    def _obs_geometry(self, q: np.ndarray):
        angles, shifts, points, phi = self.unpack(q)
        th = np.deg2rad((1 - self.w) * angles[self.k] + self.w * angles[self.k2])
        x, y, z = points[self.p, 0], points[self.p, 1], points[self.p, 2]
        c, s = np.cos(th), np.sin(th)
        v = y * c - z * s
        cp, sp_ = np.cos(np.deg2rad(phi)), np.sin(np.deg2rad(phi))
        rows, cols = self.shape
        pred_row = x * sp_ + v * cp + shifts[self.f, 0] + (rows - 1) / 2
        pred_col = x * cp - v * sp_ + shifts[self.f, 1] + (cols - 1) / 2
        return angles, shifts, points, (x, y, z, c, s, v, cp, sp_), np.stack([pred_row, pred_col], 1)

    def residuals(self, q: np.ndarray) -> np.ndarray:
        angles, shifts, points, _, pred = self._obs_geometry(q)
        e = self.meas - pred
        r_obs = (np.einsum("oab,ob->oa", self.u, e) * self.sqrt_w[:, None]).ravel()
        return np.concatenate([r_obs, self._prior_residuals(angles, shifts, points)])

    def observation_residuals(self, q: np.ndarray) -> np.ndarray:
        """Whitened, unweighted residual of every observation: (n_obs, 2)."""
        *_, pred = self._obs_geometry(q)
        return np.einsum("oab,ob->oa", self.u, self.meas - pred)

    def _prior_residuals(self, angles, shifts, points) -> np.ndarray:
        out = []
        if self.smooth is not None:
            order, t, sigma = self.smooth
            a = angles[order]
            slope = np.diff(a) / np.diff(t)
            acc = np.diff(slope) / (0.5 * (t[2:] - t[:-2]))
            out.append(acc[1:-1] / sigma[2:-2])
        ends, target = self.anchor
        out.append([(float(np.mean(angles[ends])) - target) / _GAUGE_SIGMA])
        out.append([shifts[self.reference, 0] / _GAUGE_SIGMA, shifts[self.reference, 1] / _GAUGE_SIGMA])
        out.append([float(np.mean(points[:, 2])) / _GAUGE_SIGMA])
        out.append(((points - self.points0) / self.point_sigma).ravel())
        dev = (angles - self.nominal)[self.usable]
        out.append((dev - dev.mean()) / self.nominal_sigma)
        if self.shift_smooth is not None:
            order, t = self._times()
            for k in range(2):
                s = shifts[order, k]
                acc = np.diff(np.diff(s) / np.diff(t)) / (0.5 * (t[2:] - t[:-2]))
                out.append(acc / self.shift_smooth)
        return np.concatenate([np.atleast_1d(np.asarray(o, dtype=float)) for o in out])

    def jacobian(self, q: np.ndarray) -> sp.csr_matrix:
        n = self.n
        angles, shifts, points, (x, y, z, c, s, v, cp, sp_), _ = self._obs_geometry(q)
        n_obs = self.f.size
        dv = (-y * s - z * c) * (np.pi / 180)  # dv / dtheta per degree
        # d(pred_row, pred_col) / d(parameter) for each observation
        d_theta = np.stack([cp * dv, -sp_ * dv], 1)
        d_x = np.stack([sp_ * np.ones(n_obs), cp * np.ones(n_obs)], 1)
        d_y = np.stack([cp * c, -sp_ * c], 1)
        d_z = np.stack([-cp * s, sp_ * s], 1)
        cols_list = [
            (self.k, (1 - self.w)[:, None] * d_theta),
            (self.k2, self.w[:, None] * d_theta),
            (n + self.f, np.tile([[1.0, 0.0]], (n_obs, 1))),
            (2 * n + self.f, np.tile([[0.0, 1.0]], (n_obs, 1))),
            (3 * n + 3 * self.p, d_x),
            (3 * n + 3 * self.p + 1, d_y),
            (3 * n + 3 * self.p + 2, d_z),
        ]
        if self.fit_axis:
            d_phi = np.stack([x * cp - v * sp_, -x * sp_ - v * cp], 1) * (np.pi / 180)
            cols_list.append((np.full(n_obs, self.n_params - 1), d_phi))
        rr, cc, vv = [], [], []
        base = np.arange(n_obs)
        for col, d in cols_list:
            jd = -np.einsum("oab,ob->oa", self.u, d) * self.sqrt_w[:, None]  # residual = U (meas - pred)
            for a in range(2):
                rr.append(2 * base + a)
                cc.append(col)
                vv.append(jd[:, a])
        row0 = 2 * n_obs
        if self._prior_jac is None:  # the priors are linear: their rows never change
            self._prior_jac = self._prior_jacobian(row0)
        pr, pc, pv = self._prior_jac
        rows_total = row0 + self._n_prior()
        jac = sp.coo_matrix(
            (np.concatenate(vv + [pv]), (np.concatenate(rr + [pr]), np.concatenate(cc + [pc]))),
            shape=(rows_total, self.n_params),
        )
        return jac.tocsr()

    def _n_prior(self) -> int:
        k = 0 if self.smooth is None else self.smooth[0].size - 4
        extra = 0 if self.shift_smooth is None else 2 * (int(self.usable.sum()) - 2)
        return k + 4 + 3 * self.m + int(self.usable.sum()) + extra

    def _prior_jacobian(self, row0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rr, cc, vv = [], [], []
        r = row0
        if self.smooth is not None:
            order, t, sigma = self.smooth
            for j in range(2, order.size - 2):
                dp, dm = t[j + 1] - t[j], t[j] - t[j - 1]
                h = 0.5 * (t[j + 1] - t[j - 1])
                coefs = (1 / (dm * h), -(1 / dp + 1 / dm) / h, 1 / (dp * h))
                for off, cf in zip((-1, 0, 1), coefs, strict=True):
                    rr.append(r)
                    cc.append(order[j + off])
                    vv.append(cf / sigma[j])
                r += 1
        ends, _ = self.anchor
        rr += [r] * ends.size
        cc += list(ends)
        vv += [1.0 / (ends.size * _GAUGE_SIGMA)] * ends.size
        r += 1
        rr += [r, r + 1]
        cc += [self.n + self.reference, 2 * self.n + self.reference]
        vv += [1 / _GAUGE_SIGMA, 1 / _GAUGE_SIGMA]
        r += 2
        for j in range(self.m):
            rr.append(r)
            cc.append(3 * self.n + 3 * j + 2)
            vv.append(1 / (self.m * _GAUGE_SIGMA))
        r += 1
        k = np.arange(3 * self.m)
        rr += list(r + k)
        cc += list(3 * self.n + k)
        vv += [1 / self.point_sigma] * (3 * self.m)
        r += 3 * self.m
        frames = np.flatnonzero(self.usable)
        k = frames.size  # (dev_i - mean(dev)) / sigma: 1/sigma on the diagonal, -1/(k sigma) everywhere
        rows_k, cols_k = np.meshgrid(np.arange(k), frames, indexing="ij")
        rr += list(r + rows_k.ravel())
        cc += list(cols_k.ravel())
        vv += list(((np.eye(k) - 1.0 / k) / self.nominal_sigma).ravel())
        r += k
        if self.shift_smooth is not None:
            order, t = self._times()
            for k in range(2):
                base = self.n * (1 + k)
                for j in range(1, order.size - 1):
                    dp, dm = t[j + 1] - t[j], t[j] - t[j - 1]
                    h = 0.5 * (t[j + 1] - t[j - 1])
                    for off, cf in zip((-1, 0, 1), (1 / (dm * h), -(1 / dp + 1 / dm) / h, 1 / (dp * h)), strict=True):
                        rr.append(r)
                        cc.append(base + order[j + off])
                        vv.append(cf / self.shift_smooth)
                    r += 1
        return np.asarray(rr), np.asarray(cc), np.asarray(vv, dtype=float)


def _robust_sigma(norm: np.ndarray) -> float:
    """Robust scale of whitened residual norms (1 for unit-variance, one-dimensional residuals)."""
    return max(float(np.median(norm)) / 0.6745, 1e-9) if norm.size else 1.0


def _robust_solve(problem: _Problem, q: np.ndarray, n_obs: int, iterations: int) -> np.ndarray:
    """Iteratively re-weighted least squares with Cauchy weights of a self-adjusting width.

    The width follows the residuals' robust scale, so a poor start (every residual large) is
    first solved almost as plain least squares and the weighting sharpens as the fit improves:
    a fixed, narrow robust loss would instead treat every measurement as an outlier and stay.
    """
    for _ in range(max(1, iterations)):
        # one BLAS thread: the solver's many vector norms and products are far too small to share
        # (two threads made the whole solve 4x slower on 2 busy cores; the result is the same)
        with threadpool_limits(limits=1, user_api="blas"):
            sol = least_squares(
                problem.residuals, q, jac=problem.jacobian, method="trf", tr_solver="lsmr",
                x_scale="jac", max_nfev=25, xtol=1e-8, ftol=1e-8,
            )
        q = sol.x
        problem.sqrt_w[:] = 1.0
        norm = np.sqrt((problem.observation_residuals(q) ** 2).sum(axis=1))
        width = 2.0 * _robust_sigma(norm)
        problem.sqrt_w[:] = 1.0 / np.sqrt(1.0 + (norm / width) ** 2)
    return q


def bundle_adjust(
    tracks: Tracks,
    angles_deg: np.ndarray,
    shifts_px: np.ndarray,
    points_px: np.ndarray,
    shape: tuple[int, int],
    *,
    nominal_angles_deg: np.ndarray,
    usable: np.ndarray | None = None,
    reference: int | None = None,
    timing: FrameTiming | None = None,
    smooth_deg_s2: float | None = None,
    fit_tilt_axis: bool = False,
    tilt_axis_deg: float = 0.0,
    floor_px: float = 0.05,
    outlier_sigma: float = 4.0,
    bad_track_factor: float = 3.0,
    min_observations: int = 4,
    rounds: int = 3,
    point_sigma_px: float = 10.0,
    nominal_sigma_deg: float = 5.0,
    smooth_shifts_px_s2: float | None = None,
    anchor_frames: int = 1,
    irls_iterations: int = 6,
    uncertainty: bool = True,
) -> BundleResult:
    """Refine angles, shifts, feature positions (and the axis direction) from feature tracks.

    Parameters
    ----------
    tracks : Tracks
        Measured positions and their information (full-resolution frame pixels).
    angles_deg, shifts_px, points_px : ndarray
        Starting values: (n,) degrees, (n, 2) (dy, dx) pixels, (m, 3) (x, y, z) pixels.
    shape : (rows, cols)
        Frame size in pixels.
    nominal_angles_deg : ndarray, shape (n,)
        The reported angles; their first and last usable values fix the angle gauge.
    usable : ndarray, shape (n,), bool, optional
        Frames to refine; the others keep their starting values.
    reference : int, optional
        Frame whose shift is held at zero (default: usable frame nearest zero tilt).
    timing : FrameTiming, optional
        Frame timestamps and line time: each measurement then uses its row's scan-time angle.
    smooth_deg_s2 : float, optional
        Expected size of the goniometer's angular acceleration (deg/s^2, or deg per frame^2
        without timing); regularises the angles towards a smooth angle-against-time curve.
        The first and last frames are left out of it: the goniometer starts and stops there
        (the fastest changes of speed), and they fix the angle gauge, which a smoothed curve
        would pull towards the neighbouring frames. None: every frame's angle is free.
    fit_tilt_axis : bool
        Also refine the tilt-axis direction.
    tilt_axis_deg : float
        Its starting (or fixed) value, degrees.
    floor_px : float
        Smallest measurement error assumed, pixels (no measurement is trusted beyond it).
    outlier_sigma : float
        Measurements whose whitened residual exceeds this many robust standard deviations are
        dropped after each round.
    bad_track_factor : float
        Features whose RMS whitened residual exceeds this times the median are dropped.
    min_observations : int
        Features measured in fewer frames are dropped.
    rounds : int
        Solve / reject rounds.
    nominal_sigma_deg : float
        A pull of every angle towards its nominal value, degrees (the expected scatter of the
        goniometer's reading): it keeps a frame that the features hardly constrain from
        wandering off. Features in a thin layer tell an angle error from a shift only through
        their depth spread near zero tilt, so there the pull matters. The pull acts on each
        angle's deviation from the mean deviation of all frames, never on their common offset:
        a goniometer that lags or leads during the run is off by the same amount for many
        frames, and pulling the whole run towards its readings would override the angle gauge
        (set by the end frames, whose readings are right on average). Default-size synthetic series, seeds 0 / 1 / 2:
        the pull on the plain deviations left seed 1's angles 0.32 deg off as a block (its
        readings average 0.54 deg off), angle error 0.113 / 0.345 / 0.233 deg; on the
        deviations from their mean 0.124 / 0.154 / 0.231 deg.
    smooth_shifts_px_s2 : float, optional
        Expected size of the drift's acceleration (px/s^2, or px per frame^2 without timing):
        regularises the shifts towards a smooth drift path (a continuously tilted series drifts
        smoothly; a stop-and-go series with stage tracking jumps, so leave None there).
    anchor_frames : int
        The angle gauge: the mean angle of this many frames at each end of the series equals
        the mean of their nominal angles.
    irls_iterations : int
        Re-weighting steps of the robust (Cauchy) solution in each round.
    uncertainty : bool
        Also give each angle's standard deviation (:func:`~.uncertainty.angle_sd`; about 0.1 s
        for 600 features and 71 frames); NaN without.
    point_sigma_px : float
        A weak pull of every feature towards its starting position, pixels: it settles the
        directions no measurement fixes (along a dislocation line) without biasing the others.

    Returns
    -------
    BundleResult
    """
    n, m = tracks.n_frames, tracks.n_features
    ok = np.ones(n, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    nominal = np.asarray(nominal_angles_deg, dtype=np.float64)
    ref = int(np.argmin(np.where(ok, np.abs(nominal), np.inf))) if reference is None else int(reference)
    used = tracks.valid & ok[:, None]
    kept = used.sum(axis=0) >= min_observations
    used &= kept[None, :]
    q = np.concatenate([
        np.asarray(angles_deg, float), np.asarray(shifts_px, float)[:, 0], np.asarray(shifts_px, float)[:, 1],
        np.asarray(points_px, float).ravel(), [tilt_axis_deg] if fit_tilt_axis else [],
    ])
    feature_res = np.full(m, np.nan)
    problem = None
    for _ in range(max(1, rounds)):
        if used.sum() < 8:
            break
        fi, pj = np.nonzero(used)
        whiten = _whitening(tracks.information[fi, pj], floor_px)
        problem = _Problem(
            fi, pj, tracks.positions_px[fi, pj], whiten, n, m, shape, timing, ok, nominal, ref,
            smooth_deg_s2, fit_tilt_axis, points_px, point_sigma_px, nominal_sigma_deg, smooth_shifts_px_s2,
            anchor_frames,
        )
        q = _robust_solve(problem, q, fi.size, irls_iterations)
        norm = np.sqrt((problem.observation_residuals(q) ** 2).sum(axis=1))
        counts = np.bincount(pj, minlength=m)
        per_feature = np.sqrt(np.bincount(pj, weights=norm**2, minlength=m) / np.maximum(counts, 1))
        feature_res = np.where(counts > 0, per_feature, np.nan)
        sigma = _robust_sigma(norm)
        drop = norm > outlier_sigma * sigma
        med = float(np.nanmedian(feature_res)) if np.isfinite(feature_res).any() else 0.0
        bad = feature_res > bad_track_factor * max(med, 1e-9)
        before = int(used.sum())
        used[fi[drop], pj[drop]] = False
        kept &= ~bad
        used &= kept[None, :]
        low = used.sum(axis=0) < min_observations
        kept &= ~low
        used &= kept[None, :]
        if int(used.sum()) == before:
            break
    angles, shifts, points, phi = (
        problem.unpack(q) if problem is not None
        else (np.asarray(angles_deg, float), np.asarray(shifts_px, float), np.asarray(points_px, float), 0.0)
    )
    if not fit_tilt_axis:
        phi = tilt_axis_deg
    frame_res = _frame_residuals(tracks, used, points, angles, shifts, shape, phi, timing, ok)
    sd = angle_sd(problem, q, kept) if uncertainty and problem is not None else np.full(n, np.nan)
    return BundleResult(angles.copy(), shifts.copy(), points.copy(), float(phi), frame_res, feature_res, used, kept, sd)


def bootstrap_adjust(
    tracks: Tracks,
    solution: BundleResult,
    shape: tuple[int, int],
    *,
    resamples: int,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **options,
) -> BundleResult:
    """``solution`` with the angles and shifts averaged over re-solutions on resampled features.

    Each resample draws as many features as ``tracks`` holds, with replacement, and solves
    :func:`bundle_adjust` with ``options`` (its keyword arguments) from ``solution``.

    Parameters
    ----------
    tracks : Tracks
        The tracks ``solution`` was solved from.
    solution : BundleResult
        The solution on all features: the start of every resample, and what the result keeps
        apart from the angles, shifts and standard deviations (feature positions, residuals,
        measurements used).
    shape : (rows, cols)
        Frame size in pixels.
    resamples : int
        Number of resamples, at least 2.
    seed : int
        Seed of the draws (the same seed gives the same result).
    progress, cancel
        Called with the share done / checked after every resample.

    Returns
    -------
    BundleResult
        Angles and shifts: the resamples' means; ``angle_sd_deg``: the standard deviation of
        the resamples' angles (NaN for frames outside ``options["usable"]``).
    """
    if resamples < 2:
        raise ValueError(f"a feature bootstrap needs at least 2 resamples, got {resamples}")
    rng = np.random.default_rng(seed)
    m = tracks.n_features
    options = {**options, "uncertainty": False, "tilt_axis_deg": solution.tilt_axis_deg}
    angles, shifts = [], []
    for k in range(resamples):
        pick = rng.integers(0, m, m)
        drawn = Tracks(**{f.name: getattr(tracks, f.name)[:, pick] for f in fields(Tracks)})
        one = bundle_adjust(drawn, solution.angles_deg, solution.shifts_px, solution.points_px[pick], shape,
                            **options)
        angles.append(one.angles_deg)
        shifts.append(one.shifts_px)
        if progress is not None:
            progress((k + 1) / resamples, f"feature bootstrap: resample {k + 1}/{resamples}")
        if cancel is not None:
            cancel.check()
    usable = options.get("usable")
    ok = np.ones(tracks.n_frames, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    sd = np.where(ok, np.std(angles, axis=0, ddof=1), np.nan)
    return replace(solution, angles_deg=np.mean(angles, axis=0), shifts_px=np.mean(shifts, axis=0),
                   angle_sd_deg=sd)


def _frame_residuals(tracks, used, points, angles, shifts, shape, phi, timing, usable) -> np.ndarray:
    n = tracks.n_frames
    fi, pj = np.nonzero(used)
    out = np.full(n, np.nan)
    if fi.size == 0:
        return out
    k, w = interpolation_weights(timing, fi, tracks.positions_px[fi, pj, 0], n, usable)
    k2 = next_usable(usable)[k]
    th = (1 - w) * angles[k] + w * angles[k2]
    row_angles = np.full((n, points.shape[0]), np.nan)
    row_angles[fi, pj] = th
    pred = predict_positions(points, angles, shifts, shape, tilt_axis_deg=phi,
                             row_angles_deg=np.where(np.isfinite(row_angles), row_angles, angles[:, None]))
    e = tracks.positions_px[fi, pj] - pred[fi, pj]
    # only the directions a measurement informs count (across a line, both ways for a blob)
    lam, vec = np.linalg.eigh(0.5 * (tracks.information[fi, pj] + np.transpose(tracks.information[fi, pj], (0, 2, 1))))
    informed = lam > 1e-3 * lam.max(axis=1, keepdims=True)
    d2 = (np.einsum("oab,oa->ob", vec, e) ** 2 * informed).sum(axis=1)
    counts = np.bincount(fi, minlength=n)
    sums = np.bincount(fi, weights=d2, minlength=n)
    out[counts > 0] = np.sqrt(sums[counts > 0] / counts[counts > 0])
    return out
