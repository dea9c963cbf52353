"""Optional external reconstruction backends behind :func:`rstem_core.recon.reconstruct`.

ASTRA (``pip install astra-toolbox``) runs slice by slice on the CPU with its "linear" (Joseph)
projector, whose matrix equals ours for the same angles (checked in the tests), so the two agree.
TomoPy is distributed through conda only; it is used when importable. Both handle per-frame angles
only: the time-lag (per-row) geometry needs the built-in torch engine.
"""

from __future__ import annotations

import numpy as np

from ..errors import RstemError
from ..progress import CancelToken, ProgressFn, no_progress
from .geometry import Geometry, undo_shifts


def available() -> dict[str, bool]:
    """Which optional backends can be imported here."""
    out = {}
    for name in ("astra", "tomopy"):
        try:
            __import__(name)
            out[name] = True
        except ImportError:
            out[name] = False
    return out


def astra_slices(
    frames: np.ndarray,
    angles_deg: np.ndarray,
    nz: int,
    *,
    algorithm: str = "sirt",
    iterations: int = 50,
    nonnegative: bool = True,
    filter_window: str = "ram-lak",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """ASTRA's CPU algorithms, one x-slice at a time: frames (n, rows, x) -> volume (nz, rows, x)."""
    try:
        import astra
    except ImportError:
        raise RstemError("the ASTRA backend needs astra-toolbox: pip install astra-toolbox") from None
    progress = progress or no_progress
    n, rows, cols = frames.shape
    vol_geom = astra.create_vol_geom(nz, rows)
    proj_geom = astra.create_proj_geom("parallel", 1.0, rows, np.deg2rad(np.asarray(angles_deg, float)))
    projector = astra.create_projector("linear", proj_geom, vol_geom)
    names = {"sirt": "SIRT", "cgls": "CGLS", "fbp": "FBP"}
    out = np.empty((nz, rows, cols), dtype=np.float32)
    try:
        for x in range(cols):
            if cancel is not None:
                cancel.check()
            sino_id = astra.data2d.create("-sino", proj_geom, np.ascontiguousarray(frames[:, :, x]))
            rec_id = astra.data2d.create("-vol", vol_geom, 0.0)
            cfg = astra.astra_dict(names[algorithm])
            cfg["ProjectorId"] = projector
            cfg["ProjectionDataId"] = sino_id
            cfg["ReconstructionDataId"] = rec_id
            if algorithm == "sirt" and nonnegative:
                cfg["option"] = {"MinConstraint": 0.0}
            if algorithm == "fbp":
                cfg["FilterType"] = filter_window
            alg = astra.algorithm.create(cfg)
            astra.algorithm.run(alg, 1 if algorithm == "fbp" else iterations)
            out[:, :, x] = astra.data2d.get(rec_id)
            astra.algorithm.delete(alg)
            astra.data2d.delete([sino_id, rec_id])
            progress((x + 1) / cols, f"ASTRA {names[algorithm]}: slice {x + 1}/{cols}")
    finally:
        astra.projector.delete(projector)
    return out


def tomopy_volume(
    frames: np.ndarray,
    angles_deg: np.ndarray,
    nz: int,
    *,
    algorithm: str = "sirt",
    iterations: int = 50,
) -> np.ndarray:
    """TomoPy's reconstruction of the slab, cut to ``nz`` voxels about the centre."""
    try:
        import tomopy
    except ImportError:
        raise RstemError("the TomoPy backend needs tomopy, which is installed with conda") from None
    n, rows, cols = frames.shape
    tomo = np.ascontiguousarray(frames.transpose(0, 2, 1))  # (angles, slices along the axis, detector)
    kwargs = {"algorithm": "fbp" if algorithm == "fbp" else algorithm}
    if algorithm != "fbp":
        kwargs["num_iter"] = iterations
    rec = tomopy.recon(tomo, np.deg2rad(np.asarray(angles_deg, float)), center=(rows - 1) / 2, **kwargs)
    # rec: (slices, rows, rows) square slices; take the central nz rows as z
    start = (rows - nz) // 2
    slab = rec[:, start : start + nz, :] if nz <= rows else np.pad(rec, ((0, 0), ((nz - rows) // 2,) * 2, (0, 0)))
    return np.ascontiguousarray(slab.transpose(1, 2, 0)[:nz], dtype=np.float32)


def reconstruct_external(
    frames: np.ndarray,
    geometry: Geometry,
    *,
    backend: str,
    algorithm: str,
    iterations: int,
    filter_window: str,
    nonnegative: bool,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> np.ndarray:
    """Run ``backend`` ("astra" or "tomopy") on a per-frame-angle geometry."""
    if geometry.per_row:
        raise RstemError(
            f"the {backend} backend cannot model per-row angles (time lag); use the built-in torch backend"
        )
    frames = undo_shifts(frames, geometry.shifts_px, "y")
    if backend == "astra":
        return astra_slices(
            frames, geometry.angles_deg, geometry.nz, algorithm=algorithm, iterations=iterations,
            nonnegative=nonnegative, filter_window=filter_window, progress=progress, cancel=cancel,
        )
    if backend == "tomopy":
        return tomopy_volume(frames, geometry.angles_deg, geometry.nz, algorithm=algorithm, iterations=iterations)
    raise RstemError(f"unknown backend {backend!r}")
