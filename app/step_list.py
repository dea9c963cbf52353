"""The list of pages down the left of the window, each with its state and the next step marked."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from .panel import STATE_COLOURS
from .session import PAGES, Session

SYMBOLS = {"done": "✓", "stale": "!", "failed": "✗", "not run": ""}


def state_icon(state: str, size: int = 18) -> QIcon:
    """A filled circle in the state's colour with its symbol (drawn, no image files needed)."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(STATE_COLOURS.get(state, "#616161"))
    if state == "not run":
        painter.setPen(colour)
        painter.drawEllipse(2, 2, size - 4, size - 4)
    else:
        painter.setBrush(colour)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(1, 1, size - 2, size - 2)
        painter.setPen(QColor("white"))
        font = painter.font()
        font.setBold(True)
        font.setPixelSize(int(size * 0.7))
        painter.setFont(font)
        painter.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, SYMBOLS[state])
    painter.end()
    return QIcon(pix)


class StepList(QListWidget):
    """One row per page: number, title, state (icon and words) and the "next" marker."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setIconSize(QSize(18, 18))
        self.setSpacing(2)
        self.setMinimumWidth(220)
        self.setMaximumWidth(280)
        for k, (_, title, _) in enumerate(PAGES, start=1):
            item = QListWidgetItem(f"{k}  {title}")
            item.setSizeHint(QSize(200, 44))
            self.addItem(item)
        self.update_states()

    def update_states(self) -> None:
        """Re-draw every row from the session's states."""
        nxt = self.session.next_page()
        for row, (key, title, _) in enumerate(PAGES):
            item = self.item(row)
            st = self.session.page_state(key)
            marker = "   ▶ next" if key == nxt else ""
            state_text = st.state if key != "export" else ("ready" if st.reason == "" else "not ready")
            if key == "view3d":
                state_text = "ready" if st.state in ("done", "stale") else "no volume yet"
            item.setText(f"{row + 1}  {title}{marker}\n     {state_text}")
            icon_state = st.state if key not in ("export", "view3d") else (
                "done" if st.state in ("done", "stale") or (key == "export" and not st.reason) else "not run")
            item.setIcon(state_icon(icon_state))
            item.setToolTip(f"{title}: {st.state}" + (f" — {st.reason}" if st.reason else "")
                            + ("\nRecommended next step." if marker else ""))
            font = QFont(self.font())
            font.setBold(bool(marker))
            item.setFont(font)
            item.setBackground(QBrush(QColor("#fff3c4")) if marker else QBrush())
            item.setData(Qt.ItemDataRole.UserRole, st.state)
