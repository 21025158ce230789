"""The pure core: no asyncio, no I/O, no clock reads. Imports nothing else of the package but errors."""
