from __future__ import annotations

from pathlib import Path

import pytest

from hedge_agent.desktop.icons import COLOURS, draw_icon
from hedge_agent.desktop.tray_model import (
    MESSAGE_MAX,
    TITLE_MAX,
    TOOLTIP_MAX,
    Command,
    IconKind,
    MenuEntry,
    OpenPath,
    TrayModel,
    TrayView,
    new_notices,
    render,
)
from hedge_agent.status import AgentStatus, Notice

from .helpers import RecordingControl, healthy, notice, terminal

LOGS = Path("/logs")
CONFIG = Path("/cfg/agent.toml")


def model_for(control: RecordingControl, **kwargs: object) -> TrayModel:
    return TrayModel(control, log_dir=LOGS, config_path=CONFIG, **kwargs)  # type: ignore[arg-type]


def texts(view: TrayView) -> list[str]:
    return [e.text for e in view.entries if not e.separator]


def item(view: TrayView, command: Command) -> MenuEntry:
    return next(e for e in view.entries if e.command is command)


class Switch:
    def __init__(self, on: bool = False, fail: bool = False) -> None:
        self.on, self.fail = on, fail

    def enabled(self) -> bool:
        return self.on

    def enable(self) -> None:
        if self.fail:
            raise PermissionError("Startup folder is read-only")
        self.on = True

    def disable(self) -> None:
        self.on = False


@pytest.mark.parametrize(
    ("status", "icon"),
    [
        (healthy(), IconKind.OK),
        (healthy(paused=True), IconKind.DEGRADED),
        (healthy(terminals=(terminal(connection="reconnecting"),)), IconKind.DEGRADED),
        (healthy(terminals=(terminal(trade_allowed=False),)), IconKind.DEGRADED),
        (healthy(cloud="reconnecting"), IconKind.DISCONNECTED),
    ],
)
def test_the_icon_colour_follows_the_overall_health(status, icon):
    assert render(status).icon is icon


def test_each_health_state_has_its_own_visible_colour_in_the_drawn_icon():
    assert len(set(COLOURS.values())) == len(IconKind)
    for kind in IconKind:
        pixels = draw_icon(kind, 32).convert("RGBA")
        colours = [(n, c) for n, c in pixels.getcolors(32 * 32) or [] if isinstance(c, tuple) and c[3] == 255]
        counts = sorted(colours, reverse=True)
        corner = pixels.getpixel((0, 0))
        assert isinstance(corner, tuple)
        top = counts[0][1]
        assert isinstance(top, tuple) and top[:3] == COLOURS[kind]  # the disc is the icon's colour
        assert corner[3] == 0  # transparent corners: a disc, not a square


def test_each_health_state_has_a_glyph_as_well_as_a_colour():
    # colour alone is no signal for a colour-blind trader (issue 14, point 9): ok, degraded and down differ
    # in shape too (tick, "!", cross), compared as white-pixel masks
    def mask(kind: IconKind) -> frozenset[tuple[int, int]]:
        img = draw_icon(kind, 32).convert("RGBA")
        return frozenset(
            (x, y) for x in range(32) for y in range(32) if img.getpixel((x, y)) == (255, 255, 255, 255)
        )

    shapes = {
        kind: mask(kind)
        for kind in (IconKind.OK, IconKind.DEGRADED, IconKind.DISCONNECTED, IconKind.STARTING)
    }
    assert all(len(m) > 20 for m in shapes.values())
    assert len(set(shapes.values())) == len(shapes)


def test_the_tooltip_says_why_the_icon_is_not_green():
    assert render(healthy()).tooltip == "hedge-agent: all connected"
    down = healthy(paused=True, terminals=(terminal("mt4-b", connection="disconnected"),))
    assert render(down).tooltip == "hedge-agent: execution paused, mt4-b disconnected"
    assert render(healthy(cloud="reconnecting")).tooltip == "hedge-agent: cloud reconnecting"


def test_the_menu_lists_user_cloud_terminals_positions_and_the_last_error():
    status = healthy(
        terminals=(terminal("mt4-b", connection="disconnected"), terminal("mt5-main", trade_allowed=False)),
        last_error="Action a1 FAILED: market closed",
    )
    lines = [e.text for e in render(status).entries if e.command is None and not e.separator]
    assert lines == [
        "Signed in as trader@example.com",
        "Cloud: connected",
        "mt4-b (mt5): disconnected",
        "mt5-main (mt5): connected, trading disabled",
        "Positions: 3 open, 0 trailing",
        "Last error: Action a1 FAILED: market closed",
    ]
    assert all(not e.enabled for e in render(status).entries if e.command is None)


def test_the_menu_offers_pause_while_running_and_resume_while_paused():
    assert "Pause execution" in texts(render(healthy()))
    assert "Resume execution" not in texts(render(healthy()))
    paused = render(healthy(paused=True))
    assert "Resume execution" in texts(paused)
    assert "Execution paused: no new orders" in texts(paused)


def test_long_texts_are_clipped_to_what_windows_displays():
    status = healthy(last_error="x" * 500, terminals=(terminal("n" * 200, connection="disconnected"),))
    view = render(status)
    assert len(view.tooltip) <= TOOLTIP_MAX
    assert all(len(e.text) <= 80 for e in view.entries)
    assert view.tooltip.endswith("…")


def test_pause_and_resume_clicks_call_the_agent_control():
    control = RecordingControl()
    model = model_for(control)
    view = model.poll().view
    model.activate(item(view, Command.PAUSE).command)  # type: ignore[arg-type]
    control.current = healthy(paused=True)
    view = model.poll().view
    model.activate(item(view, Command.RESUME).command)  # type: ignore[arg-type]
    assert control.calls == ["pause", "resume"]


def test_open_logs_and_open_config_are_requests_for_the_shell():
    model = model_for(RecordingControl())
    assert model.activate(Command.OPEN_LOGS) == OpenPath(LOGS, folder=True)
    assert model.activate(Command.OPEN_CONFIG) == OpenPath(CONFIG, folder=False)


def test_open_config_is_disabled_when_the_agent_has_no_config_file():
    model = TrayModel(RecordingControl(), log_dir=LOGS)
    assert not item(model.poll().view, Command.OPEN_CONFIG).enabled
    assert model.activate(Command.OPEN_CONFIG) is None


def test_quit_requests_a_stop_and_the_tray_shows_it_is_stopping():
    control = RecordingControl()
    model = model_for(control)
    model.activate(Command.QUIT)
    assert control.calls == ["request_stop"]
    view = model.poll().view
    assert view.icon is IconKind.STOPPING
    assert "Stopping…" in texts(view)
    assert not item(view, Command.QUIT).enabled
    assert not item(view, Command.PAUSE).enabled


def test_each_notice_is_notified_exactly_once():
    control = RecordingControl(healthy(notices=(notice(1),)))
    model = model_for(control)
    first = model.poll().notifications
    assert [(n.title, n.message) for n in first] == [("Filled #1", "position p1 opened at 150.001")]
    assert model.poll().notifications == ()
    control.current = healthy(notices=(notice(1), notice(2)))
    assert [n.title for n in model.poll().notifications] == ["Filled #2"]
    assert model.poll().notifications == ()


def test_notices_dropped_from_the_front_of_a_full_list_do_not_make_old_ones_look_new():
    window = 5
    seen: list[Notice] = []
    previous: tuple[Notice, ...] = ()
    for i in range(20):
        current = tuple(notice(j) for j in range(max(0, i - window + 1), i + 1))
        seen += new_notices(previous, current)
        previous = current
    assert seen == [notice(i) for i in range(20)]


def test_a_burst_of_notices_becomes_one_notification_listing_the_newest():
    control = RecordingControl(
        healthy(notices=tuple(notice(i, "error" if i == 9 else "info") for i in range(10)))
    )
    (only,) = model_for(control).poll().notifications
    assert only.title == "10 new events, 1 failed"
    lines = only.message.splitlines()
    assert lines[0] == "(+6 earlier, see the log)"
    assert lines[-1].startswith("Filled #9")
    assert len(only.title) <= TITLE_MAX and len(only.message) <= MESSAGE_MAX


def test_the_autostart_item_shows_and_toggles_the_startup_entry():
    switch = Switch()
    model = model_for(RecordingControl(), autostart=switch)
    assert item(model.poll().view, Command.TOGGLE_AUTOSTART).checked is False
    model.activate(Command.TOGGLE_AUTOSTART)
    assert switch.on
    assert item(model.poll().view, Command.TOGGLE_AUTOSTART).checked is True
    model.activate(Command.TOGGLE_AUTOSTART)
    assert not switch.on


def test_the_autostart_item_is_absent_where_there_is_no_startup_folder():
    assert all(
        e.command is not Command.TOGGLE_AUTOSTART for e in model_for(RecordingControl()).poll().view.entries
    )


def test_an_autostart_that_cannot_be_written_becomes_a_notification_not_a_crash():
    model = model_for(RecordingControl(), autostart=Switch(fail=True))
    model.activate(Command.TOGGLE_AUTOSTART)
    (problem,) = model.poll().notifications
    assert problem.title == "Start with Windows"
    assert "read-only" in problem.message


# -- issue 14, points 4 and 9 -------------------------------------------------------------------------------


def test_while_signing_in_the_icon_is_grey_and_says_so_not_signed_in_as():
    status = AgentStatus(user="trader@example.com", cloud="signing in", phase="signing in")
    view = render(status)
    assert view.icon is IconKind.STARTING
    assert view.tooltip == "hedge-agent: signing in"
    assert texts(view)[0] == "Signing in… (trader@example.com)"
    assert not any(t.startswith("Signed in as") for t in texts(view))


def test_waiting_for_the_network_is_shown_with_its_reason():
    status = AgentStatus(
        user="u", cloud="waiting for network", phase="waiting for network",
        phase_detail="cannot reach Cognito (EndpointConnectionError); next try in 4 s",
    )  # fmt: skip
    view = render(status)
    assert view.icon is IconKind.STARTING and view.tooltip == "hedge-agent: waiting for network"
    assert any("cannot reach Cognito" in t for t in texts(view))


def test_connecting_is_grey_before_the_first_connection_and_red_after_it():
    control = RecordingControl(healthy(cloud="connecting"))
    model = model_for(control)
    assert model.poll().view.icon is IconKind.STARTING  # the very start: nothing is wrong yet
    control.current = healthy()
    assert model.poll().view.icon is IconKind.OK
    control.current = healthy(cloud="connecting")  # reconnecting after a drop: the cloud is down
    assert model.poll().view.icon is IconKind.DISCONNECTED


def test_the_default_action_opens_the_trade_log(tmp_path):
    model = TrayModel(RecordingControl(), log_dir=tmp_path)
    view = model.poll().view
    (default,) = [e for e in view.entries if e.default]
    assert default.command is Command.OPEN_TRADES
    request = model.activate(Command.OPEN_TRADES)
    assert request == OpenPath(tmp_path / "trades.log", folder=False) and request.path.exists()


def test_a_long_line_is_wrapped_onto_the_next_lines_never_cut():
    error = "Action a1 FAILED: " + " ".join(f"word{i}" for i in range(40))
    view = render(healthy(last_error=error))
    shown = " ".join(e.text.strip() for e in view.entries if e.command is None and not e.separator)
    assert all(f"word{i}" in shown for i in range(40))
    assert all(len(e.text) <= 80 for e in view.entries)


def test_quit_with_trails_active_asks_first_and_names_them():
    trails = ("mt5-main USDJPY BUY 0.10", "mt5-main EURUSD BUY 0.20")
    control = RecordingControl(healthy(positions_trailing=2, trailed=trails))
    model = model_for(control)
    model.poll()
    assert model.activate(Command.QUIT) is None
    assert control.calls == []  # not stopped: asked first
    update = model.poll()
    shown = texts(update.view)
    assert "Quit? 2 positions are trailed only while hedge-agent runs:" in shown
    assert all(any(name in t for t in shown) for name in trails)
    assert update.notifications and "2 positions" in update.notifications[0].message
    model.activate(Command.CANCEL_QUIT)
    assert not any(e.command is Command.QUIT_CONFIRMED for e in model.poll().view.entries)
    model.activate(Command.QUIT)
    view = model.poll().view
    assert item(view, Command.QUIT_CONFIRMED).text == "Quit and stop trailing 2 positions"
    model.activate(Command.QUIT_CONFIRMED)
    assert control.calls == ["request_stop"] and model.poll().view.icon is IconKind.STOPPING


def test_a_simulated_run_says_so_in_the_tooltip_and_the_menu():
    view = render(healthy(simulate=True))
    assert view.tooltip.startswith("hedge-agent: SIMULATED")
    assert texts(view)[0] == "SIMULATED: dry run, no broker orders"
