"""The exit codes of every ``hedge-agent`` command, in one place (scripts and autostart rely on them)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # the agent stopped on an error (the message and the log say which)
EXIT_CONFIG = 2  # the config file is invalid, or a required option is missing
EXIT_UNAVAILABLE = 3  # a command this platform cannot do
EXIT_ALREADY_RUNNING = 4  # this user's agent is already running
EXIT_AUTH = 5  # no usable sign-in: run `hedge-agent-cli login`
EXIT_INTERRUPTED = 130  # Ctrl-C
