"""``pip install hedge-agent`` (no extras) is the product alone: it runs, and brings no sandbox package.

Builds a fresh virtual environment from a copy of the sources, with the pinned set (constraints.txt), the
way a user's ``pip install`` would. About 40 s, most of it pip resolving and linking from its cache.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# every module of the package but the sandbox and the demo imports in a plain install, and brings no moto
IMPORT_ALL = """
import importlib, pkgutil, sys
import hedge_agent
skipped = ("hedge_agent.sandbox", "hedge_agent.demo.")
keep = {"hedge_agent.demo.requirements"}
for m in pkgutil.walk_packages(hedge_agent.__path__, "hedge_agent."):
    if m.name.startswith(skipped) and m.name not in keep:
        continue
    importlib.import_module(m.name)
from hedge_agent.app import assemble  # what `hedge-agent run` builds the agent with
leaked = sorted(n for n in ("moto", "flask", "joserfc") if n in sys.modules)
assert not leaked, f"the product imported sandbox packages: {leaked}"
print("imports ok")
"""


def _bin(env: Path, name: str) -> Path:
    scripts = env / ("Scripts" if sys.platform == "win32" else "bin")
    exe = scripts / (name + (".exe" if sys.platform == "win32" else ""))
    return exe


@pytest.fixture(scope="module")
def plain_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("plain-install")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "hedge_agent", src / "hedge_agent", ignore=shutil.ignore_patterns("__pycache__"))
    env = work / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    python = _bin(env, "python")
    # the test runner's pip installs into the new environment (no pip of its own needed there)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints.txt"), str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def _run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_plain_install_brings_no_sandbox_package(plain_env: Path) -> None:
    listed = _run(
        sys.executable, "-m", "pip", "--python", _bin(plain_env, "python"), "list", "--format=freeze"
    )
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines() if "==" in line}
    assert "hedge-agent" in names
    assert not names & {"moto", "flask", "flask-cors", "joserfc", "responses"}, sorted(names)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_agent_imports_and_runs_its_commands_without_the_demo_extra(plain_env: Path) -> None:
    imported = _run(_bin(plain_env, "python"), "-c", IMPORT_ALL)
    assert imported.returncode == 0, imported.stderr[-3000:]
    version = _run(_bin(plain_env, "hedge-agent"), "--version")
    assert version.returncode == 0 and version.stdout.startswith("hedge-agent "), version
    checked = _run(
        _bin(plain_env, "hedge-agent"), "check-config", ROOT / "config" / "hedge_agent.example.toml"
    )
    assert checked.returncode == 0, checked.stderr
    helped = _run(_bin(plain_env, "hedge-agent"), "run", "--help")
    assert helped.returncode == 0 and "--config" in helped.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_demo_without_its_extra_names_the_one_command_that_adds_it(plain_env: Path) -> None:
    demo = _run(_bin(plain_env, "hedge-agent"), "demo", "--duration", "1")
    assert demo.returncode == 3, (demo.returncode, demo.stderr)
    assert 'pip install "hedge-agent[demo]"' in demo.stderr
    assert "moto" in demo.stderr and "Traceback" not in demo.stderr
