"""What ``hedge-agent demo`` needs beyond the agent: the sandbox backend's packages, the ``demo`` extra.

The agent itself never imports them (``pip install hedge-agent`` brings none of them); the demo checks
for them first, so a missing one is one clear line with the command that adds it, not a traceback.
"""

from __future__ import annotations

import importlib.util

#: the modules hedge_agent.sandbox imports that only the ``demo`` extra brings (see pyproject.toml)
DEMO_MODULES = ("moto", "joserfc", "flask", "flask_cors", "werkzeug", "jwt")
INSTALL_COMMAND = 'pip install "hedge-agent[demo]"'


def missing_demo_modules() -> list[str]:
    """The demo extra's modules that cannot be imported here (none in the built program: it bundles them)."""
    return [name for name in DEMO_MODULES if importlib.util.find_spec(name) is None]


def demo_unavailable_message(missing: list[str]) -> str:
    return (
        f"hedge-agent demo needs the local sandbox backend's packages, which are not installed "
        f"(missing: {', '.join(missing)}). Add them with:  {INSTALL_COMMAND}"
    )
