"""A parameter form generated from a step's frozen parameter dataclass.

Widgets follow the field types (bool: check box; int/float: spin box with the unit from the
field name as suffix; str with a fixed set of choices: combo box; ``X | None``: an "automatic"
check box beside the value; nested dataclass: a sub-form in a group box) and every tooltip is
the field's text from the class's numpydoc "Attributes" section.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import sys
import types
import typing
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

#: suffix of a field name -> unit shown after the value (longest first)
UNITS: tuple[tuple[str, str], ...] = (
    ("_deg_s2", " °/s²"), ("_px_s2", " px/s²"), ("_deg_s", " °/s"), ("_nm", " nm"),
    ("_px", " px"), ("_deg", " °"), ("_s", " s"), ("_mb", " MiB"), ("_db", " dB"),
)


def unit_of(name: str) -> tuple[str, str]:
    """``(label without the unit, unit suffix)`` for a field name such as ``margin_nm``."""
    for ending, unit in UNITS:
        if name.endswith(ending):
            return name[: -len(ending)], unit
    return name, ""


def label_of(name: str) -> str:
    """A readable label: ``min_window_quality`` -> ``Min window quality``."""
    bare, _ = unit_of(name)
    text = bare.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def field_docs(cls: type) -> dict[str, tuple[str, str]]:
    """``{field: (type text, description)}`` from the numpydoc "Attributes" section of ``cls``."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^Attributes\n-+\n(.*?)(?:\n\S[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
    out: dict[str, tuple[str, str]] = {}
    if not match:
        return out
    names: list[str] = []
    kind = ""
    lines: list[str] = []

    def flush() -> None:
        for n in names:
            out[n] = (kind, " ".join(" ".join(lines).split()))

    for line in match.group(1).splitlines():
        if line and not line.startswith(" "):
            flush()
            head, _, kind = line.partition(" : ")
            names = [n.strip() for n in head.split(",")]
            kind = kind.strip()
            lines = []
        else:
            lines.append(line.strip())
    flush()
    return out


def choices_of(cls: type, name: str, type_text: str) -> tuple[str, ...]:
    """The allowed values of a str field: ``{"a", "b"}`` in its docstring type, or the module
    constant its ``__post_init__`` checks it against (plus ``"auto"`` when allowed)."""
    found = re.findall(r"\"([^\"]*)\"", type_text) if type_text.startswith("{") else []
    if found:
        return tuple(found)
    if name == "device":  # documented in prose: "auto", "cpu" or "cuda"
        return ("auto", "cpu", "cuda")
    post = getattr(cls, "__post_init__", None)
    if post is None:
        return ()
    try:
        source = inspect.getsource(post)
    except (OSError, TypeError):
        return ()
    match = re.search(rf"self\.{name} not in ([A-Z_][A-Z0-9_]*)", source)
    if not match:
        return ()
    values = getattr(sys.modules[cls.__module__], match.group(1), None)
    if values is None:
        return ()
    result = tuple(str(v) for v in values)
    if re.search(rf"self\.{name} != \"auto\"", source) and "auto" not in result:
        result = ("auto", *result)
    return result


def _optional(hint: Any) -> tuple[Any, bool]:
    """``(inner type, True)`` for ``X | None``, else ``(hint, False)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


class _Field:
    """One field's widget: ``value()``, ``set_value(v)`` and a ``changed`` callback."""

    def __init__(self, name: str, hint: Any, default: Any, choices: tuple[str, ...],
                 on_change: typing.Callable[[], None]) -> None:
        self.name = name
        inner, self.optional = _optional(hint)
        self.kind = inner
        _, unit = unit_of(name)
        self.widget = QWidget()
        row = QHBoxLayout(self.widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.auto: QCheckBox | None = None
        if inner is bool:
            self.editor: QWidget = QCheckBox()
            self.editor.toggled.connect(on_change)
        elif inner is int:
            self.editor = QSpinBox()
            self.editor.setRange(-1_000_000 if (default or 0) < 0 else 0, 1_000_000)
            self.editor.setSuffix(unit)
            self.editor.valueChanged.connect(on_change)
        elif inner is float:
            self.editor = QDoubleSpinBox()
            ref = abs(default) if isinstance(default, (int, float)) and default else 1.0
            self.editor.setDecimals(min(6, max(2, 2 - math.floor(math.log10(ref)))))
            self.editor.setRange(-1e7, 1e7)
            self.editor.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
            self.editor.setSuffix(unit)
            self.editor.valueChanged.connect(on_change)
        elif inner is str and choices:
            self.editor = QComboBox()
            self.editor.addItems(list(choices))
            self.editor.currentTextChanged.connect(on_change)
        else:  # free text, tuples, dicts: a line edit
            self.editor = QLineEdit()
            self.editor.textChanged.connect(on_change)
            self.editor.setPlaceholderText(self._placeholder(inner))
        if self.optional and inner in (int, float):
            self.auto = QCheckBox("automatic")
            self.auto.toggled.connect(lambda on: self.editor.setEnabled(not on))
            self.auto.toggled.connect(on_change)
            row.addWidget(self.auto)
        row.addWidget(self.editor, 1)

    @staticmethod
    def _placeholder(kind: Any) -> str:
        origin = typing.get_origin(kind)
        if origin is tuple:
            return "comma-separated values"
        if origin is dict or kind is dict:
            return 'JSON, e.g. {"sigma_px": 2}'
        return "none"

    def set_value(self, value: Any) -> None:
        if self.auto is not None:
            self.auto.setChecked(value is None)
            self.editor.setEnabled(value is not None)
            if value is None:
                return
        ed = self.editor
        if isinstance(ed, QCheckBox):
            ed.setChecked(bool(value))
        elif isinstance(ed, QSpinBox):
            ed.setValue(int(value))
        elif isinstance(ed, QDoubleSpinBox):
            ed.setValue(float(value))
        elif isinstance(ed, QComboBox):
            index = ed.findText(str(value))
            if index < 0:
                ed.addItem(str(value))
                index = ed.count() - 1
            ed.setCurrentIndex(index)
        elif isinstance(ed, QLineEdit):
            if value is None:
                ed.setText("")
            elif isinstance(value, (tuple, list)):
                ed.setText(", ".join(str(v) for v in value))
            elif isinstance(value, dict):
                ed.setText(json.dumps(value) if value else "")
            else:
                ed.setText(str(value))

    def value(self) -> Any:
        if self.auto is not None and self.auto.isChecked():
            return None
        ed = self.editor
        if isinstance(ed, QCheckBox):
            return ed.isChecked()
        if isinstance(ed, (QSpinBox, QDoubleSpinBox)):
            return ed.value()
        if isinstance(ed, QComboBox):
            return ed.currentText()
        text = ed.text().strip()
        origin = typing.get_origin(self.kind)
        if origin is dict or self.kind is dict:
            try:
                return json.loads(text) if text else {}
            except json.JSONDecodeError:
                raise ValueError(f"{self.name} must be JSON such as {{\"sigma_px\": 2}}") from None
        if origin is tuple:
            items = [t.strip() for t in text.split(",") if t.strip()]
            args = typing.get_args(self.kind)
            if args and args[0] is float:
                try:
                    return tuple(float(t) for t in items)
                except ValueError:
                    raise ValueError(f"{self.name} must be numbers separated by commas") from None
            return tuple(items)
        return None if (self.optional and not text) else text


class ParamsForm(QWidget):
    """An editable form for one parameter dataclass.

    Signals
    -------
    changed()
        A value was edited (not emitted by :meth:`set_params`).
    """

    changed = Signal()

    def __init__(self, cls: type, parent: QWidget | None = None, *, hidden: tuple[str, ...] = ()) -> None:
        super().__init__(parent)
        self.cls = cls
        self._loading = False
        self._fields: dict[str, _Field] = {}
        self._subforms: dict[str, ParamsForm] = {}
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        defaults = cls()
        for f in dataclasses.fields(cls):
            if f.name in hidden:
                continue
            hint = hints[f.name]
            type_text, text = docs.get(f.name, ("", ""))
            default = getattr(defaults, f.name)
            tip = f"<p>{text or label_of(f.name)}</p><p><i>Default: {self._show(default)}</i></p>"
            if dataclasses.is_dataclass(hint):
                sub = ParamsForm(hint, self)
                sub.changed.connect(self._on_change)
                box = QGroupBox(label_of(f.name))
                box.setToolTip(tip)
                QFormLayout(box).addRow(sub)
                layout.addRow(box)
                self._subforms[f.name] = sub
                continue
            inner, _ = _optional(hint)
            choices = choices_of(cls, f.name, type_text) if inner is str else ()
            field = _Field(f.name, hint, default, choices, self._on_change)
            field.widget.setToolTip(tip)
            label = QLabel(label_of(f.name))
            label.setToolTip(tip)
            layout.addRow(label, field.widget)
            self._fields[f.name] = field
        self._hidden_values: dict[str, Any] = {}
        self.set_params(defaults)

    @staticmethod
    def _show(value: Any) -> str:
        if value is None:
            return "automatic"
        if dataclasses.is_dataclass(value):
            return "see the group's fields"
        return str(value) if value not in ((), {}) else "none"

    def _on_change(self) -> None:
        if not self._loading:
            self.changed.emit()

    def editor(self, name: str) -> QWidget:
        """The editing widget of field ``name`` (for panels and tests)."""
        return self._fields[name].editor

    def set_params(self, params: Any) -> None:
        """Show ``params`` (an instance of the form's class) without emitting ``changed``."""
        self._loading = True
        try:
            for f in dataclasses.fields(self.cls):
                value = getattr(params, f.name)
                if f.name in self._fields:
                    self._fields[f.name].set_value(value)
                elif f.name in self._subforms:
                    self._subforms[f.name].set_params(value)
                else:
                    self._hidden_values[f.name] = value
        finally:
            self._loading = False

    def params(self) -> Any:
        """The edited parameters; ValueError (from the class's own checks) when invalid."""
        values: dict[str, Any] = dict(self._hidden_values)
        for name, field in self._fields.items():
            values[name] = field.value()
        for name, sub in self._subforms.items():
            values[name] = sub.params()
        try:
            return self.cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def reset_defaults(self) -> None:
        """Show the class's defaults and emit ``changed``."""
        self.set_params(self.cls())
        self.changed.emit()


def set_hidden_value(form: ParamsForm, name: str, value: Any) -> None:
    """Change a field the form does not show (a panel edits it with its own widgets)."""
    form._hidden_values[name] = value
    form.changed.emit()
