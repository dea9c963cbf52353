"""The base of every page on the right of the window: a title, a state line and a body."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .session import Session

STATE_COLOURS = {"done": "#2e7d32", "stale": "#ef6c00", "failed": "#c62828", "not run": "#616161"}


class Panel(QWidget):
    """A page of the window bound to the session.

    Subclasses fill :attr:`body` and override :meth:`refresh`, which the window calls when the
    project or its states changed and no work is running (views never read the project while a
    worker writes it).
    """

    key = ""
    title = ""
    description = ""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 8)
        head = QHBoxLayout()
        self.title_label = QLabel(f"<h2 style='margin:0'>{self.title}</h2>")
        self.state_label = QLabel()
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head.addWidget(self.title_label)
        head.addSpacing(12)
        head.addWidget(self.state_label, 1)
        outer.addLayout(head)
        if self.description:
            about = QLabel(self.description)
            about.setWordWrap(True)
            about.setStyleSheet("color: #444")
            outer.addWidget(about)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        outer.addWidget(line)
        self.body = QVBoxLayout()
        outer.addLayout(self.body, 1)

    def show_state(self) -> None:
        """Write the page's state and its reason in the header."""
        st = self.session.page_state(self.key)
        colour = STATE_COLOURS.get(st.state, "#616161")
        reason = f" — {st.reason}" if st.reason else ""
        self.state_label.setText(f"<b style='color:{colour}'>{st.state}</b>{reason}")

    def refresh(self) -> None:
        """Re-read the project and show it (called by the window when idle)."""
        self.show_state()
