"""The project file: one HDF5 file per session, written only in whole, atomic transactions.

Schema (version 1; see docs/project-file.md for the full description)::

    /                 attrs: schema_version, created, modified, software
    /raw              imported data, never modified after import (rapid, slow, grating-*, training/*)
    /calibration      distortion map of the rapid scan
    /training         curated training set (DCFI references, accepted areas)
    /models           network weights as datasets plus a JSON description (never pickles)
    /processed        corrected, denoised and aligned stacks, refined angles
    /reconstruction   volumes
    /evaluation       quality numbers
    /truth            ground truth, synthetic projects only
    /log              one JSON entry per step run (parameters, software version, time, duration)

Guarantees
----------
* A save never leaves a half-written file. :meth:`Project.edit` copies the project to a temporary
  file beside it, applies the changes there, fsyncs it and renames it over the original
  (``os.replace`` is atomic on POSIX and Windows). A crash or a kill at any moment leaves either the
  old or the new content; a leftover temporary file is removed the next time the project is opened
  for writing. An exception inside the ``with`` block discards every change of that transaction.
* One writer at a time: opening for writing takes an exclusive lock on ``PROJECT.h5.lock``; the
  kernel releases it when the process dies, so a crash never leaves a stale lock.
* Only arrays, numbers, strings and JSON text are stored; there are no pickled objects.
* A file written by a newer schema is refused with a message naming the version needed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import __version__
from .errors import ProjectError, ProjectLockedError, RstemError, SchemaVersionError
from .model import TiltSeries, Volume

try:  # POSIX advisory locks; Windows falls back to msvcrt below.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

SCHEMA_VERSION = 1
TOP_LEVEL_GROUPS = (
    "raw",
    "calibration",
    "training",
    "models",
    "processed",
    "reconstruction",
    "evaluation",
    "truth",
    "log",
)
#: the kinds of imported data, each a group under /raw (``training`` holds one group per area)
ROLES = ("rapid", "slow", "grating-rapid", "grating-slow", "training")
_TMP_PREFIX = "."
_TMP_MARK = ".tmp-"
#: a transaction that frees more than this share of the file rewrites it compactly
_REPACK_FRACTION = 0.25


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def to_json(obj: Any) -> str:
    """Serialise parameters or metadata to JSON (dataclasses, numpy scalars and arrays allowed)."""
    return json.dumps(obj, default=_jsonable, sort_keys=True)


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # directories cannot be opened on Windows; nothing to sync there
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Lock:
    """Exclusive advisory lock on ``PROJECT.h5.lock``, released by the kernel if we die."""

    def __init__(self, project_path: Path) -> None:
        self.path = project_path.with_name(project_path.name + ".lock")
        self._fh = None

    def acquire(self, project_path: Path) -> None:
        fh = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # pragma: no cover - Windows
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise ProjectLockedError(
                f"{project_path} is open for writing by {holder}; close it there first "
                "or open it read-only"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {_now()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            self._fh.seek(0)
            self._fh.truncate()
        if fcntl is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None


def _open_h5(path: Path, mode: str) -> h5py.File:
    """Open an HDF5 file, turning every low-level failure into a one-line ProjectError."""
    if not path.exists():
        raise ProjectError(f"{path}: no such project file")
    if path.is_dir():
        raise ProjectError(f"{path}: is a folder, not a project file")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        reason = "not an HDF5 file, or truncated" if path.stat().st_size < 512 or not h5py.is_hdf5(path) else str(exc).splitlines()[0]
        raise ProjectError(f"{path}: cannot be read as an rstem project ({reason})") from None


def _check_schema(path: Path, h5: h5py.File) -> int:
    if "schema_version" not in h5.attrs:
        raise ProjectError(f"{path}: an HDF5 file but not an rstem project (no schema_version)")
    version = int(h5.attrs["schema_version"])
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} was written with project schema version {version}; this rstem "
            f"({__version__}) reads versions up to {SCHEMA_VERSION}: install a newer rstem"
        )
    return version


class ProjectWriter:
    """Changes inside one :meth:`Project.edit` transaction, made on a temporary copy.

    Keys are paths inside the file such as ``"raw/rapid"`` or ``"/truth/density"``.
    """

    def __init__(self, h5: h5py.File) -> None:
        self.h5 = h5
        self.freed_bytes = 0
        self.touched: set[str] = set()

    def _touch(self, key: str) -> None:
        self.touched.add(key.strip("/"))

    def stamp_generation(self) -> int:
        """Number this transaction and stamp every changed item and its parent groups with it.

        Each item's ``attrs['generation']`` then says in which transaction it (or anything
        inside it) last changed; the pipeline compares them to find stale results.
        """
        generation = int(self.h5.attrs.get("generation", 0)) + 1
        self.h5.attrs["generation"] = generation
        stamped: set[str] = set()
        for key in self.touched:
            parts = [p for p in key.split("/") if p]
            for depth in range(len(parts), 0, -1):
                path = "/".join(parts[:depth])
                if path in stamped or path not in self.h5:
                    continue
                self.h5[path].attrs["generation"] = generation
                stamped.add(path)
        return generation

    # -- structure ------------------------------------------------------------------------
    def require_group(self, key: str) -> h5py.Group:
        self._touch(key)
        return self.h5.require_group(key)

    def delete(self, key: str) -> None:
        """Remove a dataset or group if present."""
        self._touch(key)
        if key in self.h5:
            self.freed_bytes += _storage_size(self.h5[key])
            del self.h5[key]

    # -- content --------------------------------------------------------------------------
    def write_array(
        self,
        key: str,
        data: np.ndarray,
        *,
        attrs: dict[str, Any] | None = None,
        store_dtype: str | np.dtype | None = None,
        compression: str | None = None,
        chunks: tuple[int, ...] | bool | None = None,
    ) -> h5py.Dataset:
        """Write (or replace) a numeric array; ``store_dtype`` narrows it on disk (e.g. uint16)."""
        self._touch(key)
        arr = np.asarray(data)
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"{key}: only numeric arrays are stored, got dtype {arr.dtype}")
        if store_dtype is not None:
            arr = _narrow(arr, np.dtype(store_dtype), key)
        self.delete(key)
        ds = self.h5.create_dataset(key, data=arr, compression=compression, chunks=chunks)
        if attrs:
            self.set_attrs(key, attrs)
        return ds

    def create_array(
        self,
        key: str,
        shape: tuple[int, ...],
        dtype: str | np.dtype,
        *,
        chunks: tuple[int, ...] | bool | None = True,
        compression: str | None = None,
    ) -> h5py.Dataset:
        """Create an empty dataset to be filled piece by piece (for data larger than memory)."""
        self._touch(key)
        self.delete(key)
        return self.h5.create_dataset(key, shape=shape, dtype=dtype, chunks=chunks, compression=compression)

    def write_json(self, key: str, obj: Any) -> None:
        """Store any JSON-serialisable object as a UTF-8 string dataset."""
        self._touch(key)
        self.delete(key)
        self.h5.create_dataset(key, data=to_json(obj), dtype=h5py.string_dtype("utf-8"))

    def set_attrs(self, key: str, attrs: dict[str, Any]) -> None:
        """Set attributes; dicts and lists of non-numbers are stored as JSON strings."""
        self._touch(key)
        obj = self.h5.require_group(key) if key not in self.h5 else self.h5[key]
        for name, value in attrs.items():
            obj.attrs[name] = _attr_value(value)

    def set_params(self, key: str, params: Any) -> None:
        """Record a step's parameters (a dataclass or dict) as ``attrs['params']`` JSON."""
        self._touch(key)
        self.require_group(key).attrs["params"] = to_json(params)

    def append_log(self, entry: dict[str, Any]) -> None:
        """Append one provenance entry to ``/log/entries`` (a list of JSON strings)."""
        entry = {"time": _now(), "software": f"rstem {__version__}", **entry}
        grp = self.require_group("log")
        text = to_json(entry)
        if "entries" not in grp:
            grp.create_dataset("entries", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"), chunks=(64,))
        ds = grp["entries"]
        ds.resize((ds.shape[0] + 1,))
        ds[-1] = text

    def write_series(
        self,
        key: str,
        series: TiltSeries,
        *,
        store_dtype: str | np.dtype | None = None,
        compression: str | None = None,
    ) -> None:
        """Store a :class:`TiltSeries` as a group: frames, angles, optional arrays, attributes."""
        self.delete(key)
        grp = self.require_group(key)
        rows, cols = series.frames.shape[1:]
        self.write_array(
            f"{key}/frames", series.frames, store_dtype=store_dtype, compression=compression,
            chunks=(1, rows, cols),
        )
        self.write_array(f"{key}/angles_deg", series.angles_deg)
        if series.measured_angles_deg is not None:
            self.write_array(f"{key}/measured_angles_deg", series.measured_angles_deg)
        if series.timestamps_s is not None:
            self.write_array(f"{key}/timestamps_s", series.timestamps_s)
        grp.attrs["kind"] = "tilt_series"
        grp.attrs["pixel_size_nm"] = series.pixel_size_nm
        grp.attrs["tilt_axis_deg"] = series.tilt_axis_deg
        if series.line_time_s is not None:
            grp.attrs["line_time_s"] = series.line_time_s
        grp.attrs["metadata"] = to_json(series.metadata)

    def write_volume(self, key: str, volume: Volume, *, compression: str | None = None) -> None:
        """Store a :class:`Volume` as a group with dataset ``data`` (z, y, x) and its voxel size."""
        self.delete(key)
        grp = self.require_group(key)
        self.write_array(f"{key}/data", volume.data, compression=compression)
        grp.attrs["kind"] = "volume"
        grp.attrs["voxel_size_nm"] = volume.voxel_size_nm
        grp.attrs["metadata"] = to_json(volume.metadata)


def _narrow(arr: np.ndarray, dtype: np.dtype, key: str) -> np.ndarray:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if lo < info.min or hi > info.max:
            raise ValueError(f"{key}: values {lo}..{hi} do not fit in {dtype}")
        return np.rint(arr).astype(dtype)
    return arr.astype(dtype)


def _attr_value(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)) and not (
        isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value)
    ):
        return to_json(value)
    if value is None:
        return to_json(None)
    if isinstance(value, Path):
        return str(value)
    return value


def _storage_size(obj: h5py.Group | h5py.Dataset) -> int:
    if isinstance(obj, h5py.Dataset):
        return int(obj.id.get_storage_size())
    return sum(_storage_size(item) for item in obj.values())


class Project:
    """An open rstem project file.

    Use :meth:`create` or :meth:`open`; read with :meth:`read_array`, :meth:`read_series` and
    friends; change it only inside ``with project.edit() as w:`` (all or nothing).

    Examples
    --------
    >>> with Project.create("p.h5") as proj:                      # doctest: +SKIP
    ...     with proj.edit() as w:
    ...         w.write_series("raw/rapid", series)
    """

    def __init__(self, path: Path, mode: str, h5: h5py.File, lock: _Lock | None) -> None:
        self.path = path
        self.mode = mode
        self._h5: h5py.File | None = h5
        self._lock = lock

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, *, overwrite: bool = False) -> Project:
        """Create a new, empty project and open it for writing.

        Raises
        ------
        ProjectError
            If the file exists and ``overwrite`` is False, or the folder is not writable.
        """
        path = Path(path).absolute()
        if path.exists() and not overwrite:
            raise ProjectError(f"{path} already exists; choose another name or allow overwriting")
        if not path.parent.is_dir():
            raise ProjectError(f"{path.parent}: no such folder")
        lock = _Lock(path)
        lock.acquire(path)
        try:
            tmp = cls._tmp_name(path)
            with h5py.File(tmp, "w") as h5:
                h5.attrs["schema_version"] = SCHEMA_VERSION
                h5.attrs["created"] = _now()
                h5.attrs["modified"] = _now()
                h5.attrs["software"] = f"rstem {__version__}"
                for name in TOP_LEVEL_GROUPS:
                    h5.create_group(name)
            cls._commit(tmp, path)
            return cls(path, "a", _open_h5(path, "r"), lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> Project:
        """Open an existing project, ``mode="r"`` to read or ``"a"`` to read and write.

        Raises
        ------
        ProjectError
            The file is missing, is not an HDF5 file, is truncated or is not an rstem project.
        SchemaVersionError
            The file was written by a newer schema.
        ProjectLockedError
            ``mode="a"`` and another process has the project open for writing.
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = Path(path).absolute()
        h5 = _open_h5(path, "r")
        try:
            _check_schema(path, h5)
        except BaseException:
            h5.close()
            raise
        lock = None
        if mode == "a":
            lock = _Lock(path)
            try:
                lock.acquire(path)
            except BaseException:
                h5.close()
                raise
            cls._remove_stale_temporaries(path)
        return cls(path, mode, h5, lock)

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r}, mode={self.mode!r})"

    # -- reading --------------------------------------------------------------------------
    @property
    def h5(self) -> h5py.File:
        """The read-only HDF5 handle of the current content."""
        if self._h5 is None:
            raise ProjectError(f"{self.path}: the project is closed")
        return self._h5

    @property
    def schema_version(self) -> int:
        return int(self.h5.attrs["schema_version"])

    def __contains__(self, key: str) -> bool:
        return key in self.h5

    def read_array(self, key: str) -> np.ndarray:
        self._require(key)
        return self.h5[key][()]

    def read_json(self, key: str) -> Any:
        self._require(key)
        raw = self.h5[key][()]
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)

    def attrs(self, key: str = "/") -> dict[str, Any]:
        """Attributes of a group or dataset; JSON-string attributes stay strings."""
        self._require(key)
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.h5[key].attrs.items()}

    def generation(self, key: str = "/") -> int:
        """The transaction number in which ``key`` (or anything inside it) last changed; 0 when
        unknown (absent, or written before generations were recorded)."""
        if key not in self.h5:
            return 0
        return int(self.h5[key].attrs.get("generation", 0))

    def params(self, key: str) -> Any:
        """A step's stored parameters (``attrs['params']``) as a dict, or None."""
        if key not in self.h5 or "params" not in self.h5[key].attrs:
            return None
        return json.loads(self.h5[key].attrs["params"])

    def read_series(self, key: str) -> TiltSeries:
        self._require(key)
        grp = self.h5[key]
        a = grp.attrs
        return TiltSeries(
            frames=grp["frames"][()].astype(np.float32, copy=False),
            angles_deg=grp["angles_deg"][()],
            pixel_size_nm=float(a["pixel_size_nm"]),
            measured_angles_deg=grp["measured_angles_deg"][()] if "measured_angles_deg" in grp else None,
            timestamps_s=grp["timestamps_s"][()] if "timestamps_s" in grp else None,
            line_time_s=float(a["line_time_s"]) if "line_time_s" in a else None,
            tilt_axis_deg=float(a.get("tilt_axis_deg", 0.0)),
            metadata=json.loads(a.get("metadata", "{}")),
        )

    def read_volume(self, key: str) -> Volume:
        self._require(key)
        grp = self.h5[key]
        return Volume(
            data=grp["data"][()],
            voxel_size_nm=float(grp.attrs["voxel_size_nm"]),
            metadata=json.loads(grp.attrs.get("metadata", "{}")),
        )

    def log_entries(self) -> list[dict[str, Any]]:
        if "log/entries" not in self.h5:
            return []
        return [json.loads(s.decode() if isinstance(s, bytes) else s) for s in self.h5["log/entries"][()]]

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset: ``{"path", "shape", "dtype"}``, in file order."""
        out: list[dict[str, Any]] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                out.append({"path": "/" + name, "shape": list(obj.shape), "dtype": str(obj.dtype)})

        self.h5.visititems(visit)
        return out

    def groups(self, key: str) -> list[str]:
        """Names of the sub-groups of ``key`` (empty if it does not exist)."""
        if key not in self.h5:
            return []
        return [k for k, v in self.h5[key].items() if isinstance(v, h5py.Group)]

    def _require(self, key: str) -> None:
        if key not in self.h5:
            raise ProjectError(f"{self.path.name} has no {key.strip('/')} (not imported or not computed yet)")

    # -- writing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def edit(self) -> Iterator[ProjectWriter]:
        """A transaction: changes land all together when the block ends, or not at all.

        The project is copied to a temporary file beside it; the block changes the copy; on
        success the copy is flushed, fsynced and atomically renamed over the project.
        """
        if self.mode != "a" or self._lock is None:
            raise ProjectError(f"{self.path} is open read-only; open it with mode='a' to change it")
        tmp = self._tmp_name(self.path)
        try:
            shutil.copyfile(self.path, tmp)
            with h5py.File(tmp, "r+") as h5:
                writer = ProjectWriter(h5)
                yield writer
                writer.stamp_generation()
                h5.attrs["modified"] = _now()
                h5.attrs["software"] = f"rstem {__version__}"
                freed = writer.freed_bytes
            if freed > _REPACK_FRACTION * max(tmp.stat().st_size, 1):
                tmp = self._repack(tmp)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self.h5.close()
        self._h5 = None
        try:
            self._commit(tmp, self.path)
        finally:
            self._h5 = _open_h5(self.path, "r")

    def save_as(self, path: str | os.PathLike) -> Project:
        """Copy the project to ``path`` (atomically) and return it opened for writing there."""
        dest = Path(path).absolute()
        if dest == self.path:
            return self
        lock = _Lock(dest)
        lock.acquire(dest)
        try:
            tmp = self._tmp_name(dest)
            shutil.copyfile(self.path, tmp)
            self._commit(tmp, dest)
        except BaseException:
            lock.release()
            raise
        self.close()
        return Project(dest, "a", _open_h5(dest, "r"), lock)

    @staticmethod
    def _tmp_name(path: Path) -> Path:
        return path.with_name(f"{_TMP_PREFIX}{path.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")

    @staticmethod
    def _commit(tmp: Path, path: Path) -> None:
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(path.parent, directory=True)

    @staticmethod
    def _remove_stale_temporaries(path: Path) -> None:
        """Remove temporaries left by a writer that died (only called while holding the lock)."""
        for stale in path.parent.glob(f"{_TMP_PREFIX}{path.name}{_TMP_MARK}*"):
            with contextlib.suppress(OSError):
                stale.unlink()

    @staticmethod
    def _repack(tmp: Path) -> Path:
        """Rewrite a file whose deleted datasets left much unused space (HDF5 never shrinks)."""
        packed = tmp.with_name(tmp.name + "-packed")
        with h5py.File(tmp, "r") as src, h5py.File(packed, "w") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            for name in src:
                src.copy(src[name], dst, name=name)
        tmp.unlink()
        return packed


def pick_series(project: Project, sources: dict[str, str], source: str, purpose: str) -> str:
    """The project key of the series a step works on.

    Parameters
    ----------
    sources : dict
        ``{name: project key}`` in order of preference (the most processed first).
    source : str
        ``"auto"`` (the first one the project holds) or one of ``sources``.
    purpose : str
        What the step does with it, for the message ("to denoise").

    Raises
    ------
    RstemError
        The chosen series is missing, or (``auto``) the project holds none of them.
    """
    if source != "auto":
        key = sources[source]
        if key not in project:
            raise RstemError(f"{project.path.name} has no {source} series {purpose}")
        return key
    for key in sources.values():
        if key in project:
            return key
    raise RstemError(f"{project.path.name} has no rapid series: import one with `rstem import PROJECT rapid FILE`")
