#!/usr/bin/env bash
# Install (tools/setup.sh) and open the application on the built-in demo project.
# Uses the real screen when there is one, otherwise a virtual one.
set -euo pipefail
cd "$(dirname "$0")/.."
RSTEM_EXTRAS="${RSTEM_EXTRAS:-astra,bm3d}" bash tools/setup.sh
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  exec .venv/bin/rstem-gui --demo "$@"
fi
exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/rstem-gui --demo "$@"
