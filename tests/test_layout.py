"""The repository's shape: packages declared, core free of GUI libraries, CI = README command."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_declared() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    found = {
        ".".join(p.parent.relative_to(REPO).parts).replace("app", "rstem_app", 1)
        if p.parent.relative_to(REPO).parts[0] == "app"
        else ".".join(p.parent.relative_to(REPO).parts)
        for root in ("rstem_core", "app")
        for p in (REPO / root).rglob("__init__.py")
    }
    assert found == declared


def test_core_never_imports_a_gui_library() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt\d|pyqtgraph|vispy|rstem_app)\b", re.M)
    offenders = [str(p) for p in (REPO / "rstem_core").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
    code = (
        "import sys, pkgutil, importlib, rstem_core\n"
        "for m in pkgutil.walk_packages(rstem_core.__path__, 'rstem_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'vispy')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = "bash tools/test.sh"
    assert f"\n{command}\n" in readme
    assert re.search(rf"^exec {re.escape(command)}$", ci, re.M)


def test_no_pickle_or_unsafe_torch_load() -> None:
    pattern = re.compile(r"pickle\.loads?\(|torch\.load\((?![^)]*weights_only=True)")
    offenders = [
        str(p) for root in ("rstem_core", "app") for p in (REPO / root).rglob("*.py") if pattern.search(p.read_text())
    ]
    assert offenders == []
