"""The cloud link: Cognito sign-in, AppSync subscriptions/queries/mutations, the stored refresh token.

The engine uses :class:`CloudClient` (one stream of :data:`CloudEvent` plus typed queries and conditional
mutations returning :data:`MutationOutcome`); ``app.py`` builds it from :func:`resume` (stored sign-in).
Nothing here imports the sandbox: a bug shared by the client and the server it imitates would hide on both.
"""

from hedge_agent.engine.events import BadRecord, CaughtUp, CloudEvent, LinkState, RecordEvent
from hedge_agent.engine.outcomes import ConditionFailed, Failed, MutationOutcome, NotFound, Ok, Unauthorized

from .auth import CognitoAuth
from .client import CloudClient, LinkStats
from .login import login, logout, resume
from .token_store import CredentialStoreError, TokenStore

__all__ = [
    "BadRecord",
    "CaughtUp",
    "CloudClient",
    "CloudEvent",
    "CognitoAuth",
    "ConditionFailed",
    "CredentialStoreError",
    "Failed",
    "LinkState",
    "LinkStats",
    "MutationOutcome",
    "NotFound",
    "Ok",
    "RecordEvent",
    "TokenStore",
    "Unauthorized",
    "login",
    "logout",
    "resume",
]
