"""Builds a :class:`Terminal` from its config. ``simulate`` swaps every kind for the simulator, so the rest
of the agent has no ``if simulated`` branches (design §5)."""

from __future__ import annotations

from pathlib import Path

from hedge_agent.config import TerminalConfig, TerminalKind

from .base import Terminal
from .mt5.servertime import MetaStore


def build_terminal(
    tc: TerminalConfig,
    *,
    simulate: bool = False,
    data_dir: Path | None = None,
    meta_store: MetaStore | None = None,
) -> Terminal:
    """``meta_store``: where a terminal keeps small learnt facts across restarts (the journal's meta)."""
    symbols = tc.symbols
    if simulate or tc.kind is TerminalKind.SIMULATED:
        from .simulated import SimAccountConfig, SimBroker, SimulatedTerminal, default_symbols

        names = {k.value: v for k, v in tc.symbol_map.items()}
        broker = SimBroker(
            symbols=default_symbols(names),
            account_config=SimAccountConfig(login=tc.login, server=tc.server or "SimBroker-Demo"),
            seed=tc.seed,
        )
        return SimulatedTerminal(tc.name, broker, symbols, latency=0.002, seed=tc.seed)
    if tc.kind is TerminalKind.MT5:
        from .mt5.terminal import Mt5Terminal

        assert tc.path is not None  # config validation guarantees it
        return Mt5Terminal(
            tc.name,
            path=tc.path,
            login=tc.login,
            server=tc.server,
            symbols=symbols,
            deviation=tc.deviation_points,
            server_time_offset=tc.server_utc_offset_seconds,
            meta_store=meta_store,
        )
    from .mt4.terminal import Mt4BridgeTerminal
    from .mt4.tokenfile import default_token_path, load_or_create_token

    assert tc.bridge_port is not None
    # no token_file: where the EA's default TokenFile input looks (the common files folder on Windows)
    token_path = Path(tc.token_file) if tc.token_file else default_token_path(data_dir or Path("."))
    return Mt4BridgeTerminal(
        tc.name,
        tc.bridge_port,
        load_or_create_token(token_path),
        symbols,
        login=tc.login or None,
        deviation_points=tc.deviation_points,
        token_file=token_path,
    )
