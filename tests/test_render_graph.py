"""The picture extracted from the rulebook: one edge per row, in table order, styled once for every format."""

from __future__ import annotations

import pytest
from render_pictures import TINY

from statecore.render.graph import UnknownBinary, extract, graph_of
from statecore.table import BINARIES, rulebook


@pytest.mark.parametrize("binary", BINARIES)
def test_states_events_and_edges_keep_the_table_order(binary):
    book = rulebook(binary)
    graph = extract(book)
    assert [s.name for s in graph.states] == [s.name.value for s in book.states]
    assert [e.name for e in graph.events] == [e.name.value for e in book.events]
    assert [(e.source, e.event, e.dest) for e in graph.edges] == [
        (r.source.value, r.event.value, r.dest.value) for r in book.rules
    ]


def test_the_three_reset_rows_are_three_edges():
    resets = [e.source for e in graph_of("volume").edges if e.event == "reset"]
    assert resets == ["failed_permanent", "failed_recoverable", "down"]


def test_who_raises_an_event_decides_its_line():
    triggers = {e.name: e.trigger for e in graph_of("volume").events}
    assert triggers == {
        "start": "external",
        "reset": "external",
        "restart": "external",
        "init_succeeded": "attempt",
        "init_failed": "timer",  # the init_timeout job raises it too
        "retry": "timer",
        "heartbeat_expired": "timer",
        "heartbeat": "job",
        "driver_lost": "job",
    }


def test_a_failed_state_only_an_admin_leaves_is_permanent_and_the_other_recoverable():
    tones = [(s.name, s.tone) for s in graph_of("backup").states]
    assert tones[2:4] == [("failed_recoverable", "recoverable"), ("failed_permanent", "permanent")]
    assert [tone for _, tone in tones] == ["initial", "working", "recoverable", "permanent", "healthy", "down"]


def test_a_state_carries_its_public_state_and_entry_actions():
    up = graph_of("volume").state("up")
    assert (up.public, up.entry) == ("up", ("mark_live",))


def test_an_edge_carries_guard_label_binary_meaning_notification_and_effects():
    edge = next(e for e in graph_of("backup").edges if e.event == "driver_lost")
    assert edge.guard == "retry allowed"
    assert edge.guard_meaning == "backup_periodic_initialization is true"
    assert (edge.event_type, edge.priority) == ("backup.driver.lost", "ERROR")
    assert edge.effects == ("forget_driver", "count_failed_attempt", "restart_grace")


def test_only_short_binary_specific_guard_text_is_a_hint_for_the_diagrams():
    def hints(binary):
        return {e.guard: e.guard_hint for e in graph_of(binary).edges if e.guard}

    assert hints("backup")["recoverable, no retry allowed"] == "backup_periodic_initialization is false"
    assert hints("volume")["recoverable, no retry allowed"] is None  # too long: the table has it
    assert hints("volume")["unrecoverable"] is None  # the same for both binaries


def test_the_legend_groups_events_by_trigger_in_table_order():
    assert TINY.triggers() == (("external", ("start",)), ("timer", ("heartbeat_expired",)))


def test_an_unknown_binary_is_one_clear_error():
    with pytest.raises(UnknownBinary, match="unknown binary 'tape': choose volume or backup"):
        graph_of("tape")
