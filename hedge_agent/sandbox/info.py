"""What a running sandbox tells its clients: endpoints, pool ids and the seeded users."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SandboxError(RuntimeError):
    """The sandbox could not do what was asked (unknown user, sign-in refused, not started)."""


@dataclass(frozen=True)
class SandboxUser:
    username: str
    password: str
    sub: str
    groups: tuple[str, ...]
    email: str

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.password,
            "sub": self.sub,
            "groups": list(self.groups),
            "email": self.email,
        }


@dataclass(frozen=True)
class SandboxInfo:
    graphql_url: str
    realtime_url: str
    region: str
    cognito_endpoint: str
    user_pool_id: str
    client_id: str
    users: tuple[SandboxUser, ...]

    def user(self, username: str) -> SandboxUser:
        for user in self.users:
            if user.username == username:
                return user
        known = ", ".join(user.username for user in self.users)
        raise SandboxError(f"no sandbox user {username!r}; the seeded users are: {known}")

    def to_json(self) -> dict[str, Any]:
        return {
            "graphql_url": self.graphql_url,
            "realtime_url": self.realtime_url,
            "region": self.region,
            "cognito_endpoint": self.cognito_endpoint,
            "user_pool_id": self.user_pool_id,
            "client_id": self.client_id,
            "users": [user.to_json() for user in self.users],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxInfo:
        """Read what ``python -m hedge_agent.sandbox --print-json`` printed."""
        try:
            return cls(
                graphql_url=str(data["graphql_url"]),
                realtime_url=str(data["realtime_url"]),
                region=str(data["region"]),
                cognito_endpoint=str(data["cognito_endpoint"]),
                user_pool_id=str(data["user_pool_id"]),
                client_id=str(data["client_id"]),
                users=tuple(
                    SandboxUser(
                        username=str(user["username"]),
                        password=str(user["password"]),
                        sub=str(user["sub"]),
                        groups=tuple(str(group) for group in user.get("groups", ())),
                        email=str(user.get("email", "")),
                    )
                    for user in data["users"]
                ),
            )
        except (KeyError, TypeError) as exc:
            raise SandboxError(f"sandbox info is missing or mistypes a field: {exc!r}") from exc
