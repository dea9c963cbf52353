"""Trained denoisers as data: weights plus a JSON description, in the project or a safetensors file.

Weights are stored as plain float32 arrays, one per network tensor, and the description (network
architecture, normalisation, training mode and parameters, a hash of the training data, metrics)
as JSON. Nothing is ever pickled or unpickled: a pickled checkpoint (``torch.save``) is refused,
because loading one can run arbitrary code.

Project layout of a model under ``key`` (default ``models/denoiser``)::

    key/description        JSON (see :class:`DenoiserModel`)
    key/weights/<tensor>   float32 arrays named as the network's state dict (``down.0.0.weight``)
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import RstemError
from .normalisation import DEFAULT_PERCENTILES
from .sharpen import WidthRestoration

if TYPE_CHECKING:  # torch is imported where it is used
    from ..project import Project, ProjectWriter
    from .network import UNet

#: version of the description format
FORMAT_VERSION = 1
MODEL_KEY = "models/denoiser"
STARTER_NAME = "denoiser_starter.safetensors"
#: the shipped starter models (each description records the pixel size it was trained at)
STARTER_NAMES = (STARTER_NAME, "denoiser_starter_4.56nm.safetensors")


def default_normalisation() -> dict[str, Any]:
    """The normalisation record of a new model (see :mod:`.normalisation`)."""
    return {"method": "percentile", "percentiles": list(DEFAULT_PERCENTILES)}


@dataclass(eq=False)
class DenoiserModel:
    """A denoising network with its description.

    Attributes
    ----------
    network : UNet
        The torch module (on the CPU, float32).
    description : dict
        JSON-able: ``format_version``, ``architecture`` (:attr:`UNet.architecture`),
        ``normalisation`` (``method``, ``percentiles``), ``training`` (mode and parameters,
        ``data_hash``, ``history``, ``cancelled``) and ``metrics`` (validation PSNR, epochs, ...).
    """

    network: UNet
    description: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        desc = dict(self.description)
        desc.setdefault("format_version", FORMAT_VERSION)
        desc["architecture"] = self.network.architecture
        desc.setdefault("normalisation", default_normalisation())
        desc.setdefault("training", {})
        desc.setdefault("metrics", {})
        json.dumps(desc)  # fail early if not JSON-able
        self.description = desc

    @property
    def width_restoration(self) -> WidthRestoration | None:
        """The calibrated line-width restoration (:mod:`.sharpen`), or None."""
        data = self.description.get("width_restoration")
        return WidthRestoration.from_json(data) if data else None

    @property
    def percentiles(self) -> tuple[float, float]:
        """Normalisation percentiles (low, high)."""
        lo, hi = self.description["normalisation"]["percentiles"]
        return float(lo), float(hi)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The weights as float32 numpy arrays, by state-dict name."""
        return {k: v.detach().cpu().numpy().astype(np.float32, copy=True) for k, v in self.network.state_dict().items()}

    @classmethod
    def from_arrays(cls, description: dict[str, Any], arrays: dict[str, np.ndarray], source: str) -> DenoiserModel:
        """Rebuild a model from its description and weight arrays.

        Raises
        ------
        RstemError
            The description is not a known network, or the arrays do not fit it.
        """
        import torch

        from .network import UNet

        if not isinstance(description, dict):
            raise RstemError(f"{source}: the model description is not a JSON object")
        version = description.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise RstemError(f"{source}: model description format {version!r} is not supported (this rstem reads <= {FORMAT_VERSION})")
        try:
            net = UNet.from_architecture(description.get("architecture"))
        except ValueError as exc:
            raise RstemError(f"{source}: {exc}") from None
        if description.get("width_restoration"):
            try:
                WidthRestoration.from_json(description["width_restoration"])
            except (KeyError, TypeError, ValueError):
                raise RstemError(f"{source}: the line-width restoration record is damaged") from None
        expected = net.state_dict()
        if set(arrays) != set(expected):
            missing = sorted(set(expected) - set(arrays))[:3]
            extra = sorted(set(arrays) - set(expected))[:3]
            raise RstemError(f"{source}: weights are for another architecture (missing {missing}, unexpected {extra})")
        for name, ref in expected.items():
            if tuple(arrays[name].shape) != tuple(ref.shape):
                raise RstemError(f"{source}: weights are for another architecture ({name} is "
                                 f"{tuple(arrays[name].shape)}, the network needs {tuple(ref.shape)})")
        net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in arrays.items()})
        net.eval()
        return cls(net, description)


def save_to_project(writer: ProjectWriter, key: str, model: DenoiserModel) -> None:
    """Store ``model`` under ``key`` inside a project transaction (replacing what was there)."""
    writer.delete(key)
    for name, arr in model.state_arrays().items():
        writer.write_array(f"{key}/weights/{name}", arr)
    writer.write_json(f"{key}/description", model.description)
    writer.set_attrs(key, {"kind": "denoiser", "format_version": FORMAT_VERSION})


def load_from_project(project: Project, key: str = MODEL_KEY) -> DenoiserModel:
    """Load a model stored by :func:`save_to_project`.

    Raises
    ------
    RstemError
        No model under ``key``, or one that does not fit its description.
    """
    if f"{key}/description" not in project:
        raise RstemError(f"{project.path.name} has no trained denoiser at /{key}: run `rstem train` first")
    description = project.read_json(f"{key}/description")
    group = project.h5[f"{key}/weights"] if f"{key}/weights" in project else {}
    arrays = {name: np.asarray(ds[()]) for name, ds in group.items()}
    return DenoiserModel.from_arrays(description, arrays, f"{project.path.name}:/{key}")


def export_safetensors(model: DenoiserModel, path: str | Path) -> Path:
    """Write the weights and the description (as metadata ``description``) to a safetensors file."""
    from safetensors.numpy import save

    path = Path(path)
    # bytes written by Python: the file gets the user's usual permissions (safetensors' own writer gives 0600)
    path.write_bytes(save(model.state_arrays(), metadata={"description": json.dumps(model.description, sort_keys=True)}))
    return path


def _check_safetensors_header(path: Path) -> None:
    """Refuse files that are not safetensors with a message that says what they are."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    size = path.stat().st_size
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= size - 8:
        return  # an 8-byte header length (whose first byte may be anything) and a JSON header
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise RstemError(f"{path.name} is a pickled PyTorch checkpoint, which is refused (loading it could run "
                         "code); export the weights as .safetensors")
    raise RstemError(f"{path.name} is not a safetensors weights file")


def import_safetensors(path: str | Path) -> DenoiserModel:
    """Read a model written by :func:`export_safetensors`.

    Raises
    ------
    RstemError
        Missing file, a pickle or other non-safetensors file, no description, or weights for
        another architecture.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise RstemError(f"{path}: no such weights file")
    _check_safetensors_header(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise RstemError(f"{path.name} cannot be read as safetensors: {' '.join(str(exc).split())}") from None
    if "description" not in meta:
        raise RstemError(f"{path.name} has no rstem model description in its metadata")
    try:
        description = json.loads(meta["description"])
    except json.JSONDecodeError:
        raise RstemError(f"{path.name}: the model description is not valid JSON") from None
    return DenoiserModel.from_arrays(description, arrays, path.name)


def _resource_dirs() -> list[Path]:
    """Where shipped resources may lie: the bundle, the repository, the installation prefix."""
    import sys

    dirs = [Path(__file__).resolve().parents[2] / "resources", Path(sys.prefix) / "share" / "rstem" / "resources"]
    if hasattr(sys, "_MEIPASS"):  # the desktop bundle (packaging/rstem.spec)
        dirs.insert(0, Path(sys._MEIPASS) / "resources")
    return dirs


def starter_path(name: str = STARTER_NAME) -> Path:
    """Location of a shipped starter model (``resources/`` at the repository root, or
    ``share/rstem/resources`` of the installation prefix)."""
    candidates = [d / name for d in _resource_dirs()]
    for path in candidates:
        if path.is_file():
            return path
    raise RstemError(f"the starter denoiser {name} is missing (looked in {', '.join(str(p.parent) for p in candidates)})")


def starter_pixel_size_nm(model: DenoiserModel) -> float | None:
    """The pixel size (nm) a model was trained at, when its description records it."""
    value = model.description.get("training", {}).get("pixel_size_nm")
    return float(value) if value else None


def starter_model(pixel_size_nm: float | None = None) -> DenoiserModel:
    """The shipped starter denoiser (trained on the synthetic experiment) that suits the frames.

    A network learns line widths and noise texture in pixels, so a model applied at another pixel
    size than it was trained at smooths the lines away (the 6.4 nm starter on 4.56 nm frames gave
    blurred blobs). Among the shipped models the one whose training pixel size is nearest (in
    ratio) to ``pixel_size_nm`` is taken; without a pixel size, the first one.
    """
    found = []
    for name in STARTER_NAMES:
        try:
            found.append(import_safetensors(starter_path(name)))
        except RstemError:
            if name == STARTER_NAME:
                raise
    if pixel_size_nm is None or not pixel_size_nm > 0 or len(found) == 1:
        return found[0]

    def mismatch(model: DenoiserModel) -> float:
        size = starter_pixel_size_nm(model)
        return abs(math.log(size / pixel_size_nm)) if size else math.inf

    return min(found, key=mismatch)
