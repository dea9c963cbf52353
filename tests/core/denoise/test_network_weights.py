"""The U-Net's shapes and the model's storage: project datasets and safetensors, never pickles."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from rstem_core.denoise.network import UNet
from rstem_core.denoise.weights import (
    DenoiserModel,
    export_safetensors,
    import_safetensors,
    load_from_project,
    save_to_project,
)
from rstem_core.errors import RstemError
from rstem_core.project import Project


def _model(depth: int = 2, width: int = 4, unshuffle: int = 1, seed: int = 0) -> DenoiserModel:
    torch.manual_seed(seed)
    return DenoiserModel(UNet(depth, width, unshuffle=unshuffle), {"metrics": {"validation_psnr_db": 21.5}})


@pytest.mark.parametrize(("depth", "width", "unshuffle", "size"), [(1, 2, 1, 6), (2, 4, 2, 24), (3, 8, 2, 48), (2, 4, 4, 32)])
def test_unet_keeps_shape_for_sizes_divisible_by_its_multiple(depth: int, width: int, unshuffle: int, size: int) -> None:
    net = UNet(depth, width, unshuffle=unshuffle)
    assert net.size_multiple == unshuffle * 2**depth
    out = net(torch.rand(2, 1, size, size + net.size_multiple))
    assert out.shape == (2, 1, size, size + net.size_multiple)


def test_unet_refuses_a_size_that_is_not_a_multiple() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        UNet(3, 4)(torch.zeros(1, 1, 20, 24))


def test_architecture_round_trip_and_bad_descriptions() -> None:
    net = UNet(3, 6, unshuffle=2, convs_per_level=1, residual=False)
    assert UNet.from_architecture(net.architecture).architecture == net.architecture
    with pytest.raises(ValueError, match="not a U-Net"):
        UNet.from_architecture({"name": "resnet"})
    with pytest.raises(ValueError, match="depth must be int"):
        UNet.from_architecture({**net.architecture, "depth": 2.0})


def test_weights_round_trip_bit_exact_through_the_project(tmp_path) -> None:
    model = _model(seed=3)
    with Project.create(tmp_path / "p.h5") as proj:
        with proj.edit() as w:
            save_to_project(w, "models/denoiser", model)
        back = load_from_project(proj)
        assert proj.read_array("models/denoiser/weights/head.weight").dtype == np.float32
    for name, arr in model.state_arrays().items():
        assert np.array_equal(back.state_arrays()[name], arr), name
    assert back.description == model.description
    x = torch.rand(1, 1, 16, 16)
    assert torch.equal(back.network(x), model.network.eval()(x))


def test_weights_round_trip_bit_exact_through_safetensors(tmp_path) -> None:
    model = _model(depth=3, width=5, unshuffle=2, seed=4)
    back = import_safetensors(export_safetensors(model, tmp_path / "m.safetensors"))
    assert back.description == model.description
    for name, arr in model.state_arrays().items():
        assert np.array_equal(back.state_arrays()[name], arr), name


def test_a_pickle_or_torch_checkpoint_is_refused_with_one_line(tmp_path) -> None:
    pick = tmp_path / "weights.pkl"
    pick.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    ckpt = tmp_path / "weights.pt"
    torch.save(_model().network.state_dict(), ckpt)
    for path in (pick, ckpt):
        with pytest.raises(RstemError, match="pickled PyTorch checkpoint") as info:
            import_safetensors(path)
        assert "\n" not in str(info.value)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, not weights")
    with pytest.raises(RstemError, match="not a safetensors"):
        import_safetensors(text)


def test_weights_for_another_architecture_are_refused(tmp_path) -> None:
    from safetensors.numpy import save_file

    model = _model(depth=2, width=4)
    desc = dict(model.description, architecture={**model.network.architecture, "base_channels": 8})
    path = tmp_path / "other.safetensors"
    save_file(model.state_arrays(), str(path), metadata={"description": json.dumps(desc)})
    with pytest.raises(RstemError, match="another architecture"):
        import_safetensors(path)
    with Project.create(tmp_path / "p.h5") as proj:
        with proj.edit() as w:
            save_to_project(w, "models/denoiser", model)
            w.write_json("models/denoiser/description", desc)
        with pytest.raises(RstemError, match="another architecture"):
            load_from_project(proj)
        with pytest.raises(RstemError, match="no trained denoiser"):
            load_from_project(proj, "models/other")


def test_a_safetensors_file_whose_header_length_starts_with_0x80_is_not_taken_for_a_pickle(tmp_path) -> None:
    """The first byte of a safetensors file is the low byte of its header length: any value."""
    net = UNet(2, 4)
    for extra in range(0, 512, 8):
        path = export_safetensors(DenoiserModel(net, {"note": "x" * extra}), tmp_path / "m.safetensors")
        if path.read_bytes()[:1] == b"\x80":
            break
    else:
        pytest.fail("no description length gave a header length with low byte 0x80")
    assert import_safetensors(path).description["note"] == "x" * extra


def test_exported_weights_get_the_users_usual_file_permissions(tmp_path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        path = export_safetensors(DenoiserModel(UNet(2, 4)), tmp_path / "shared.safetensors")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # readable by colleagues, as any file the user saves
