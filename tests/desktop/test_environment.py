from __future__ import annotations

import sys

import pytest

from hedge_agent.desktop.environment import has_console, open_path
from hedge_agent.tray import tray_available

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland session rules")


@linux_only
def test_without_a_display_the_agent_runs_headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert tray_available() is False


@linux_only
def test_a_display_that_does_not_answer_means_headless_not_a_crash(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":97")  # no X server there
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    assert tray_available() is False


def test_the_windowed_build_has_no_console_to_log_to(monkeypatch):
    assert has_console() is True
    monkeypatch.setattr(sys, "stdout", None)  # what a windowed (no console) Windows process gets
    assert has_console() is False


def test_opening_a_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_path(tmp_path / "missing.toml", folder=False)
