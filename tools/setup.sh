#!/usr/bin/env bash
# Install everything rstem needs on a fresh Debian/Ubuntu x86_64 machine with Python 3.10+:
# the system libraries for Qt on a (virtual) screen, a virtual environment in .venv, the CPU
# build of torch, and rstem itself (editable) with its optional extras.
# Safe to run again: it installs only what is missing.
#   RSTEM_EXTRAS   extras to install (default: dev,astra,bm3d)
#   RSTEM_PYTHON   the Python to build the venv from (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${RSTEM_EXTRAS:-dev,astra,bm3d}"
python="${RSTEM_PYTHON:-python3}"

system_packages=(xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-cursor0
  libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-shape0
  libdbus-1-3 libfontconfig1)
missing=()
if command -v dpkg >/dev/null 2>&1; then
  for pkg in "${system_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages (install them as root): sudo apt-get install ${missing[*]}" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# torch first and pinned: the CPU build; an unpinned torch would pull a multi-GB CUDA build
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing torch (CPU build)"
  "${pip[@]}" install "torch==2.13.0"
fi
echo "setup: installing rstem[${extras}]"
"${pip[@]}" install -e ".[${extras}]"
echo "setup: done (.venv/bin/rstem, .venv/bin/rstem-gui)"
