"""The sandbox: a local Cognito user pool and an AppSync-compatible GraphQL server, wired together,
with the fault hooks tests use."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from .auth import Caller, TokenRegistry, TokenVerifier
from .cognito import DEFAULT_REGION, LocalUserPool, Tokens, moto_public_jwks
from .faults import Faults
from .http_api import GraphQLHttp, build_app
from .info import SandboxError, SandboxInfo, SandboxUser
from .model_specs import ADMIN_GROUP, MODELS
from .pubsub import Broker
from .realtime import RealtimeHub
from .resolvers import DataPlane, now_iso, served_schema
from .stats import SandboxStats
from .store import Store

_SEED_KEY = "cognito_seed"
#: a cached ID token is reused only while it has at least this long to live
_TOKEN_MARGIN_S = 5.0


class Sandbox:
    """``async with Sandbox() as sb:`` -- everything on 127.0.0.1, on real sockets.

    ``db_path=None`` keeps state in memory. With a file, state survives the process, and the user
    pool is rebuilt with the same ids and user subs on the next start (moto's id generator is seeded
    from a value kept in the file).

    ``user_rows=False`` seeds no ``User`` record: as on AWS, where only the admin UI or a post-confirmation
    trigger creates one, and every ``updateUser`` (the agent's pcStatus) is then ``Unauthorized``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | None = None,
        id_token_ttl_s: int = 3600,
        ka_interval_s: float = 10.0,
        connection_timeout_ms: int = 300_000,
        cognito_port: int = 0,
        region: str = DEFAULT_REGION,
        user_rows: bool = True,
    ) -> None:
        if id_token_ttl_s < 1:
            raise ValueError(f"id_token_ttl_s must be at least 1 s, got {id_token_ttl_s}")
        if ka_interval_s <= 0:
            raise ValueError(f"ka_interval_s must be positive, got {ka_interval_s}")
        self._host = host
        self._port = port
        self._db_path = db_path
        self._id_token_ttl_s = id_token_ttl_s
        self._ka_interval_s = ka_interval_s
        self._connection_timeout_ms = connection_timeout_ms
        self._cognito_port = cognito_port
        self._region = region
        self._user_rows = user_rows
        self._stats = SandboxStats()
        self._faults = Faults()
        self._registry = TokenRegistry()
        self._tokens: dict[str, Tokens] = {}
        self._info: SandboxInfo | None = None
        self._store: Store | None = None
        self._pool: LocalUserPool | None = None
        self._hub: RealtimeHub | None = None
        self._broker: Broker | None = None
        self._http: GraphQLHttp | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> SandboxInfo:
        if self._info is not None:
            raise SandboxError("this sandbox is already started")
        store = Store(
            self._db_path or ":memory:",
            {name: [index.partition_key for index in spec.indexes] for name, spec in MODELS.items()},
        )
        self._store = store
        pool = LocalUserPool(
            host=self._host,
            port=self._cognito_port,
            region=self._region,
            id_token_ttl_s=self._id_token_ttl_s,
            registry=self._registry,
        )
        self._pool = pool
        await asyncio.to_thread(pool.start, seed=self._cognito_seed(store))
        verifier = TokenVerifier(
            jwks=moto_public_jwks(), issuer=pool.issuer, client_id=pool.client_id, registry=self._registry
        )
        schema = served_schema()
        self._broker = Broker(schema)
        plane = DataPlane(store=store, faults=self._faults, stats=self._stats, publish=self._publish)
        self._hub = RealtimeHub(
            schema=schema,
            broker=self._broker,
            verifier=verifier,
            faults=self._faults,
            stats=self._stats,
            ka_interval_s=self._ka_interval_s,
            connection_timeout_ms=self._connection_timeout_ms,
            is_revoked=self._is_revoked,
        )
        self._http = GraphQLHttp(schema=schema, plane=plane, verifier=verifier, stats=self._stats)
        if self._user_rows:
            self._seed_user_records(store, pool.users)
        await self._serve()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        base = f"{self._host}:{self._port}"
        self._info = SandboxInfo(
            graphql_url=f"http://{base}/graphql",
            realtime_url=f"ws://{base}/graphql/realtime",
            region=self._region,
            cognito_endpoint=pool.endpoint,
            user_pool_id=pool.user_pool_id,
            client_id=pool.client_id,
            users=pool.users,
        )
        return self._info

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._unserve()
        if self._pool is not None:
            await asyncio.to_thread(self._pool.stop)
            self._pool = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self._info = None

    async def restart(self, *, down_s: float = 0.0) -> None:
        """Drop every socket, stop listening (for ``down_s``: connections are refused meanwhile), and
        listen again on the same port with the same state. Cognito keeps running."""
        self._require_started()
        await self._unserve()
        if down_s > 0:
            await asyncio.sleep(down_s)
        await self._serve()

    async def _serve(self) -> None:
        assert self._http is not None and self._hub is not None
        runner = web.AppRunner(build_app(self._http, self._hub), shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])

    async def _unserve(self) -> None:
        if self._runner is None:
            return
        if self._hub is not None:
            await self._hub.drop_all()
        await self._runner.cleanup()
        self._runner = None

    def _cognito_seed(self, store: Store) -> int | None:
        if self._db_path is None or self._db_path == ":memory:":
            return None
        seed = store.meta(_SEED_KEY)
        if seed is None:
            seed = str(secrets.randbits(31))
            store.set_meta(_SEED_KEY, seed)
        return int(seed)

    @staticmethod
    def _seed_user_records(store: Store, users: tuple[SandboxUser, ...]) -> None:
        """A User record per seeded user (the agent updates its pcStatus; it never creates it)."""
        for user in users:
            if store.get("User", user.sub) is not None:
                continue
            now = now_iso()
            store.put(
                "User",
                {
                    "id": user.sub,
                    "email": user.email,
                    "name": user.username.title(),
                    "role": "ADMIN" if ADMIN_GROUP in user.groups else "CLIENT",
                    "pcStatus": "OFFLINE",
                    "isActive": True,
                    "createdAt": now,
                    "updatedAt": now,
                },
            )

    def _publish(self, mutation_field: str, payload: Mapping[str, Any]) -> None:
        self._stats.events_published += 1
        if self._broker is not None:
            self._broker.publish(mutation_field, payload)

    def _is_revoked(self, caller: Caller) -> bool:
        return self._registry.is_expired(caller.token_id)

    def _require_started(self) -> SandboxInfo:
        if self._info is None:
            raise SandboxError(
                "the sandbox is not started: use `async with Sandbox() as sb` or await start()"
            )
        return self._info

    # -- what clients see ------------------------------------------------------------------------

    @property
    def info(self) -> SandboxInfo:
        return self._require_started()

    @property
    def stats(self) -> SandboxStats:
        self._stats.subscriptions_active = len(self._broker) if self._broker is not None else 0
        return self._stats

    def tokens(self, username: str) -> Tokens:
        """That user's tokens, signing in (USER_PASSWORD_AUTH, blocking for a few ms) unless the cached
        ID token is still good."""
        user = self._require_started().user(username)
        assert self._pool is not None
        cached = self._tokens.get(username)
        if (
            cached is not None
            and cached.id_expires_at - time.time() > _TOKEN_MARGIN_S
            and not self._registry.is_expired(cached.id_token_id)
        ):
            return cached
        tokens = self._pool.sign_in(user.username, user.password)
        self._tokens[username] = tokens
        return tokens

    def id_token(self, username: str) -> str:
        return self.tokens(username).id_token

    async def graphql(
        self, username: str, query: str, variables: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST a query or mutation as ``username`` over real HTTP; the full response body."""
        info = self._require_started()
        tokens = await asyncio.to_thread(self.tokens, username)
        assert self._session is not None
        async with self._session.post(
            info.graphql_url,
            json={"query": query, "variables": dict(variables or {})},
            headers={"Authorization": tokens.id_token},
        ) as response:
            body: dict[str, Any] = await response.json()
            return body

    # -- fault hooks -----------------------------------------------------------------------------

    async def drop_sockets(self) -> int:
        """Cut every realtime socket (no close frame); returns how many there were."""
        self._require_started()
        assert self._hub is not None
        return await self._hub.drop_all()

    def stop_keepalive(self) -> None:
        self._faults.keepalive_enabled = False

    def resume_keepalive(self) -> None:
        self._faults.keepalive_enabled = True

    def expire_tokens(self) -> None:
        """Every ID token issued so far is refused as expired from now on (HTTP 401, connection_error,
        and an error frame on each subscription started with one)."""
        self._registry.expire_all()
        self._tokens.clear()
        if self._hub is not None:
            self._hub.expire_revoked()

    def revoke_refresh_tokens(self, username: str) -> None:
        """AdminUserGlobalSignOut: REFRESH_TOKEN_AUTH with that user's refresh tokens now fails.
        ID tokens already issued stay valid until they expire, as with real Cognito and AppSync."""
        self._require_started().user(username)
        assert self._pool is not None
        self._pool.sign_out_everywhere(username)

    def fail_next_mutations(
        self, n: int, error_type: str = "InternalFailure", message: str = "injected"
    ) -> None:
        self._faults.fail_next_mutations(n, error_type, message)

    def delay_next_mutations(self, n: int, seconds: float, *, after_commit: bool = False) -> None:
        """Delay the next ``n`` mutations; ``after_commit`` delays the response after the write and the
        publish (a client that times out does not know the mutation happened)."""
        self._faults.delay_next_mutations(n, seconds, after_commit=after_commit)
