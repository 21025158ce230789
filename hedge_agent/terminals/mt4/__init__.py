"""MT4 through the HedgeBridge EA: a WebSocket server on 127.0.0.1 per terminal (``Mt4BridgeTerminal``),
its sans-I/O codec, the token file, and a Python EA emulator (``emulator.EaEmulator``) for the demo and tests.
The wire protocol is ea/PROTOCOL.md."""

from .terminal import Mt4BridgeTerminal
from .tokenfile import default_token_path, load_or_create_token

__all__ = ["Mt4BridgeTerminal", "default_token_path", "load_or_create_token"]
