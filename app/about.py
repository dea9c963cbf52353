"""Help › About: the version of rstem and of the parts it is built from, with their licences."""

from __future__ import annotations

import platform
from importlib import metadata

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from .welcome import app_icon, guide_text

#: (distribution, licence) of the parts the application bundles
PARTS = (
    ("PySide6-Essentials", "LGPL-3.0 (Qt for Python)"),
    ("shiboken6", "LGPL-3.0"),
    ("numpy", "BSD-3-Clause"),
    ("scipy", "BSD-3-Clause"),
    ("scikit-image", "BSD-3-Clause"),
    ("torch", "BSD-3-Clause"),
    ("h5py", "BSD-3-Clause"),
    ("mrcfile", "BSD-3-Clause"),
    ("tifffile", "BSD-3-Clause"),
    ("rosettasciio", "GPL-3.0"),
    ("zarr", "MIT"),
    ("matplotlib", "PSF-based (Matplotlib licence)"),
    ("pyqtgraph", "MIT"),
    ("vispy", "BSD-3-Clause"),
    ("PyOpenGL", "BSD-style"),
    ("safetensors", "Apache-2.0"),
    ("astra-toolbox", "GPL-3.0 (optional)"),
    ("bm3d", "free for non-commercial use (optional)"),
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_html() -> str:
    """The About text: versions and licences, as HTML."""
    rows = "".join(f"<tr><td>{name}</td><td>{_version(name)}</td><td>{licence}</td></tr>"
                   for name, licence in PARTS)
    return (f"<h2>rstem {_version('rstem')}</h2>"
            "<p>Rapid STEM dislocation tomography workbench (BSD-3-Clause), following Zhao et al., "
            "<i>Five-second STEM dislocation tomography for 300 nm thick specimen assisted by "
            "deep-learning-based noise filtering</i>, Sci. Rep.</p>"
            f"<p>Python {platform.python_version()} on {platform.system()} {platform.machine()}</p>"
            "<h3>Built with</h3><table cellspacing='0' cellpadding='3' border='1'>"
            "<tr><th>part</th><th>version</th><th>licence</th></tr>" + rows + "</table>")


class TextDialog(QDialog):
    """A resizable dialog showing rich text or Markdown."""

    def __init__(self, title: str, *, html: str | None = None, markdown: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowIcon(app_icon())
        self.resize(720, 640)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        if markdown is not None:
            self.text.setMarkdown(markdown)
        else:
            self.text.setHtml(html or "")
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def about_dialog(parent: QWidget | None = None) -> TextDialog:
    return TextDialog("About rstem", html=about_html(), parent=parent)


def guide_dialog(parent: QWidget | None = None) -> TextDialog:
    return TextDialog("rstem guide", markdown=guide_text(), parent=parent)
