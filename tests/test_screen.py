"""The live screen of ``statecore run``: a summary, the services needing attention worst first,
and nothing drawn while nothing changed."""

from __future__ import annotations

from rich.console import Console, RenderableType
from support import Harness

from statecore.screen import LiveView


def text(screen: RenderableType | None) -> str:
    assert screen is not None
    console = Console(width=240, record=True, color_system=None)
    console.print(screen)
    return console.export_text()


def fleet() -> Harness:
    h = Harness(service_down_time=5, report_interval=1, reinit_driver_count=0)
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.add("node2@lvm", "volume", h.driver("ok"))
    h.add("node3@lvm", "volume", h.driver("config_error"))
    h.add("node4@lvm", "volume", h.driver("recoverable", "ok"))
    h.engine.start()
    h.engine.advance(0)
    return h


def listed(screen: str) -> list[str]:
    """The Host column (Cinder's order: Binary first), one entry a row, not a wrapped line."""
    cells = [line.split("│")[2].strip() for line in screen.splitlines() if line.startswith("│")]
    return [host for host in cells if host]


def test_a_small_fleet_is_listed_whole_worst_first_under_a_summary():
    h = fleet()
    screen = text(LiveView(h.engine, rows=10).changed())
    assert screen.splitlines()[0] == "4 services: 1 failed_permanent, 1 failed_recoverable, 2 up"
    assert listed(screen) == ["node3@lvm", "node4@lvm", "node1@lvm", "node2@lvm"]


def test_a_large_fleet_lists_only_what_needs_attention_and_says_how_much_more():
    h = fleet()
    h.engine.disable("node2@lvm", "disk replacement")
    screen = text(LiveView(h.engine, rows=2).changed())
    assert screen.splitlines()[0] == "4 services: 1 failed_permanent, 1 failed_recoverable, 2 up; 1 disabled"
    assert "needing attention, worst first: 3 of 4 services" in screen
    assert listed(screen) == ["node3@lvm", "node4@lvm"]
    assert "... and 1 more needing attention" in screen


def test_nothing_is_drawn_until_something_shown_changes():
    h = fleet()
    view = LiveView(h.engine, rows=2)
    assert view.changed() is not None
    assert view.changed() is None  # the same screen: nothing to draw
    h.engine.advance(0.5)  # heartbeats of healthy services that are not listed: still the same
    assert view.changed() is None
    h.engine.advance(1)  # node4's retry succeeds: the summary and the list change
    screen = text(view.changed())
    assert screen.splitlines()[0] == "4 services: 1 failed_permanent, 3 up"
    assert listed(screen) == ["node3@lvm"]
