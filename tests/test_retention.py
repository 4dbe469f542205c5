"""Retention: history pruned by age (each service's latest row kept), undelivered notifications
never, and a service that is gone removed, on the memory store, a SQLite file and PostgreSQL;
and the engine's periodic purge, in virtual time."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select, text, update
from support import FlakySink, Harness

from statecore import Settings
from statecore.errors import ServiceAlive, SettingsError, UnknownService
from statecore.records import TransitionRecord
from statecore.settings import build_settings
from statecore.store import MemoryStore, Store, StoreUnavailable, service_id
from statecore.store.schema import services
from statecore.store.sql import SqlStore

HOUR = timedelta(hours=1)
FLAPPER, STEADY = "flapper@lvm", "steady@lvm"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    """A fresh store of each kind; on PostgreSQL a database of its own per test."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'retention.sqlite'}"
    else:
        server = request.getfixturevalue("pg_url")
        name = f"retention_{uuid.uuid4().hex[:12]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        url = server.rsplit("/", 1)[0] + f"/{name}"
    sql = SqlStore(url)
    yield sql
    sql.close()


def flapping(store: Store, hours: int, **settings) -> Harness:
    """A volume that goes down and comes back up every 20 minutes, and one that stays up, for ``hours``."""
    h = Harness(store=store, **{"history_retention": 0, **settings})
    h.add(FLAPPER, "volume", h.driver("ok"))
    h.add(STEADY, "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    flap(h, hours)
    return h


def flap(h: Harness, hours: int) -> None:
    """The flapper is taken down; its next heartbeat (within ``report_interval``) brings it back."""
    for _ in range(hours * 3):
        h.engine.advance(600)
        h.engine.fire(FLAPPER, "heartbeat_expired")
        h.engine.advance(600)


def survivors(records: list[TransitionRecord], before: datetime) -> list[TransitionRecord]:
    """What a purge at ``before`` must leave: rows not older than it, and each service's latest."""
    latest = {service_id(r.binary, r.host): index for index, r in enumerate(records)}
    return [r for index, r in enumerate(records) if r.at >= before or index in latest.values()]


def backdate_heartbeats(store: Store, by: timedelta) -> None:
    """As if every engine had stopped ``by`` ago: what waiting that long would do, without waiting."""
    if isinstance(store, MemoryStore):
        store.heartbeats.update({sid: beat - by for sid, beat in store.heartbeats.items()})
        return
    assert isinstance(store, SqlStore)
    with store.engine.begin() as connection:
        for sid, beat in connection.execute(select(services.c.id, services.c.heartbeat_db_at)).all():
            if beat is not None:
                connection.execute(update(services).where(services.c.id == sid).values(heartbeat_db_at=beat - by))


# -- the stores -------------------------------------------------------------------------------------


def test_purge_deletes_history_older_than_the_instant_but_each_services_latest_row(store):
    h = flapping(store, hours=3)
    everything = store.history()
    before = h.clock.now() - HOUR

    deleted = store.purge(before)

    assert store.history() == survivors(everything, before)
    assert deleted == len(everything) - len(store.history()) > 0
    steady = [r for r in everything if r.host == STEADY]
    assert [r.to_state.value for r in steady] == ["initializing", "up"]
    assert store.history(service_id("volume", STEADY)) == steady[-1:]  # old, but how it came to be up
    assert store.purge(before) == 0


def test_purge_never_deletes_an_undelivered_notification(store):
    bus = FlakySink(failures=10**6)
    h = Harness(store=store, sinks=[bus], history_retention=0)
    h.add(FLAPPER, "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    h.engine.fire(FLAPPER, "heartbeat_expired")
    h.engine.advance(3600)
    pending = store.pending("FlakySink")

    assert store.purge(h.clock.now()) > 0
    assert store.pending("FlakySink") == pending != []


def test_purge_refuses_a_naive_instant_and_deletes_nothing(store):
    flapping(store, hours=1)
    everything = store.history()
    with pytest.raises(ValueError, match="no time zone"):
        store.purge(datetime(2030, 1, 1))
    assert store.history() == everything


def test_a_live_service_is_refused_by_name_and_nothing_is_removed(store):
    h = Harness(store=store, history_retention=0, report_interval=10)
    h.add(FLAPPER, "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(30)  # heartbeats recorded
    sid = service_id("volume", FLAPPER)
    before = (store.load(sid), store.history())

    with pytest.raises(ServiceAlive, match=f"service '{sid}' is alive .*nothing was removed"):
        store.remove_service(sid, 3600, now=h.clock.now())
    assert (store.load(sid), store.history()) == before


def test_an_unknown_service_is_named_and_nothing_is_removed(store):
    flapping(store, hours=1)
    everything = store.history()
    with pytest.raises(UnknownService, match="no service 'backup/nowhere' in the store"):
        store.remove_service("backup/nowhere", 60)
    assert store.history() == everything


def test_a_dead_service_goes_with_its_history_and_undelivered_notifications_and_nothing_else(store):
    bus = FlakySink(failures=10**6)
    h = Harness(store=store, sinks=[bus], history_retention=0, report_interval=10)
    h.add(FLAPPER, "volume", h.driver("ok"))
    h.add(STEADY, "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(30)
    backdate_heartbeats(store, HOUR)
    gone, kept = service_id("volume", FLAPPER), service_id("volume", STEADY)
    kept_history, kept_state = store.history(kept), store.load(kept)
    kept_pending = [e for e in store.pending("FlakySink") if e["payload"]["host"] == STEADY]

    removed = store.remove_service(gone, 60, now=h.clock.now())

    assert removed.history == 2 and removed.outbox == 2  # init.start and init.success, both undelivered
    assert store.load(gone) is None and store.history(gone) == []
    assert store.history() == kept_history and store.load(kept) == kept_state
    assert store.pending("FlakySink") == kept_pending
    assert [row.host for row in store.fleet(60, now=h.clock.now())] == [STEADY]


def test_a_service_that_never_sent_a_heartbeat_can_be_removed(store):
    h = Harness(store=store, history_retention=0)
    h.add(FLAPPER, "volume", h.driver("config_error"))  # failed_permanent: never heartbeated
    h.engine.start()
    h.engine.advance(0)
    assert store.remove_service(service_id("volume", FLAPPER), 60, now=h.clock.now()).history == 2


# -- the engine's periodic purge --------------------------------------------------------------------


def test_the_engine_purges_history_older_than_history_retention_every_hour():
    kept = flapping(MemoryStore(), hours=0, history_retention=2 * 3600)
    full = flapping(MemoryStore(), hours=0, history_retention=0)  # the same run, nothing purged
    for hour in range(1, 8):
        for h in (kept, full):
            flap(h, 1)  # ends on the hour, when the purge has just run
        assert kept.engine.history() == survivors(full.engine.history(), kept.clock.now() - 2 * HOUR), hour
    assert len(kept.engine.history()) < len(full.engine.history())


def test_history_retention_zero_keeps_everything_and_arms_no_purge():
    h = flapping(MemoryStore(), hours=30, history_retention=0)
    assert len(h.engine.history()) == len(h.sink.envelopes)
    assert not [job for job in h.job_ids() if job.startswith("purge")]


class FailingPurge(MemoryStore):
    """A store whose first purges fail, as a database that is away for a while."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures, self.purges = failures, 0

    def purge(self, before: datetime) -> int:
        self.purges += 1
        if self.purges <= self.failures:
            raise StoreUnavailable("store write failed: database is locked")
        return super().purge(before)


def test_a_failing_purge_is_logged_and_tried_at_the_next_run_and_the_lifecycle_goes_on(caplog_loguru):
    store = FailingPurge(failures=2)
    h = flapping(store, hours=0, history_retention=3600)
    h.engine.advance(3600)  # purges at 0 and 3600 fail
    h.engine.fire(FLAPPER, "heartbeat_expired")
    assert h.lifecycle(FLAPPER) == "down"
    assert caplog_loguru.text.count("not purged (store write failed: database is locked)") == 2
    h.engine.advance(3 * 3600)
    assert store.purges == 5
    assert h.engine.history() == survivors(store.history(), h.clock.now() - HOUR) != []


def test_history_retention_is_validated_and_engine_wide():
    with pytest.raises(SettingsError, match="option 'history_retention': value -1 refused"):
        build_settings({"history_retention": -1}, env=False)
    with pytest.raises(SettingsError, match="'history_retention' is engine-wide"):
        Settings().with_overrides({"history_retention": 60})
    assert Settings().history_retention == 7 * 86400


def test_a_large_purge_on_sqlite_is_many_short_transactions(tmp_path, monkeypatch):
    """Each batch commits on its own, so the engine's commits never wait behind one long purge."""
    import statecore.store.sql as sql

    store = SqlStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    h = flapping(store, hours=3)
    everything, before = store.history(), h.clock.now() - HOUR
    monkeypatch.setattr(sql, "PURGE_BATCH", 4)
    commits: list[None] = []
    event.listen(store.engine, "commit", lambda _connection: commits.append(None))

    deleted = store.purge(before)

    assert len(commits) == deleted // 4 + 1  # the last batch comes back short
    assert store.history() == survivors(everything, before)


def test_a_store_made_before_retention_gets_the_index_that_purge_uses_the_lease_and_down_time_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    SqlStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:  # as the first schema left it
        db.execute("DROP INDEX ix_statecore_history_at")
        db.execute("ALTER TABLE statecore_services DROP COLUMN generation")
        db.execute("ALTER TABLE statecore_services DROP COLUMN lease_until")
        db.execute("ALTER TABLE statecore_services DROP COLUMN service_down_time")
        db.execute("UPDATE alembic_version SET version_num = '0001'")

    SqlStore(f"sqlite:///{path}").close()

    with sqlite3.connect(path) as db:
        indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "ix_statecore_history_at" in indexes
        columns = {row[1] for row in db.execute("PRAGMA table_info(statecore_services)")}
        assert {"generation", "lease_until", "service_down_time"} <= columns
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0004"


class LockProbe(MemoryStore):
    """Asks, from inside ``purge``, whether another thread could take the engine lock meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.lock: Any = None
        self.free_during_purge: list[bool] = []

    def purge(self, before: datetime) -> int:
        def probe() -> None:
            taken = self.lock.acquire(timeout=0)
            if taken:
                self.lock.release()
            self.free_during_purge.append(taken)

        prober = threading.Thread(target=probe)
        prober.start()
        prober.join(5)
        return super().purge(before)


def test_the_purge_job_runs_off_the_engine_lock():
    store = LockProbe()
    h = Harness(store=store, history_retention=3600)
    store.lock = h.engine._lock
    h.add(FLAPPER, "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(2 * 3600)
    assert store.free_during_purge == [True, True, True]  # at start, then every hour
