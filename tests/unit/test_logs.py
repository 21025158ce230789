import json
import logging
from pathlib import Path

import structlog

from hedge_agent.logs import REDACTED, setup_logging

JWT = "eyJraWQiOiJhYmMiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"


def test_secrets_never_reach_the_log_file(tmp_path):
    log_file = setup_logging("DEBUG", tmp_path, console=False)
    assert log_file is not None
    log = structlog.get_logger("t")
    log.info("signed in", id_token=JWT, password="hunter2", refresh_token="opaque-refresh", token_valid=True)
    log.warning(
        "url", url="wss://h/graphql/realtime?header=eyJob3N0IjoiaCIsIkF1dGhvcml6YXRpb24iOiJ4In0=&payload=e30="
    )
    log.error("nested", detail={"Authorization": JWT, "note": f"Bearer {JWT}"}, args=[JWT])
    logging.getLogger("foreign").warning("stdlib says %s", JWT)
    for h in logging.getLogger().handlers:
        h.flush()
    text = log_file.read_text()
    assert (
        JWT not in text and "hunter2" not in text and "opaque-refresh" not in text and "eyJob3N0" not in text
    )
    events = [json.loads(line) for line in text.splitlines()]
    assert events[0]["password"] == REDACTED and events[0]["token_valid"] is True
    assert events[2]["detail"]["Authorization"] == REDACTED and REDACTED in events[2]["detail"]["note"]
    assert REDACTED in events[3]["event"]


def test_log_lines_are_json_with_level_logger_and_time(tmp_path):
    log_file = setup_logging("INFO", tmp_path, console=False)
    assert log_file is not None
    structlog.get_logger("hedge_agent.x").info("hello", n=1)
    structlog.get_logger("hedge_agent.x").debug("hidden")
    for h in logging.getLogger().handlers:
        h.flush()
    (event,) = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert event["event"] == "hello" and event["level"] == "info" and event["logger"] == "hedge_agent.x"
    assert "timestamp" in event and event["n"] == 1


def test_event_names_follow_one_dotted_convention_in_the_modules_that_adopted_it():
    """``area.what_happened`` (issue 14, point 5). Adopted by the modules below; the engine, cloud and app
    still have a few free-text events (listed in the issue note), converted as they are touched."""
    import ast

    from hedge_agent.logs import event_name

    root = Path(__file__).resolve().parents[2] / "hedge_agent"
    adopted = ["cli.py", "tray.py", "trade_log.py", "startup.py", "status_file.py", "preflight.py",
               "desktop/alert.py", "desktop/shutdown.py", "demo/serve.py"]  # fmt: skip
    names = []
    for rel in adopted:
        for node in ast.walk(ast.parse((root / rel).read_text())):
            if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "log"
                and node.args and isinstance(node.args[0], ast.Constant)
            ):  # fmt: skip
                names.append((rel, str(node.args[0].value)))
    assert len(names) > 15
    assert [(rel, n) for rel, n in names if not event_name(n)] == []
    assert (
        event_name("trade.fill") and not event_name("agent stopping") and not event_name("tray_update_failed")
    )
