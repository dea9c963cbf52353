"""How well the feature solution fixes each frame's angle: the standard deviation of the angles.

The bundle adjustment (:mod:`.bundle`) minimises whitened residuals; near its solution the
inverse of the Gauss-Newton curvature J^T J is the covariance of the parameters (measurement
noise as each measurement's information matrix states it, scaled by the fit's chi-square per
degree of freedom). The angles' block of it is all that is reported. It is relative to the angle
gauge, the end frames' readings, which it takes as exact, and it holds for random measurement
errors: a bias that follows a feature through the series (a dark line image lying beside the
dislocation core) is not in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse.linalg as spla

if TYPE_CHECKING:
    from .bundle import _Problem

_FREE_POINT_SIGMA_PX = 1e3


def angle_sd(problem: _Problem, q: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Standard deviation (degrees) of every frame's angle at the solution ``q``.

    The inverse of the Gauss-Newton curvature J^T J of all residuals (observations with their
    robust weights, priors, gauge), restricted to the angles: the feature positions are
    eliminated through their Schur complement (a sparse solve), the shifts and the axis stay in
    the small dense remainder. Scaled by the robustly weighted chi-square per degree of freedom,
    so measurements less precise than their information matrices claim widen it. NaN for
    frames outside ``problem.usable``.
    """
    n, m = problem.n, problem.m
    # the pull towards the starting positions is left out: those positions come from a volume
    # reconstructed with the current angles, so they carry no information of their own about
    # the angles (a feature's position along its line stays settled by a far weaker pull)
    jac = problem.with_point_sigma(_FREE_POINT_SIGMA_PX).jacobian(q)
    h = (jac.T @ jac).tocsc()
    geo = np.r_[np.arange(3 * n), [problem.n_params - 1] if problem.fit_axis else []].astype(int)
    pts = np.arange(3 * n, 3 * n + 3 * m)
    h_g = h[geo]
    h_gp = h_g[:, pts]
    x = spla.splu(h[pts][:, pts].tocsc()).solve(np.ascontiguousarray(h_gp.T.toarray()))
    schur = h_g[:, geo].toarray() - h_gp @ x
    # frames left out have no residual at all: keep them out of the inverse
    live = np.diag(schur) > 1e-12 * max(float(np.max(np.diag(schur))), 1e-300)
    cov = np.linalg.pinv(schur[np.ix_(live, live)], hermitian=True)
    var = np.full(geo.size, np.nan)
    var[live] = np.diag(cov)
    rows = np.linalg.norm(problem.u, axis=2)  # a line piece's whitening has one empty row
    informed = int((rows > 1e-6 * max(float(rows.max(initial=0.0)), 1e-300)).sum())
    r = problem.observation_residuals(q)
    chi2 = float(((problem.sqrt_w[:, None] * r) ** 2).sum())
    dof = informed - (3 * int(problem.usable.sum()) + 3 * int(np.sum(kept)))
    scale2 = chi2 / dof if dof > 0 else 1.0
    sd = np.sqrt(np.clip(var[:n], 0.0, None) * scale2)
    return np.where(problem.usable, sd, np.nan)
