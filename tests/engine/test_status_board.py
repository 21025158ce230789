import structlog.testing

from hedge_agent.engine.status_board import StatusBoard


def test_every_warning_and_error_notice_is_a_log_line_and_info_stays_in_the_tray():
    board = StatusBoard()
    with structlog.testing.capture_logs() as logs:
        board.notice("error", "open failed", "position p1: not enough money [code 10019]")
        board.notice("warning", "outcome unknown", "open of p2: will look again")
        board.notice("info", "opened", "USDJPY BUY 0.1")
    assert [(e["log_level"], e["event"], e["detail"]) for e in logs] == [
        ("error", "open failed", "position p1: not enough money [code 10019]"),
        ("warning", "outcome unknown", "open of p2: will look again"),
    ]
    assert board.snapshot().last_error == "open failed: position p1: not enough money [code 10019]"
    assert len(board.snapshot().notices) == 3
