"""The fleet's liveness (``store.fleet``, what `statecore serve` and `service-list` show): coming up
counts as a heartbeat, so a service that has just come up (or come back up) is ``up`` from that
moment until ``service_down_time`` has passed without another, on the store's one clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from support import DEFAULT_VIRTUAL_START, Harness

from statecore.errors import ServiceAlive
from statecore.store import MemoryStore, open_store
from statecore.store.sql import SqlStore

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


def test_a_service_that_comes_back_up_is_up_whatever_its_old_heartbeat_said():
    """An engine restarted on a store an earlier one reported into: coming up is a heartbeat."""
    store = MemoryStore()
    store.heartbeats["volume/node1@lvm"] = DEFAULT_VIRTUAL_START - timedelta(seconds=WINDOW * 10)
    came_up(store)
    assert states(store, 1) == [("up", "up")]


def sql_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SqlStore, Callable[[float], None]]:
    """A SQLite store and a way to move the database's clock by some seconds (its own ``now``
    modifier): the engine's clock is the Harness's, virtual, apart from it."""
    store = open_store(str(tmp_path / "state.sqlite"))
    assert isinstance(store, SqlStore)

    def move(seconds: float) -> None:
        monkeypatch.setattr(
            store, "_db_now", lambda: func.strftime("%Y-%m-%d %H:%M:%f000", "now", f"{seconds:+f} seconds")
        )

    return store, move


def came_up_on_sql(store: SqlStore, skew: float, owner: str = "node1") -> Harness:
    """One volume service up on an engine whose clock is ``skew`` seconds off the database's."""
    harness = Harness(store=store, start=datetime.now(UTC) + timedelta(seconds=skew), owner=owner)
    harness.add("node1@lvm", "volume", harness.driver("ok"))
    harness.engine.start()
    harness.engine.advance(1)
    return harness


def sql_states(store: SqlStore) -> list[tuple[str, str]]:
    return [(row.state, row.lifecycle.value) for row in store.fleet(WINDOW)]


@pytest.mark.parametrize("skew", [-WINDOW * 2, 0, WINDOW * 2])
def test_on_sql_coming_up_is_a_heartbeat_on_the_database_clock_whatever_the_engines_says(tmp_path, monkeypatch, skew):
    """Cinder measures ``created_at`` against its own clock; here coming up is recorded on the
    database's, so an engine's clock behind the database's by more than the window does not make
    a new service ``down`` at once."""
    store, _ = sql_store(tmp_path, monkeypatch)
    came_up_on_sql(store, skew)
    assert sql_states(store) == [("up", "up")]


def test_on_sql_an_engine_ahead_of_the_database_does_not_keep_a_dead_service_up(tmp_path, monkeypatch):
    """The engine died before its first heartbeat; its clock ran ahead by ten windows. Two windows
    later on the database's clock, the service is down, not up for skew + window."""
    store, move = sql_store(tmp_path, monkeypatch)
    came_up_on_sql(store, WINDOW * 10)
    move(WINDOW * 2)
    assert sql_states(store) == [("down", "up")]


def test_on_sql_a_service_that_comes_back_up_after_a_restart_is_up_at_once(tmp_path, monkeypatch):
    """Its last heartbeat, from the engine before the restart, is two windows old: coming back up
    counts, not that heartbeat, so the row is not ``down`` with a fresh updated_at."""
    store, move = sql_store(tmp_path, monkeypatch)
    move(-WINDOW * 2)
    came_up_on_sql(store, 0).engine.advance(30)  # heartbeats, recorded two windows back
    store.close()
    monkeypatch.undo()
    again, _ = sql_store(tmp_path, monkeypatch)
    restarted = came_up_on_sql(again, 0)
    assert [to for _, _, _, to in restarted.timeline()][-2:] == ["initializing", "up"]
    assert sql_states(again) == [("up", "up")]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_service_the_list_shows_up_cannot_be_removed_or_reset_before_its_first_heartbeat(tmp_path, kind):
    """``remove_service`` and ``reset_service`` judge by the list's own verdict: coming up counts."""
    store = MemoryStore() if kind == "memory" else open_store(str(tmp_path / "state.sqlite"))
    start = DEFAULT_VIRTUAL_START if kind == "memory" else datetime.now(UTC)
    harness = Harness(store=store, start=start)
    harness.add("node1@lvm", "volume", harness.driver("ok"))
    harness.engine.start()
    harness.engine.advance(1)  # up, no report yet
    now = harness.clock.now()
    assert [row.state for row in store.fleet(WINDOW, now=now)] == ["up"]
    with pytest.raises(ServiceAlive, match="nothing was removed"):
        store.remove_service("volume/node1@lvm", WINDOW, now=now)
    harness.engine.shutdown()  # the lease let go: only the heartbeat can refuse
    with pytest.raises(ServiceAlive, match=r"last heartbeat.*nothing was reset"):
        store.reset_service("volume/node1@lvm", now=now)
