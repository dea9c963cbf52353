#!/usr/bin/env bash
# Smoke test of the built bundle (dist/rstem), with no Python environment on PATH:
# the bundled `rstem demo` + `rstem run` at quick size, `rstem-gui --demo --screenshot` on a
# virtual screen, and the GUI's cold start time. Prints one JSON line at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="$(pwd)/dist/rstem"
[ -x "$bundle/rstem" ] || { echo "no bundle in $bundle: run packaging/build.sh first" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
clean_env=(env -i HOME="$work/home" PATH=/usr/bin:/bin LANG=C.UTF-8)
mkdir -p "$work/home"
if "${clean_env[@]}" sh -c 'command -v python3 >/dev/null && python3 -c "import numpy"' 2>/dev/null; then
  echo "note: the system python3 has numpy; the bundle must not use it (it does not look for it)" >&2
fi
t0=$(date +%s.%N)
"${clean_env[@]}" "$bundle/rstem" demo "$work/q.h5" --size 128 --frames 31
"${clean_env[@]}" "$bundle/rstem" run "$work/q.h5"
"${clean_env[@]}" "$bundle/rstem" evaluate "$work/q.h5" --reference truth --json --no-denoise-scores > "$work/eval.json"
t1=$(date +%s.%N)
# cold start: launch to the first shown window (the page cache is dropped when we are root)
if [ "$(id -u)" = 0 ]; then sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; fi
start=$("${clean_env[@]}" QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$bundle/rstem-gui" --startup-time 2>&1 | sed -n 's/^rstem-gui: window shown after \([0-9.]*\) s$/\1/p')
"${clean_env[@]}" QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$bundle/rstem-gui" --demo --screenshot "$work/shots"
t2=$(date +%s.%N)
shots=$(ls "$work"/shots/*.png | wc -l)
[ "$shots" -ge 9 ] || { echo "only $shots screenshots" >&2; exit 1; }
size=$(du -sm "$bundle" | cut -f1)
printf '{"bundle_mb": %s, "gui_cold_start_s": %s, "cli_demo_run_s": %.1f, "gui_tour_s": %.1f, "screenshots": %s, "position_error_nm": %s}\n' \
  "$size" "${start:-null}" "$(awk "BEGIN{print $t1 - $t0}")" "$(awk "BEGIN{print $t2 - $t1}")" "$shots" \
  "$(sed -n 's/.*"position_error_nm": \({[^}]*}\).*/\1/p' "$work/eval.json")"
