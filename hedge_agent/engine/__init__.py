"""The engine: executor, journal, reconciliation, trailing monitor, account sync (design §1-§4)."""
