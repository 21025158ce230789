"""A real Cognito user pool on 127.0.0.1: moto's cognito-idp served over HTTP in a thread.

Clients (pycognito, botocore) talk the AWS JSON protocol to it: SRP and USER_PASSWORD sign-in,
REFRESH_TOKEN_AUTH, GlobalSignOut. Three things are fixed in front of moto, in one place
(``CognitoFront``):

- moto's SRP accepts any password. The front puts a real SRP challenge (``srp.py``) into moto's
  answer to USER_SRP_AUTH and checks the client's password claim before moto sees it: a wrong
  password gets NotAuthorizedException, as on Cognito. (Only for the seeded users, whose passwords
  the sandbox knows.)

- moto always stamps ``exp = iat + 1 h`` and ignores the app client's IdTokenValidity. Every ID token
  is re-signed with moto's own key (so it still verifies against the pool's published JWKS) with
  ``exp = iat + id_token_ttl_s``; tests can have tokens that expire in seconds. Access tokens stay as
  moto issued them (1 h): moto's GetUser and GlobalSignOut look them up verbatim.
- the ``jti`` of every ID and access token is recorded, so the sandbox can force-expire every token
  issued so far.

The issuer stays what moto writes and what real Cognito writes:
``https://cognito-idp.<region>.amazonaws.com/<pool id>``, not the local endpoint.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jwt

from . import srp
from .auth import TokenRegistry
from .info import SandboxError, SandboxUser
from .model_specs import ADMIN_GROUP

DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; these exist only so botocore can sign the admin calls.
_DUMMY_KEY = "sandbox"
_MAX_OPEN_CHALLENGES = 1000
_TOKEN_ACTIONS = (
    "InitiateAuth",
    "RespondToAuthChallenge",
    "AdminInitiateAuth",
    "AdminRespondToAuthChallenge",
)


@dataclass(frozen=True)
class SeedUser:
    username: str
    password: str
    email: str
    groups: tuple[str, ...] = ()


DEFAULT_USERS: tuple[SeedUser, ...] = (
    SeedUser("alice", "Alice-sandbox-1!", "alice@example.com"),
    SeedUser("bob", "Bob-sandbox-1!", "bob@example.com"),
    SeedUser("carol", "Carol-sandbox-1!", "carol@example.com", (ADMIN_GROUP,)),
)


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str
    refresh_token: str
    id_expires_at: float
    id_token_id: str  # the ID token's jti


def _moto_resource(name: str) -> dict[str, Any]:
    raw = resources.files("moto.cognitoidp").joinpath(f"resources/{name}.json.gz").read_bytes()
    data: dict[str, Any] = json.loads(gzip.decompress(raw))
    return data


@cache
def _moto_signing_key() -> tuple[str, Any]:
    """(kid, private key) moto signs with; recovering the RSA primes takes ~0.2 s, so once per process."""
    private = _moto_resource("jwks-private")
    return str(private["kid"]), jwt.PyJWK(private).key


def moto_public_jwks() -> dict[str, Any]:
    """The JWKS moto's pools publish (one fixed RSA key, kid "dummy")."""
    return _moto_resource("jwks-public")


def issuer_for(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class CognitoFront:
    """WSGI middleware in front of moto (see the module docstring): checks SRP password claims and
    re-signs ID tokens. It runs in the server's request threads, hence the lock."""

    def __init__(self, app: WsgiApp, *, ttl_s: int, registry: TokenRegistry) -> None:
        self._app = app
        self.ttl_s = ttl_s
        self._registry = registry
        self._kid, self._key = _moto_signing_key()
        self._lock = threading.Lock()
        #: set once the pool exists: the user pool id and each seeded user's password
        self.user_pool_id = ""
        self.passwords: dict[str, str] = {}
        #: our SECRET_BLOCK -> (the challenge, moto's own secret block / session)
        self._challenges: dict[str, tuple[srp.PasswordChallenge, str]] = {}

    def record(self, token: str) -> None:
        self._registry.record(str(jwt.decode(token, options={"verify_signature": False})["jti"]))

    def reissue(self, token: str) -> str:
        claims = jwt.decode(token, options={"verify_signature": False})
        claims["exp"] = int(claims["iat"]) + self.ttl_s
        self._registry.record(str(claims["jti"]))
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    # -- SRP --------------------------------------------------------------------------------------

    def _challenge(self, request: dict[str, Any], response: dict[str, Any]) -> None:
        """Replace moto's fake SALT/SRP_B with a real challenge for a user whose password we know."""
        parameters = response.get("ChallengeParameters")
        if response.get("ChallengeName") != "PASSWORD_VERIFIER" or not isinstance(parameters, dict):
            return
        password = self.passwords.get(str(parameters.get("USERNAME")))
        auth_parameters = request.get("AuthParameters")
        srp_a = auth_parameters.get("SRP_A") if isinstance(auth_parameters, dict) else None
        if password is None or not isinstance(srp_a, str) or not self.user_pool_id:
            return
        # moto puts an internal id in USER_ID_FOR_SRP that its own RespondToAuthChallenge cannot find when
        # a client answers with USERNAME = USER_ID_FOR_SRP (as the Amplify JS library does). Cognito sends
        # the user's username there for a pool that signs in by username, as this one does.
        parameters["USER_ID_FOR_SRP"] = parameters["USERNAME"]
        challenge = srp.new_challenge(
            user_pool_id=self.user_pool_id,
            user_id=str(parameters["USER_ID_FOR_SRP"]),
            password=password,
            srp_a_hex=srp_a,
        )
        with self._lock:
            if len(self._challenges) >= _MAX_OPEN_CHALLENGES:  # abandoned sign-ins
                self._challenges.pop(next(iter(self._challenges)))
            self._challenges[challenge.secret_block] = (challenge, str(parameters["SECRET_BLOCK"]))
        parameters.update(
            SALT=challenge.salt_hex, SRP_B=format(challenge.big_b, "x"), SECRET_BLOCK=challenge.secret_block
        )

    def _check_claim(self, request: dict[str, Any]) -> bool | None:
        """True/False for a PASSWORD_VERIFIER answer to one of our challenges (and point the request
        back at moto's session); None when it is not one."""
        responses = request.get("ChallengeResponses")
        if request.get("ChallengeName") != "PASSWORD_VERIFIER" or not isinstance(responses, dict):
            return None
        with self._lock:
            entry = self._challenges.pop(str(responses.get("PASSWORD_CLAIM_SECRET_BLOCK")), None)
        if entry is None:
            return None
        challenge, moto_secret_block = entry
        responses["PASSWORD_CLAIM_SECRET_BLOCK"] = moto_secret_block
        return challenge.accepts(
            str(responses.get("PASSWORD_CLAIM_SIGNATURE", "")), str(responses.get("TIMESTAMP"))
        )

    # -- WSGI -------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.endswith(_TOKEN_ACTIONS):
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            request = json.loads(raw) if raw else {}
        except ValueError:
            request = {}
        if isinstance(request, dict) and target.endswith("RespondToAuthChallenge"):
            verdict = self._check_claim(request)
            if verdict is False:
                return _json_error(
                    start_response, "NotAuthorizedException", "Incorrect username or password."
                )
            if verdict is True:
                raw = json.dumps(request).encode()
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        status, headers, body = _call(self._app, environ)
        if status.startswith("200"):
            try:
                response = json.loads(body)
            except ValueError:
                response = None
            if isinstance(response, dict):
                if isinstance(request, dict) and request.get("AuthFlow") == "USER_SRP_AUTH":
                    try:
                        self._challenge(request, response)
                    except ValueError as exc:
                        return _json_error(start_response, "InvalidParameterException", f"SRP_A: {exc}")
                result = response.get("AuthenticationResult")
                if isinstance(result, dict) and "IdToken" in result:
                    result["IdToken"] = self.reissue(str(result["IdToken"]))
                if isinstance(result, dict) and "AccessToken" in result:
                    # kept as moto issued it (moto's GetUser/GlobalSignOut look it up verbatim): 1 h
                    self.record(str(result["AccessToken"]))
                body = json.dumps(response).encode()
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to completion: (status, headers, body)."""
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], Any]:
        captured["status"], captured["headers"] = status, headers
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return str(captured["status"]), list(captured["headers"]), b"".join(chunks)


def _json_error(start_response: Callable[..., Any], error_type: str, message: str) -> Iterable[bytes]:
    """An error the way the AWS JSON protocol carries it (botocore reads ``__type``)."""
    body = json.dumps({"__type": error_type, "message": message}).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", error_type),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def _quiet_handler() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):  # type: ignore[misc]
        """Werkzeug logs every request to stderr by default; the sandbox is not a dev server."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    return QuietHandler


class LocalUserPool:
    """moto's Cognito on ``host:port`` with one pool, one public app client and seeded users.

    Blocking (boto3 and a werkzeug server thread): call ``start``/``stop``/``sign_in`` off the loop.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int = 0,
        region: str = DEFAULT_REGION,
        id_token_ttl_s: int = 3600,
        registry: TokenRegistry,
    ) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        self.region = region
        self.registry = registry
        self.front = CognitoFront(
            DomainDispatcherApplication(create_backend_app), ttl_s=id_token_ttl_s, registry=registry
        )
        self._server = make_server(host, port, self.front, threaded=True, request_handler=_quiet_handler())
        self.endpoint = f"http://{host}:{self._server.server_port}"
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self.user_pool_id = ""
        self.client_id = ""
        self.users: tuple[SandboxUser, ...] = ()

    @property
    def issuer(self) -> str:
        return issuer_for(self.region, self.user_pool_id)

    def start(self, *, seed: int | None = None, users: Iterable[SeedUser] = DEFAULT_USERS) -> None:
        """Serve, then create the pool, app client, ADMIN group and users.

        With ``seed``, moto's id generator is seeded first, so the same seed gives the same pool id,
        client id and user subs (a file-backed sandbox keeps its owners across runs).
        """
        import boto3
        from botocore.config import Config

        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-cognito", daemon=True
        )
        self._thread.start()
        if seed is not None:
            request = urllib.request.Request(f"{self.endpoint}/moto-api/seed?a={seed}", method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        session = boto3.session.Session(
            aws_access_key_id=_DUMMY_KEY, aws_secret_access_key=_DUMMY_KEY, region_name=self.region
        )
        self._client = session.client(
            "cognito-idp",
            endpoint_url=self.endpoint,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )
        client = self._client
        self.user_pool_id = client.create_user_pool(
            PoolName="hedge-sandbox",
            Policies={"PasswordPolicy": {"MinimumLength": 8}},
            AutoVerifiedAttributes=["email"],
        )["UserPool"]["Id"]
        self.client_id = client.create_user_pool_client(
            UserPoolId=self.user_pool_id,
            ClientName="hedge-agent",
            GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"],
        )["UserPoolClient"]["ClientId"]
        client.create_group(UserPoolId=self.user_pool_id, GroupName=ADMIN_GROUP)
        users = tuple(users)
        self.users = tuple(self._create_user(user) for user in users)
        self.front.user_pool_id = self.user_pool_id
        self.front.passwords.update({user.username: user.password for user in users})

    def _create_user(self, user: SeedUser) -> SandboxUser:
        client = self._client
        created = client.admin_create_user(
            UserPoolId=self.user_pool_id,
            Username=user.username,
            UserAttributes=[
                {"Name": "email", "Value": user.email},
                {"Name": "email_verified", "Value": "true"},
            ],
            MessageAction="SUPPRESS",
        )
        client.admin_set_user_password(
            UserPoolId=self.user_pool_id, Username=user.username, Password=user.password, Permanent=True
        )
        for group in user.groups:
            client.admin_add_user_to_group(
                UserPoolId=self.user_pool_id, Username=user.username, GroupName=group
            )
        attributes = {item["Name"]: item["Value"] for item in created["User"]["Attributes"]}
        return SandboxUser(
            username=user.username,
            password=user.password,
            sub=attributes["sub"],
            groups=user.groups,
            email=user.email,
        )

    def _auth(self, flow: str, parameters: dict[str, str]) -> Tokens:
        from botocore.exceptions import ClientError

        try:
            response = self._client.initiate_auth(
                ClientId=self.client_id, AuthFlow=flow, AuthParameters=parameters
            )
        except ClientError as exc:
            raise SandboxError(
                f"Cognito refused {flow}: {exc.response['Error'].get('Message', exc)}"
            ) from exc
        result = response["AuthenticationResult"]
        claims = jwt.decode(result["IdToken"], options={"verify_signature": False})
        return Tokens(
            id_token=result["IdToken"],
            access_token=result["AccessToken"],
            refresh_token=result.get("RefreshToken", parameters.get("REFRESH_TOKEN", "")),
            id_expires_at=float(claims["exp"]),
            id_token_id=str(claims["jti"]),
        )

    def sign_in(self, username: str, password: str) -> Tokens:
        return self._auth("USER_PASSWORD_AUTH", {"USERNAME": username, "PASSWORD": password})

    def refresh(self, refresh_token: str) -> Tokens:
        return self._auth("REFRESH_TOKEN_AUTH", {"REFRESH_TOKEN": refresh_token})

    def sign_out_everywhere(self, username: str) -> None:
        """AdminUserGlobalSignOut: the user's refresh tokens stop working."""
        self._client.admin_user_global_sign_out(UserPoolId=self.user_pool_id, Username=username)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
