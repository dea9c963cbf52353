"""Plain-words errors and the VisPy 3D view."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_error_dialog_shows_one_plain_line_and_logs_the_trace(window, qtbot, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    import rstem_app.errors as errors

    shown: list[tuple[str, str, str]] = []
    monkeypatch.setattr(errors, "present_dialog", lambda parent, title, line, advice: shown.append((title, line, advice)))

    monkeypatch.setattr(errors, "_unattended", lambda: False)
    panel = window.panels["reconstruct"]
    panel.forms["reconstruct"].editor("binning").setValue(2)
    panel.forms["reconstruct"]._fields["thickness_nm"].auto.setChecked(False)
    panel.forms["reconstruct"].editor("thickness_nm").setValue(0.0)  # invalid: must be positive
    assert not panel.run_button.isEnabled()
    assert "thickness_nm" in panel.invalid_label.text()
    panel.run()
    assert len(shown) == 1
    title, line, advice = shown[0]
    assert "\n" not in line and "Traceback" not in line and "thickness_nm" in line
    assert advice
    assert "Traceback" in errors.log_path().read_text(encoding="utf-8")


def test_unexpected_errors_are_explained_without_a_trace() -> None:
    from rstem_app.errors import explain

    line, advice = explain(KeyError("frames"))
    assert "unexpected" in line.lower() and "log file" in advice


def test_3d_view_renders_a_non_blank_image(window, qtbot) -> None:  # noqa: ANN001
    panel = window.panels["reconstruct"]
    panel.forms["reconstruct"].editor("iterations").setValue(3)
    panel.forms["reconstruct"].editor("binning").setValue(2)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.run()
    window.show_page("view3d")
    view = window.panels["view3d"].view
    qtbot.wait(200)
    for mode in ("MIP", "Iso-surface", "Translucent", "Slice plane"):
        window.panels["view3d"].method.setCurrentText(mode)
        image = view.render()
        assert image.ndim == 3 and image.shape[2] >= 3
        grey = image[..., :3].astype(float).mean(axis=2)
        assert grey.std() > 2.0, f"{mode}: the rendered canvas is blank"
    assert np.asarray(image).dtype == np.uint8
    # the axes and their labels are drawn over the volume: the lime y axis, which runs behind
    # the volume from this viewpoint, and its label stay visible
    window.panels["view3d"].method.setCurrentText("MIP")
    rgb = view.render()[..., :3].astype(int)
    lime = (rgb[..., 1] > 150) & (rgb[..., 0] < 100) & (rgb[..., 2] < 100)
    assert lime.sum() > 40, f"only {lime.sum()} pixels of the y axis and its label are visible"
