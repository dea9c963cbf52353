"""SIRT, FBP and CGLS on a :class:`~rstem_core.recon.projector.Projector`, all slices at once.

Each algorithm takes the tilt series as a (frames*rows, x) torch matrix and returns the volume as
a (z*y, x) matrix; :func:`rstem_core.recon.reconstruct` handles shapes, devices and backends.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..progress import CancelToken, ProgressFn, no_progress
from .projector import Projector

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")


def _safe_inverse(t: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(t)
    nz = t > 1e-8
    out[nz] = 1.0 / t[nz]
    return out


def sirt(
    projector: Projector,
    sinogram: torch.Tensor,
    *,
    iterations: int = 50,
    relaxation: float = 1.0,
    nonnegative: bool = True,
    x0: torch.Tensor | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_iteration: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Simultaneous iterative reconstruction: x += relaxation * C A^T R (b - A x).

    R and C are the inverse row and column sums of the system matrix (the usual SIRT weights, as
    in ASTRA). With ``nonnegative`` negative voxels are set to zero after each iteration.
    ``on_iteration(k, x)`` sees the estimate after iteration k (1-based; a live preview; it must
    not change ``x``).

    References
    ----------
    Gregor & Benson, IEEE TMI 27 (2008) 918; Zhao et al. (the paper) use 50 iterations.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if not 0 < relaxation < 2:
        raise ValueError(f"relaxation must lie in (0, 2), got {relaxation}")
    progress = progress or no_progress
    r = _safe_inverse(projector.row_sums)[:, None]
    c = (_safe_inverse(projector.col_sums) * relaxation)[:, None]
    x = torch.zeros((projector.shape[1], sinogram.shape[1]), dtype=sinogram.dtype, device=sinogram.device)
    if x0 is not None:
        x.copy_(x0)
    for k in range(iterations):
        if cancel is not None:
            cancel.check()
        residual = sinogram - projector.forward(x)
        residual.mul_(r)
        x.addcmul_(projector.adjoint(residual), c)
        if nonnegative:
            x.clamp_(min=0.0)
        if on_iteration is not None:
            on_iteration(k + 1, x)
        progress((k + 1) / iterations, f"SIRT iteration {k + 1}/{iterations}")
    return x


def cgls(
    projector: Projector,
    sinogram: torch.Tensor,
    *,
    iterations: int = 20,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_iteration: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Conjugate gradients on the normal equations (least squares, no constraint), per slice.

    ``on_iteration(k, x)`` sees the estimate after iteration k, as in :func:`sirt`.

    Every x-slice (column) runs its own CG recursion; they share the matrix products.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    progress = progress or no_progress
    x = torch.zeros((projector.shape[1], sinogram.shape[1]), dtype=sinogram.dtype, device=sinogram.device)
    r = sinogram.clone()
    s = projector.adjoint(r)
    p = s.clone()
    gamma = (s * s).sum(0)
    for k in range(iterations):
        if cancel is not None:
            cancel.check()
        q = projector.forward(p)
        qq = (q * q).sum(0)
        alpha = torch.where(qq > 0, gamma / qq.clamp_min(1e-30), torch.zeros_like(qq))
        x.add_(p * alpha)
        r.sub_(q * alpha)
        s = projector.adjoint(r)
        gamma_new = (s * s).sum(0)
        beta = torch.where(gamma > 0, gamma_new / gamma.clamp_min(1e-30), torch.zeros_like(gamma))
        p = s + p * beta
        gamma = gamma_new
        if on_iteration is not None:
            on_iteration(k + 1, x)
        progress((k + 1) / iterations, f"CGLS iteration {k + 1}/{iterations}")
    return x


def ramp_filter(n_rows: int, window: str = "ram-lak") -> np.ndarray:
    """Frequency response of the discrete ramp filter for zero-padded rows (length = FFT size).

    The spatial-domain Ram-Lak kernel (Kak & Slaney, eq. 3.61) is transformed, so the DC term is
    right for a finite detector; ``window`` tapers high frequencies.
    """
    if window not in FILTERS:
        raise ValueError(f"unknown filter window {window!r}; choose one of {', '.join(FILTERS)}")
    size = max(64, int(2 ** math.ceil(math.log2(2 * n_rows))))
    n = np.concatenate([np.arange(0, size // 2 + 1), np.arange(size // 2 - 1, 0, -1)])
    h = np.zeros(size)
    h[0] = 0.25
    odd = n % 2 == 1
    h[odd] = -1.0 / (np.pi * n[odd]) ** 2
    response = np.real(np.fft.fft(h))
    freq = np.fft.fftfreq(size)  # cycles per pixel, |f| <= 0.5
    w = np.abs(freq) / 0.5
    if window == "shepp-logan":
        response *= np.sinc(w / 2)
    elif window == "cosine":
        response *= np.cos(np.pi * w / 2)
    elif window == "hamming":
        response *= 0.54 + 0.46 * np.cos(np.pi * w)
    elif window == "hann":
        response *= 0.5 + 0.5 * np.cos(np.pi * w)
    return response


def angular_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Angular interval (radians) each frame stands for: half the gap to each neighbour."""
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    order = np.argsort(a)
    s = a[order]
    if s.size == 1:
        return np.array([np.pi])
    gaps = np.diff(s)
    w = np.empty_like(s)
    w[1:-1] = 0.5 * (gaps[1:] + gaps[:-1])
    w[0], w[-1] = gaps[0], gaps[-1]
    out = np.empty_like(w)
    out[order] = w
    return out


def fbp(
    projector: Projector,
    sinogram: torch.Tensor,
    *,
    window: str = "ram-lak",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> torch.Tensor:
    """Filtered back-projection: ramp-filter each frame along y, weight by angle, back-project.

    With per-row angles the filter is applied per frame and each frame is weighted by the
    interval of its mean angle (an approximation; SIRT handles the time lag exactly).
    """
    progress = progress or no_progress
    g = projector.geometry
    n, rows = g.n_frames, g.n_rows
    response = torch.as_tensor(ramp_filter(rows, window), dtype=sinogram.dtype, device=sinogram.device)
    size = response.shape[0]
    weights = angular_weights(g.row_angles_deg().mean(axis=1))
    sino = sinogram.reshape(n, rows, -1)
    padded = torch.nn.functional.pad(sino.permute(0, 2, 1), (0, size - rows))
    filtered = torch.fft.irfft(torch.fft.rfft(padded, dim=-1) * response[: size // 2 + 1], n=size, dim=-1)
    filtered = filtered[..., :rows].permute(0, 2, 1)
    filtered = filtered * torch.as_tensor(weights, dtype=sinogram.dtype, device=sinogram.device)[:, None, None]
    if cancel is not None:
        cancel.check()
    progress(0.5, "FBP: filtered")
    x = projector.adjoint(filtered.reshape(n * rows, -1).contiguous())
    progress(1.0, "FBP: back-projected")
    return x
