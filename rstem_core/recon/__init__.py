"""Tomographic reconstruction: one door for every algorithm and backend.

>>> volume = reconstruct(frames, geometry, algorithm="sirt", iterations=50)   # doctest: +SKIP

``frames`` is a (frames, rows, x) tilt series (after pre-processing), ``geometry`` a
:class:`Geometry` (per-frame or per-row angles, shifts, z extent); the result is a (z, y, x)
float32 volume whose voxel equals the frame pixel and whose centre lies on the tilt axis.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..progress import CancelToken, ProgressFn, no_progress, sub_progress
from .algorithms import FILTERS, cgls, fbp, sirt
from .geometry import Geometry, row_angles_from_curve, row_times_s, slab_pad_rows, undo_shifts
from .projector import Projector

ALGORITHMS = ("sirt", "fbp", "cgls")
BACKENDS = ("torch", "astra", "tomopy")

__all__ = [
    "ALGORITHMS",
    "BACKENDS",
    "FILTERS",
    "Geometry",
    "Projector",
    "reconstruct",
    "row_angles_from_curve",
    "row_times_s",
    "slab_pad_rows",
]


def _check_frames(frames: np.ndarray, geometry: Geometry) -> np.ndarray:
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        raise ValueError(f"frames must be a (frames, rows, x) stack, got {frames.ndim} dimensions")
    expected = (geometry.n_frames, geometry.n_rows, geometry.n_cols)
    if frames.shape != expected:
        raise ValueError(
            f"the tilt series has {frames.shape[0]} frames of {frames.shape[1]}x{frames.shape[2]} px but the "
            f"geometry expects {expected[0]} angles for {expected[1]}x{expected[2]} px frames"
        )
    bad = ~np.isfinite(frames)
    if bad.any():
        frame = int(np.flatnonzero(bad.any(axis=(1, 2)))[0])
        raise ValueError(f"the tilt series holds {int(bad.sum())} NaN or infinite values (first in frame {frame})")
    return frames


def reconstruct(
    frames: np.ndarray,
    geometry: Geometry,
    *,
    algorithm: str = "sirt",
    iterations: int = 50,
    relaxation: float = 1.0,
    nonnegative: bool = True,
    filter_window: str = "ram-lak",
    backend: str = "torch",
    device: str = "auto",
    max_slices_per_batch: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    preview: Callable[[int, int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Reconstruct a volume from a tilt series.

    Parameters
    ----------
    frames : ndarray, shape (frames, rows, x)
        The pre-processed tilt series; x is the tilt axis.
    geometry : Geometry
        Angles (per frame or per row), shifts, the z extent ``nz`` and the rows of padding
        (reconstructed, then cut off).
    algorithm : {"sirt", "fbp", "cgls"}
    iterations : int
        SIRT / CGLS iterations (default 50, as in the paper).
    relaxation : float
        SIRT relaxation factor in (0, 2).
    nonnegative : bool
        SIRT: clip negative voxels after each iteration.
    filter_window : str
        FBP ramp-filter window, one of :data:`FILTERS`.
    backend : {"torch", "astra", "tomopy"}
        ``torch`` (built in, CPU or CUDA); ``astra`` and ``tomopy`` when installed (per-frame angles only).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    max_slices_per_batch : int, optional
        Bound the x-slices reconstructed together (memory); all at once by default.
    preview : callable, optional
        ``preview(iteration, iterations, section)`` after every SIRT/CGLS iteration (built-in
        backend, all x-slices in one batch): ``section`` is the current x-z cross-section at the
        central row, (nz, x) float32, for a live view while the volume converges.

    Returns
    -------
    ndarray, shape (nz, rows, x), float32

    Raises
    ------
    ValueError
        Frame count and angles disagree, NaNs in the frames, unknown algorithm or backend.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    frames = _check_frames(frames, geometry)
    progress = progress or no_progress
    frames = undo_shifts(frames, geometry.shifts_px, "x")
    if backend != "torch":
        from . import backends

        return backends.reconstruct_external(
            frames, geometry, backend=backend, algorithm=algorithm, iterations=iterations,
            filter_window=filter_window, nonnegative=nonnegative, progress=progress, cancel=cancel,
        )
    progress(0.0, "building the projector")
    projector = Projector(geometry, device=device)
    if cancel is not None:
        cancel.check()
    n_cols = geometry.n_cols
    batch = n_cols if max_slices_per_batch is None else max(1, int(max_slices_per_batch))
    sino_all = frames.reshape(geometry.n_frames * geometry.n_rows, n_cols)
    rows, pad = geometry.volume_rows, geometry.pad_rows
    volume = np.empty((geometry.nz, geometry.n_rows, n_cols), dtype=np.float32)
    starts = list(range(0, n_cols, batch))
    for b, start in enumerate(starts):
        stop = min(start + batch, n_cols)
        part = sub_progress(progress, 0.02 + 0.98 * b / len(starts), 0.02 + 0.98 * (b + 1) / len(starts))
        sino = torch.as_tensor(np.ascontiguousarray(sino_all[:, start:stop]), device=projector.device)
        watch = None
        if preview is not None and len(starts) == 1:
            def watch(k: int, x: torch.Tensor) -> None:
                section = x.view(geometry.nz, rows, -1)[:, rows // 2, :]
                preview(k, iterations, section.detach().cpu().numpy().astype(np.float32, copy=True))
        if algorithm == "sirt":
            x = sirt(projector, sino, iterations=iterations, relaxation=relaxation, nonnegative=nonnegative,
                     progress=part, cancel=cancel, on_iteration=watch)
        elif algorithm == "cgls":
            x = cgls(projector, sino, iterations=iterations, progress=part, cancel=cancel, on_iteration=watch)
        else:
            x = fbp(projector, sino, window=filter_window, progress=part, cancel=cancel)
        x = x.view(geometry.nz, rows, stop - start)[:, pad : pad + geometry.n_rows]
        volume[:, :, start:stop] = x.cpu().numpy()
    progress(1.0, f"{algorithm.upper()} done")
    return volume
