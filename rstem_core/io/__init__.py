"""Importers and exporters, one module per format family.

- :func:`read_series`: MRC/IMOD, TIFF, Gatan DM3/DM4 and Velox EMD files (with ``.rawtlt``,
  SerialEM ``.mdoc`` and acquisition-log side files) into a :class:`~rstem_core.model.TiltSeries`
  whose tilt axis lies along x.
- :func:`write_volume`, :func:`write_stack`: MRC, ImageJ TIFF and OME-Zarr exports, written
  atomically.
- :func:`read_angle_file`: IMOD ``.rawtlt`` / ``.tlt`` angle lists.
"""

from .angles import read_angle_file
from .export import write_stack, write_volume
from .formats import READ_SUFFIXES, WRITE_SUFFIXES
from .series import read_series

__all__ = [
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
    "read_angle_file",
    "read_series",
    "write_stack",
    "write_volume",
]
