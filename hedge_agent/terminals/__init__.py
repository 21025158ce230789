"""Terminals: one ``Terminal`` protocol for MT5 (worker process), MT4 (EA bridge) and the simulator."""
