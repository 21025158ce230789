"""``app.assemble``: the one composition root builds each terminal of the config with its real kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedge_agent.app import assemble
from hedge_agent.cloud.auth import CognitoAuth
from hedge_agent.config import AgentConfig, AppSyncConfig, CognitoConfig, TerminalConfig, TerminalKind
from hedge_agent.terminals.mt4.terminal import Mt4BridgeTerminal
from hedge_agent.terminals.mt5.terminal import Mt5Terminal
from hedge_agent.terminals.simulated import SimBroker, SimulatedTerminal


def _config(tmp_path: Path) -> AgentConfig:
    return AgentConfig(
        cognito=CognitoConfig(region="us-east-1", user_pool_id="us-east-1_abc", client_id="c", username="u"),
        appsync=AppSyncConfig(graphql_url="http://127.0.0.1:9/graphql"),
        terminals=[
            TerminalConfig(name="sim", kind=TerminalKind.SIMULATED, account_id="a1", login=5),
            TerminalConfig(
                name="mt4", kind=TerminalKind.MT4, account_id="a2", login=7, bridge_port=50123,
                token_file=str(tmp_path / "mt4.token"),
            ),
            TerminalConfig(name="mt5", kind=TerminalKind.MT5, account_id="a3", login=9, path="terminal64.exe"),
        ],
        journal_path=tmp_path / "journal.sqlite3",
    )  # fmt: skip


async def test_each_terminal_is_built_with_its_kind_and_bound_to_its_account(tmp_path: Path) -> None:
    config = _config(tmp_path)
    agent = await assemble(config, auth=CognitoAuth(config.cognito), data_dir=tmp_path)
    try:
        terminals = {b.name: b.terminal for b in agent.parts.bindings}
        assert isinstance(terminals["sim"], SimulatedTerminal)
        assert isinstance(terminals["mt4"], Mt4BridgeTerminal) and terminals["mt4"].port == 50123
        assert isinstance(terminals["mt5"], Mt5Terminal)
        assert {b.name: b.account_id for b in agent.parts.bindings} == {"sim": "a1", "mt4": "a2", "mt5": "a3"}
        assert agent.parts.kinds == {"sim": "simulated", "mt4": "mt4", "mt5": "mt5"}
        assert agent.parts.start_checks  # the User record check runs at start
    finally:
        agent.parts.journal.close()


async def test_simulate_swaps_every_kind_and_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path)
    agent = await assemble(config, auth=CognitoAuth(config.cognito), simulate=True, data_dir=tmp_path)
    try:
        assert all(isinstance(b.terminal, SimulatedTerminal) for b in agent.parts.bindings)
        assert set(agent.parts.kinds.values()) == {"simulated"}
    finally:
        agent.parts.journal.close()


async def test_terminals_given_by_name_are_used_and_unknown_names_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    mine = SimulatedTerminal("sim", SimBroker())
    agent = await assemble(
        config, auth=CognitoAuth(config.cognito), terminals={"sim": mine}, data_dir=tmp_path
    )
    try:
        assert agent.parts.bindings[0].terminal is mine
    finally:
        agent.parts.journal.close()
    with pytest.raises(ValueError, match="not in the config"):
        await assemble(config, auth=CognitoAuth(config.cognito), terminals={"nope": mine}, data_dir=tmp_path)
