"""Local sandbox backend: a Cognito user pool (moto's, served over HTTP) and an AppSync-compatible
GraphQL server (HTTP ``/graphql`` + the realtime WebSocket protocol) on 127.0.0.1, for the demo and
the integration tests. It shares no code with ``hedge_agent.cloud``.

``python -m hedge_agent.sandbox --print-json`` runs it standalone. Seeded users: alice and bob
(ordinary), carol (group ADMIN); each has a User record.

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
- AppSync accepts only ID tokens here (real AppSync also takes access tokens); ``Bearer`` is refused.
  The ``host`` in the realtime header is not checked.
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
  page may be empty). Scans run in insertion order; items with equal sort keys in insertion order.
- Storage drops null attributes (a null update removes the attribute), so ``attributeType: _null``
  never matches.
"""

from .info import SandboxError, SandboxInfo, SandboxUser
from .sandbox import Sandbox
from .stats import SandboxStats

__all__ = ["Sandbox", "SandboxError", "SandboxInfo", "SandboxStats", "SandboxUser"]
