"""The smooth model of the rapid scan's displacement field, fitted to window measurements.

``dx(r, c) = sum_k a[k] B_k(u) + sum_{j=1..q} P_j(v) sum_k b[j, k] C_k(u)`` with
``u = c / (cols - 1)``, ``v = r / (rows - 1)``, ``B_k`` uniform cubic B-splines along x (the
fast-scan direction, where the scan coils' hysteresis acts), ``P_j`` Legendre polynomials along y
and ``C_k`` a coarser spline (or a constant): the x displacement is a smooth function of x whose
offset and shape may drift slowly from the top to the bottom row. ``dy(r) = sum_k d[k] B_k(v)``
depends on the row only, or is zero: a constant, an exponential settling of the slow-scan coil
after the frame flyback ``exp(-v / tau)`` (with or without a constant), or a smooth spline.

The number of spline intervals along x, the y degree ``q`` of dx and the coarse spline, and the form
of dy are chosen by the Bayesian information criterion on the window measurements, so y-dependence
and a y component appear only where the data support them. Windows whose residual is an outlier are
rejected iteratively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre
from scipy.interpolate import BSpline

#: candidate spline intervals along x, y degrees of dx with the intervals of their x spline (0: a
#: constant), and dy forms (None: no y component, 0: a constant)
X_INTERVALS = (4, 6, 8, 12, 16)
Y_DEGREES = (0, 1, 2)
Y_X_INTERVALS = (0, 1, 2)
DY_FORMS: tuple[str | None, ...] = (
    None,
    "constant",
    "settle(0.02)",
    "settle(0.05)",
    "settle(0.1)",
    "constant+settle(0.05)",
    "spline(1)",
    "spline(2)",
    "spline(4)",
)
#: each term of a y component must be significant at this many standard deviations
SIGNIFICANCE_SIGMA = 3.0
#: a window is an outlier beyond this many robust standard deviations
OUTLIER_SIGMA = 4.0
#: weight of the third-difference penalty that keeps sparsely measured edges smooth
PENALTY = 1e-4


def _knots(intervals: int) -> np.ndarray:
    """Uniform cubic knot vector covering [0, 1] with ``intervals`` spans (3 extra on each side)."""
    h = 1.0 / intervals
    return np.linspace(-3 * h, 1 + 3 * h, intervals + 7)


def _bspline_basis(u: np.ndarray, intervals: int) -> np.ndarray:
    """Cubic B-spline design matrix, shape (len(u), intervals + 3)."""
    t = _knots(intervals)
    return BSpline.design_matrix(np.clip(u, 0.0, 1.0), t, 3, extrapolate=True).toarray()


def _legendre_basis(v: np.ndarray, degree: int) -> np.ndarray:
    """Legendre polynomials on [-1, 1] mapped from v in [0, 1], shape (len(v), degree + 1)."""
    return legendre.legvander(2.0 * v - 1.0, degree)


@dataclass(frozen=True, eq=False)
class SmoothField:
    """A fitted displacement model; see the module docstring.

    Attributes
    ----------
    shape : tuple of int
        Frame (rows, cols) the normalised coordinates refer to.
    x_intervals : int
        Cubic spline intervals along x of dx.
    y_degree : int
        Legendre degree along y of dx (0: dx depends on x only).
    y_x_intervals : int
        Intervals of the coarser x spline multiplying each Legendre term (0: a constant).
    x_coef : ndarray, shape (x_intervals + 3 + y_degree * n_coarse,)
        Coefficients: the x spline, then each Legendre degree's coarse spline.
    dy_form : str or None
        Form of dy along y (see ``DY_FORMS``; ``settle(tau)`` is ``exp(-v / tau)`` with ``v`` the
        row over the frame height), None when there is no y component.
    dy_coef : ndarray
        One coefficient per term of ``dy_form``.
    """

    shape: tuple[int, int]
    x_intervals: int
    y_degree: int
    y_x_intervals: int
    x_coef: np.ndarray
    dy_form: str | None
    dy_coef: np.ndarray

    def at(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dy, dx) in px at points (rows, cols) (same shapes, px)."""
        rows = np.asarray(rows, np.float64)
        cols = np.asarray(cols, np.float64)
        u, v = _normalised(rows.ravel(), cols.ravel(), self.shape)
        dx = _dx_design(u, v, self.x_intervals, self.y_degree, self.y_x_intervals) @ self.x_coef
        dy = _dy_design(v, self.dy_form) @ self.dy_coef
        return dy.reshape(rows.shape), dx.reshape(rows.shape)

    def evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        """(dy, dx) on the whole frame, each (rows, cols) float64 px."""
        rows, cols = self.shape
        u = np.arange(cols) / max(cols - 1, 1)
        v = np.arange(rows) / max(rows - 1, 1)
        nb = self.x_intervals + 3
        dx = np.repeat((_bspline_basis(u, self.x_intervals) @ self.x_coef[:nb])[None, :], rows, axis=0)
        if self.y_degree:
            coarse = _coarse_basis(u, self.y_x_intervals)
            nc = coarse.shape[1]
            py = _legendre_basis(v, self.y_degree)
            for j in range(1, self.y_degree + 1):
                part = coarse @ self.x_coef[nb + (j - 1) * nc : nb + j * nc]
                dx += py[:, j : j + 1] * part[None, :]
        dy = np.repeat((_dy_design(v, self.dy_form) @ self.dy_coef)[:, None], cols, axis=1)
        return dy, dx

    def describe(self) -> dict:
        """JSON-ready description (enough to rebuild the model)."""
        return {
            "kind": "bspline-x legendre-y",
            "shape": list(self.shape),
            "x_intervals": self.x_intervals,
            "y_degree": self.y_degree,
            "y_x_intervals": self.y_x_intervals,
            "x_coef": self.x_coef.tolist(),
            "dy_form": self.dy_form,
            "dy_coef": self.dy_coef.tolist(),
        }


def _normalised(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return cols / max(shape[1] - 1, 1), rows / max(shape[0] - 1, 1)


def _coarse_basis(u: np.ndarray, intervals: int) -> np.ndarray:
    return np.ones((len(u), 1)) if intervals == 0 else _bspline_basis(u, intervals)


def _dx_design(u: np.ndarray, v: np.ndarray, intervals: int, degree: int, coarse: int) -> np.ndarray:
    parts = [_bspline_basis(u, intervals)]
    if degree:
        cb = _coarse_basis(u, coarse)
        py = _legendre_basis(v, degree)
        parts += [py[:, j : j + 1] * cb for j in range(1, degree + 1)]
    return np.concatenate(parts, axis=1)


def _dy_design(v: np.ndarray, form: str | None) -> np.ndarray:
    """Design matrix of a dy form (see ``DY_FORMS``), one column per term."""
    columns: list[np.ndarray] = []
    for term in (form or "").split("+"):
        if not term:
            continue
        name, _, arg = term.partition("(")
        value = float(arg.rstrip(")")) if arg else 0.0
        if name == "constant":
            columns.append(np.ones((len(v), 1)))
        elif name == "settle":
            columns.append(np.exp(-v / value)[:, None])
        elif name == "spline":
            columns.append(_bspline_basis(v, int(value)))
        else:
            raise ValueError(f"unknown dy term {term!r}")
    return np.concatenate(columns, axis=1) if columns else np.zeros((len(v), 0))


def _penalty(*blocks: int) -> np.ndarray:
    """Block-diagonal third-difference penalty along each spline's coefficients."""
    size = sum(blocks)
    out = np.zeros((size, size))
    start = 0
    for n in blocks:
        if n >= 4:
            d = np.diff(np.eye(n), 3, axis=0)
            out[start : start + n, start : start + n] = d.T @ d
        start += n
    return out


def _solve(design: np.ndarray, target: np.ndarray, weight: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted, lightly penalised least squares; returns coefficients and weighted RSS."""
    aw = design * weight[:, None]
    normal = design.T @ aw
    scale = np.trace(normal) / max(normal.shape[0], 1)
    coef = np.linalg.lstsq(normal + PENALTY * scale * penalty, aw.T @ target, rcond=None)[0]
    resid = target - design @ coef
    return coef, float(np.sum(weight * resid**2))


def _criterion(rss: float, n: int, p: int, overlap: float, kind: str) -> float:
    """AIC, BIC or a significance penalty with ``n / overlap`` effective (independent) measurements."""
    n_eff = max(n / overlap, p + 1.0)
    penalty = {"aic": 2.0, "bic": np.log(n_eff), "significance": SIGNIFICANCE_SIGMA**2}[kind]
    return n_eff * np.log(max(rss, 1e-300) / n) + p * penalty


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted field and how well it fits.

    Attributes
    ----------
    field : SmoothField
    inliers : ndarray of bool, shape (n,)
        Windows used in the final fit.
    residual_px : ndarray, shape (n, 2)
        (dy, dx) measurement minus model at every window centre, px.
    rms_px : float
        RMS of the inliers' residual length, px.
    """

    field: SmoothField
    inliers: np.ndarray
    residual_px: np.ndarray
    rms_px: float


def fit_smooth_field(
    centres: np.ndarray,
    displacement: np.ndarray,
    std: np.ndarray,
    usable: np.ndarray,
    shape: tuple[int, int],
    *,
    overlap: float = 1.0,
    rounds: int = 4,
) -> FitResult:
    """Fit the smooth model to window displacements with model selection and outlier rejection.

    Parameters
    ----------
    centres : ndarray, shape (n, 2)
        Window centres (row, col), px.
    displacement : ndarray, shape (n, 2)
        Measured (dy, dx) at each centre, px.
    std : ndarray, shape (n, 2)
        Standard errors of (dy, dx), px.
    usable : ndarray of bool, shape (n,)
        Windows that passed the quality checks.
    shape : tuple of int
        Frame (rows, cols).
    overlap : float
        How many windows share each pixel on average (their measurements are correlated).
    rounds : int
        Rounds of outlier rejection.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        Fewer usable windows than the smallest model has parameters.
    """
    u, v = _normalised(centres[:, 0], centres[:, 1], shape)
    inliers = usable & np.all(np.isfinite(std), axis=1) & np.all(std > 0, axis=1)
    n_cols = len(np.unique(centres[inliers, 1])) if inliers.any() else 0
    n_rows = len(np.unique(centres[inliers, 0])) if inliers.any() else 0
    if inliers.sum() < 8 or n_cols < 4:
        raise ValueError(f"only {int(inliers.sum())} usable windows in {n_cols} columns")
    field = None
    for _ in range(rounds):
        field = _select(u[inliers], v[inliers], displacement[inliers], std[inliers], shape, overlap, n_cols, n_rows)
        pred = np.stack(field.at(centres[:, 0], centres[:, 1]), axis=1)
        z = (displacement - pred) / std
        zi = z[inliers]
        scale = 1.4826 * np.median(np.abs(zi), axis=0)
        scale = np.maximum(scale, 1e-12)
        new = usable & np.all(np.isfinite(z), axis=1) & np.all(np.abs(z) <= OUTLIER_SIGMA * scale, axis=1)
        if np.array_equal(new, inliers) or new.sum() < 8:
            break
        inliers = new
    assert field is not None
    pred = np.stack(field.at(centres[:, 0], centres[:, 1]), axis=1)
    residual = displacement - pred
    rms = float(np.sqrt(np.mean(np.sum(residual[inliers] ** 2, axis=1)))) if inliers.any() else float("inf")
    return FitResult(field, inliers, residual, rms)


def _select(
    u: np.ndarray,
    v: np.ndarray,
    disp: np.ndarray,
    std: np.ndarray,
    shape: tuple[int, int],
    overlap: float,
    n_cols: int,
    n_rows: int,
) -> SmoothField:
    """Choose and fit the dx and dy parts by BIC (they are independent given the measurements)."""
    n = len(u)
    wx = 1.0 / std[:, 1] ** 2
    best = None
    candidates = [(k, 0, 0) for k in X_INTERVALS] + [
        (k, q, m) for k in X_INTERVALS for q in Y_DEGREES[1:] for m in Y_X_INTERVALS
    ]
    for intervals, degree, coarse in candidates:
        if intervals + 3 > n_cols + 1 or degree + 1 > max(n_rows - 1, 1) or coarse + 3 > intervals + 3:
            continue
        design = _dx_design(u, v, intervals, degree, coarse)
        p = design.shape[1]
        if p >= n:
            continue
        nc = 1 if coarse == 0 else coarse + 3
        coef, rss = _solve(design, disp[:, 1], wx, _penalty(intervals + 3, *([nc] * degree)))
        score = _criterion(rss, n, p, overlap, "aic")
        if best is None or score < best[0]:
            best = (score, intervals, degree, coarse, coef)
    if best is None:
        intervals = X_INTERVALS[0]
        coef, _ = _solve(_dx_design(u, v, intervals, 0, 0), disp[:, 1], wx, _penalty(intervals + 3))
        best = (0.0, intervals, 0, 0, coef)
    _, x_intervals, y_degree, y_x_intervals, x_coef = best

    # a y component only where it is significant: each of its terms must lower the criterion by
    # the square of SIGNIFICANCE_SIGMA (the rapid scan's row streaks make dy errors correlated)
    wy = 1.0 / std[:, 0] ** 2
    best_y = None
    for form in DY_FORMS:
        design = _dy_design(v, form)
        if form is not None and form.startswith("spline") and design.shape[1] > n_rows + 1:
            continue
        p = design.shape[1]
        if p >= n:
            continue
        if p == 0:
            coef, rss = np.zeros(0), float(np.sum(wy * disp[:, 0] ** 2))
        else:
            coef, rss = _solve(design, disp[:, 0], wy, _penalty(p))
        score = _criterion(rss, n, p, overlap, "significance")
        if best_y is None or score < best_y[0]:
            best_y = (score, form, coef)
    assert best_y is not None
    return SmoothField(
        (int(shape[0]), int(shape[1])),
        int(x_intervals),
        int(y_degree),
        int(y_x_intervals),
        x_coef,
        best_y[1],
        best_y[2],
    )
