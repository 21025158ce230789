"""``hedge-agent login`` / ``logout`` and resuming a stored sign-in at start."""

from __future__ import annotations

import structlog

from hedge_agent.config import AgentConfig, CognitoConfig
from hedge_agent.errors import AuthError

from .auth import DEFAULT_REFRESH_MARGIN_S, CognitoAuth
from .token_store import TokenStore, entry_name

log = structlog.get_logger(__name__)


def _cognito(config: AgentConfig | CognitoConfig) -> CognitoConfig:
    return config.cognito if isinstance(config, AgentConfig) else config


async def login(config: AgentConfig | CognitoConfig, password: str, store: TokenStore) -> str:
    """Sign in with the password (SRP) and keep the refresh token in the credential store. Returns the
    user's ``sub``. Raises AuthError / RetryableError / CredentialStoreError with a clear message."""
    auth = CognitoAuth(_cognito(config))
    await auth.sign_in_with_password(password)
    token = auth.refresh_token
    assert token is not None  # sign-in succeeded
    store.save(entry_name(config), token)
    return auth.sub


def logout(config: AgentConfig | CognitoConfig, store: TokenStore) -> bool:
    """Forget the stored sign-in (credential entry and encrypted file). True if something was removed."""
    return store.delete(entry_name(config))


async def resume(
    config: AgentConfig | CognitoConfig,
    store: TokenStore,
    *,
    refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
) -> CognitoAuth:
    """A signed-in CognitoAuth from the stored refresh token, for ``run``. If the pool rotates refresh
    tokens, the new one replaces the stored one. Raises AuthError when there is none or it was revoked."""
    entry = entry_name(config)
    token = store.load(entry)
    if token is None:
        raise AuthError(f"no stored sign-in for {entry}: run `hedge-agent login --config <file>` first")

    def keep(new_token: str) -> None:
        store.save(entry, new_token)

    auth = CognitoAuth(_cognito(config), on_refresh_token=keep, refresh_margin_s=refresh_margin_s)
    await auth.sign_in_with_refresh_token(token)
    return auth
