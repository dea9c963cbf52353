"""``rstem-gui [PROJECT.h5] [--demo] [--screenshot DIR]``: start the workbench window."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from .errors import UNATTENDED_PROPERTY, install_excepthook, logger


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rstem-gui", description="Rapid STEM tomography workbench")
    parser.add_argument("project", nargs="?", type=Path, help="project file to open")
    parser.add_argument("--demo", action="store_true",
                        help="build and open the quick demo project (128 px, 31 frames)")
    parser.add_argument("--demo-size", type=int, default=128, help="demo frame size in pixels")
    parser.add_argument("--demo-frames", type=int, default=31, help="demo frames per series")
    parser.add_argument("--screenshot", type=Path, metavar="DIR",
                        help="with --demo: run the pipeline, save one PNG per page into DIR and quit")
    parser.add_argument("--startup-time", action="store_true",
                        help="print the seconds from the process start to the shown window, then quit")
    return parser


def seconds_since_process_start() -> float | None:
    """Seconds since this process started (Linux: from /proc), None where unknown."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.screenshot and not args.demo:
        print("rstem-gui: --screenshot needs --demo", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("rstem")
    app.setApplicationName("rstem-gui")
    install_excepthook()
    from .main_window import MainWindow

    settings = QSettings()
    if args.screenshot:
        app.setProperty(UNATTENDED_PROPERTY, True)
        settings = QSettings(str(Path(args.screenshot) / ".rstem-screenshot.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    if args.screenshot:
        window.resize(1500, 920)
    window.show()
    logger().info("rstem-gui started")
    if args.startup_time:
        def report() -> None:
            elapsed = seconds_since_process_start()
            print(f"rstem-gui: window shown after {elapsed:.2f} s" if elapsed is not None
                  else "rstem-gui: window shown (start time unknown)", flush=True)
            window.setProperty("force_close", True)
            window.close()
            app.exit(0)

        QTimer.singleShot(0, report)
        return app.exec()
    if args.screenshot:
        from .tour import ScreenshotTour

        tour = ScreenshotTour(window, args.screenshot, args.demo_size, args.demo_frames)
        QTimer.singleShot(0, tour.start)
    elif args.demo:
        QTimer.singleShot(0, lambda: window.new_demo(size=args.demo_size, frames=args.demo_frames))
    elif args.project is not None:
        QTimer.singleShot(0, lambda: window.open_project(args.project))
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
