"""The ownership rule (design §1.3): act only on records of this user on accounts bound to this PC."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from .models import Account, Action, Position


class Ownership(StrEnum):
    OWNED = "owned"
    OTHER_USER = "other_user"  # e.g. delivered to an ADMIN token, or reassigned by its owner
    OTHER_PC = "other_pc"  # this user's, but the account is bound to a terminal elsewhere


def ownership(record: Position | Action | Account, sub: str, local_account_ids: Collection[str]) -> Ownership:
    if record.user_id != sub:
        return Ownership.OTHER_USER
    account_id = record.id if isinstance(record, Account) else record.account_id
    if account_id not in local_account_ids:
        return Ownership.OTHER_PC
    return Ownership.OWNED


def is_owned(record: Position | Action | Account, sub: str, local_account_ids: Collection[str]) -> bool:
    return ownership(record, sub, local_account_ids) is Ownership.OWNED
