"""The distortion map of the rapid scan: the displacement field, its correction and its files.

Definition (the same as the synthetic experiment's truth)::

    rapid(r, c) = undistorted(r + dy_px[r, c], c + dx_px[r, c])

so ``dx_px[r, c]`` is how far (in undistorted, slow-scan pixels) the specimen point imaged at rapid
pixel (r, c) lies to the right of column c. Correcting a rapid frame samples it, for every pixel q
of the undistorted grid, at the rapid pixel p with ``p + d(p) = q`` (the inverse map, found by a
fixed-point iteration; it converges because the field's gradient is far below one).

The map is a property of the scan system at one frame size, pixel size and dwell time, not of the
specimen, so it is kept in a standalone HDF5 file (a calibration library) and loaded into other
projects: datasets ``dx_px``, ``dy_px`` and the window table, attributes with JSON text. No pickles.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from scipy import ndimage

from ..errors import FileFormatError, RstemError
from ..progress import CancelToken, ProgressFn, no_progress

#: ``attrs['format']`` of a standalone distortion-map file
FILE_FORMAT = "rstem-distortion-map"
FILE_VERSION = 1
#: window datasets stored with a map (name: meaning)
WINDOW_FIELDS = {
    "window_centres_px": "(row, col) of each window centre, px",
    "window_displacement_px": "measured (dy, dx) displacement at each window centre, px",
    "window_std_px": "standard error of (dy, dx), px",
    "window_quality": "correlation coefficient of rapid and matched slow window (0..1)",
    "window_valid": "1 where the window was used in the final fit",
    "window_residual_px": "measured minus fitted (dy, dx), px",
}


@dataclass(frozen=True, eq=False)
class DistortionMap:
    """The rapid scan's displacement field and how it was obtained.

    Attributes
    ----------
    dy_px, dx_px : ndarray, shape (rows, cols), float64
        Displacement field, undistorted px (see the module docstring for the definition).
    pixel_size_nm : float or None
        Pixel size of the frames it was measured on, nm.
    windows : dict of ndarray
        Per-window table (keys ``WINDOW_FIELDS``); empty for a map built from arrays.
    model : dict
        JSON description of the fitted smooth model.
    quality : dict
        Numbers describing the calibration (residual RMS, valid windows, grating period, ...).
    metadata : dict
        Acquisition the map belongs to (frame shape, dwell and line time, source).
    """

    dy_px: np.ndarray
    dx_px: np.ndarray
    pixel_size_nm: float | None = None
    windows: dict[str, np.ndarray] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dy = np.asarray(self.dy_px, np.float64)
        dx = np.asarray(self.dx_px, np.float64)
        if dx.ndim != 2 or dy.shape != dx.shape:
            raise ValueError(f"dy_px and dx_px must be two (rows, cols) arrays of one shape, got {dy.shape} and {dx.shape}")
        if not (np.all(np.isfinite(dx)) and np.all(np.isfinite(dy))):
            raise ValueError("the distortion map holds NaN or infinite values")
        object.__setattr__(self, "dy_px", dy)
        object.__setattr__(self, "dx_px", dx)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.dx_px.shape[0]), int(self.dx_px.shape[1]))

    # -- applying -------------------------------------------------------------------------
    def correction_coordinates(
        self, shift_px: tuple[float, float] = (0.0, 0.0), *, iterations: int = 30
    ) -> np.ndarray:
        """Where each pixel of the corrected (undistorted) grid lies in the rapid frame.

        Parameters
        ----------
        shift_px : (dy, dx)
            An extra image shift of the corrected frame, px (a later alignment can be folded into
            the same resampling: the corrected frame shows the undistorted image moved by it).
        iterations : int
            Most fixed-point iterations of the inverse.

        Returns
        -------
        ndarray, shape (2, rows, cols)
            (row, col) coordinates in the rapid frame, for :func:`scipy.ndimage.map_coordinates`.
        """
        rows, cols = self.shape
        qr = np.arange(rows, dtype=np.float64)[:, None] - shift_px[0]
        qc = np.arange(cols, dtype=np.float64)[None, :] - shift_px[1]
        qr = np.broadcast_to(qr, (rows, cols))
        qc = np.broadcast_to(qc, (rows, cols))
        pr, pc = qr.copy(), qc.copy()
        for _ in range(iterations):
            dy = ndimage.map_coordinates(self.dy_px, [pr, pc], order=1, mode="nearest")
            dx = ndimage.map_coordinates(self.dx_px, [pr, pc], order=1, mode="nearest")
            nr, nc = qr - dy, qc - dx
            change = max(float(np.max(np.abs(nr - pr))), float(np.max(np.abs(nc - pc))))
            pr, pc = nr, nc
            if change < 1e-6:
                break
        return np.stack([pr, pc])

    def coverage(self) -> np.ndarray:
        """Where the corrected grid is covered by the rapid frame (bool, (rows, cols))."""
        rows, cols = self.shape
        pr, pc = self.correction_coordinates()
        return (pr >= -0.5) & (pr <= rows - 0.5) & (pc >= -0.5) & (pc <= cols - 0.5)

    def correct(
        self,
        frames: np.ndarray,
        *,
        order: int = 3,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> np.ndarray:
        """Undo the distortion of rapid frames (one resampling per frame).

        Parameters
        ----------
        frames : ndarray, shape (n, rows, cols) or (rows, cols)
            Rapid frames of the map's shape.
        order : int
            Spline order of :func:`scipy.ndimage.map_coordinates` (1 linear, 3 cubic). Cubic keeps
            the noise texture closer to the original; linear never overshoots.
        progress, cancel
            Progress callback and cancel token (checked before every frame).

        Returns
        -------
        ndarray, same shape, float32
            Frames on the undistorted (slow-scan) grid; pixels the rapid scan did not cover take
            the nearest edge value.

        Raises
        ------
        ValueError
            The frames' shape differs from the map's, or they hold NaN / infinite values.
        """
        progress = progress or no_progress
        stack = np.asarray(frames, np.float32)
        single = stack.ndim == 2
        if single:
            stack = stack[None]
        if stack.ndim != 3 or stack.shape[1:] != self.shape:
            raise ValueError(
                f"the distortion map is {self.shape[0]}x{self.shape[1]} px but the frames are "
                f"{'x'.join(str(s) for s in stack.shape[-2:])} px"
            )
        if order not in (0, 1, 3, 5):
            raise ValueError(f"order must be 0, 1, 3 or 5, got {order}")
        bad = ~np.isfinite(stack)
        if bad.any():
            raise ValueError(f"the frames hold {int(bad.sum())} NaN or infinite values")
        coords = self.correction_coordinates()
        out = np.empty_like(stack)
        for i, frame in enumerate(stack):
            if cancel is not None:
                cancel.check()
            out[i] = ndimage.map_coordinates(frame, coords, order=order, mode="nearest")
            progress((i + 1) / len(stack), f"corrected frame {i + 1}/{len(stack)}")
        return out[0] if single else out

    # -- files ----------------------------------------------------------------------------
    def write_group(self, group: h5py.Group) -> None:
        """Write the map into an (empty) HDF5 group: datasets and JSON attributes."""
        group.create_dataset("dx_px", data=self.dx_px)
        group.create_dataset("dy_px", data=self.dy_px)
        for name, values in self.windows.items():
            group.create_dataset(name, data=values)
            group[name].attrs["meaning"] = WINDOW_FIELDS.get(name, "")
        group.attrs["kind"] = "distortion_map"
        group.attrs["definition"] = "rapid(r, c) = undistorted(r + dy_px[r, c], c + dx_px[r, c])"
        group.attrs["pixel_size_nm"] = float(self.pixel_size_nm) if self.pixel_size_nm else 0.0
        group.attrs["model"] = json.dumps(self.model)
        group.attrs["quality"] = json.dumps(self.quality)
        group.attrs["metadata"] = json.dumps(self.metadata)
        for key, value in self.quality.items():
            if isinstance(value, (int, float, str, bool)):
                group.attrs[key] = value

    @classmethod
    def read_group(cls, group: h5py.Group) -> DistortionMap:
        """Read a map written by :meth:`write_group`."""
        for name in ("dx_px", "dy_px"):
            if name not in group:
                raise FileFormatError(f"{group.file.filename}: {group.name} has no {name} dataset")
        attrs = group.attrs
        pixel = float(attrs.get("pixel_size_nm", 0.0)) or None
        return cls(
            dy_px=group["dy_px"][()],
            dx_px=group["dx_px"][()],
            pixel_size_nm=pixel,
            windows={k: group[k][()] for k in WINDOW_FIELDS if k in group},
            model=_json_attr(attrs, "model"),
            quality=_json_attr(attrs, "quality"),
            metadata=_json_attr(attrs, "metadata"),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the map to a standalone HDF5 file (atomically: a temporary file renamed over it).

        Returns
        -------
        Path
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise RstemError(f"{path.parent}: no such folder for the distortion map file")
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with h5py.File(tmp, "w") as h5:
                h5.attrs["format"] = FILE_FORMAT
                h5.attrs["version"] = FILE_VERSION
                self.write_group(h5.create_group("distortion_map"))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> DistortionMap:
        """Read a map file written by :meth:`save`.

        Raises
        ------
        FileFormatError
            The file is missing, not HDF5, or not a distortion map of a version this reads.
        """
        path = Path(path)
        if not path.is_file():
            raise FileFormatError(f"{path}: no such distortion map file")
        try:
            h5 = h5py.File(path, "r")
        except OSError:
            raise FileFormatError(f"{path}: not an HDF5 distortion map file") from None
        with h5:
            if h5.attrs.get("format") != FILE_FORMAT or "distortion_map" not in h5:
                raise FileFormatError(f"{path}: not a distortion map file (written by `rstem calibrate --save-map`)")
            version = int(h5.attrs.get("version", 0))
            if version > FILE_VERSION:
                raise FileFormatError(f"{path}: distortion map version {version} is newer than this rstem reads ({FILE_VERSION})")
            try:
                return cls.read_group(h5["distortion_map"])
            except ValueError as exc:
                raise FileFormatError(f"{path}: {exc}") from None


def _json_attr(attrs: h5py.AttributeManager, name: str) -> dict[str, Any]:
    raw = attrs.get(name)
    if raw is None:
        return {}
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
