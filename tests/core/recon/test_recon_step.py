"""The reconstruction step on a project: inputs chosen, volume stored, cancel changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rstem_core.binarize import BinarizeParams
from rstem_core.errors import Cancelled, RstemError
from rstem_core.model import TiltSeries
from rstem_core.progress import CancelToken
from rstem_core.project import Project
from rstem_core.recon import Geometry, Projector, row_angles_from_curve, row_times_s
from rstem_core.recon.step import ReconstructionParams, run_reconstruction, time_lag_angles


def _project(tmp_path: Path) -> Path:
    n, rows, cols, nz = 15, 48, 6, 16
    vol = np.zeros((nz, rows, cols), np.float32)
    vol[4:12, 20:24, :] = 1.0
    t0 = np.arange(n) * 0.2
    angles = np.linspace(-60, 60, n)
    line = 0.03 / rows
    row_angles = row_angles_from_curve(t0 + 0.015, angles, row_times_s(t0, rows, line))
    frames = Projector(Geometry(row_angles, rows, cols, nz), "cpu").project(vol)
    series = TiltSeries(frames, angles, 4.56, timestamps_s=t0, line_time_s=line)
    path = tmp_path / "p.h5"
    with Project.create(path) as proj, proj.edit() as w:
        w.write_series("raw/rapid", series)
    return path


def _params(**kw) -> ReconstructionParams:
    base = {"thickness_nm": 16 * 4.56, "margin_nm": 0.0, "iterations": 20, "device": "cpu",
            "preprocessing": BinarizeParams(mode="none")}
    base.update(kw)
    return ReconstructionParams(**base)


def test_reconstruction_is_stored_with_params_and_log(tmp_path: Path) -> None:
    path = _project(tmp_path)
    with Project.open(path, "a") as proj:
        vol = run_reconstruction(proj, _params())
    assert vol.shape == (16, 48, 6) and vol.voxel_size_nm == 4.56
    assert vol.metadata["time_lag"] is True and vol.metadata["source"] == "/raw/rapid"
    with Project.open(path) as proj:
        stored = proj.read_volume("reconstruction/volume")
        assert proj.params("reconstruction/volume")["iterations"] == 20
        assert proj.log_entries()[-1]["step"] == "reconstruct"
    np.testing.assert_array_equal(stored.data, vol.data)
    # the bar of density is found where it was put
    profile = stored.data.sum(axis=(0, 2))
    assert 19 <= int(np.argmax(profile)) <= 24


def test_binning_and_no_time_lag(tmp_path: Path) -> None:
    path = _project(tmp_path)
    with Project.open(path, "a") as proj:
        vol = run_reconstruction(proj, _params(binning=2, time_lag=False))
    assert vol.shape == (8, 24, 3) and vol.voxel_size_nm == pytest.approx(9.12)
    assert vol.metadata["time_lag"] is False


def test_time_lag_needs_times() -> None:
    s = TiltSeries(np.zeros((3, 4, 4)), [0, 1, 2], 1.0)
    assert time_lag_angles(s, s.angles_deg) is None


def test_cancel_leaves_the_project_unchanged(tmp_path: Path) -> None:
    path = _project(tmp_path)
    before = path.read_bytes()
    token = CancelToken()
    with Project.open(path, "a") as proj, pytest.raises(Cancelled):
        run_reconstruction(proj, _params(iterations=200), cancel=token,
                           progress=lambda f, m: token.cancel() if f > 0.5 else None)
    assert path.read_bytes() == before


def test_no_series_is_a_clear_error(tmp_path: Path) -> None:
    with Project.create(tmp_path / "e.h5") as proj, pytest.raises(RstemError, match="has no rapid series"):
        run_reconstruction(proj, _params())


@pytest.mark.parametrize(("kw", "msg"), [({"thickness_nm": 0.0}, "empty volume extent"),
                                         ({"algorithm": "art"}, "algorithm must be one of"),
                                         ({"binning": 0}, "binning must be at least 1"),
                                         ({"noisy_share": 1.5}, "noisy_share must lie in"), ({"noisy_share": -0.1}, "noisy_share must lie in"),
                                         ({"noisy_smooth_px": -1.0}, "noisy_smooth_px must be >= 0")])
def test_bad_parameters(kw: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        ReconstructionParams(**kw)


def test_cli_reconstruct_then_export_volume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mrcfile

    from rstem_core.cli import main

    path = _project(tmp_path)
    status = main(["reconstruct", str(path), "--iterations", "5", "--thickness", "72.96",
                   "--preprocess", "none", "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "reconstruction/volume: 25x48x6 voxels" in captured.out
    assert main(["info", str(path), "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["steps"]["reconstruct"] == "done"
    assert main(["export", str(path), str(tmp_path / "v.mrc")]) == 0
    with mrcfile.open(tmp_path / "v.mrc") as m:
        nz = round((72.96 + 40) / 4.56)
        assert m.data.shape == (nz, 48, 6)
        assert float(m.voxel_size.x) == pytest.approx(45.6)
    assert main(["reconstruct", str(path), "--iterations", "0"]) == 2
    assert "iterations must be at least 1" in capsys.readouterr().err


def test_frames_without_a_clear_layer_take_the_fallback_thickness(tmp_path: Path) -> None:
    """Pure noise shows no specimen layer: the estimate of such frames means nothing, so the
    volume takes the fallback thickness and says so; a thin layer of lines is estimated."""
    rng = np.random.default_rng(0)
    n, rows, cols = 21, 64, 64
    angles = np.linspace(-60, 60, n)
    noise = TiltSeries(rng.normal(100, 10, (n, rows, cols)).astype(np.float32), angles, 4.56)
    path = tmp_path / "noise.h5"
    with Project.create(path) as proj, proj.edit() as w:
        w.write_series("raw/rapid", noise)
    with Project.open(path, "a") as proj:
        vol = run_reconstruction(proj, _params(thickness_nm=None, fallback_thickness_nm=30 * 4.56, iterations=5))
    assert vol.shape[0] == 30
    assert any("no clear specimen layer" in note for note in vol.metadata["notes"])
    # bright lines in a 12 px layer in the middle of the depth
    layer = np.zeros((64, rows, cols), np.float32)
    for k in range(12):
        z, y = 26 + k, 4 + 5 * k
        layer[z, y : y + 2, :] = 1.0
        layer[z, :, 4 + 5 * k : 6 + 5 * k] += 1.0
    frames = Projector(Geometry(angles, rows, cols, 64), "cpu").project(layer)
    path = tmp_path / "layer.h5"
    with Project.create(path) as proj, proj.edit() as w:
        w.write_series("raw/rapid", TiltSeries(frames, angles, 4.56))
    with Project.open(path, "a") as proj:
        vol = run_reconstruction(proj, _params(thickness_nm=None, fallback_thickness_nm=30 * 4.56, iterations=5))
    assert any("estimated from the data" in note for note in vol.metadata["notes"])
    assert 8 <= vol.shape[0] <= 24


def test_frames_before_denoising_add_the_dislocations_the_denoiser_dropped(tmp_path: Path) -> None:
    # two dislocations seen as dark lines; the denoised frames lost the fainter one (too faint to
    # see in one frame), the noisy frames still hold it: the volume shows it with noisy_share
    n, rows, cols, nz = 15, 48, 6, 16
    strong = np.zeros((nz, rows, cols), np.float32)
    strong[6:9, 12:15, :] = 1.0
    faint = np.zeros_like(strong)
    faint[8:11, 32:35, :] = 0.5
    t0 = np.arange(n) * 0.2
    angles = np.linspace(-60, 60, n)
    line = 0.03 / rows
    projector = Projector(Geometry(row_angles_from_curve(t0 + 0.015, angles, row_times_s(t0, rows, line)),
                                   rows, cols, nz), "cpu")
    rng = np.random.default_rng(0)
    noisy = 1.0 - 0.02 * projector.project(strong + faint) + 0.003 * rng.standard_normal((n, rows, cols))
    denoised = 1.0 - 0.02 * projector.project(strong)
    path = tmp_path / "p.h5"
    with Project.create(path) as proj, proj.edit() as w:
        w.write_series("raw/rapid", TiltSeries(noisy.astype(np.float32), angles, 4.56, timestamps_s=t0, line_time_s=line))
        w.write_series("processed/denoised",
                       TiltSeries(denoised.astype(np.float32), angles, 4.56, timestamps_s=t0, line_time_s=line))

    def strengths(share: float) -> tuple[float, float, list[str]]:
        with Project.open(path, "a") as proj:
            vol = run_reconstruction(proj, _params(noisy_share=share, preprocessing=BinarizeParams()))
        d = vol.data
        return float(d[6:9, 12:15].mean()), float(d[8:11, 32:35].mean()), vol.metadata["notes"]

    a0, b0, notes0 = strengths(0.0)
    a1, b1, notes1 = strengths(1 / 3)
    a2, b2, notes2 = strengths(1.0)
    assert b0 < 0.05 * a0  # the denoised frames alone: the faint dislocation is gone
    assert b1 > 0.1 * a1  # a third of the signal from the noisy frames: it is back (expected 1/6)
    assert b2 > 0.35 * a2  # the noisy frames alone: at its true strength, half the strong one's
    assert any("/raw/rapid" in s and "make 0.333" in s for s in notes1)
    assert any("reconstructed from the frames before denoising (/raw/rapid" in s for s in notes2)
    assert not any("before denoising" in s for s in notes0)


def test_the_frames_before_denoising_are_those_the_denoiser_read(tmp_path: Path) -> None:
    from rstem_core.recon.step import noisy_companion

    n, rows, cols = 5, 16, 8
    angles = np.linspace(-40, 40, n)
    raw = TiltSeries(np.full((n, rows, cols), 1.0, np.float32), angles, 4.56)
    corrected = TiltSeries(np.full((n, rows, cols), 2.0, np.float32), angles, 4.56)
    denoised = TiltSeries(np.full((n, rows, cols), 3.0, np.float32), angles, 4.56,
                          metadata={"denoise_source": "/raw/rapid"})  # denoised before the calibration
    path = tmp_path / "p.h5"
    with Project.create(path) as proj, proj.edit() as w:
        w.write_series("raw/rapid", raw)
        w.write_series("processed/corrected", corrected)
        w.write_series("processed/denoised", denoised)
    with Project.open(path) as proj:
        frames, key = noisy_companion(proj, "processed/denoised", proj.read_series("processed/denoised"))
        assert key == "raw/rapid" and float(frames.mean()) == 1.0
        assert noisy_companion(proj, "processed/corrected", proj.read_series("processed/corrected")) is None
