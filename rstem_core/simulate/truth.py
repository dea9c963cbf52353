"""Writers of the ``/truth`` group of a synthetic project (layout documented in :mod:`.demo`)."""

from __future__ import annotations

import numpy as np

from ..project import ProjectWriter
from .experiment import Experiment
from .series import rapid_chain
from .training import TrainingArea

#: compression of the large truth arrays
COMPRESSION = "lzf"

DISTORTION_DEFINITION = (
    "distortion_x_px[r, c] = specimen x position (undistorted slow-scan px) imaged at rapid pixel (r, c) "
    "minus c; distortion_y_px likewise for y; rapid(r, c) = undistorted(r + dy[r, c], c + dx[r, c])"
)
DRIFT_DEFINITION = "image displacement (dy, dx) px of the specimen content: a feature expected at (r, c) is seen at (r + dy, c + dx)"


def _polylines(points: list[np.ndarray]) -> list[list[list[float]]]:
    return [np.round(p, 2).tolist() for p in points]


def write_truth(w: ProjectWriter, exp: Experiment) -> None:
    """Write everything in ``/truth`` except the training areas.

    Parameters
    ----------
    w : ProjectWriter
        Open transaction.
    exp : Experiment
    """
    cfg = exp.config
    rt, st, gt = exp.rapid_truth, exp.slow_truth, exp.grating_truth
    inside = exp.lines_in_volume()
    lines = [d for d, ok in zip(exp.specimen.dislocations, inside, strict=True) if ok]
    others = [d for d, ok in zip(exp.specimen.dislocations, inside, strict=True) if not ok]
    chain = rapid_chain(cfg)
    delay = float(np.sum(np.arange(len(chain.kernel)) * chain.kernel))
    w.set_attrs(
        "truth",
        {
            "thickness_nm": cfg.thickness_nm,
            "pixel_size_nm": cfg.pixel_size_nm,
            "voxel_size_nm": cfg.pixel_size_nm,
            "field_nm": cfg.field_nm,
            "seed": cfg.seed,
            "config": cfg.to_dict(),
            "rapid_adu_per_unit": rt.adu_per_unit,
            "slow_adu_per_unit": st.adu_per_unit,
            "grating_rapid_adu_per_unit": gt.rapid_adu_per_unit,
            "grating_slow_adu_per_unit": gt.slow_adu_per_unit,
            "rapid_noise_variance_factor": chain.noise_variance_factor,
            "afterglow_delay_px": delay,
            "matched_tolerance": cfg.matched_tolerance,
            "distortion_definition": DISTORTION_DEFINITION,
            "drift_definition": DRIFT_DEFINITION,
            "crystal_rotation_deg": exp.specimen.crystal_rotation_deg,
            "wedge": list(exp.specimen.wedge),
        },
    )
    w.set_params("truth", cfg)
    w.write_json("truth/lines", _polylines([d.points_nm for d in lines]))
    w.write_json("truth/line_info", [d.info() for d in lines])
    w.write_json("truth/surrounding_lines", _polylines([d.points_nm for d in others]))
    w.write_array(
        "truth/density",
        exp.density,
        compression=COMPRESSION,
        attrs={"voxel_size_nm": cfg.pixel_size_nm, "axes": "z, y, x; origin at the volume centre"},
    )

    w.write_array(
        "truth/rapid_angles_deg",
        rt.angles_deg,
        attrs={"unit": "deg", "meaning": "true angle at frame mid-time"},
    )
    w.write_array("truth/rapid_nominal_angles_deg", rt.nominal_angles_deg, attrs={"unit": "deg"})
    w.write_array("truth/rapid_row_angles_deg", rt.row_angles_deg, attrs={"unit": "deg"})
    w.write_array("truth/rapid_row_times_s", rt.row_times_s, attrs={"unit": "s"})
    w.write_array(
        "truth/rapid_angle_curve",
        np.stack([rt.curve.times_s, rt.curve.angles_deg], axis=1),
        attrs={"columns": "time_s, angle_deg"},
    )
    w.write_array(
        "truth/rapid_drift_px",
        rt.drift_px,
        attrs={"columns": "dy, dx", "meaning": DRIFT_DEFINITION},
    )
    w.write_array("truth/rapid_row_drift_px", rt.row_drift_px, attrs={"columns": "dy, dx"})
    w.write_array(
        "truth/rapid_line_jitter_px",
        rt.line_jitter_px,
        attrs={"unit": "px, added to distortion_x_px"},
    )
    w.write_array(
        "truth/rapid_clean",
        rt.clean,
        compression=COMPRESSION,
        attrs={
            "adu_per_unit": rt.adu_per_unit,
            "geometry": "rapid (distorted, time-lagged, afterglow)",
        },
    )
    w.write_array(
        "truth/rapid_clean_undistorted",
        rt.clean_undistorted,
        compression=COMPRESSION,
        attrs={"geometry": "undistorted, time-lagged, drifted; before afterglow"},
    )

    w.write_array("truth/slow_angles_deg", st.angles_deg, attrs={"unit": "deg"})
    w.write_array(
        "truth/slow_drift_px", st.drift_px, attrs={"columns": "dy, dx", "meaning": DRIFT_DEFINITION}
    )
    w.write_array(
        "truth/slow_clean",
        st.clean,
        compression=COMPRESSION,
        attrs={"adu_per_unit": st.adu_per_unit},
    )

    w.write_array(
        "truth/distortion_x_px", exp.distortion.dx_px, attrs={"definition": DISTORTION_DEFINITION}
    )
    w.write_array(
        "truth/distortion_y_px", exp.distortion.dy_px, attrs={"definition": DISTORTION_DEFINITION}
    )

    w.write_array(
        "truth/afterglow_kernel",
        chain.kernel,
        attrs={
            "meaning": "causal detector response along +x of rapid frames: y[c] = sum_m h[m] x[c - m]",
            "delay_px": delay,
            "note": "image-based calibration sees features delayed by up to delay_px, i.e. measures about "
            "distortion_x_px - delay_px for broad features",
        },
    )

    g = gt.grating
    w.write_array("truth/grating_clean", gt.clean, attrs={"adu_per_unit": gt.slow_adu_per_unit})
    w.write_array(
        "truth/grating_rapid_clean", gt.rapid_clean, attrs={"adu_per_unit": gt.rapid_adu_per_unit}
    )
    w.write_json(
        "truth/grating",
        {
            "period_nm": g.period_nm,
            "angle_deg": float(np.degrees(g.angle_rad)),
            "duty": g.duty,
            "n_particles": int(len(g.radius_nm)),
        },
    )


def write_training_truth(w: ProjectWriter, area: TrainingArea) -> None:
    """Write ``/truth/training/area_NNN``: clean image, thickness, drift."""
    key = f"truth/training/area_{area.plan.index:03d}"
    w.write_array(
        f"{key}/clean",
        area.clean,
        compression=COMPRESSION,
        attrs={"adu_per_unit": area.adu_per_unit},
    )
    w.write_array(f"{key}/thickness_nm", np.float64(area.plan.thickness_nm), attrs={"unit": "nm"})
    w.write_array(
        f"{key}/drift_px", area.drift_px, attrs={"columns": "dy, dx", "meaning": DRIFT_DEFINITION}
    )
    w.set_attrs(
        key,
        {
            "stage_tilt_deg": area.plan.stage_tilt_deg,
            "thickness_nm": area.plan.thickness_nm,
            "matched": bool(area.plan.matched),
            "adu_per_unit": area.adu_per_unit,
        },
    )
