"""The agent's own process never loads the Windows-only MetaTrader5 package: only MT5 worker processes do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib, pkgutil, sys
import hedge_agent
failed = []
for m in pkgutil.walk_packages(hedge_agent.__path__, "hedge_agent."):
    try:
        importlib.import_module(m.name)
    except Exception as e:
        failed.append(f"{m.name}: {type(e).__name__}: {e}")
print("IMPORTED", sum(1 for n in sys.modules if n.startswith("hedge_agent")))
print("FAILED", failed)
print("MT5", "MetaTrader5" in sys.modules)
"""


def test_importing_every_module_of_the_package_never_imports_metatrader5():
    # a fresh interpreter whose path holds the fake package: an import would succeed and show up
    env_path = f"{ROOT / 'tests' / 'fakes'}"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={"PYTHONPATH": os.pathsep.join([str(ROOT), env_path]), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "MT5 False" in out, out
    assert "FAILED []" in out, out
    imported = int(out.split("IMPORTED ")[1].split()[0])
    assert imported > 20, out
