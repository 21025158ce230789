"""Who gets in: mutual proof of the token (challenge-response), a valid hello in time, loopback only, one EA per terminal. Every refusal is
a close frame with a code and a reason, within 1 s."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.errors import ConfigError
from hedge_agent.terminals.base import Connection
from hedge_agent.terminals.mt4 import Mt4BridgeTerminal
from hedge_agent.terminals.mt4.codec import BRIDGE_ROLE, EA_ROLE, MAX_FRAME_BYTES, CloseCode, proof
from hedge_agent.terminals.mt4.server import is_loopback_peer

from .conftest import LOGIN, TOKEN, Rig, until

CLOSED_WITHIN_S = 1.0


EA_NONCE = "e" * 64


def hello(**over: Any) -> str:
    frame: dict[str, Any] = {"type": "hello", "v": 2, "nonce": EA_NONCE}
    frame.update(over)
    return json.dumps({k: v for k, v in frame.items() if v is not None})


def auth(challenge: dict[str, Any], *, token: str = TOKEN, nonce: str = EA_NONCE, **over: Any) -> str:
    frame: dict[str, Any] = {
        "type": "auth",
        "proof": proof(token, EA_ROLE, nonce, challenge["nonce"]),
        "terminal": "MT4",
        "build": 1420,
        "login": LOGIN,
        "server": "SimBroker-Demo",
        "ea_version": "2.0.0",
        "instance": "raw-client",
    }
    frame.update(over)
    return json.dumps({k: v for k, v in frame.items() if v is not None})


async def handshake(ws: ClientConnection, *, token: str = TOKEN, **over: Any) -> dict[str, Any]:
    """hello, the bridge's challenge, auth; returns the challenge."""
    await ws.send(hello())
    challenge: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
    assert challenge["type"] == "challenge", challenge
    await ws.send(auth(challenge, token=token, **over))
    return challenge


async def raw_client(port: int) -> ClientConnection:
    return await connect(f"ws://127.0.0.1:{port}", compression=None, proxy=None, ping_interval=None)


async def closed_with(ws: ClientConnection) -> tuple[int | None, str, float]:
    """Read until the bridge closes; (code, reason, seconds it took)."""
    t0 = time.monotonic()
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 3.0)
    return ws.close_code, ws.close_reason or "", time.monotonic() - t0


async def refused(port: int, first: str | bytes | None) -> tuple[int | None, str, float]:
    async with await raw_client(port) as ws:
        t0 = time.monotonic()
        if first is not None:
            await ws.send(first)
        code, reason, _ = await closed_with(ws)
        return code, reason, time.monotonic() - t0


async def test_an_ea_with_the_token_is_welcomed_and_the_terminal_turns_healthy(rig: Rig):
    t = await rig.bridge()
    assert t.health().connection is Connection.DISCONNECTED
    assert "waiting for the EA" in t.health().detail
    async with await raw_client(t.port) as ws:
        challenge = await handshake(ws)
        # the bridge proved it holds the token, for this EA nonce and its own fresh one
        assert challenge["proof"] == proof(TOKEN, BRIDGE_ROLE, EA_NONCE, challenge["nonce"])
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome" and welcome["v"] == 2 and welcome["max_frame"] == MAX_FRAME_BYTES
        assert welcome["session"]
        await ws.send(
            '{"type":"account","login":5000001,"balance":1,"credit":0,"equity":1,"margin":0,"trade_allowed":true}'
        )
        await until(lambda: t.health().ok)
    assert t.stats().welcomed == 1


async def answered(
    port: int, answer: Callable[[dict[str, Any]], str | bytes]
) -> tuple[int | None, str, float]:
    """hello, then ``answer(challenge)`` in place of a good auth; (code, reason, seconds to the close)."""
    async with await raw_client(port) as ws:
        await ws.send(hello())
        challenge = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
        t0 = time.monotonic()
        await ws.send(answer(challenge))
        code, reason, _ = await closed_with(ws)
        return code, reason, time.monotonic() - t0


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda ch: auth(ch, token="wrong-" + TOKEN[6:]), "unauthorized: wrong proof"),
        (lambda ch: auth(ch, proof=None), "unauthorized"),
        (lambda ch: auth(ch, proof=123), "unauthorized"),
        (lambda ch: auth(ch, proof=ch["proof"]), "unauthorized: wrong proof"),  # the bridge's own proof
        (lambda ch: auth(ch, nonce="f" * 64), "unauthorized: wrong proof"),  # proof for another nonce
        (lambda ch: "not json", "unauthorized"),
        (lambda ch: b"\x01binary auth", "unauthorized"),
        (lambda ch: '{"type":"ticks","q":[]}', "unauthorized"),
    ],
    ids=[
        "wrong-token",
        "missing",
        "not-a-string",
        "reflected",
        "other-nonce",
        "not-json",
        "binary",
        "not-auth",
    ],
)
async def test_a_client_without_the_token_is_closed_within_a_second_with_a_reason(
    rig: Rig, answer: Callable[[dict[str, Any]], str], reason: str
):
    t = await rig.bridge()
    code, why, took = await answered(t.port, answer)
    assert code == CloseCode.UNAUTHORIZED and reason in why, why
    assert took < CLOSED_WITHIN_S
    assert t.stats().refused == 1 and t.health().connection is Connection.DISCONNECTED


async def test_an_impostor_ea_that_replays_a_recorded_handshake_is_refused(rig: Rig):
    """The bridge's nonce is fresh per connection: a proof recorded from a good EA is worthless later."""
    t = await rig.bridge()
    async with await raw_client(t.port) as ws:
        challenge = await handshake(ws)
        recorded = auth(challenge)
        assert json.loads(await ws.recv())["type"] == "welcome"
    await until(lambda: t._link is None)
    code, why, _ = await answered(t.port, lambda _ch: recorded)
    assert code == CloseCode.UNAUTHORIZED and "wrong proof" in why


@pytest.mark.parametrize(
    ("first", "code", "words"),
    [
        (hello(v=1, token=TOKEN), CloseCode.UNSUPPORTED_VERSION, "protocol v1 unsupported"),
        (hello(nonce="short"), CloseCode.PROTOCOL_ERROR, "field 'nonce'"),
        (hello(nonce=None), CloseCode.PROTOCOL_ERROR, "field 'nonce'"),
        ("not json", CloseCode.PROTOCOL_ERROR, "not valid JSON"),
        (b"\x01binary hello", CloseCode.PROTOCOL_ERROR, "binary"),
        ('{"type":"ticks","q":[]}', CloseCode.PROTOCOL_ERROR, "must be a hello"),
    ],
    ids=["v1-ea", "bad-nonce", "no-nonce", "not-json", "binary", "not-a-hello"],
)
async def test_a_bad_hello_is_closed_with_the_reason_and_no_challenge(
    rig: Rig, first: str | bytes, code: CloseCode, words: str
):
    t = await rig.bridge()
    got, why, took = await refused(t.port, first)
    assert got == code and words in why, why
    assert took < CLOSED_WITHIN_S


async def test_a_client_that_says_nothing_is_closed_at_the_hello_deadline(rig: Rig):
    t = await rig.bridge(hello_timeout_s=0.8)  # the default
    async with await raw_client(t.port) as ws:
        code, why, took = await closed_with(ws)
    assert (code, why) == (CloseCode.HELLO_TIMEOUT, "no hello within 0.8 s")
    assert took < CLOSED_WITHIN_S


async def test_a_client_that_never_finishes_the_http_upgrade_is_dropped_within_a_second(rig: Rig):
    t = await rig.bridge()
    reader, writer = await asyncio.open_connection("127.0.0.1", t.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
    t0 = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 3.0) is not None  # EOF: the bridge hung up
    assert time.monotonic() - t0 < CLOSED_WITHIN_S
    writer.close()


async def test_a_late_hello_is_refused(rig: Rig):
    t = await rig.bridge(hello_timeout_s=0.3)
    async with await raw_client(t.port) as ws:
        await asyncio.sleep(0.5)
        with pytest.raises(ConnectionClosed):
            await ws.send(hello())
            await asyncio.wait_for(ws.recv(), 2.0)
        assert ws.close_code == CloseCode.HELLO_TIMEOUT


@pytest.mark.parametrize(
    ("over", "code", "words"),
    [
        ({"login": "5000001"}, CloseCode.PROTOCOL_ERROR, "field 'login'"),
        ({"instance": None}, CloseCode.PROTOCOL_ERROR, "field 'instance'"),
        ({"type": "ticks"}, CloseCode.PROTOCOL_ERROR, "field 'q'"),
    ],
    ids=["bad-type", "missing-field", "not-an-auth"],
)
async def test_an_authenticated_but_malformed_auth_is_closed_with_the_field_named(
    rig: Rig, over: dict[str, Any], code: CloseCode, words: str
):
    t = await rig.bridge()
    got, why, took = await answered(t.port, lambda ch: auth(ch, **over))
    assert got == code and words in why, why
    assert took < CLOSED_WITHIN_S


async def test_null_is_the_same_as_a_missing_key(rig: Rig):
    """PROTOCOL §1; before v2 the codec refused ``"company": null`` (closed 4003)."""
    t = await rig.bridge()
    async with await raw_client(t.port) as ws:
        await ws.send(hello())
        challenge = json.loads(await ws.recv())
        frame = json.loads(auth(challenge))
        frame.update(company=None, session=None)
        await ws.send(json.dumps(frame))
        assert json.loads(await ws.recv())["type"] == "welcome"


async def test_an_ea_on_another_account_is_refused(rig: Rig):
    t = await rig.bridge(login=LOGIN + 1)
    code, why, _ = await answered(t.port, auth)
    assert code == CloseCode.WRONG_ACCOUNT and "wrong account" in why


async def test_an_oversized_first_frame_is_closed_with_1009(rig: Rig):
    t = await rig.bridge()
    code, _, took = await refused(t.port, "x" * (MAX_FRAME_BYTES + 1))
    assert code == CloseCode.MESSAGE_TOO_BIG and took < CLOSED_WITHIN_S


async def test_an_oversized_frame_from_a_welcomed_ea_is_closed_with_1009_and_the_ea_comes_back(rig: Rig):
    _t, ea = await rig.linked()
    await ea.send_garbage(['{"type":"error","code":"x","reason":"' + "y" * MAX_FRAME_BYTES + '"}'])
    await until(lambda: ea.connections >= 2)
    assert ea.last_close is not None and ea.last_close[0] == CloseCode.MESSAGE_TOO_BIG


async def test_a_browser_is_refused_before_the_upgrade(rig: Rig):
    t = await rig.bridge()
    with pytest.raises(InvalidStatus) as e:
        await connect(f"ws://127.0.0.1:{t.port}", origin="https://evil.example", proxy=None)  # type: ignore[arg-type]
    assert e.value.response.status_code == 403


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "localhost", "example.com", ""])
def test_the_bridge_refuses_to_be_built_on_anything_but_loopback(host: str):
    with pytest.raises(ConfigError, match="loopback only"):
        Mt4BridgeTerminal("mt4-x", 0, TOKEN, SymbolTable(), host=host)


def test_an_empty_token_is_refused_at_construction():
    with pytest.raises(ConfigError, match="token is empty"):
        Mt4BridgeTerminal("mt4-x", 0, "", SymbolTable())


@pytest.mark.parametrize(
    ("peer", "ok"),
    [
        (("127.0.0.1", 5), True),
        (("127.8.9.10", 5), True),
        (("::1", 5, 0, 0), True),
        (("::ffff:127.0.0.1", 5, 0, 0), True),
        (("10.0.0.2", 5), False),
        (("::ffff:10.0.0.2", 5, 0, 0), False),
        (("fe80::1%eth0", 5, 0, 2), False),
        (None, False),
        (("garbage", 1), False),
    ],
)
def test_only_loopback_peers_pass_the_screen(peer: object, ok: bool):
    assert is_loopback_peer(peer) is ok


async def test_the_bridge_listens_on_loopback_only(rig: Rig):
    t = await rig.bridge()
    assert t._server.host == "127.0.0.1"
    sock = next(iter(t._server._server.sockets))  # type: ignore[union-attr]
    assert sock.getsockname()[0] == "127.0.0.1"


async def test_a_second_ea_for_the_same_terminal_is_refused_while_the_first_is_alive(rig: Rig):
    t, first = await rig.linked()
    second = rig.ea(t.port)
    await second.start()
    await until(lambda: second.last_close is not None)
    assert second.last_close is not None
    code, why = second.last_close
    assert code == CloseCode.BUSY and "busy" in why
    assert not second.welcomed and first.welcomed and t._link is not None
    assert t._link.hello.instance == first.instance
    # when the first goes away, the second (still retrying) takes over
    await first.stop()
    await second.wait_welcomed(3.0)
    assert t.health().connection is Connection.CONNECTED


async def test_the_same_ea_reconnecting_with_its_current_session_replaces_its_old_socket(rig: Rig):
    t, ea = await rig.linked()
    old_session = ea.session
    async with await raw_client(t.port) as ws:
        await handshake(ws, instance=ea.instance, session=old_session)
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome" and welcome["session"] != old_session
        await until(lambda: ea.last_close is not None)
        assert ea.last_close is not None and ea.last_close[0] == CloseCode.REPLACED
        assert t._link is not None and t._link.session == welcome["session"]


async def test_a_stale_session_cannot_take_over_a_live_link(rig: Rig):
    t, ea = await rig.linked()
    code, _why, _ = await answered(t.port, lambda ch: auth(ch, session="0123456789abcdef"))
    assert code == CloseCode.BUSY
    assert ea.welcomed and t._link is not None and t._link.hello.instance == ea.instance


async def test_a_silent_ea_is_dropped_as_a_dead_peer_and_health_says_why(rig: Rig):
    t, ea = await rig.linked()
    ea.silent = True
    await until(lambda: t.health().connection is not Connection.CONNECTED)
    assert "dead peer" in t.health().detail
    ea.silent = False
    await until(lambda: ea.welcomed and t.health().connection is Connection.CONNECTED)


async def test_shutdown_tells_the_ea_the_agent_is_going_away(rig: Rig):
    t, ea = await rig.linked()
    await t.shutdown()
    await until(lambda: ea.last_close is not None)
    assert ea.last_close == (CloseCode.GOING_AWAY, "agent shutting down")
    await t.shutdown()  # idempotent
