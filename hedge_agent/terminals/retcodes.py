"""Broker result codes and what each one means for the agent: the one classification table (design §3).

Every adapter turns a broker code into a :class:`CodeInfo` here and from it into a typed result, so
"is 10020 worth a retry?" is answered in exactly one place. The simulated broker speaks MT5's
``TRADE_RETCODE_*`` values, so the simulator and the fake ``MetaTrader5`` package map 1:1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from .base import Rejected, Unknown


class Outcome(StrEnum):
    OK = "ok"  # the request was executed
    RETRYABLE = "retryable"  # not executed; the same request may be sent again after a backoff
    PERMANENT = "permanent"  # not executed; will fail the same way again: record the failure
    UNKNOWN = "unknown"  # may or may not have been executed: look the tag up before anything else


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: int
    name: str
    outcome: Outcome
    reason: str  # readable; ends up in exitReason / the action's failure message

    def result(self, detail: str = "") -> Rejected | Unknown:
        """The typed result for a code that did not fill (``detail``: the broker's own comment)."""
        reason = (
            f"{self.reason} ({detail})" if detail and detail.lower() != self.reason.lower() else self.reason
        )
        reason = f"{reason} [code {self.code}]"
        if self.outcome is Outcome.UNKNOWN:
            return Unknown(reason=reason, code=self.code)
        if self.outcome is Outcome.OK:
            raise ValueError(f"code {self.code} ({self.name}) is a success, not a rejection")
        return Rejected(code=self.code, reason=reason, retryable=self.outcome is Outcome.RETRYABLE)


def _table(rows: list[tuple[int, str, Outcome, str]]) -> Mapping[int, CodeInfo]:
    return {code: CodeInfo(code, name, outcome, reason) for code, name, outcome, reason in rows}


_OK, _RETRY, _PERM, _UNK = Outcome.OK, Outcome.RETRYABLE, Outcome.PERMANENT, Outcome.UNKNOWN

#: the agent sends a stop-loss only as the protective stop, so "invalid stops" (MT5 10016, MT4 130) is
#: always that stop, too near the price for the broker's stops level (or beyond it after a jump)
_STOPS_TOO_CLOSE = (
    "invalid stops: the protective stop is nearer to the price than the broker allows; raise "
    "protective_stop_pips of this terminal in the config above the broker's minimum (or set it to 0)"
)

# MT5 TRADE_RETCODE_* (real values). Odd edges: 10006 "rejected" is a catch-all of the dealing desk and
# is treated as permanent (a human should look); 10008 "placed" for a market deal means it is pending on
# the server, and 10011/10039 may hide an executed request: both are reconciled, never blindly retried.
REQUOTE = 10004
REJECT = 10006
CANCEL = 10007
PLACED = 10008
DONE = 10009
DONE_PARTIAL = 10010
ERROR = 10011
TIMEOUT = 10012
INVALID = 10013
INVALID_VOLUME = 10014
INVALID_PRICE = 10015
INVALID_STOPS = 10016
TRADE_DISABLED = 10017
MARKET_CLOSED = 10018
NO_MONEY = 10019
PRICE_CHANGED = 10020
PRICE_OFF = 10021
TOO_MANY_REQUESTS = 10024
SERVER_DISABLES_AT = 10026
CLIENT_DISABLES_AT = 10027
LOCKED = 10028
FROZEN = 10029
INVALID_FILL = 10030
CONNECTION = 10031
POSITION_CLOSED = 10036
INVALID_CLOSE_VOLUME = 10038
CLOSE_ORDER_EXIST = 10039
LIMIT_POSITIONS = 10040
HEDGE_PROHIBITED = 10046

MT5: Mapping[int, CodeInfo] = _table(
    [
        (REQUOTE, "REQUOTE", _RETRY, "requote"),
        (REJECT, "REJECT", _PERM, "request rejected by the broker"),
        (CANCEL, "CANCEL", _PERM, "request canceled by the trader"),
        (PLACED, "PLACED", _UNK, "order placed but not yet executed"),
        (DONE, "DONE", _OK, "request executed"),
        (DONE_PARTIAL, "DONE_PARTIAL", _OK, "request partially executed"),
        (ERROR, "ERROR", _UNK, "request processing error"),
        (TIMEOUT, "TIMEOUT", _UNK, "request timed out"),
        (INVALID, "INVALID", _PERM, "invalid request"),
        (INVALID_VOLUME, "INVALID_VOLUME", _PERM, "invalid volume"),
        (INVALID_PRICE, "INVALID_PRICE", _RETRY, "invalid price"),
        (INVALID_STOPS, "INVALID_STOPS", _PERM, _STOPS_TOO_CLOSE),
        (TRADE_DISABLED, "TRADE_DISABLED", _PERM, "trading is disabled for this account or symbol"),
        (MARKET_CLOSED, "MARKET_CLOSED", _PERM, "market is closed"),
        (NO_MONEY, "NO_MONEY", _PERM, "not enough money"),
        (PRICE_CHANGED, "PRICE_CHANGED", _RETRY, "price changed"),
        (PRICE_OFF, "PRICE_OFF", _RETRY, "off quotes (no prices)"),
        (10022, "INVALID_EXPIRATION", _PERM, "invalid order expiration"),
        (10023, "ORDER_CHANGED", _PERM, "order state changed"),
        (TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", _RETRY, "too many requests"),
        (10025, "NO_CHANGES", _PERM, "no changes in request"),
        (SERVER_DISABLES_AT, "SERVER_DISABLES_AT", _PERM, "autotrading disabled by the server"),
        (
            CLIENT_DISABLES_AT,
            "CLIENT_DISABLES_AT",
            _PERM,
            "autotrading disabled in the terminal (Algo Trading off)",
        ),
        (LOCKED, "LOCKED", _RETRY, "request locked for processing"),
        (FROZEN, "FROZEN", _PERM, "order or position frozen"),
        (INVALID_FILL, "INVALID_FILL", _PERM, "unsupported filling mode"),
        (CONNECTION, "CONNECTION", _RETRY, "no connection to the trade server"),
        (10032, "ONLY_REAL", _PERM, "operation allowed only for live accounts"),
        (10033, "LIMIT_ORDERS", _PERM, "pending orders limit reached"),
        (10034, "LIMIT_VOLUME", _PERM, "volume limit for the symbol reached"),
        (10035, "INVALID_ORDER", _PERM, "incorrect or prohibited order type"),
        (POSITION_CLOSED, "POSITION_CLOSED", _PERM, "position already closed"),
        (INVALID_CLOSE_VOLUME, "INVALID_CLOSE_VOLUME", _PERM, "close volume exceeds the position volume"),
        (CLOSE_ORDER_EXIST, "CLOSE_ORDER_EXIST", _UNK, "a close order already exists for the position"),
        (LIMIT_POSITIONS, "LIMIT_POSITIONS", _PERM, "open positions limit reached"),
        (10041, "REJECT_CANCEL", _PERM, "pending order activation rejected"),
        (10042, "LONG_ONLY", _PERM, "only long positions allowed for the symbol"),
        (10043, "SHORT_ONLY", _PERM, "only short positions allowed for the symbol"),
        (10044, "CLOSE_ONLY", _PERM, "only position closing allowed for the symbol"),
        (10045, "FIFO_CLOSE", _PERM, "position closing allowed only by FIFO rule"),
        (HEDGE_PROHIBITED, "HEDGE_PROHIBITED", _PERM, "opposite positions prohibited (hedging not allowed)"),
    ]
)

# MT5 Python package ``last_error()`` codes, read when ``order_send`` returned None (mql5.com, Python
# Integration, last_error: https://www.mql5.com/en/docs/python_metatrader5/mt5lasterror_py). What decides the
# outcome is whether the request can have left the terminal: an invalid argument, a refused Python API or a
# send that failed inside the package never reached the server (rejected); a receive failure, a timeout, an
# unspecified failure or "success" with no result may hide an executed order (unknown: look the tag up).
LAST_ERROR_OK = 1
AUTO_TRADING_DISABLED = -8

MT5_LAST_ERROR: Mapping[int, CodeInfo] = _table(
    [
        (LAST_ERROR_OK, "RES_S_OK", _UNK, "order_send returned no result (last_error says success)"),
        (-1, "RES_E_FAIL", _UNK, "order_send failed (generic fail)"),
        (-2, "RES_E_INVALID_PARAMS", _PERM, "order_send refused the request's arguments"),
        (-3, "RES_E_NO_MEMORY", _RETRY, "the terminal is out of memory"),
        (-4, "RES_E_NOT_FOUND", _PERM, "order_send: not found"),
        (-5, "RES_E_INVALID_VERSION", _PERM, "the MetaTrader5 package does not fit this terminal version"),
        (-6, "RES_E_AUTH_FAILED", _PERM, "authorization failed"),
        (-7, "RES_E_UNSUPPORTED", _PERM, "unsupported method"),
        (
            AUTO_TRADING_DISABLED,
            "RES_E_AUTO_TRADING_DISABLED",
            _PERM,
            "trading from Python is disabled in the terminal: enable Algo Trading and untick "
            "'Disable algorithmic trading via external Python API' in Tools > Options > Expert Advisors",
        ),
        (-10000, "RES_E_INTERNAL_FAIL", _UNK, "internal IPC failure"),
        (-10001, "RES_E_INTERNAL_FAIL_SEND", _RETRY, "the request could not be sent to the terminal (IPC)"),
        (-10002, "RES_E_INTERNAL_FAIL_RECEIVE", _UNK, "the terminal's answer was lost (IPC receive)"),
        (-10003, "RES_E_INTERNAL_FAIL_INIT", _RETRY, "the IPC with the terminal is not initialized"),
        (-10004, "RES_E_INTERNAL_FAIL_CONNECT", _RETRY, "no IPC connection to the terminal"),
        (-10005, "RES_E_INTERNAL_FAIL_TIMEOUT", _UNK, "the terminal did not answer in time (IPC timeout)"),
    ]
)

# MT4 GetLastError() trade codes. 128 (trade timeout) and 1 (no error, unknown result) may hide an
# executed order: reconcile. 2 "common error" is permanent as MQL4's documentation says to stop trading.
MT4: Mapping[int, CodeInfo] = _table(
    [
        (0, "ERR_NO_ERROR", _OK, "executed"),
        (1, "ERR_NO_RESULT", _UNK, "no error returned but the result is unknown"),
        (2, "ERR_COMMON_ERROR", _PERM, "common error"),
        (3, "ERR_INVALID_TRADE_PARAMETERS", _PERM, "invalid trade parameters"),
        (4, "ERR_SERVER_BUSY", _RETRY, "trade server is busy"),
        (5, "ERR_OLD_VERSION", _PERM, "old version of the client terminal"),
        (6, "ERR_NO_CONNECTION", _RETRY, "no connection with the trade server"),
        (7, "ERR_NOT_ENOUGH_RIGHTS", _PERM, "not enough rights"),
        (8, "ERR_TOO_FREQUENT_REQUESTS", _RETRY, "too frequent requests"),
        (9, "ERR_MALFUNCTIONAL_TRADE", _PERM, "malfunctional trade operation"),
        (64, "ERR_ACCOUNT_DISABLED", _PERM, "account disabled"),
        (65, "ERR_INVALID_ACCOUNT", _PERM, "invalid account"),
        (128, "ERR_TRADE_TIMEOUT", _UNK, "trade timeout"),
        (129, "ERR_INVALID_PRICE", _RETRY, "invalid price"),
        (130, "ERR_INVALID_STOPS", _PERM, _STOPS_TOO_CLOSE),
        (131, "ERR_INVALID_TRADE_VOLUME", _PERM, "invalid trade volume"),
        (132, "ERR_MARKET_CLOSED", _PERM, "market is closed"),
        (133, "ERR_TRADE_DISABLED", _PERM, "trade is disabled"),
        (134, "ERR_NOT_ENOUGH_MONEY", _PERM, "not enough money"),
        (135, "ERR_PRICE_CHANGED", _RETRY, "price changed"),
        (136, "ERR_OFF_QUOTES", _RETRY, "off quotes"),
        (137, "ERR_BROKER_BUSY", _RETRY, "broker is busy"),
        (138, "ERR_REQUOTE", _RETRY, "requote"),
        (139, "ERR_ORDER_LOCKED", _RETRY, "order is locked"),
        (140, "ERR_LONG_POSITIONS_ONLY_ALLOWED", _PERM, "only long positions allowed"),
        (141, "ERR_TOO_MANY_REQUESTS", _RETRY, "too many requests"),
        (145, "ERR_TRADE_MODIFY_DENIED", _PERM, "modification denied: too close to market"),
        (146, "ERR_TRADE_CONTEXT_BUSY", _RETRY, "trade context is busy"),
        (147, "ERR_TRADE_EXPIRATION_DENIED", _PERM, "expirations denied by the broker"),
        (148, "ERR_TRADE_TOO_MANY_ORDERS", _PERM, "too many open and pending orders"),
        (149, "ERR_TRADE_HEDGE_PROHIBITED", _PERM, "hedging prohibited"),
        (150, "ERR_TRADE_PROHIBITED_BY_FIFO", _PERM, "prohibited by FIFO rules"),
        (4109, "ERR_TRADE_NOT_ALLOWED", _PERM, "trade not allowed (enable 'Allow live trading' for the EA)"),
        (4110, "ERR_LONGS_NOT_ALLOWED", _PERM, "longs not allowed in the EA properties"),
        (4111, "ERR_SHORTS_NOT_ALLOWED", _PERM, "shorts not allowed in the EA properties"),
    ]
)


def _lookup(table: Mapping[int, CodeInfo], code: int, kind: str) -> CodeInfo:
    info = table.get(code)
    if info is not None:
        return info
    # An unlisted code is not a success and not known to be safe to repeat.
    return CodeInfo(code, "UNLISTED", Outcome.PERMANENT, f"{kind} error {code}")


def mt5(code: int) -> CodeInfo:
    """Classify an MT5 ``TRADE_RETCODE_*`` value (also what the simulated broker returns)."""
    return _lookup(MT5, code, "MT5 trade")


def mt5_last_error(code: int) -> CodeInfo:
    """Classify the ``last_error()`` code of an ``order_send`` that returned None; an unlisted code is
    unknown (it may have left)."""
    info = MT5_LAST_ERROR.get(code)
    if info is not None:
        return info
    return CodeInfo(code, "UNLISTED", Outcome.UNKNOWN, f"order_send returned None with last_error {code}")


def mt4(code: int) -> CodeInfo:
    """Classify an MT4 ``GetLastError()`` trade code."""
    return _lookup(MT4, code, "MT4 trade")
