#!/usr/bin/env bash
# Build the desktop bundle into dist/rstem/ (Linux; see packaging/README.md for Windows/macOS).
# Uses the project's .venv (tools/setup.sh makes it) and installs PyInstaller into it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
.venv/bin/python -m pip --disable-pip-version-check -q install "pyinstaller>=6.10"
.venv/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/rstem.spec
du -sh dist/rstem
echo "bundle: dist/rstem (run dist/rstem/rstem-gui or dist/rstem/rstem)"
