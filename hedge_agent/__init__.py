"""hedge-agent: bridges a Cognito + AppSync trading backend to MetaTrader 4/5 terminals."""

import sys as _sys

__version__ = "0.1.0"

# structlog's dev module imports rich when it is installed (only for prettier console tracebacks): ~5 MB of
# RSS and ~60 ms of start-up the agent never needs (its log file is JSON; console tracebacks stay plain).
# The demo's live view imports rich itself later, as usual (issue 16: lean start-up).
if "rich" not in _sys.modules and "structlog" not in _sys.modules:
    _sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog as _structlog  # noqa: F401
    finally:
        del _sys.modules["rich"]
