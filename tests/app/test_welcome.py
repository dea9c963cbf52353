"""First run: with no project the window offers the demo, an import and an open; guide and About."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def bare_window(qtbot, tmp_path: Path):  # noqa: ANN001, ANN201
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from rstem_app.errors import UNATTENDED_PROPERTY
    from rstem_app.main_window import MainWindow

    QApplication.instance().setProperty(UNATTENDED_PROPERTY, True)
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    win.show()
    yield win
    win.setProperty("force_close", True)
    win.close()


def test_without_a_project_the_window_offers_three_ways_in_and_the_guide(bare_window, qtbot, project_path) -> None:  # noqa: ANN001
    w = bare_window
    assert w.front.currentWidget() is w.welcome
    texts = {k: b.text() for k, b in w.welcome.buttons.items()}
    assert texts == {"demo": "Open the demo project", "import": "Import a tilt series…", "open": "Open project…"}
    guide = w.welcome.guide.toPlainText()
    for step in ("Calibration", "Training set", "Denoise", "Tilt refinement", "Reconstruction", "3D view",
                 "Evaluate", "Export"):
        assert step in guide
    # opening a project shows the steps; a recent project is offered next time
    assert w.open_project(project_path)
    assert w.front.currentWidget() is w.steps_view
    w.session.close()
    w._on_project()
    assert w.front.currentWidget() is w.welcome
    assert w.welcome.recent_list.count() == 1 and project_path.name in w.welcome.recent_list.item(0).text()


def test_the_demo_button_builds_and_opens_the_demo(bare_window, qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import rstem_app.main_window as mw

    monkeypatch.setattr(mw, "demo_folder", lambda: tmp_path)
    w = bare_window
    with qtbot.waitSignal(w.demo_ready, timeout=120_000):
        w.new_demo(size=48, frames=5)
    assert w.front.currentWidget() is w.steps_view
    assert w.session.project is not None and "raw/rapid" in w.session.project


def test_about_lists_the_parts_with_versions_and_licences() -> None:
    from rstem_app.about import about_html

    page = about_html()
    for part in ("PySide6-Essentials", "torch", "vispy", "numpy", "LGPL-3.0", "BSD-3-Clause"):
        assert part in page
    assert "rstem 0." in page and "not installed</td><td>LGPL" not in page


def test_startup_time_is_reported_and_the_window_quits() -> None:
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "rstem_app.main", "--startup-time"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")})
    assert out.returncode == 0, out.stderr
    seconds = float(out.stdout.split("window shown after ")[1].split(" s")[0])
    assert 0 < seconds < 120
