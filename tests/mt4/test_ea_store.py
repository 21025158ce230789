"""Point 10 through the emulator: the de-dup file is named for the real login, a close that may not have
happened is not "ours", foreign EAs' negative magics, and what the history tab hides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.tags import IntentKind
from hedge_agent.terminals.base import Filled
from hedge_agent.terminals.mt4.emulator import StoreEntry
from hedge_agent.terminals.simulated import DealReason

from .conftest import LOGIN, Rig
from .test_ea_loop import tag


async def test_the_dedup_file_is_named_once_the_login_is_known_never_for_login_0(rig: Rig, tmp_path: Path):
    """AccountNumber() is 0 at OnInit while the terminal is still logging in: before, the store was opened
    as dedup-0.csv (shared by every account, and lost to the right one)."""
    cfg = rig.broker.account_config
    rig.broker.account_config = dataclasses.replace(cfg, login=0)
    t = await rig.bridge()
    ea = rig.ea(t.port, store_dir=tmp_path, login=0)
    assert ea.store_file is None
    rig.broker.account_config = cfg  # logged in
    await ea.start()
    await ea.wait_welcomed()
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("file"))
    assert isinstance(res, Filled)
    files = sorted(p.name for p in (tmp_path / "HedgeBridge").iterdir())
    assert files == [f"dedup-{LOGIN}.csv"]
    # a restarted EA reads it back: the repeated id is answered from the file, no second order
    again = rig.ea(t.port, store_dir=tmp_path)
    assert again.dedup_get(next(iter(ea.store))) is not None


async def test_an_unknown_close_long_before_a_stop_out_is_not_counted_as_closed_by_us(rig: Rig):
    """Before: any close entry that was not rejected (pending, unknown) claimed its ticket, so a stop-out
    much later was reported as "closed by expert" with our magic."""
    t, ea = await rig.linked()
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("so"))
    assert isinstance(res, Filled)
    close = tag("so", IntentKind.CLOSE)
    ea.dedup_put(StoreEntry("c-unknown", "close", close.magic, int(res.ticket), "unknown", code=128, at=ea.clock() - 3600))  # fmt: skip
    rig.broker.close(int(res.ticket), reason=DealReason.SO)
    (rec,) = await t.find(tag("so"))
    assert rec.close_magic is None and rec.close_reason != "closed by expert"
    assert await t.find(close) == []


async def test_positions_of_foreign_eas_with_negative_magics_are_reported(rig: Rig):
    t, _ea = await rig.linked()
    rig.broker.open("EURUSD", Side.SELL, 0.2, magic=-42, comment="other EA")
    (pos,) = await t.positions()
    assert pos.magic == -42 and pos.side is Side.SELL


async def test_a_trade_closed_before_the_history_tab_period_cannot_be_found(rig: Rig):
    """The EA sees what the Account History tab holds (README: keep it at All History)."""
    t, ea = await rig.linked()
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("old"))
    assert isinstance(res, Filled)
    rig.broker.close(int(res.ticket), reason=DealReason.CLIENT)
    assert len(await t.find(tag("old"))) == 1
    ea.history_from = ea.clock() + 1  # "last 3 days" and the trade is older
    assert await t.find(tag("old")) == []
