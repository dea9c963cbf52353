"""Training the denoiser: one trainer for the supervised, Noise2Noise and Noise2Void modes.

Patches (``patch_px``, 64 as in the paper) are cut once into an in-memory pool whose size is capped
by ``max_memory_mb``; each epoch goes through the pool in random order with random flips, Adam
and a mean squared error loss (Zhao et al., Methods). Whole areas are held out for validation,
spread over the stage tilts, and the validation PSNR (dB, relative to each frame's normalisation
range, against the DCFI reference when the areas have one) drives early stopping; the weights of
the best epoch are returned. A cancel returns those best weights so far, marked ``cancelled``.

References
----------
Zhao et al., Sci. Rep., Methods ("U-Net") and Supp. C. Lehtinen et al., Noise2Noise (ICML 2018).
Krull et al., Noise2Void (CVPR 2019).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import Cancelled, RstemError
from ..progress import CancelToken, ProgressFn, no_progress
from .pairs import (
    MODES,
    TrainingArea,
    accepted_areas,
    flip_augment,
    iterate_batches,
    moved,
    read_area,
    row_blind_spot_mask,
    sample_patches,
    split_by_area,
    update_hash,
)
from .sharpen import WidthRestoration, calibrate_width_restoration, reference_noise_variance
from .weights import DenoiserModel

#: where the training's weights begin (see :attr:`TrainParams.start_from`)
START_FROM = ("starter", "scratch")


@dataclass(frozen=True)
class TrainParams:
    """Parameters of the denoiser training.

    Attributes
    ----------
    mode : {"supervised", "noise2noise", "noise2void"}
        Single frame -> DCFI reference (paper), frame -> another frame of the area, or blind spots.
    patch_px : int
        Training patch edge, px (paper: 64); a multiple of the network's size multiple.
    depth, base_channels, unshuffle, convs_per_level : int
        Network shape (see :class:`~.network.UNet`).
    residual : bool
        Predict a correction added to the input. Off by default: single rapid frames are so
        noisy (noise several times the specimen contrast) that predicting the image directly
        learns much faster than predicting the noise.
    epochs : int
        Most passes over the patch pool.
    batch_size : int
        Patches per optimiser step.
    learning_rate : float
        Adam step size; decays along a cosine to 10 % over ``epochs``.
    loss : {"mse", "l1"}
        Mean squared error (paper) or mean absolute error (a median estimate: keeps edges and
        thin lines sharper where the noise leaves their position uncertain).
    validation_fraction : float
        Share of the accepted areas held out for validation (whole areas, in (0, 0.5]).
    patience : int
        Stop after this many epochs without a validation PSNR gain of 0.01 dB.
    seed : int
        Random seed of the split, the patches, the initial weights and the batches.
    max_memory_mb : float
        Memory for the patch pool and the validation patches, MiB (hard cap).
    patches_per_frame : int
        Random patches cut from each training frame (capped by ``max_memory_mb``).
    n2v_fraction : float
        Noise2Void: share of pixels that are blind-spot centres.
    n2v_run_px : int
        Noise2Void: length of the masked horizontal run around each centre, px (odd).
    flip_x : bool
        Also flip patches left-right (reverses the detector afterglow's direction; off).
    percentiles : (float, float)
        Normalisation percentiles of each frame (see :mod:`.normalisation`).
    device : str
        "auto" (CUDA when available), "cpu" or "cuda".
    exclude_areas : tuple of str
        Areas kept out of training and validation (test areas, e.g. those a score table uses).
    restore_width : bool
        After training, calibrate a line-width restoration on the validation areas against their
        DCFI references (:mod:`.sharpen`): the network's mean-squared-error output broadens lines
        where the noise leaves their position uncertain; the calibrated high-boost filter gives
        them back the references' width. Needs validation areas with DCFI references.
    max_psnr_loss_db : float
        Most PSNR (estimated against the noise-free image from the DCFI references and their
        noise) the line-width restoration may cost at any tilt, dB.
    start_from : {"starter", "scratch"}
        ``starter``: begin from the shipped starter weights of the nearest pixel size when their
        architecture is this one (otherwise random weights, said so), so a small training set
        refines what the starter learned instead of starting over; the early stopping keeps
        the best epoch, never worse on the validation areas than the starter itself.
        ``scratch``: random weights. Quick synthetic set (128 px, 4 areas x 10 frames per
        tilt): PSNR against the truth 19.6 / 18.1 / 17.6 / 18.5 / 15.6 dB at 0-70 deg from
        scratch, 22.4 / 21.3 / 19.6 / 21.0 / 19.8 dB for the starter alone.
    """

    mode: str = "supervised"
    patch_px: int = 64
    depth: int = 3
    base_channels: int = 16
    unshuffle: int = 2
    convs_per_level: int = 2
    residual: bool = False
    epochs: int = 40
    batch_size: int = 16
    learning_rate: float = 2e-3
    loss: str = "mse"
    validation_fraction: float = 0.2
    patience: int = 6
    seed: int = 0
    max_memory_mb: float = 1024.0
    patches_per_frame: int = 8
    n2v_fraction: float = 0.01
    n2v_run_px: int = 5
    flip_x: bool = False
    percentiles: tuple[float, float] = (0.5, 99.5)
    device: str = "auto"
    exclude_areas: tuple[str, ...] = ()
    restore_width: bool = True
    max_psnr_loss_db: float = 1.5
    start_from: str = "starter"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        multiple = self.unshuffle * 2**self.depth
        if self.patch_px < 8 or self.patch_px % multiple:
            raise ValueError(f"patch_px must be >= 8 and a multiple of unshuffle * 2**depth = {multiple}, got {self.patch_px}")
        checks = [("depth", self.depth, 1, 6), ("base_channels", self.base_channels, 1, 256),
                  ("convs_per_level", self.convs_per_level, 1, 4), ("epochs", self.epochs, 1, 100000),
                  ("batch_size", self.batch_size, 1, 4096), ("patience", self.patience, 1, 100000),
                  ("patches_per_frame", self.patches_per_frame, 1, 10000)]
        for name, value, lo, hi in checks:
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer within {lo}..{hi}, got {value!r}")
        if self.loss not in ("mse", "l1"):
            raise ValueError(f"loss must be mse or l1, got {self.loss!r}")
        if self.unshuffle not in (1, 2, 4):
            raise ValueError(f"unshuffle must be 1, 2 or 4, got {self.unshuffle!r}")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 1):
            raise ValueError(f"learning_rate must be within (0, 1), got {self.learning_rate!r}")
        if not 0 < self.validation_fraction <= 0.5:
            raise ValueError(f"validation_fraction must be within (0, 0.5], got {self.validation_fraction!r}")
        if not self.max_memory_mb >= 16:
            raise ValueError(f"max_memory_mb must be at least 16 MiB, got {self.max_memory_mb!r}")
        if self.start_from not in START_FROM:
            raise ValueError(f"start_from must be one of {', '.join(START_FROM)}, got {self.start_from!r}")
        if not self.max_psnr_loss_db >= 0:
            raise ValueError(f"max_psnr_loss_db must be >= 0, got {self.max_psnr_loss_db!r}")
        if not 0 < self.n2v_fraction <= 0.1:
            raise ValueError(f"n2v_fraction must be within (0, 0.1], got {self.n2v_fraction!r}")
        if self.n2v_run_px < 1 or self.n2v_run_px % 2 == 0:
            raise ValueError(f"n2v_run_px must be a positive odd number of px, got {self.n2v_run_px!r}")
        lo, hi = self.percentiles
        if not 0 <= lo < hi <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles!r}")
        object.__setattr__(self, "percentiles", (float(lo), float(hi)))
        object.__setattr__(self, "exclude_areas", tuple(str(a) for a in self.exclude_areas))

    def architecture(self) -> dict:
        return {"name": "unet", "depth": self.depth, "base_channels": self.base_channels, "unshuffle": self.unshuffle,
                "convs_per_level": self.convs_per_level, "residual": bool(self.residual)}


@dataclass(frozen=True, eq=False)
class _Pool:
    inputs: np.ndarray
    targets: np.ndarray | None


def _psnr_db(mse: float) -> float:
    """PSNR in dB of a mean squared error in normalised units (data range 1)."""
    return float(10 * math.log10(1.0 / max(mse, 1e-12)))


def _sources(source, exclude: tuple[str, ...]) -> tuple[list[tuple[str, float]], Callable[[str], TrainingArea], dict[str, int]]:
    """Area names and tilts, a loader, and frame counts, from a project or a list of areas."""
    if isinstance(source, Sequence):
        areas = {a.name: a for a in source if a.name not in exclude}
        if not areas:
            raise RstemError("no training areas given")
        return ([(a.name, a.stage_tilt_deg) for a in areas.values()], areas.__getitem__,
                {a.name: len(a.frames) for a in areas.values()})
    names = [(n, t) for n, t in accepted_areas(source) if n not in exclude]
    if not names:
        raise RstemError(f"{source.path.name}: every accepted training area is excluded; keep some for training")
    counts = {n: int(source.h5[f"raw/training/{n}/frames"].shape[0]) for n, _ in names}
    tilts = dict(names)
    return names, lambda n: read_area(source, n, tilts[n]), counts


def fit_patch_to_frames(source, params: TrainParams) -> tuple[TrainParams, str]:
    """Shrink ``patch_px`` to fit the smallest training frame (less its drift margin) when the
    frames are too small for it; returns the parameters and a note ("" when unchanged).

    Raises
    ------
    RstemError
        Not even the network's smallest patch fits.
    """
    areas, _, _ = _sources(source, params.exclude_areas)
    room = None
    for name, _ in areas:
        if isinstance(source, Sequence):
            area = next(a for a in source if a.name == name)
            shape, drift = area.frames.shape[1:], np.asarray(area.drift_px, dtype=np.float64)
        else:
            shape = source.h5[f"raw/training/{name}/frames"].shape[1:]
            key = f"training/drift/{name}"
            drift = np.asarray(source.read_array(key), dtype=np.float64) if key in source else np.zeros((1, 2))
        # noise2noise pairs two frames: up to twice the largest drift, plus the sampler's 2 px
        margin = int(math.ceil(2 * float(np.max(np.abs(drift))) if drift.size else 0.0)) + 2
        fit = min(shape) - 2 * margin
        room = fit if room is None else min(room, fit)
    if room is None or params.patch_px <= room:
        return params, ""
    multiple = params.unshuffle * 2**params.depth
    patch = (room // multiple) * multiple
    if patch < max(8, multiple):
        raise RstemError(f"the training frames leave room for {room} px patches only; the network needs "
                         f"at least {max(8, multiple)} px: use a smaller depth or unshuffle, or larger areas")
    return replace(params, patch_px=patch), (
        f"patches of {patch} px instead of {params.patch_px} px: the training frames are small")


def build_patch_pools(source, params: TrainParams, rng: np.random.Generator, progress: ProgressFn,
                 cancel: CancelToken | None = None) -> tuple[_Pool, _Pool, dict]:
    """Cut the training and validation patch pools (inputs, targets) within ``max_memory_mb``.

    The training pool gets at most 80 % of the budget; ``info`` records the split, the
    training-data hash, the patch counts and the validation target.
    """
    areas, load, counts = _sources(source, params.exclude_areas)
    train_names, val_names = split_by_area(areas, params.validation_fraction, params.seed)
    single = len(areas) == 1
    n2v = params.mode == "noise2void"
    per_patch = params.patch_px**2 * 4 * (1 if n2v else 2)
    budget = int(params.max_memory_mb * 2**20 / per_patch)
    n_train_frames = sum(counts[n] for n in train_names)
    n_val_frames = sum(counts[n] for n in val_names)
    share = (1 - params.validation_fraction) if single else n_train_frames / max(n_train_frames + n_val_frames, 1)
    n_train = min(n_train_frames * params.patches_per_frame, int(0.8 * budget))
    n_val = min(max(4 * params.batch_size, int(n_train * (1 - share) / max(share, 1e-3))), 1024, budget - n_train)
    if n_train < params.batch_size or n_val < 1:
        raise RstemError(f"max_memory_mb={params.max_memory_mb:g} holds only {budget} patches of {params.patch_px} px; "
                         f"raise it or lower batch_size ({params.batch_size})")
    digest = hashlib.sha256()
    pools: dict[str, list] = {"train": [[], []], "val": [[], []]}
    load_has_ref: dict[str, bool] = {}
    pixel_sizes: list[float] = []
    names = sorted(set(train_names) | set(val_names))
    band = (0.0, 1 - params.validation_fraction)
    for i, name in enumerate(names):
        if cancel is not None:
            cancel.check()
        area = load(name)
        load_has_ref[name] = area.reference is not None
        if area.pixel_size_nm:
            pixel_sizes.append(float(area.pixel_size_nm))
        update_hash(digest, area)
        for part, total, frames_total, rows in (("train", n_train, n_train_frames, band if single else (0.0, 1.0)),
                                                ("val", n_val, n_val_frames, (band[1], 1.0) if single else (0.0, 1.0))):
            if name not in (train_names if part == "train" else val_names):
                continue
            count = max(1, round(total * len(area.frames) / max(frames_total, 1)))
            target = "reference" if part == "val" and area.reference is not None else None
            x, y = sample_patches(area, params.mode, count, params.patch_px, rng, percentiles=params.percentiles,
                                  row_band=rows, target=target)
            pools[part][0].append(x)
            pools[part][1].append(y)
        progress(0.05 * (i + 1) / len(names), f"cut patches from {name} ({i + 1}/{len(names)} areas)")

    def merge(part: str) -> _Pool:
        xs, ys = pools[part]
        x = np.concatenate(xs)
        y = None if any(v is None for v in ys) else np.concatenate(ys)
        return _Pool(x, y)

    train, val = merge("train"), merge("val")
    kind = "blind spots" if val.targets is None else (
        "dcfi reference" if all(load_has_ref.get(n, False) for n in val_names) else "another frame")
    info = {"validation_target": kind, "excluded_areas": list(params.exclude_areas), "data_hash": digest.hexdigest(), "training_areas": train_names, "validation_areas": val_names,
            "spatial_split": single, "train_patches": n_train, "validation_patches": n_val,
            "pixel_size_nm": round(float(np.median(pixel_sizes)), 4) if pixel_sizes else None}
    return train, val, info


def _evaluate(net, pool: _Pool, params: TrainParams, device, rng_seed: int) -> float:
    """Validation PSNR in dB (normalised units) against the pool's targets or, without targets,
    at Noise2Void blind spots of the pool's own pixels."""
    import torch

    rng = np.random.default_rng(rng_seed)
    total, count = 0.0, 0
    net.eval()
    with torch.inference_mode():
        for b0 in range(0, len(pool.inputs), 64):
            x = pool.inputs[b0:b0 + 64]
            if pool.targets is None:
                masked, centres, _ = row_blind_spot_mask(x, params.n2v_fraction, params.n2v_run_px, rng)
                out = net(torch.from_numpy(masked[:, None]).to(device))[:, 0].cpu().numpy()
                total += float(np.sum((out[centres] - x[centres]) ** 2))
                count += int(centres.sum())
            else:
                out = net(torch.from_numpy(x[:, None]).to(device))[:, 0].cpu().numpy()
                total += float(np.sum((out - pool.targets[b0:b0 + 64]) ** 2))
                count += out.size
    net.train()
    return _psnr_db(total / max(count, 1))


def train_denoiser(
    source,
    params: TrainParams | None = None,
    *,
    initial: DenoiserModel | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DenoiserModel:
    """Train a denoiser on the accepted training areas.

    Parameters
    ----------
    source : Project or sequence of TrainingArea
        A curated project (``/training/accepted``, references, drift) or areas in memory.
    params : TrainParams
    initial : DenoiserModel, optional
        Resume from these weights (its architecture wins over ``params``); epochs continue its history.
    progress : callable, optional
        ``progress(fraction, message)``; each epoch reports its loss and validation PSNR.
    cancel : CancelToken, optional
        Checked every batch. A cancel after the first epoch returns the best weights so far with
        ``description["training"]["cancelled"] = True``; before that it raises :class:`Cancelled`.

    Returns
    -------
    DenoiserModel
        Best-epoch weights; description with ``training`` (mode, params, data hash, areas,
        history of ``epoch``, ``train_loss``, ``val_psnr_db``, ``elapsed_s``) and ``metrics``.

    Raises
    ------
    RstemError
        No curated or accepted areas, frames smaller than a patch, too little memory.
    """
    import torch

    from .inference import pick_device
    from .network import UNet

    params = params or TrainParams()
    progress = progress or no_progress
    started = time.perf_counter()
    params, note = fit_patch_to_frames(source, params)
    if note:
        progress(0.0, note)
    rng = np.random.default_rng(params.seed)
    train_pool, val_pool, info = build_patch_pools(source, params, rng, progress, cancel)
    device = pick_device(params.device)
    begin, info["started_from"] = initial, "resumed" if initial is not None else "random weights"
    if initial is None and params.start_from == "starter":
        begin, info["started_from"] = _starter_weights(params, info.get("pixel_size_nm"))
        progress(0.0, "starting from " + info["started_from"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(params.seed)
        net = copy.deepcopy(begin.network) if begin is not None else UNet.from_architecture(params.architecture())
    if params.patch_px % net.size_multiple:
        raise RstemError(f"patch_px={params.patch_px} is not a multiple of the network's {net.size_multiple} px")
    net = net.to(device).train()
    history = list(initial.description.get("training", {}).get("history", [])) if initial is not None else []
    first = history[-1]["epoch"] + 1 if history else 1
    opt = torch.optim.Adam(net.parameters(), lr=params.learning_rate)
    val0 = _evaluate(net, val_pool, params, device, params.seed)
    if not history:
        history.append({"epoch": 0, "train_loss": None, "val_psnr_db": round(val0, 4), "elapsed_s": 0.0})
    best, best_state, best_epoch, stale = val0, copy.deepcopy(net.state_dict()), first - 1, 0
    cancelled = False
    for e in range(params.epochs):
        lr = params.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * e / params.epochs)))
        for group in opt.param_groups:
            group["lr"] = lr
        losses = []
        try:
            for idx in iterate_batches(len(train_pool.inputs), params.batch_size, rng):
                if cancel is not None:
                    cancel.check()
                losses.append(_step(net, opt, train_pool, idx, params, rng, device))
        except Cancelled:
            if e == 0:
                raise
            cancelled = True
            break
        val = _evaluate(net, val_pool, params, device, params.seed)
        history.append({"epoch": first + e, "train_loss": round(float(np.mean(losses)), 7),
                        "val_psnr_db": round(val, 4), "elapsed_s": round(time.perf_counter() - started, 2)})
        if val > best + 0.01:
            best, best_state, best_epoch, stale = val, copy.deepcopy(net.state_dict()), first + e, 0
        else:
            stale += 1
        progress(0.05 + 0.95 * (e + 1) / params.epochs,
                 f"epoch {first + e}: loss {np.mean(losses):.3g}, validation PSNR {val:.2f} dB (best {best:.2f} dB)")
        if stale >= params.patience:
            break
    net.load_state_dict(best_state)
    net = net.to("cpu").eval()
    restoration, restoration_note = None, "off"
    if params.restore_width and cancelled:
        restoration_note = "not calibrated: the training was cancelled"
    elif params.restore_width:
        restoration, restoration_note = _calibrate_width(net, source, params, info, progress, cancel)
    description = {
        "normalisation": {"method": "percentile", "percentiles": list(params.percentiles)},
        "training": {"mode": params.mode, "params": asdict(params), **info, "history": history,
                     "cancelled": cancelled, "resumed": initial is not None,
                     "width_restoration_note": restoration_note,
                     "duration_s": round(time.perf_counter() - started, 2)},
        "metrics": {"validation_psnr_db": round(best, 4), "validation_psnr_initial_db": history[0]["val_psnr_db"],
                    "best_epoch": best_epoch,
                    "validation_target": info["validation_target"]},
        "width_restoration": restoration.to_json() if restoration is not None else None,
    }
    return DenoiserModel(net, description)


def _starter_weights(params: TrainParams, pixel_size_nm: float | None) -> tuple[DenoiserModel | None, str]:
    """The shipped starter to begin from (None when its architecture is not ``params``'), and a note."""
    from .weights import starter_model, starter_pixel_size_nm

    try:
        starter = starter_model(pixel_size_nm)
    except RstemError as exc:
        return None, f"random weights: no starter model ({exc})"
    trained_at = starter_pixel_size_nm(starter)
    at = f" (trained at {trained_at:g} nm pixels)" if trained_at else ""
    if dict(starter.network.architecture) != params.architecture():
        return None, f"random weights: the shipped starter{at} has another architecture"
    return starter, f"the shipped starter{at}"


def _calibrate_width(net, source, params: TrainParams, info: dict, progress: ProgressFn,
                     cancel: CancelToken | None) -> tuple[WidthRestoration | None, str]:
    """Line-width restoration from the validation areas' first frames and DCFI references."""
    from .inference import denoise_frames

    names = info["validation_areas"]
    if info["spatial_split"] or not names:
        return None, "not calibrated: no whole area held out for validation"
    _, load, _ = _sources(source, params.exclude_areas)
    plain = DenoiserModel(net, {"normalisation": {"method": "percentile", "percentiles": list(params.percentiles)}})
    per_area = 1 if len(names) >= 8 else 2
    denoised, references, tilts, noise = [], [], [], []
    for name in names:
        area = load(name)
        if area.reference is None:
            return None, f"not calibrated: validation area {name} has no DCFI reference"
        variance = reference_noise_variance(area)
        for j in range(min(per_area, len(area.frames))):
            if cancel is not None:
                cancel.check()
            denoised.append(denoise_frames(area.frames[j], plain, device=params.device))
            references.append(moved(area.reference, area.drift_px[j]))
            tilts.append(area.stage_tilt_deg)
            noise.append(variance)
    progress(0.99, "calibrating the line-width restoration on the validation areas")
    restoration = calibrate_width_restoration(denoised, references, tilts, reference_noise=noise,
                                              max_psnr_loss_db=params.max_psnr_loss_db, cancel=cancel)
    if restoration is None:
        return None, "not calibrated: no dislocation line in the validation references stands clearly above their noise"
    return restoration, "calibrated on " + ", ".join(names)


def _step(net, opt, pool: _Pool, idx: np.ndarray, params: TrainParams, rng: np.random.Generator, device) -> float:
    """One optimiser step on the patches ``idx``; returns the loss."""
    import torch

    x, y = flip_augment(pool.inputs[idx], None if pool.targets is None else pool.targets[idx], rng, params.flip_x)
    if params.mode == "noise2void":
        masked, centres, _ = row_blind_spot_mask(x, params.n2v_fraction, params.n2v_run_px, rng)
        out = net(torch.from_numpy(masked[:, None]).to(device))[:, 0]
        sel = torch.from_numpy(centres).to(device)
        diff = out[sel] - torch.from_numpy(x).to(device)[sel]
    else:
        out = net(torch.from_numpy(np.ascontiguousarray(x)[:, None]).to(device))
        diff = out - torch.from_numpy(np.ascontiguousarray(y)[:, None]).to(device)
    loss = torch.mean(diff.abs()) if params.loss == "l1" else torch.mean(diff**2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())
