"""The window's pages, one module each."""

from __future__ import annotations

from ..panel import Panel
from ..session import Session
from .calibration_panel import CalibrationPanel
from .curation_panel import CurationPanel
from .denoise_panel import DenoisePanel
from .evaluate_panel import EvaluatePanel
from .export_panel import ExportPanel
from .project_panel import ProjectPanel
from .reconstruct_panel import ReconstructPanel
from .refine_panel import RefinePanel
from .view3d_panel import View3DPanel

PANEL_CLASSES: tuple[type[Panel], ...] = (
    ProjectPanel, CalibrationPanel, CurationPanel, DenoisePanel, RefinePanel, ReconstructPanel,
    View3DPanel, EvaluatePanel, ExportPanel,
)


def build_panels(session: Session) -> dict[str, Panel]:
    """One page per key of :data:`~rstem_app.session.PAGE_KEYS`."""
    return {cls.key: cls(session) for cls in PANEL_CLASSES}
