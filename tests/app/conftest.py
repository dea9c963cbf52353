"""Fixtures of the GUI tests: one small demo project built once, copied for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 px, 7-frame synthetic project (built once per session)."""
    from rstem_core.simulate import SimulationConfig, write_demo_project

    path = tmp_path_factory.mktemp("demo") / "small.h5"
    config = SimulationConfig.scaled(size=64, frames=7, seed=0, areas_per_tilt=1, frames_per_area=2)
    return write_demo_project(path, config)


@pytest.fixture
def project_path(small_demo: Path, tmp_path: Path) -> Path:
    """A private copy of the small demo project."""
    target = tmp_path / "project.h5"
    shutil.copyfile(small_demo, target)
    return target


@pytest.fixture
def window(qtbot, project_path: Path, tmp_path: Path):  # noqa: ANN001, ANN201
    """The main window with the small demo project open (settings in a temporary file)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from rstem_app.errors import UNATTENDED_PROPERTY
    from rstem_app.main_window import MainWindow

    QApplication.instance().setProperty(UNATTENDED_PROPERTY, True)  # no modal dialogs in tests
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    win.show()
    assert win.open_project(project_path)
    yield win
    win.setProperty("force_close", True)
    win.close()
