"""Each service's ``service_down_time`` is stored by its engine (migration 0004), and readers with
no engine of their own judge liveness by it: ``store.fleet()``, ``statecore serve``'s
``StoreSource`` and ``service-list``. ``store.reset_service`` gives a stopped engine's service a
fresh start. On the memory store, SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pg_server import fresh_database
from sqlalchemy import select, update
from support import Harness
from test_retention import backdate_heartbeats

from statecore.api.sources import StoreSource
from statecore.errors import ServiceAlive, UnknownService
from statecore.store import MemoryStore, Store, service_id
from statecore.store.schema import services
from statecore.store.sql import SqlStore
from statecore.table import State

FAST, SLOW = "fast@array", "slow@array"
"""Two volumes of one engine: 6 s of service_down_time for one (the engine's), 60 s for the other."""
names = itertools.count()
HOUR = timedelta(hours=1)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        made: Store = MemoryStore(shared=True)
    elif request.param == "sqlite":
        made = SqlStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    else:
        made = SqlStore(fresh_database(request.getfixturevalue("pg_url"), f"downtime{next(names)}"))
    yield made
    made.close()


def stopped_engine(store: Store) -> Harness:
    """Both volumes up and heartbeating, then their engine stopped (leases released)."""
    h = Harness(store=store, report_interval=1, service_down_time=6)
    h.add(FAST, "volume", h.driver("ok"))
    h.add(SLOW, "volume", h.driver("ok"), service_down_time=60)
    h.engine.start()
    h.engine.advance(1)
    h.engine.shutdown()
    return h


def states(store: Store, h: Harness, window: float | None = None) -> dict[str, str]:
    return {row.host: row.state for row in store.fleet(window, now=h.clock.now())}


def test_each_service_is_judged_by_the_down_time_its_engine_stored(store):
    h = stopped_engine(store)
    assert {sid: s.service_down_time for sid, s in store.load_many([f"volume/{FAST}", f"volume/{SLOW}"]).items()} == {
        f"volume/{FAST}": 6.0,
        f"volume/{SLOW}": 60.0,
    }
    assert states(store, h) == {FAST: "up", SLOW: "up"}

    backdate_heartbeats(store, timedelta(seconds=7))  # as if the engine had died 7 s ago

    assert states(store, h) == {FAST: "down", SLOW: "up"}
    if isinstance(store, SqlStore):  # `statecore serve`'s rows, on the database's clock
        assert {row.host: row.state for row in StoreSource(store).rows()} == {FAST: "down", SLOW: "up"}
    assert states(store, h, 100) == {FAST: "up", SLOW: "up"}  # the caller's window, when it gives one
    assert states(store, h, 5) == {FAST: "down", SLOW: "down"}


def test_a_row_written_before_the_window_was_stored_is_read_with_the_default(store):
    h = stopped_engine(store)
    if isinstance(store, MemoryStore):
        stored = store.load(f"volume/{FAST}")
        assert stored is not None
        store.save(dataclasses.replace(stored, service_down_time=None))
    else:
        assert isinstance(store, SqlStore)
        with store.engine.begin() as connection:
            connection.execute(update(services).values(service_down_time=None))
    backdate_heartbeats(store, timedelta(seconds=59))
    assert states(store, h)[FAST] == "up"
    backdate_heartbeats(store, timedelta(seconds=2))
    assert states(store, h)[FAST] == "down"


def test_reset_makes_a_stopped_services_state_new_and_forgets_its_error(store):
    h = Harness(store=store, reinit_driver_count=0)
    h.add("bad@array", "volume", h.driver("config_error"))
    h.engine.start()
    h.engine.advance(0)
    h.engine.shutdown()
    sid = service_id("volume", "bad@array")
    before = store.load(sid)
    assert before is not None and before.lifecycle is State.FAILED_PERMANENT and before.last_error_type

    fresh = store.reset_service(sid, now=h.clock.now())

    after = store.load(sid)
    assert after == fresh
    assert (after.lifecycle, after.attempt, after.last_error_type, after.last_error_message) == (
        State.STARTING, 0, None, None,
    )  # fmt: skip
    assert (after.retries_left, after.next_retry_at, after.initialized) == (None, None, False)
    assert after.total_attempts == before.total_attempts  # a life-long count
    with pytest.raises(UnknownService, match="nothing was reset"):
        store.reset_service("volume/nowhere", now=h.clock.now())


def test_reset_is_refused_while_an_engine_drives_the_service(store):
    h = Harness(store=store, reinit_driver_count=0, lease_time=30)
    h.add("bad@array", "volume", h.driver("config_error"))
    h.engine.start()
    h.engine.advance(0)
    sid = service_id("volume", "bad@array")
    with pytest.raises(ServiceAlive, match=r"driven by the engine of .*nothing was reset"):
        store.reset_service(sid, now=h.clock.now())
    stored = store.load(sid)
    assert stored is not None and stored.lifecycle is State.FAILED_PERMANENT
    h.engine.shutdown()


def lapse_leases(store: Store) -> None:
    """As if the engine had paused past its lease (a stop-the-world pause): alive, lease run out."""
    if isinstance(store, MemoryStore):
        store._leases.update({sid: (owner, until - HOUR) for sid, (owner, until) in store._leases.items()})
        return
    assert isinstance(store, SqlStore)
    with store.engine.begin() as connection:
        for sid, until in connection.execute(select(services.c.id, services.c.lease_until)).all():
            connection.execute(update(services).where(services.c.id == sid).values(lease_until=until - HOUR))


def test_an_engine_whose_lease_lapsed_cannot_undo_a_reset(store):
    """The engine paused past its lease, the reset was written, the engine resumes: its retry under
    the old claim is fenced, and the service starts again from the reset state, from scratch."""
    h = Harness(store=store, lease_time=3, report_interval=1)
    h.add("slow@array", "volume", h.driver("recoverable", "ok"))
    h.engine.start()
    h.engine.advance(0)
    sid = service_id("volume", "slow@array")
    before = store.load(sid)
    assert before is not None and before.lifecycle is State.FAILED_RECOVERABLE
    lapse_leases(store)

    fresh = store.reset_service(sid, now=h.clock.now())
    assert (fresh.owner, fresh.lifecycle) == ("", State.STARTING) and fresh.generation > before.generation
    written = len(store.history(sid))
    h.engine.advance(60)  # the engine resumes: its renewals, its retry, which succeeds

    since = [(r.from_state, r.to_state, r.attempt) for r in store.history(sid)[written:]]
    assert since == [(State.STARTING, State.INITIALIZING, 1), (State.INITIALIZING, State.UP, 1)]
    after = store.load(sid)
    assert after is not None and after.generation > fresh.generation  # taken as a free service, anew
    h.engine.shutdown()
