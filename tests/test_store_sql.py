"""The SQL store on a real SQLite file: durability, schema, faults, refusal of foreign files."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from support import Harness

from statecore import InvalidTransition
from statecore.store import StoreCorrupt, StoreUnavailable, open_store
from statecore.store.schema import metadata
from statecore.store.sql import SqlStore


def sqlite_harness(path: Path, **settings) -> Harness:
    return Harness(store=SqlStore(f"sqlite:///{path}", busy_timeout=0.05), **settings)


def steps(records) -> list[tuple]:
    return [(r.event.value, r.from_state.value, r.to_state.value, r.attempt, r.at) for r in records]


def test_migrated_schema_matches_the_tables_the_code_uses(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_history_on_sqlite_equals_the_in_memory_run(tmp_path):
    def run(h: Harness) -> list[tuple]:
        h.add("node1@lvm", "volume", h.driver("recoverable", "recoverable", "ok"))
        h.add("bk1", "backup", h.driver("recoverable", "ok"), backup_periodic_initialization=True)
        h.engine.start()
        h.engine.advance(200)
        return steps(h.engine.history())

    assert run(sqlite_harness(tmp_path / "s.sqlite")) == run(Harness())


def test_every_transition_leaves_a_history_row_and_delivered_notifications_leave_the_outbox(tmp_path):
    h = sqlite_harness(tmp_path / "s.sqlite")
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        events = [row[0] for row in db.execute("SELECT event_type FROM statecore_history ORDER BY seq")]
        outbox = db.execute("SELECT count(*) FROM statecore_outbox").fetchone()[0]
        message_ids = [row[0] for row in db.execute("SELECT message_id FROM statecore_history ORDER BY seq")]
    assert events == ["volume.init.start", "volume.init.success"]
    assert outbox == 0
    assert message_ids == [e["message_id"] for e in h.sink.envelopes]


def test_heartbeats_of_many_services_are_one_batch(tmp_path):
    h = sqlite_harness(tmp_path / "s.sqlite", report_interval=10)
    for n in range(600):
        h.add(f"node{n}@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    statements: list[str] = []
    from sqlalchemy import event

    event.listen(h.engine.store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    h.engine.advance(10)
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE STATECORE_SERVICES SET LAST_OK")]
    assert len(updates) == 2  # 600 services in batches of 500
    assert {row.updated_at for row in h.engine.service_list()} == {h.clock.now()}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a database at all, just bytes " * 100, "is not a SQLite database"),
        (None, r"not statecore's \(tables: users\)"),
    ],
    ids=["garbage", "foreign"],
)
def test_corrupt_or_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path, content, message):
    path = tmp_path / "other.db"
    if content is None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE users (name TEXT)")
    else:
        path.write_bytes(content)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StoreCorrupt, match=message):
        open_store(str(path))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_locked_database_refuses_a_transition_and_changes_nothing(tmp_path):
    path = tmp_path / "s.sqlite"
    h = sqlite_harness(path)
    h.add("node1@lvm", "volume", h.driver("config_error"))
    h.engine.start()
    h.engine.advance(0)
    before = (h.engine.service("node1@lvm"), h.job_ids(), len(h.sink.envelopes), len(h.engine.history()))

    with sqlite3.connect(path, isolation_level=None) as locker:
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="store write failed"):
            h.engine.reset("node1@lvm")
        locker.execute("ROLLBACK")
    assert before == (h.engine.service("node1@lvm"), h.job_ids(), len(h.sink.envelopes), len(h.engine.history()))
    assert h.engine.reset("node1@lvm").to_state.value == "initializing"


def test_timer_transition_during_an_outage_is_retried_not_lost(tmp_path):
    path = tmp_path / "s.sqlite"
    h = sqlite_harness(path, reinit_driver_count=3)
    h.add("node1@lvm", "volume", h.driver("recoverable", "ok"))
    h.engine.start()
    h.engine.advance(0)
    with sqlite3.connect(path, isolation_level=None) as locker:
        locker.execute("BEGIN EXCLUSIVE")
        h.engine.advance(2.5)  # the retry at t=1 and its re-tries at t=2 fail to commit
        assert h.lifecycle("node1@lvm") == "failed_recoverable"
        locker.execute("ROLLBACK")
    h.engine.advance(1)
    assert h.timeline()[-2:] == [
        (3, "volume.init.retry", "failed_recoverable", "initializing"),
        (3, "volume.init.success", "initializing", "up"),
    ]


def test_store_outage_during_heartbeats_is_logged_once_and_then_reconnected(tmp_path, caplog_loguru):
    path = tmp_path / "s.sqlite"
    h = sqlite_harness(path, report_interval=10, service_down_time=60)
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(10)
    with sqlite3.connect(path, isolation_level=None) as locker:
        locker.execute("BEGIN EXCLUSIVE")
        h.engine.advance(30)
        locker.execute("ROLLBACK")
    h.engine.advance(10)
    assert caplog_loguru.text.count("store disconnected") == 1
    assert caplog_loguru.text.count("store reconnected") == 1
    assert h.t(h.engine.service("node1@lvm").updated_at) == 50
    assert h.lifecycle("node1@lvm") == "up"


def test_unknown_event_on_a_sql_store_writes_nothing(tmp_path):
    h = sqlite_harness(tmp_path / "s.sqlite")
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    with pytest.raises(InvalidTransition):
        h.engine.fire("node1@lvm", "retry")
    assert len(h.engine.history()) == 2


def test_a_polled_backend_state_reaches_the_shared_service_list_between_transitions(tmp_path):
    h = sqlite_harness(tmp_path / "s.sqlite", backend_stats_polling_interval=30)
    h.add("node1@lvm", "volume", h.driver("ok", backend_state=["up", "down"]))
    h.engine.start()
    h.engine.advance(10)
    assert [row.backend_state for row in h.engine.fleet()] == ["up"]
    h.engine.advance(20)
    assert [row.backend_state for row in h.engine.fleet()] == ["down"]
    assert len(h.engine.history()) == 2  # no transition was needed for it
