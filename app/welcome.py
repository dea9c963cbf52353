"""What the window shows with no project open: three ways in, recent projects, and the guide."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

HELP_DIR = Path(__file__).with_name("help")


def guide_text() -> str:
    """The built-in guide (Markdown); a short note when the installation lacks it."""
    try:
        return (HELP_DIR / "guide.md").read_text(encoding="utf-8")
    except OSError:
        return ("# rstem\n\nThe guide is missing from this installation; the README and the docs folder "
                "of rstem hold the same text.")


def app_icon() -> QIcon:
    """The application's icon."""
    return QIcon(str(HELP_DIR / "rstem.svg"))


class WelcomePage(QWidget):
    """Shown instead of the steps while no project is open.

    Signals
    -------
    open_demo(), import_series(), open_project()
        The three big buttons.
    open_recent(str)
        A recent project was double-clicked (its path).
    """

    open_demo = Signal()
    import_series = Signal()
    open_project = Signal()
    open_recent = Signal(str)

    def __init__(self, recent: Callable[[], list[str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._recent = recent
        outer = QHBoxLayout(self)
        outer.setContentsMargins(30, 24, 30, 24)
        left = QVBoxLayout()
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(96, 96))
        left.addWidget(logo)
        intro = QLabel("<h1 style='margin:0'>rstem</h1>"
                       "<p>Rapid STEM tomography: from a five-second tilt series to a 3D "
                       "volume of the dislocations.</p>")
        intro.setWordWrap(True)
        left.addWidget(intro)
        self.buttons: dict[str, QPushButton] = {}
        for key, text, tip, signal in (
            ("demo", "Open the demo project",
             "A small simulated experiment with its ground truth: try every step in a few minutes",
             self.open_demo),
            ("import", "Import a tilt series…",
             "Create a project file and import your rapid tilt series into it", self.import_series),
            ("open", "Open project…", "Open an rstem project file (.h5)", self.open_project),
        ):
            button = QPushButton(text)
            button.setMinimumHeight(44)
            button.setToolTip(tip)
            button.setStyleSheet("font-size: 15px; text-align: left; padding-left: 14px")
            button.clicked.connect(signal.emit)
            self.buttons[key] = button
            left.addWidget(button)
        left.addSpacing(12)
        left.addWidget(QLabel("<b>Recent projects</b> (double-click to open)"))
        self.recent_list = QListWidget()
        self.recent_list.itemActivated.connect(lambda item: self.open_recent.emit(item.data(Qt.ItemDataRole.UserRole)))
        left.addWidget(self.recent_list, 1)
        box = QWidget()
        box.setLayout(left)
        box.setMaximumWidth(420)
        outer.addWidget(box)
        self.guide = QTextBrowser()
        self.guide.setOpenExternalLinks(True)
        self.guide.setMarkdown(guide_text())
        outer.addWidget(self.guide, 1)
        self.refresh()

    def refresh(self) -> None:
        """Fill the recent-projects list."""
        self.recent_list.clear()
        for path in self._recent():
            item = QListWidgetItem(Path(path).name + f"   —   {Path(path).parent}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            if not Path(path).exists():
                item.setText(item.text() + "   (missing)")
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.recent_list.addItem(item)
