"""Independent random streams for the parts of the synthetic experiment.

Every random part (specimen, goniometer, drift, distortion, noise of frame k, training area i ...)
draws from its own :class:`numpy.random.Generator`, seeded from the experiment seed and a stable
name (plus optional indices). Changing one part, or how many numbers it draws, never changes another.
"""

from __future__ import annotations

import zlib

import numpy as np


def component_rng(seed: int, component: str, *indices: int) -> np.random.Generator:
    """A generator for one named part of the experiment.

    Parameters
    ----------
    seed : int
        The experiment seed (>= 0).
    component : str
        Stable name of the part, e.g. ``"specimen"`` or ``"rapid-noise"``.
    *indices : int
        Further keys (frame number, training area ...), each >= 0.

    Returns
    -------
    numpy.random.Generator
        Seeded from ``SeedSequence(seed, spawn_key=(crc32(component), *indices))``.

    Examples
    --------
    >>> a = component_rng(1, "specimen").random()
    >>> b = component_rng(1, "specimen").random()
    >>> a == b
    True
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    key = (zlib.crc32(component.encode("utf-8")), *(int(i) for i in indices))
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))
