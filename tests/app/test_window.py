"""The main window on a small demo project: states, running, cancelling, the event loop."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from rstem_core import pipeline

pytestmark = pytest.mark.gui

RUN_TIMEOUT_MS = 60_000


def _quick_reconstruction(window) -> None:  # noqa: ANN001
    panel = window.panels["reconstruct"]
    panel.forms["reconstruct"].editor("iterations").setValue(3)
    panel.forms["reconstruct"].editor("binning").setValue(2)


def test_window_shows_every_page_and_the_step_states(window) -> None:  # noqa: ANN001
    from rstem_app.session import PAGE_KEYS

    assert window.step_list.count() == len(PAGE_KEYS) == 9
    texts = [window.step_list.item(r).text() for r in range(9)]
    assert texts[0].startswith("1  Project") and "done" in texts[0]
    assert "not run" in texts[1] and "next" in texts[1]  # calibration is recommended next
    for row in range(9):
        window.step_list.setCurrentRow(row)
        assert window.stack.currentWidget() is window.panels[PAGE_KEYS[row]]


def test_running_a_step_through_its_panel_updates_its_state(window, qtbot) -> None:  # noqa: ANN001
    window.show_page("calibrate")
    panel = window.panels["calibrate"]
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(panel.run_button, pytest.importorskip("PySide6.QtCore").Qt.MouseButton.LeftButton)
    assert blocker.args == ["done"]
    assert window.session.step_state("calibrate").state == "done"
    assert "done" in window.step_list.item(1).text()
    assert "calibration/distortion_map" in window.session.project
    assert "Residual RMS" in panel.summary.text()


def test_event_loop_answers_while_a_step_runs(window, qtbot) -> None:  # noqa: ANN001
    window.show_page("reconstruct")
    panel = window.panels["reconstruct"]
    panel.forms["reconstruct"].editor("iterations").setValue(400)
    panel.forms["reconstruct"].editor("binning").setValue(1)
    window._flush_params()
    previews: list[tuple[int, int, np.ndarray]] = []
    panel.preview_ready.connect(lambda k, n, payload: previews.append((k, n, payload[0])))
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.run()
        started = time.perf_counter()
        assert window.session.busy and not panel.run_button.isEnabled()
        assert panel.cancel_button.isEnabled()
    ended = time.perf_counter()
    timer.stop()
    assert blocker.args == ["done"]
    during = [t for t in ticks if started <= t <= ended]
    assert ended - started > 0.3, "the run was too short to test the event loop"
    assert len(during) >= 3, "the GUI thread was blocked while the step ran"
    gaps = np.diff([started, *during, ended])
    assert gaps.max() < 1.0, f"the window froze for {gaps.max():.2f} s"
    assert window.session.step_state("reconstruct").state == "done"
    assert "Volume" in panel.info.text()
    # the central x-z section was shown live while SIRT iterated (rate-limited), then the result
    assert len(previews) >= 2 and previews[-1][:2] == (400, 400)
    assert previews[0][0] < 400
    assert previews[-1][2].shape == volume_nz(window)


def volume_nz(window) -> tuple[int, int]:  # noqa: ANN001
    """(z, x) extent of the project's volume: the shape of its x-z sections."""
    shape = window.session.project.read_volume("reconstruction/volume").data.shape
    return shape[0], shape[2]


def test_cancel_leaves_the_project_unchanged(window, qtbot) -> None:  # noqa: ANN001
    project = window.session.project
    before = (project.generation(), project.datasets(), len(project.log_entries()))
    panel = window.panels["reconstruct"]
    window.show_page("reconstruct")
    # long enough that the cancel always lands inside the run (64 px, 7 frames: a few ms per iteration)
    panel.forms["reconstruct"].editor("iterations").setValue(20000)
    window._flush_params()
    before = (project.generation(), project.datasets(), len(project.log_entries()))
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.run()
        qtbot.waitUntil(lambda: panel.progress_bar.value() > 0 or "SIRT" in panel.progress_label.text()
                        or panel.progress_label.text() != "Starting…", timeout=20_000)
        panel.cancel()
    assert blocker.args == ["cancelled"]
    project = window.session.project
    assert (project.generation(), project.datasets(), len(project.log_entries())) == before
    assert "unchanged" in panel.progress_label.text()
    assert window.session.step_state("reconstruct").state == "not run"


def test_edited_parameters_are_saved_and_mark_the_step_stale(window, qtbot) -> None:  # noqa: ANN001
    panel = window.panels["calibrate"]
    window.show_page("calibrate")
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        panel.run()
    assert window.session.step_state("calibrate").state == "done"
    panel.forms["calibrate"].editor("iterations").setValue(2)
    qtbot.waitUntil(lambda: window.session.step_state("calibrate").state == "stale", timeout=5_000)
    saved = pipeline.params_for(window.session.project, "calibrate")
    assert saved.iterations == 2


def test_parameter_form_has_units_tooltips_and_choices() -> None:
    from PySide6.QtWidgets import QComboBox, QDoubleSpinBox
    from rstem_app.params_form import ParamsForm

    from rstem_core.recon.step import ReconstructionParams

    form = ParamsForm(ReconstructionParams)
    margin = form.editor("margin_nm")
    assert isinstance(margin, QDoubleSpinBox) and margin.suffix() == " nm"
    algorithm = form.editor("algorithm")
    assert isinstance(algorithm, QComboBox)
    assert {algorithm.itemText(i) for i in range(algorithm.count())} >= {"sirt", "fbp"}
    assert "missing wedge" in form._fields["algorithm"].widget.toolTip()
    assert form._fields["thickness_nm"].auto.isChecked()  # None = automatic
    form.editor("iterations").setValue(7)
    params = form.params()
    assert params.iterations == 7 and params.preprocessing.mode == "normalize"
    form.reset_defaults()
    assert form.params() == ReconstructionParams()
    assert dataclasses.is_dataclass(form.params())


def test_window_state_and_recent_projects_are_remembered(qtbot, project_path, tmp_path) -> None:  # noqa: ANN001
    from PySide6.QtCore import QSettings
    from rstem_app.main_window import MainWindow

    settings = QSettings(str(tmp_path / "remember.ini"), QSettings.Format.IniFormat)
    first = MainWindow(settings)
    first.show()
    assert first.minimumSizeHint().width() <= 1280  # every page fits a 1280 px wide screen
    first.resize(1200, 800)
    assert first.open_project(project_path)
    qtbot.wait(200)
    size = (first.width(), first.height())
    first.close()
    second = MainWindow(QSettings(str(tmp_path / "remember.ini"), QSettings.Format.IniFormat))
    second.show()
    try:
        assert (second.width(), second.height()) == size
        recent = [a.text() for a in second.recent_menu.actions()]
        assert recent and str(project_path) in recent[0]
    finally:
        second.setProperty("force_close", True)
        second.close()
