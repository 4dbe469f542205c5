"""``statecore run``'s live screen and its log lines on one terminal: the lines are printed above
the table, whole, never through it; piped output keeps the log on stderr."""

from __future__ import annotations

import io
import re

from rich.console import Console

from statecore.live import RunConfig, ServiceConfig, build_engine, run_live

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def failing_engine(tmp_path):
    """A service whose driver path is wrong: it fails for good at once, and the engine logs it."""
    config = RunConfig(
        store="memory",
        notifications=None,
        services=[ServiceConfig(host="node1@array", binary="volume", driver="statecore.nowhere:Missing")],
    )
    return build_engine(config, tmp_path)


def test_log_lines_are_printed_whole_above_the_live_table_on_a_terminal(tmp_path, capfd):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=250, height=40)
    run_live(failing_engine(tmp_path), refresh=0.05, duration=0.5, console=console)

    lines = [ANSI.sub("", line) for line in screen.getvalue().splitlines()]
    logged = [line for line in lines if "volume.init.failure node1@array" in line]
    assert logged, lines
    assert not any(border in line for line in logged for border in "│┃┏┗└┌")
    assert any("failed_permanent" in line and "│" in line for line in lines)  # the table is drawn too
    assert "volume.init.failure" not in capfd.readouterr().err


def test_piped_output_keeps_the_log_on_stderr(tmp_path, capfd):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=False, width=250)
    run_live(failing_engine(tmp_path), refresh=0.05, duration=0.3, console=console)

    assert "volume.init.failure node1@array" in capfd.readouterr().err
    assert "volume.init.failure" not in screen.getvalue()


class ClosingSink:
    """A sink with a connection of its own, as the message bus's has."""

    def __init__(self) -> None:
        self.envelopes: list[object] = []
        self.closed_after = -1

    def emit(self, envelope: object) -> None:
        self.envelopes.append(envelope)

    def close(self) -> None:
        self.closed_after = len(self.envelopes)


def test_run_closes_the_sinks_after_the_last_delivery(tmp_path, monkeypatch):
    sink = ClosingSink()
    monkeypatch.setattr("statecore.live._messaging_sink", lambda messaging: sink)  # no broker needed here
    config = RunConfig(
        store="memory",
        notifications=None,
        messaging={"transport_url": "rabbit://guest:guest@127.0.0.1:9/"},
        services=[ServiceConfig(host="node1@array", binary="volume", driver="statecore.nowhere:Missing")],
    )
    run_live(build_engine(config, tmp_path), refresh=0.05, duration=0.2, console=Console(file=io.StringIO()))
    assert sink.closed_after == len(sink.envelopes) > 0  # closed once everything had gone out
