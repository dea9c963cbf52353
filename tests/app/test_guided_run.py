"""A whole guided run through the window alone: new demo project, every step's page, export.

This is what ``rstem-gui --demo --screenshot DIR`` does (app/tour.py), at a tiny size.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from PySide6.QtGui import QImage

from rstem_core import pipeline
from rstem_core.project import Project

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_guided_run_from_new_demo_to_export(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from rstem_app.errors import UNATTENDED_PROPERTY
    from rstem_app.main_window import MainWindow
    from rstem_app.session import PAGE_KEYS
    from rstem_app.tour import ScreenshotTour

    QApplication.instance().setProperty(UNATTENDED_PROPERTY, True)
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.show()
    tour = ScreenshotTour(window, tmp_path / "shots", size=64, frames=9, quit_when_done=False)
    try:
        tour.start()
        qtbot.waitUntil(lambda: len(tour.saved) == len(PAGE_KEYS), timeout=300_000)
        # every step ran through its page and ended well; none is left stale by its own run
        assert tour.outcomes == {k: "done" for k in ("calibrate", "curate", "denoise", "refine", "reconstruct",
                                                      "evaluate")}
        # one non-blank picture per page
        expected = {f"{k + 1:02d}_{key}.png" for k, key in enumerate(PAGE_KEYS)}
        assert {p.name for p in tour.saved} == expected
        for path in tour.saved:
            image = QImage(str(path))
            assert image.width() >= 1000 and image.height() >= 600
        # the 3D page shows the volume: the canvas (right of the controls) is not a black field
        shot = QImage(str(tmp_path / "shots" / "07_view3d.png")).convertToFormat(QImage.Format.Format_RGB888)
        w, h = shot.width(), shot.height()
        pixels = np.frombuffer(shot.constBits(), np.uint8, shot.sizeInBytes())
        rgb = pixels.reshape(h, shot.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).astype(np.float32)
        canvas = rgb[int(0.15 * h): int(0.9 * h), int(0.45 * w): int(0.95 * w)]
        assert canvas.std() > 5.0
        # the project holds every step's result, none left stale by its own run
        project_file = Path(tour._tmp.name) / "demo.h5"
        with Project.open(project_file) as proj:
            states = {name: st.state for name, st in pipeline.step_states(proj).items()}
            assert states == dict.fromkeys(pipeline.STEP_NAMES, "done")
            volume = proj.read_volume("reconstruction/volume")
            assert "scores" in proj.attrs("processed/denoised")
        # the denoise page shows the paper's quality table, one row per stage tilt
        assert window.panels["denoise"].scores.rowCount() == 5
        # the refine page says in words when no feature was followed, instead of empty axes
        import pyqtgraph as pg
        from rstem_app.panels.refine_panel import KEY

        with Project.open(project_file) as proj:
            followed = int(proj.attrs(KEY).get("n_features", 0))
        notes = [i for i in window.panels["refine"].residuals.getPlotItem().items if isinstance(i, pg.TextItem)]
        if followed == 0:
            assert len(notes) == 1 and "No features were followed" in notes[0].textItem.toPlainText()
        else:
            assert notes == []
        # the exported volume is readable by other viewers, with its voxel size
        with mrcfile.open(Path(tour._tmp.name) / "demo_volume.mrc", permissive=True) as mrc:
            assert mrc.data.shape == volume.data.shape
            assert float(mrc.voxel_size.x) == pytest.approx(volume.voxel_size_nm * 10, rel=1e-3)
    finally:
        window.setProperty("force_close", True)
        window.close()
