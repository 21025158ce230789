"""Where the refresh token lives between runs: the OS credential store (``keyring``), never a plain file.

Windows Credential Manager caps a secret at 2,560 bytes and stores text as UTF-16, so a Cognito refresh token
(a ~1,800-character JWE) does not fit there. When the token does not fit, the store keeps a random Fernet key
in the credential store and the token, encrypted with it, in a user-only (0600) file in the user data dir.
Reading needs both; ``delete`` removes both.

Entries are tagged so a reader always knows which form it holds: ``token:<refresh token>`` or
``fernet:<key>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

import structlog

from hedge_agent.config import AgentConfig, CognitoConfig
from hedge_agent.errors import FatalError

log = structlog.get_logger(__name__)

SERVICE = "hedge-agent"
#: Windows Credential Manager's CRED_MAX_CREDENTIAL_BLOB_SIZE
MAX_SECRET_BYTES = 2560
_TOKEN = "token:"
_FERNET = "fernet:"


class CredentialStoreError(FatalError):
    """The OS credential store is unavailable or refused (the message says which and what to do)."""


def entry_name(config: CognitoConfig | AgentConfig) -> str:
    """One entry per user pool and username, so two configs never share (or overwrite) a sign-in."""
    cognito = config.cognito if isinstance(config, AgentConfig) else config
    return f"{cognito.user_pool_id}/{cognito.username}"


def secret_size(secret: str) -> int:
    """Bytes the Windows credential store needs for ``secret`` (it stores UTF-16)."""
    return len(secret.encode("utf-16-le"))


class TokenStore:
    """Refresh tokens in the OS credential store (``backend``: a keyring backend; the OS one by default)."""

    def __init__(
        self,
        backend: Any = None,
        data_dir: Path | None = None,
        *,
        service: str = SERVICE,
        max_secret_bytes: int = MAX_SECRET_BYTES,
    ) -> None:
        if backend is None:
            import keyring

            backend = keyring.get_keyring()
        if data_dir is None:
            from hedge_agent.logs import default_data_dir

            data_dir = default_data_dir()
        self._backend = backend
        self._dir = data_dir / "credentials"
        self._service = service
        self._max = max_secret_bytes

    def __repr__(self) -> str:
        return f"TokenStore(backend={type(self._backend).__name__}, dir={str(self._dir)!r})"

    def file_for(self, entry: str) -> Path:
        """The encrypted-token file of ``entry`` (a hash: entry names hold '/' and user names)."""
        return self._dir / (hashlib.sha256(entry.encode()).hexdigest()[:24] + ".token")

    def save(self, entry: str, refresh_token: str) -> None:
        if not refresh_token:
            raise ValueError("refusing to store an empty refresh token")
        direct = _TOKEN + refresh_token
        if secret_size(direct) <= self._max:
            self._set(entry, direct)
            self._remove_file(entry)  # a previous long token's file is now stale
            log.info("token_store.saved", entry=entry, form="credential store")
            return
        from cryptography.fernet import Fernet

        key = Fernet.generate_key()
        self._write_private(self.file_for(entry), Fernet(key).encrypt(refresh_token.encode()))
        self._set(entry, _FERNET + key.decode("ascii"))
        log.info("token_store.saved", entry=entry, form="encrypted file + key in credential store")

    def load(self, entry: str) -> str | None:
        """The stored refresh token, or None when there is none (or it cannot be read back: log in again)."""
        stored = self._get(entry)
        if stored is None:
            return None
        if stored.startswith(_TOKEN):
            return stored[len(_TOKEN) :]
        if stored.startswith(_FERNET):
            from cryptography.fernet import Fernet, InvalidToken

            path = self.file_for(entry)
            try:
                return Fernet(stored[len(_FERNET) :].encode("ascii")).decrypt(path.read_bytes()).decode()
            except FileNotFoundError:
                log.warning("token_store.file_missing", entry=entry, path=str(path))
            except (InvalidToken, ValueError):
                log.warning("token_store.file_unreadable", entry=entry, path=str(path))
            return None
        log.warning("token_store.unknown_entry_form", entry=entry)
        return None

    def delete(self, entry: str) -> bool:
        """Remove the credential entry and the encrypted file. True if anything was removed."""
        import keyring.errors

        removed = self._remove_file(entry)
        try:
            self._backend.delete_password(self._service, entry)
            removed = True
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as e:
            raise CredentialStoreError(
                f"cannot remove the sign-in from the OS credential store: {e}"
            ) from None
        if removed:
            log.info("token_store.deleted", entry=entry)
        return removed

    # -- internals -----------------------------------------------------------------------------------------

    def _set(self, entry: str, value: str) -> None:
        import keyring.errors

        try:
            self._backend.set_password(self._service, entry, value)
        except keyring.errors.KeyringError as e:
            # the message names the backend problem, never the value
            raise CredentialStoreError(
                f"cannot save the sign-in in the OS credential store ({type(e).__name__}): "
                "install/unlock a keyring (Windows Credential Manager, macOS Keychain, Secret Service)"
            ) from None

    def _get(self, entry: str) -> str | None:
        import keyring.errors

        try:
            value = self._backend.get_password(self._service, entry)
        except keyring.errors.KeyringError as e:
            raise CredentialStoreError(f"cannot read the OS credential store ({type(e).__name__})") from None
        return value if isinstance(value, str) else None

    def _write_private(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # best effort on Windows, where the user dir is private already
            os.chmod(path.parent, 0o700)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        # created 0600 from the first byte (no window where the file is world-readable), then renamed in place
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def _remove_file(self, entry: str) -> bool:
        try:
            self.file_for(entry).unlink()
            return True
        except FileNotFoundError:
            return False
