"""``rstem-gui [PROJECT.h5] [--demo]``: start the workbench.

This version runs the headless demo: it builds the synthetic demo project, writes its previews
and prints what it holds; the desktop window builds on the same core.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rstem_core import cli


def default_demo_path() -> Path:
    """Where the built-in demo project lives: the user's data folder."""
    base = Path.home() / ".local" / "share" / "rstem"
    return base / "demo.h5"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rstem-gui", description="Rapid STEM tomography workbench")
    parser.add_argument("project", nargs="?", type=Path, help="project file to open")
    parser.add_argument("--demo", action="store_true", help="open the built-in demo project")
    parser.add_argument("--demo-size", type=int, default=256, help="demo frame size in pixels")
    parser.add_argument("--demo-frames", type=int, default=71, help="demo frames per series")
    args = parser.parse_args(argv)
    if args.demo or args.project is None:
        path = default_demo_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            print(f"rstem-gui: building the demo project in {path} ...")
            status = cli.main([
                "demo", str(path), "--size", str(args.demo_size), "--frames", str(args.demo_frames),
                "--previews", str(path.parent / "demo-previews"),
            ])
            if status:
                return status
        return cli.main(["info", str(path)])
    return cli.main(["info", str(args.project)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
