"""Store: durable transitions per second (SQLite WAL file, PostgreSQL) against the memory store,
and the cost of one heartbeat batch of 10,000 services with and without batching.

The PostgreSQL server is the tests' throwaway one (``tests/pg_server.py``); when it cannot
start, its figures are skipped and the document says why.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text, update

from bench.common import CountingSink, Section, Sizes, interleave, rate
from statecore import Engine, Settings
from statecore.store import MemoryStore, Store
from statecore.store.schema import services
from statecore.store.sql import SqlStore, default_url
from statecore.testing import ScriptedDriver

ROOT = Path(__file__).resolve().parent.parent
HOST = "node0@lvm"


def transitions_rate(store: Store, events: int) -> float:
    """One up volume service, ``heartbeat_expired``/``heartbeat`` pairs, each committed and acknowledged."""
    engine = Engine.virtual_time(settings=Settings(), sinks=[CountingSink()], store=store)
    engine.add_service(HOST, "volume", ScriptedDriver(["ok"]))
    engine.start()
    engine.advance(0)
    pairs = events // 2

    def run() -> None:
        for _ in range(pairs):
            engine.fire(HOST, "heartbeat_expired")
            engine.fire(HOST, "heartbeat")

    return rate(2 * pairs, run)


GROUP = 100
"""Services in the group-commit case: each batch moves every one of them once."""


def grouped_rate(store: Store, events: int) -> float:
    """``GROUP`` up volumes; each ``Engine.batch()`` fires ``heartbeat_expired`` (then, in the
    next batch, ``heartbeat``) at every one of them: one transaction per ``GROUP`` transitions."""
    engine = Engine.virtual_time(settings=Settings(), sinks=[CountingSink()], store=store)
    hosts = [f"node{index}@lvm" for index in range(GROUP)]
    for host in hosts:
        engine.add_service(host, "volume", ScriptedDriver(["ok"]))
    engine.start()
    engine.advance(0)
    rounds = max(1, events // (2 * GROUP))

    def run() -> None:
        for _ in range(rounds):
            for event in ("heartbeat_expired", "heartbeat"):
                with engine.batch():
                    for host in hosts:
                        engine.fire(host, event)

    return rate(2 * GROUP * rounds, run)


def raw_sqlite_rate(path: str, events: int) -> float:
    """The floor of the same work in plain sqlite3 on the same file: per event, one transaction
    with the service row's update, a history row and an outbox row, then the outbox row's delete
    (the acknowledgement), statements prepared once, no ORM and no engine."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    sid, now = f"volume/{HOST}", datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    connection.execute(
        "INSERT OR REPLACE INTO statecore_services (id, host, binary, zone, owner, lifecycle, disabled, initialized, "
        "last_ok, attempt, total_attempts) VALUES (?, ?, 'volume', 'nova', 'bench', 'up', 0, 1, ?, 1, 1)",
        (sid, HOST, now),
    )

    def run() -> None:
        for index in range(events):
            lifecycle = "down" if index % 2 == 0 else "up"
            message_id = f"{index:032x}"
            connection.execute("BEGIN")
            connection.execute(
                "UPDATE statecore_services SET lifecycle = ?, updated_at = ?, last_ok = ? WHERE id = ?",
                (lifecycle, now, now, sid),
            )
            connection.execute(
                "INSERT INTO statecore_history (service_id, host, binary, zone, event, from_state, to_state, at, "
                "reason, attempt, event_type, priority, message_id) VALUES (?, ?, 'volume', 'nova', 'heartbeat', "
                "'up', ?, ?, 'bench', 1, 'volume.service.up', 'INFO', ?)",
                (sid, HOST, lifecycle, now, message_id),
            )
            connection.execute(
                "INSERT INTO statecore_outbox (sink, message_id, service_id, envelope) VALUES ('bench', ?, ?, '{}')",
                (message_id, sid),
            )
            connection.execute("COMMIT")
            connection.execute("DELETE FROM statecore_outbox WHERE sink = 'bench' AND message_id = ?", (message_id,))

    try:
        return rate(events, run)
    finally:
        connection.close()


def seed_rows(store: SqlStore, count: int) -> list[str]:
    """``count`` service rows in one statement, on emptied tables (registering one by one takes minutes)."""
    _empty(store)
    now = datetime.now(UTC)
    rows = [
        {"id": f"volume/node{index}@lvm", "host": f"node{index}@lvm", "binary": "volume", "zone": "nova",
         "owner": "bench", "lifecycle": "up", "disabled": False, "initialized": True, "last_ok": now,
         "attempt": 1, "total_attempts": 1}
        for index in range(count)
    ]  # fmt: skip
    with store.engine.begin() as connection:
        connection.execute(insert(services), rows)
    return [row["id"] for row in rows]


def _empty(store: SqlStore) -> None:
    """Empty statecore's tables; PostgreSQL's TRUNCATE also drops the dead rows that updates leave."""
    tables = ("statecore_outbox", "statecore_history", "statecore_services")
    with store.engine.begin() as connection:
        if store.dialect == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)}"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


def heartbeats_one_by_one(store: SqlStore, service_ids: Mapping[str, int], at: datetime) -> None:
    """The batch's statement with batching off: one UPDATE per service, in one transaction."""
    with store.engine.begin() as connection:
        for sid in service_ids:
            values = {"updated_at": at, "last_ok": at, "heartbeat_db_at": store._db_now()}  # the store's own clock
            connection.execute(update(services).where(services.c.id == sid).values(**values))


def batch_seconds(action: Callable[[], Any]) -> float:
    begin = time.perf_counter()
    action()
    return time.perf_counter() - begin


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="statecore-bench-") as folder:
        yield default_url(Path(folder) / "bench.sqlite")


def postgres_url() -> AbstractContextManager[str]:
    spec = importlib.util.spec_from_file_location("pg_server", ROOT / "tests" / "pg_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.postgres_server()


def _backend(section: Section, sizes: Sizes, label: str, url: str) -> None:
    stores: list[SqlStore] = []

    def fresh() -> SqlStore:
        store = SqlStore(url)
        _empty(store)  # each run starts from empty tables
        stores.append(store)
        return store

    durable, memory = interleave(
        sizes.runs,
        lambda: transitions_rate(fresh(), sizes.store_events),
        lambda: transitions_rate(MemoryStore(), sizes.store_events),
    )
    durable_figure = section.add(f"durable transitions/s, {label}", durable, "transitions/s")
    memory_figure = section.add(f"memory store transitions/s (baseline of {label})", memory, "transitions/s")
    section.compare(durable_figure, memory_figure)
    grouped_runs = [lambda: grouped_rate(fresh(), sizes.store_events * 10)]
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        grouped_runs.append(lambda: raw_sqlite_rate(path, sizes.store_events * 10))
    grouped, *raw = interleave(sizes.runs, *grouped_runs)
    grouped_figure = section.add(
        f"durable transitions/s, group commit of {GROUP} (Engine.batch), {label}", grouped, "transitions/s"
    )
    if raw:
        raw_figure = section.add(
            f"raw sqlite3, one transaction per event, same file ({label})", raw[0], "transitions/s"
        )
        section.compare(grouped_figure, raw_figure)

    store = fresh()

    def timed(record: Callable[[SqlStore, dict[str, int], datetime], Any]) -> float:
        ids = seed_rows(store, sizes.heartbeat_ids)  # fresh rows each run: dead tuples would slow the next
        leases = dict.fromkeys(ids, 0)  # the seeded rows' generation
        return batch_seconds(lambda: record(store, leases, datetime.now(UTC)))

    batched, single = interleave(  # each run seeds 10,000 rows first: a heavy measurement
        sizes.heavy_runs, lambda: timed(SqlStore.record_heartbeats), lambda: timed(heartbeats_one_by_one)
    )
    count = f"{sizes.heartbeat_ids:,}"
    batched_figure = section.add(f"heartbeats of {count} services, batched (500 ids an UPDATE), {label}", batched, "s")
    single_figure = section.add(f"heartbeats of {count} services, one UPDATE per id, {label}", single, "s")
    section.compare(batched_figure, single_figure)
    for each in stores:
        each.close()


def run(sizes: Sizes) -> Section:
    section = Section("Store")
    backends: list[tuple[str, Callable[[], AbstractContextManager[str]]]] = [
        ("SQLite (WAL, file)", sqlite_url),
        ("PostgreSQL", postgres_url),
    ]
    for label, server in backends:
        try:
            with server() as url:
                _backend(section, sizes, label, url)
                if label == "PostgreSQL":
                    section.facts["PostgreSQL server"] = _server_version(url)
        except Exception as error:
            if label != "PostgreSQL":
                raise  # only the server may be missing; the SQLite path must work everywhere
            section.notes.append(f"{label} skipped: {type(error).__name__}: {str(error).splitlines()[0]}")
    section.notes.append(
        "Durable: every transition is one transaction (service row, history row, outbox row), then its "
        "acknowledgement deletes the outbox row; with group commit (`Engine.batch()`, and the engine's own "
        "batches: start-up, expiries, a report's returning services, real-time attempt outcomes) the "
        "transitions of one batch share one transaction, three statements built once and run as executemany. "
        "SQLite runs with journal_mode=WAL, synchronous=NORMAL; the "
        "test PostgreSQL server runs with fsync=off. A heartbeat ratio is batched time / one-by-one time. Each "
        "heartbeat run starts from freshly inserted rows: on PostgreSQL the planner scans the whole table for "
        "`id IN (500 ids)` of 10,000 rows, so the dead rows that earlier runs leave (until autovacuum) made a "
        "batch of 10,000 heartbeats ten times slower in a run that reused them."
    )
    return section


def _server_version(url: str) -> str:
    store = SqlStore(url)
    try:
        with store.engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one())
    finally:
        store.close()
