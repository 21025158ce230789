"""One agent per user: a second start says who is running and exits instead of trading the same accounts twice.

Windows: a named mutex in the session namespace (``Local\\hedge-agent-<user>``). Elsewhere: an exclusive
``flock`` on ``hedge-agent.lock`` in the user data dir. Either way the OS releases it when the process dies,
so a crash never leaves a stale lock behind. The holder's pid is recorded for the message.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from hedge_agent.errors import FatalError
from hedge_agent.exit_codes import EXIT_ALREADY_RUNNING as EXIT_ALREADY_RUNNING

_ERROR_ALREADY_EXISTS = 183


class AlreadyRunning(FatalError):
    """Another agent of this user holds the lock. ``pid`` is None when it could not be read."""

    def __init__(self, pid: int | None, lock: str) -> None:
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(
            f"hedge-agent is already running ({who}): use its tray icon, or quit it first. (lock: {lock})"
        )
        self.pid = pid
        self.lock = lock


def _user_tag() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no USERNAME/LOGNAME and no passwd entry: still one lock per uid
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return re.sub(r"[\\/:\s]", "_", user) or "user"


def _parse_pid(raw: bytes) -> int | None:
    text = raw.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class InstanceLock:
    """``with InstanceLock(): ...`` holds the per-user lock, or raises :class:`AlreadyRunning`.

    ``lock_dir`` (default: the user data dir) holds the lock file (POSIX) or the pid file (Windows).
    """

    def __init__(self, name: str = "hedge-agent", *, lock_dir: Path | None = None) -> None:
        if lock_dir is None:
            from hedge_agent.logs import default_data_dir

            lock_dir = default_data_dir()
        self.name = name
        self.lock_dir = lock_dir
        self._fd: int | None = None
        self._mutex: int | None = None

    @property
    def mutex_name(self) -> str:
        return f"Local\\{self.name}-{_user_tag()}"

    @property
    def lock_path(self) -> Path:
        return self.lock_dir / f"{self.name}.lock"

    @property
    def pid_path(self) -> Path:
        return self.lock_dir / f"{self.name}.pid"

    @property
    def held(self) -> bool:
        return self._fd is not None or self._mutex is not None

    def acquire(self) -> InstanceLock:
        if self.held:
            return self
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        if sys.platform == "win32":
            self._acquire_mutex()
        else:
            self._acquire_flock()
        return self

    def release(self) -> None:
        if sys.platform == "win32":
            if self._mutex is not None:
                self.pid_path.unlink(missing_ok=True)  # before the handle: a successor writes its own
                _kernel32().CloseHandle(self._mutex)
                self._mutex = None
        elif self._fd is not None:
            import fcntl

            # the file stays: unlinking it would let two processes lock two different inodes
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _acquire_flock(self) -> None:
        if sys.platform == "win32":
            raise AssertionError("flock is POSIX-only")
        import fcntl

        path = self.lock_path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise FatalError(f"cannot create the single-instance lock {path}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _parse_pid(os.pread(fd, 32, 0))
            os.close(fd)
            raise AlreadyRunning(pid, str(path)) from None
        except OSError as e:
            os.close(fd)
            raise FatalError(f"cannot lock {path}: {e}") from e
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _acquire_mutex(self) -> None:
        if sys.platform != "win32":
            raise AssertionError("named mutexes are Windows-only")
        import ctypes

        kernel32 = _kernel32()
        name = self.mutex_name
        handle = kernel32.CreateMutexW(None, False, name)
        error = ctypes.get_last_error()
        if not handle:
            raise FatalError(f"cannot create the single-instance mutex {name}: {ctypes.WinError(error)}")
        if error == _ERROR_ALREADY_EXISTS:
            kernel32.CloseHandle(handle)
            try:
                pid = _parse_pid(self.pid_path.read_bytes())
            except OSError:
                pid = None
            raise AlreadyRunning(pid, name)
        self._mutex = handle
        try:
            self.pid_path.write_text(f"{os.getpid()}\n", encoding="ascii")
        except OSError:
            pass  # only the message of a second start needs it


def _kernel32() -> Any:
    """kernel32 with the prototypes used here (64-bit handles must not be truncated to C ints)."""
    if sys.platform != "win32":
        raise AssertionError("kernel32 is Windows-only")
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.CreateMutexW.argtypes = (wintypes.LPVOID, wintypes.BOOL, wintypes.LPCWSTR)
    kernel32.CreateMutexW.restype = wintypes.HANDLE
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    kernel32.CloseHandle.restype = wintypes.BOOL
    return kernel32
