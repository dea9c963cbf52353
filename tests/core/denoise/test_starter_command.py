"""The shipped starter model and the command-line glue of `rstem train` / `rstem denoise`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from scipy import ndimage

from rstem_core.analysis.image_quality import psnr_db
from rstem_core.denoise.command import (
    add_denoise_arguments,
    add_train_arguments,
    cmd_denoise,
    cmd_train,
)
from rstem_core.denoise.inference import denoise_frames
from rstem_core.denoise.weights import (
    STARTER_NAMES,
    starter_model,
    starter_path,
    starter_pixel_size_nm,
)
from rstem_core.errors import RstemError
from rstem_core.progress import CancelToken
from rstem_core.project import Project


class _Progress:
    def __call__(self, fraction: float, message: str) -> None:
        pass

    def close(self) -> None:
        pass


def _parse(add, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def test_starter_is_small_and_denoises_a_demo_frame(curated_project) -> None:
    assert starter_path().stat().st_size < 2 * 2**20
    model = starter_model()
    assert model.description["training"]["mode"] in ("supervised", "noise2noise", "noise2void")
    with Project.open(curated_project) as proj:
        adu = float(proj.attrs("truth/training/area_000")["adu_per_unit"])
        gains = []
        for area in ("area_000", "area_005"):
            frame = proj.read_series(f"raw/training/{area}").frames[0]
            drift = proj.read_array(f"truth/training/{area}/drift_px")[0]
            truth = ndimage.shift(proj.read_array(f"truth/training/{area}/clean") * adu, drift, order=3, mode="nearest")
            gains.append(psnr_db(denoise_frames(frame, model), truth) - psnr_db(frame, truth))
    assert min(gains) > 5.0, gains


def test_the_starter_nearest_to_the_frames_pixel_size_is_used() -> None:
    # a network trained at 6.4 nm pixels blurs 4.56 nm frames into blobs: one starter per scale
    sizes = sorted(starter_pixel_size_nm(starter_model(p)) for p in (9.12, 6.45, 4.56))
    assert len(STARTER_NAMES) == 2 and all(starter_path(n).stat().st_size < 2 * 2**20 for n in STARTER_NAMES)
    assert starter_pixel_size_nm(starter_model(4.56)) == pytest.approx(4.56)
    assert starter_pixel_size_nm(starter_model(9.12)) == pytest.approx(6.45, abs=0.01)
    assert starter_pixel_size_nm(starter_model(3.0)) == pytest.approx(4.56)
    assert sizes[0] < sizes[-1]


def test_command_module_does_not_import_torch() -> None:
    code = "import sys, rstem_core.denoise.command, rstem_core.denoise.step; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_train_and_denoise_commands_print_one_json_object(curated_project, tmp_path, capsys) -> None:
    out = tmp_path / "m.safetensors"
    args = _parse(add_train_arguments, [str(curated_project), "--epochs", "1", "--patch", "32", "--depth", "2",
                                         "--width", "4", "--export", str(out), "--json"])
    assert cmd_train(args, _Progress(), CancelToken()) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "/models/denoiser" and report["epochs"] == 1 and out.is_file()
    args = _parse(add_denoise_arguments, [str(curated_project), "--tile", "32", "--overlap", "8", "--json"])
    assert cmd_denoise(args, _Progress(), CancelToken()) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "/models/denoiser" and report["source"] == "/raw/rapid"
    with Project.open(curated_project) as proj:
        assert proj.read_series("processed/denoised").frames.shape == proj.read_series("raw/rapid").frames.shape


def test_bad_options_and_bad_weights_are_user_errors(curated_project, tmp_path) -> None:
    args = _parse(add_train_arguments, [str(curated_project), "--patch", "30"])
    with pytest.raises(RstemError, match="patch_px"):
        cmd_train(args, _Progress(), CancelToken())
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"\x80\x04K\x01.")
    args = _parse(add_denoise_arguments, [str(curated_project), "--weights", str(bad)])
    with Project.open(curated_project) as proj:
        before = [d["path"] for d in proj.datasets()]
    with pytest.raises(RstemError, match="pickled"):
        cmd_denoise(args, _Progress(), CancelToken())
    with Project.open(curated_project) as proj:
        assert [d["path"] for d in proj.datasets()] == before
