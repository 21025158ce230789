"""hedge-agent: bridges a Cognito + AppSync trading backend to MetaTrader 4/5 terminals."""

__version__ = "0.1.0"
