"""The simulated broker (sans-I/O, synchronous) and the asyncio ``SimulatedTerminal`` around it."""
