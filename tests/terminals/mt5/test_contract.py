"""The terminal contract, run against the MT5 adapter: a real worker process importing the fake
MetaTrader5 package over the simulated broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.terminals.contract import Harness, TerminalContract

from .conftest import FakeMt5Control, MakeTerminal


class TestMt5WorkerContract(TerminalContract):
    @pytest.fixture
    async def harness(self, make_terminal: MakeTerminal, control: FakeMt5Control) -> AsyncIterator[Harness]:
        terminal = make_terminal()
        await terminal.connect()
        yield Harness(terminal, control)
