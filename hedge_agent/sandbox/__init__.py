"""Local sandbox backend: a Cognito user pool (moto's, served over HTTP) and an AppSync-compatible
GraphQL server (HTTP ``/graphql`` + the realtime WebSocket protocol) on 127.0.0.1, for the demo and
the integration tests. It shares no code with ``hedge_agent.cloud``.

``python -m hedge_agent.sandbox --print-json`` runs it standalone. Seeded users: alice and bob
(ordinary), carol (group ADMIN); each has a User record unless ``--no-user-rows`` (``user_rows=False``):
on AWS only the admin UI or a post-confirmation trigger creates one. Its packages are the ``demo`` extra
(``pip install "hedge-agent[demo]"``), not the product's.

What it matches in AWS's documented behaviour (and tests assert): AppSync's AMAZON_COGNITO_USER_POOLS
mode takes the pool's ID and access tokens (https://docs.aws.amazon.com/appsync/latest/devguide/security-authz.html);
the realtime handshake takes the authorization header in a ``header-<base64url>`` subprotocol next to
``graphql-ws`` (Amplify v6) or in ``?header=`` (gql), and ``connection_init`` is optional
(https://docs.aws.amazon.com/appsync/latest/devguide/real-time-websocket-client.html); an update or
delete of a missing record is ``Unauthorized`` (the generated owner check reads the item first; an ADMIN
gets ConditionalCheckFailed); a key condition DynamoDB cannot express (two operators on one key, a later
composite-key field without the earlier ones) is ``InvalidArgumentsError``, not ``[]``; index queries
come back in sort-key order (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.KeyConditionExpressions.html),
and where DynamoDB promises no order (equal sort keys, an index without one) in table-key (id) order,
never insertion order.

Where the sandbox knowingly differs from real AppSync / Cognito:

- Cognito is moto's, with a front (``cognito.CognitoFront``) that fixes two gaps: moto's SRP accepts
  any password, so the front runs a real SRP-6a challenge for the seeded users (users created later
  through the Cognito API still sign in with any password over SRP); and moto ignores token validity
  settings, so every ID token is re-signed with moto's key and ``exp = iat + id_token_ttl_s``. Access
  tokens keep moto's 1 h. The issuer is the AWS URL (``https://cognito-idp.<region>.amazonaws.com/<pool>``),
  not the local endpoint: a client that checks ``iss`` (pycognito) must expect the AWS form and take the
  JWKS from ``<endpoint>/<pool>/.well-known/jwks.json``. MFA, password policies and user attributes
  beyond email are moto's (thin). moto keeps pools in process-wide state; a file-backed sandbox seeds
  moto's id generator so the pool id, client id and subs come back the same on the next run.
- ``Bearer`` is refused; the ``host`` in the realtime header is not checked. Access tokens keep moto's
  1 h lifetime (``id_token_ttl_s`` shortens ID tokens only). ``appIdClientRegex`` is the one app client.
- moto's USER_ID_FOR_SRP is replaced by the username (Cognito's value for a pool that signs in by
  username; moto's own id breaks clients that answer with it, as Amplify does).
- Messages: Unauthorized says "Not Authorized to access <field> on type <Type>" (real AppSync's
  wording); a failed condition says "The conditional request failed" without AWS's request-id suffix;
  validation errors carry graphql-core's wording, not AppSync's.
- When the token a subscription was started with expires (or ``expire_tokens()``), that subscription
  gets an ``error`` frame (UnauthorizedException) and ends; the socket stays open. AWS does not
  document this case; the agent must recycle sockets before ``exp`` anyway.
- Unknown or malformed frames get an error without id and the socket is closed (strict).
- Subscription payloads carry only scalar fields the mutation selected; @hasMany fields in a
  subscription selection are null. Enhanced-filter limits (number of conditions, ``in`` sizes) are not
  enforced. Subscriptions are delivered in-process as soon as the mutation commits, so a subscriber
  may see the event before the mutating client sees its response (as on AWS, but with less delay).
- Paging follows DynamoDB: ``limit`` counts items read before ``filter`` and before the owner filter of
  list/secondary-key queries; a page that stopped at the limit always has a ``nextToken`` (the next
  page may be empty). Scans (``list*``) run in insertion order (DynamoDB's is by partition key hash).
- Storage drops null attributes (a null update removes the attribute), so ``attributeType: _null``
  never matches.
"""

from .info import SandboxError, SandboxInfo, SandboxUser
from .sandbox import Sandbox
from .stats import SandboxStats

__all__ = ["Sandbox", "SandboxError", "SandboxInfo", "SandboxStats", "SandboxUser"]
