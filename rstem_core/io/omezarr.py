"""OME-Zarr (NGFF v0.4, Zarr format 2) export of a (z, y, x) array, readable by napari and Fiji.

Zarr format 2 with NGFF 0.4 metadata is what ome-zarr-py, napari-ome-zarr and the Fiji readers
accept most widely; chunks use "/" keys as NGFF 0.4 requires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

_CHUNK = (64, 256, 256)
NGFF_VERSION = "0.4"


def multiscales_attribute(name: str, voxel_size_nm: float) -> list[dict[str, Any]]:
    """The NGFF 0.4 ``multiscales`` root attribute for one level ``"0"`` with cubic voxels in nm."""
    v = float(voxel_size_nm)
    return [
        {
            "version": NGFF_VERSION,
            "name": name,
            "axes": [{"name": axis, "type": "space", "unit": "nanometer"} for axis in "zyx"],
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [v, v, v]}]}
            ],
        }
    ]


def write_ome_zarr(
    path: Path, data: np.ndarray, voxel_size_nm: float, *, name: str, extra: dict[str, Any]
) -> None:
    """Write a float32 (z, y, x) array as a one-level OME-Zarr group.

    Parameters
    ----------
    path : Path
        The folder to create (normally a temporary name that the caller renames).
    data : ndarray, shape (z, y, x)
        Written as float32 into array ``"0"``.
    voxel_size_nm : float
        Voxel edge in nanometres, written as the NGFF scale of every axis.
    name : str
        Name shown by viewers.
    extra : dict
        JSON-serialisable attributes stored under the root attribute ``"rstem"``.
    """
    import zarr  # imported on use: ~0.3 s, only exports need it

    volume = np.ascontiguousarray(data, dtype=np.float32)
    root = zarr.open_group(store=str(path), mode="w-", zarr_format=2)
    chunks = tuple(min(c, s) for c, s in zip(_CHUNK, volume.shape, strict=True))
    array = root.create_array(
        "0",
        shape=volume.shape,
        chunks=chunks,
        dtype="float32",
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )
    array[...] = volume
    root.attrs["multiscales"] = multiscales_attribute(name, voxel_size_nm)
    root.attrs["rstem"] = extra
