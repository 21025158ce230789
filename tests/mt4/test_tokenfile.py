"""The per-install bridge token: created once, user-only, reused, never silently replaced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hedge_agent.errors import ConfigError
from hedge_agent.terminals.mt4 import default_token_path, load_or_create_token

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def test_a_missing_token_file_is_created_with_a_long_random_token(tmp_path: Path):
    path = tmp_path / "hedge-agent" / "bridge.token"
    token = load_or_create_token(path)
    assert len(token) >= 43 and path.read_text() == token
    assert load_or_create_token(tmp_path / "other.token") != token


def test_an_existing_token_is_reused(tmp_path: Path):
    path = tmp_path / "bridge.token"
    first = load_or_create_token(path)
    assert load_or_create_token(path) == first


@posix_only
def test_the_token_file_is_readable_by_its_owner_only(tmp_path: Path):
    path = tmp_path / "bridge.token"
    load_or_create_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@posix_only
def test_a_token_file_readable_by_others_is_tightened(tmp_path: Path):
    path = tmp_path / "bridge.token"
    path.write_text("x" * 43)
    path.chmod(0o644)
    assert load_or_create_token(path) == "x" * 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_empty_token_file_gets_a_token(tmp_path: Path):
    path = tmp_path / "bridge.token"
    path.write_text("\n")
    assert len(load_or_create_token(path)) >= 43


def test_a_token_file_with_something_else_in_it_is_an_error_not_overwritten(tmp_path: Path):
    path = tmp_path / "bridge.token"
    path.write_text("hunter2")
    with pytest.raises(ConfigError, match="does not hold a token"):
        load_or_create_token(path)
    assert path.read_text() == "hunter2"


def test_off_windows_the_default_token_path_is_under_the_given_directory(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("APPDATA", raising=False)
    assert default_token_path(tmp_path) == tmp_path / "hedge-agent" / "bridge.token"
