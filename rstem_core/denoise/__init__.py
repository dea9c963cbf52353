"""Denoising of rapid-scan frames: a U-Net trained on the curated training set, tiled inference,
and non-learning baselines (BM3D, Gaussian, median, non-local means).

Public API::

    UNet                                  network.py    the network
    DenoiserModel, save_to_project, load_from_project, export_safetensors, import_safetensors,
    starter_model                         weights.py    weights + JSON description, never pickles
    denoise_frames                        inference.py  tiled, blended, batched inference
    TrainParams, train_denoiser           training.py   supervised / Noise2Noise / Noise2Void
    DenoiseParams, run_training, run_denoise   step.py  the project steps
    BASELINES, denoise_baseline           baselines.py  (imported on first use)

Importing this package does not import torch; the modules that need it import it themselves.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "UNet": "network",
    "DenoiserModel": "weights",
    "save_to_project": "weights",
    "load_from_project": "weights",
    "export_safetensors": "weights",
    "import_safetensors": "weights",
    "starter_model": "weights",
    "denoise_frames": "inference",
    "TrainParams": "training",
    "train_denoiser": "training",
    "DenoiseParams": "step",
    "run_training": "step",
    "run_denoise": "step",
    "BASELINES": "baselines",
    "denoise_baseline": "baselines",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
