"""The fleet's liveness (``store.fleet``, what `statecore serve` and `service-list` show): a service
that has just come up counts as ``up`` from that moment, as Cinder counts a new service from its
``created_at``, until ``service_down_time`` has passed without a heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import DEFAULT_VIRTUAL_START, Harness

from statecore.store import MemoryStore, open_store

WINDOW = 60


def came_up(store) -> Harness:
    """One volume service whose driver set up at once, one virtual second ago, before the first report."""
    harness = Harness(store=store, start=DEFAULT_VIRTUAL_START)
    harness.add("node1@lvm", "volume", harness.driver("ok"))
    harness.engine.start()
    harness.engine.advance(1)
    return harness


def states(store, seconds: float) -> list[tuple[str, str]]:
    now = DEFAULT_VIRTUAL_START + timedelta(seconds=seconds)
    return [(row.state, row.lifecycle.value) for row in store.fleet(WINDOW, now=now)]


def test_a_service_that_has_just_come_up_is_up_before_its_first_heartbeat():
    store = MemoryStore()
    harness = came_up(store)
    assert harness.sink.event_types()[-1] == "volume.init.success"  # up, and no report yet
    assert states(store, 1) == [("up", "up")]


@pytest.mark.parametrize(("seconds", "state"), [(WINDOW, "up"), (WINDOW + 0.001, "down")])
def test_without_a_heartbeat_it_stays_up_until_service_down_time_has_passed(seconds, state):
    store = MemoryStore()
    came_up(store)  # the engine stops here: no report is ever recorded
    assert states(store, seconds) == [(state, "up")]


def test_a_service_still_initializing_is_down_as_its_lifecycle_says():
    store = MemoryStore()
    harness = Harness(store=store, start=DEFAULT_VIRTUAL_START)
    harness.add("node1@lvm", "volume", harness.driver("hang"))
    harness.engine.start()
    assert states(store, 1) == [("down", "initializing")]


@pytest.mark.parametrize(("age", "state"), [(0, "up"), (WINDOW * 2, "down")])
def test_on_sql_the_first_heartbeats_stand_in_is_read_against_the_database_clock(tmp_path, age, state):
    """No heartbeat on the database's clock yet: the moment the service came up (its engine's clock)
    is measured against the database's now, as Cinder measures ``created_at`` against its own."""
    store = open_store(str(tmp_path / "state.sqlite"))
    harness = Harness(store=store, start=datetime.now(UTC) - timedelta(seconds=age))
    harness.add("node1@lvm", "volume", harness.driver("ok"))
    harness.engine.start()
    harness.engine.advance(1)
    assert [(row.state, row.lifecycle.value) for row in store.fleet(WINDOW)] == [(state, "up")]
