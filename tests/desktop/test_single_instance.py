"""One agent per user, checked with real processes competing for the real lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hedge_agent.desktop.single_instance import EXIT_ALREADY_RUNNING, AlreadyRunning, InstanceLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the POSIX lock file; Windows uses a mutex")

# what the agent's entry point does: hold the lock for the whole run, or say who holds it and exit
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hedge_agent.desktop.single_instance import EXIT_ALREADY_RUNNING, AlreadyRunning, InstanceLock

    try:
        with InstanceLock(lock_dir=Path(sys.argv[1])):
            print("running", flush=True)
            sys.stdin.read()  # until the test closes our stdin
    except AlreadyRunning as e:
        print(e, file=sys.stderr)
        sys.exit(EXIT_ALREADY_RUNNING)
    """
)


def start(lock_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_running(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "running", proc.stderr.read() if proc.stderr else ""


def test_a_second_agent_is_refused_with_the_pid_of_the_running_one(tmp_path):
    first = start(tmp_path)
    try:
        wait_running(first)
        second = start(tmp_path)
        _, err = second.communicate(timeout=20)
        assert second.returncode == EXIT_ALREADY_RUNNING
        assert f"already running (pid {first.pid})" in err
    finally:
        first.communicate(input="", timeout=20)
    assert first.returncode == 0


def test_a_killed_agent_leaves_no_stale_lock_behind(tmp_path):
    first = start(tmp_path)
    wait_running(first)
    first.kill()
    first.communicate(timeout=20)
    assert (tmp_path / "hedge-agent.lock").exists()
    second = start(tmp_path)
    try:
        wait_running(second)
    finally:
        second.communicate(input="", timeout=20)
    assert second.returncode == 0


def test_the_lock_is_free_again_once_released(tmp_path):
    with InstanceLock(lock_dir=tmp_path) as lock:
        assert lock.held
        with pytest.raises(AlreadyRunning) as refused:
            InstanceLock(lock_dir=tmp_path).acquire()
        assert refused.value.pid is not None
    assert not lock.held
    with InstanceLock(lock_dir=tmp_path):
        pass
