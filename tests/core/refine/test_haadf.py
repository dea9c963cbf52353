"""The real HAADF tilt series (etspy test data): the aligned stack reconstructs sharper.

The figure of merit is the reprojection error of a SIRT reconstruction: the relative RMS
difference between the frames and the re-projection of the volume reconstructed from them.
A misaligned series cannot be explained by any one volume, so its error stays high; the aligned
series (refined angles, shifts removed, axis along x) must bring it down clearly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rstem_core.importing import import_files
from rstem_core.project import Project
from rstem_core.recon import Geometry, Projector, reconstruct
from rstem_core.recon.thickness import bin_frames
from rstem_core.refine_step import ALIGNED, OUTPUT, RefineParams, run_refinement

#: reprojection error of the aligned series relative to the unaligned one must be below this
#: (measured 0.179 against 0.472, a ratio of 0.38; the raw frames jump by up to ~35 px)
MAX_ERROR_RATIO = 0.6


def reprojection_error(frames: np.ndarray, angles_deg: np.ndarray, *, nz_px: int = 96, binning: int = 2,
                       iterations: int = 30) -> float:
    """Relative RMS reprojection error of a SIRT reconstruction (frame margins of 4 px left out).

    Parameters
    ----------
    frames : ndarray, shape (n, rows, cols)
        The series, tilt axis along x.
    angles_deg : ndarray, shape (n,)
    nz_px : int
        Volume thickness in frame pixels.
    binning : int
        Binning applied first (pixels per pixel).
    iterations : int
        SIRT iterations.
    """
    f = bin_frames(np.asarray(frames, dtype=np.float32), binning)
    f = f - np.percentile(f, 5)
    f /= np.percentile(f, 99.5)
    geometry = Geometry(np.asarray(angles_deg, dtype=np.float64), f.shape[1], f.shape[2], nz_px // binning)
    volume = reconstruct(f, geometry, algorithm="sirt", iterations=iterations, device="cpu")
    reprojected = Projector(geometry, "cpu").project(volume)
    inner = (slice(None), slice(4, -4), slice(4, -4))
    return float(np.linalg.norm(reprojected[inner] - f[inner]) / np.linalg.norm(f[inner]))


@pytest.fixture(scope="module")
def haadf_project(data_file, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HAADF series imported (turned so that the tilt axis lies along x) and refined."""
    path = tmp_path_factory.mktemp("haadf") / "haadf.h5"
    with Project.create(path) as proj:
        import_files(proj, "rapid", [data_file("etspy/HAADF.mrc")])
    with Project.open(path, "a") as proj:
        run_refinement(proj, RefineParams(contrast="bright", binning=2))
    return path


@pytest.mark.slow
def test_aligned_haadf_series_reconstructs_sharper(haadf_project: Path) -> None:
    with Project.open(haadf_project) as proj:
        raw = proj.read_series("raw/rapid")
        aligned = proj.read_series(ALIGNED)
        assert proj.h5[OUTPUT].attrs["contrast"] == "bright"
    before = reprojection_error(raw.frames, raw.angles_deg)
    after = reprojection_error(aligned.frames, aligned.angles_deg)
    assert after < MAX_ERROR_RATIO * before, f"reprojection error {before:.3f} -> {after:.3f}"


@pytest.mark.slow
def test_haadf_refinement_keeps_every_frame_and_the_angle_range(haadf_project: Path) -> None:
    with Project.open(haadf_project) as proj:
        raw = proj.read_series("raw/rapid")
        angles = proj.read_array(f"{OUTPUT}/angles_deg")
        flags = proj.read_array(f"{OUTPUT}/flags")
    assert angles.shape == (77,)
    assert not np.any(flags & 1)
    assert np.all(np.diff(angles) > 0)
    assert np.max(np.abs(angles - raw.angles_deg)) < 3.0
