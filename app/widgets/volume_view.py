"""The VisPy volume canvas: one or two volumes in nm, centre points, axes and a scale bar.

Coordinates of the scene are nanometres with the origin at the volume centre (DESIGN.md), x
along the tilt axis; a volume array is (z, y, x) as everywhere in rstem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QVBoxLayout, QWidget
from vispy import scene
from vispy.visuals.transforms import STTransform

from .images import nice_length

METHODS = {"MIP": "mip", "Iso-surface": "iso", "Translucent": "translucent", "Slice plane": "plane"}
COLORMAPS = ("grays", "viridis", "hot", "fire", "ice", "cubehelix")
SECOND_COLORMAPS = ("reds", "greens", "blues", "orange")


def _normalised(data: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the 0.5 and 99.9 percentiles (display only)."""
    d = np.asarray(data, dtype=np.float32)
    lo, hi = np.percentile(d, [0.5, 99.9])
    return np.clip((d - lo) / max(float(hi - lo), 1e-12), 0, 1).astype(np.float32)


class VolumeView(QWidget):
    """A turntable view of a volume with optional second volume, points, axes and scale bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = scene.SceneCanvas(keys=None, bgcolor="black", app="pyside6", size=(640, 480))
        self.view = self.canvas.central_widget.add_view()
        self.view.camera = scene.TurntableCamera(fov=40, elevation=25, azimuth=30)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas.native)
        self.volume: scene.visuals.Volume | None = None
        self.second: scene.visuals.Volume | None = None
        self.points = scene.visuals.Markers(parent=self.view.scene)
        self.points.visible = False
        self.ref_points = scene.visuals.Markers(parent=self.view.scene)
        self.ref_points.visible = False
        self.axes = scene.visuals.XYZAxis(parent=self.view.scene)
        self.axis_labels = [scene.visuals.Text(t, color=c, font_size=10, parent=self.view.scene)
                            for t, c in (("x (tilt axis)", "red"), ("y", "lime"), ("z (beam)", "#4aa3ff"))]
        self.bar = scene.visuals.Line(color="white", width=3, parent=self.view.scene)
        self.bar_label = scene.visuals.Text("", color="white", font_size=10, parent=self.view.scene)
        for guide in (self.axes, *self.axis_labels, self.bar_label):  # drawn last, over the volume, never hidden
            guide.order = 10
            guide.set_gl_state("translucent", depth_test=False)
        self._method = "mip"
        self._threshold = 0.3
        self._cmap = "grays"
        self._extent_nm = np.ones(3)
        self._shape: tuple[int, int, int] = (1, 1, 1)

    # -- content ------------------------------------------------------------------------------
    def _place(self, visual: scene.visuals.Volume, shape: tuple[int, ...], voxel_nm: float) -> None:
        nz, ny, nx = shape
        visual.transform = STTransform(
            scale=(voxel_nm, voxel_nm, voxel_nm),
            translate=(-(nx - 1) / 2 * voxel_nm, -(ny - 1) / 2 * voxel_nm, -(nz - 1) / 2 * voxel_nm))

    def set_volume(self, data: np.ndarray, voxel_nm: float) -> None:
        """Show ``data`` (z, y, x) with voxels of ``voxel_nm`` (replaces the previous one)."""
        norm = _normalised(data)
        if self.volume is not None:
            self.volume.parent = None
        self.volume = scene.visuals.Volume(norm, parent=self.view.scene, method=self._method_name(),
                                           cmap=self._cmap, threshold=self._threshold,
                                           clim=(0.0, 1.0), raycasting_mode=self._mode())
        self._place(self.volume, norm.shape, voxel_nm)
        nz, ny, nx = norm.shape
        self._shape = (nz, ny, nx)
        self._extent_nm = np.array([nx, ny, nz], float) * voxel_nm
        self._decorate()
        self.apply_style()
        hx, hy, hz = self._extent_nm / 2
        self.view.camera.set_range(x=(-hx, hx), y=(-hy, hy), z=(-hz, hz))
        self.view.camera.scale_factor = float(self._extent_nm.max()) * 2.2

    def set_second(self, data: np.ndarray | None, voxel_nm: float = 1.0, cmap: str = "reds") -> None:
        """Superimpose a second volume (e.g. the slow tomogram) in another colour; None hides it."""
        if self.second is not None:
            self.second.parent = None
            self.second = None
        if data is None:
            self.canvas.update()
            return
        norm = _normalised(data)
        self.second = scene.visuals.Volume(norm, parent=self.view.scene, method="mip", cmap=cmap,
                                           clim=(0.0, 1.0))
        self.second.set_gl_state("additive", depth_test=False)
        self._place(self.second, norm.shape, voxel_nm)
        self.canvas.update()

    def set_points(self, xyz_nm: np.ndarray | None, reference_nm: np.ndarray | None = None,
                   size: float = 9.0) -> None:
        """Mark centres (n, 3: x, y, z in nm, origin at the volume centre) in yellow and their
        reference partners in cyan; None hides them."""
        for visual, pts, colour in ((self.points, xyz_nm, "yellow"), (self.ref_points, reference_nm, "cyan")):
            if pts is None or len(pts) == 0:
                visual.visible = False
                continue
            visual.set_data(np.asarray(pts, np.float32).reshape(-1, 3), face_color=colour,
                            edge_color="black", size=size)
            visual.visible = True
        self.canvas.update()

    def _decorate(self) -> None:
        half = self._extent_nm / 2
        arm = float(self._extent_nm.max()) * 0.25
        self.axes.transform = STTransform(scale=(arm, arm, arm), translate=(-half[0], -half[1], -half[2]))
        corner = -half
        for k, label in enumerate(self.axis_labels):
            pos = corner.copy()
            pos[k] += arm * 1.25
            label.pos = pos
        length = nice_length(float(self._extent_nm[0]))
        start = np.array([half[0] - length, -half[1] * 1.08, -half[2]])
        self.bar.set_data(np.array([start, start + [length, 0, 0]], np.float32))
        self.bar_label.text = f"{length:g} nm"
        self.bar_label.pos = start + [length / 2, -half[1] * 0.08, 0]

    # -- style --------------------------------------------------------------------------------
    def _method_name(self) -> str:
        return "mip" if self._method == "plane" else self._method

    def _mode(self) -> str:
        return "plane" if self._method == "plane" else "volume"

    def set_method(self, label: str) -> None:
        """One of :data:`METHODS` (keys or values)."""
        self._method = METHODS.get(label, label)
        self.apply_style()

    def set_colormap(self, name: str) -> None:
        self._cmap = name
        self.apply_style()

    def set_threshold(self, fraction: float) -> None:
        """Iso level, or the lower display limit in the other modes (fraction of the range)."""
        self._threshold = float(fraction)
        self.apply_style()

    def set_plane(self, normal: str, fraction: float) -> None:
        """Slice plane across ``normal`` ("x", "y" or "z") at ``fraction`` (0..1) of the depth."""
        if self.volume is None:
            return
        nz, ny, nx = self._shape
        sizes = [nx, ny, nz]
        axis = {"x": 0, "y": 1, "z": 2}[normal]
        position = [(n - 1) / 2 for n in sizes]
        position[axis] = fraction * (sizes[axis] - 1)
        direction = [0.0, 0.0, 0.0]
        direction[axis] = 1.0
        self.volume.plane_position = position  # vispy: data coordinates (x, y, z)
        self.volume.plane_normal = direction
        self.volume.plane_thickness = 1.0
        self.canvas.update()

    def apply_style(self) -> None:
        vol = self.volume
        if vol is None:
            return
        vol.raycasting_mode = self._mode()
        vol.method = self._method_name()
        vol.cmap = self._cmap
        if self._method_name() == "iso":
            vol.threshold = self._threshold
            vol.clim = (0.0, 1.0)
        else:
            vol.clim = (min(self._threshold, 0.95), 1.0)
        self.canvas.update()

    # -- output -------------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """The current image as shown, (rows, cols, 4) uint8 RGBA.

        A shown canvas is read from its own framebuffer (what the user sees); an off-screen
        render of the scene can differ from it on some OpenGL drivers (repeated copies of the
        volume were seen with Mesa llvmpipe), so it is only the fallback for a hidden canvas.
        """
        native = self.canvas.native
        if native.isVisible():
            image = native.grabFramebuffer()
            if not image.isNull():
                image = image.convertToFormat(QImage.Format.Format_RGBA8888)
                w, h = image.width(), image.height()
                raw = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
                return raw.reshape(h, image.bytesPerLine())[:, : 4 * w].reshape(h, w, 4).copy()
        return np.asarray(self.canvas.render(alpha=False))

    def save_png(self, path: str | Path) -> Path:
        """Write the current view to a PNG file."""
        import imageio.v3 as iio

        path = Path(path)
        iio.imwrite(path, self.render()[..., :3])
        return path

    def turntable_movie(self, path: str | Path, frames: int = 36) -> Path:
        """Rotate once about the vertical axis and write an animated GIF (or MP4 if supported)."""
        import imageio.v2 as iio2

        path = Path(path)
        cam = self.view.camera
        start = cam.azimuth
        images = []
        for k in range(frames):
            cam.azimuth = start + 360.0 * k / frames
            images.append(self.render()[..., :3])
        cam.azimuth = start
        self.canvas.update()
        iio2.mimsave(path, images, duration=0.08, loop=0)
        return path

    def close_canvas(self) -> None:
        """Release the GL context (before the application quits)."""
        self.canvas.close()
