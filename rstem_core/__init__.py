"""rstem core: the GUI-free science of rapid STEM dislocation tomography.

Everything here takes and returns plain numpy arrays, dataclasses and HDF5 project files; nothing
imports Qt. See DESIGN.md for the axis and tilt conventions used throughout:
x = tilt axis = fast-scan direction (image columns), y = slow-scan direction (rows), z = beam at 0 deg.
"""

__version__ = "0.1.0"

from .errors import RstemError  # noqa: E402

__all__ = ["RstemError", "__version__"]
