#!/usr/bin/env bash
# Install (tools/setup.sh) and run the whole test suite on a virtual screen.
# Extra arguments go to pytest, e.g. tools/test.sh -k project
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-xcb}"
exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest -n 2 "$@"
