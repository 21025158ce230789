"""What the host session offers: a console to write to, a way to open folders and files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def is_frozen() -> bool:
    """Running from the PyInstaller build."""
    return bool(getattr(sys, "frozen", False))


def has_console() -> bool:
    """False in the windowed Windows build (no stdout/stderr there): log to the file only."""
    return sys.stdout is not None and sys.stderr is not None


def open_path(path: Path, *, folder: bool) -> None:
    """Show a folder in the file manager, or open a file in its default editor. Raises OSError."""
    if folder:
        path.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if sys.platform == "win32":
        try:
            os.startfile(path)
        except OSError:
            if folder:
                raise
            # .toml often has no associated program: Notepad is always there
            subprocess.Popen(["notepad.exe", str(path)])
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    try:
        subprocess.Popen(
            [opener, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError as e:
        raise OSError(f"cannot open {path}: {opener} is not installed") from e
