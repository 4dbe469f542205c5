"""The durable store on SQLAlchemy 2 Core: a SQLite file by default, PostgreSQL for several hosts.

It works like Cinder's service table (heartbeats in a shared database, "up"
computed from their age) but also keeps every transition and every pending
notification, so a restarted engine carries on where the dead one stopped.
Liveness is judged against the database's clock, so hosts whose clocks
disagree still agree on who is down.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from statecore.records import ErrorInfo, ServiceRow, TransitionRecord
from statecore.store.base import (
    Claim,
    Entry,
    Envelope,
    Fenced,
    Holder,
    Removed,
    ServiceState,
    StoreCorrupt,
    StoreUnavailable,
    alive,
    came_up,
    check_cutoff,
    check_removable,
    check_unleased,
    down_time_of,
    reset_state,
    service_of,
    unknown_service,
)
from statecore.store.health import StoreHealth
from statecore.store.schema import UtcDateTime, claims, history, outbox, services
from statecore.table import AdminAction, Event, State

MIGRATIONS = Path(__file__).with_name("migrations")
OUR_TABLES = {"alembic_version", "statecore_services", "statecore_history", "statecore_outbox", "statecore_claims"}
BATCH = 500
PURGE_BATCH = 2000
"""History rows one purge transaction deletes: on SQLite a transaction holds the only write lock,
and a long one would make the engine's commits wait past ``busy_timeout`` and fail."""
SCHEMA_LOCK = 0x5374617465436F72  # "StateCor": the advisory lock every statecore engine takes to migrate


def default_url(path: str | Path = "statecore.sqlite") -> str:
    return f"sqlite:///{Path(path)}"


def check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not a SQLite database, or is someone else's, before anything writes to it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as probe:
            tables = {name for (name,) in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            verdict = probe.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StoreCorrupt(f"{path} is not a SQLite database ({error}); it was not modified") from None
    if verdict != "ok":
        raise StoreCorrupt(f"{path} is damaged (quick_check: {verdict}); it was not modified")
    foreign = tables - OUR_TABLES
    if tables and (foreign or "statecore_services" not in tables):
        listed = ", ".join(sorted(foreign or tables))
        raise StoreCorrupt(f"{path} is a SQLite database but not statecore's (tables: {listed}); it was not modified")


class SqlStore:
    """Every wait on the database is bounded or watched. ``busy_timeout``: how long a SQLite write
    waits for a lock before the store counts as unavailable. ``timeout``: PostgreSQL's
    ``connect_timeout`` and ``statement_timeout``, and the wait for a pooled connection.
    ``unresponsive_after``: a call running longer is logged as ``store unresponsive`` (health.py),
    which is what speaks for a server that no longer answers at all."""

    shared = True
    """Other engines, on this host or others, may open the same database: leases are real."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 2.0,
        timeout: float = 10.0,
        unresponsive_after: float = 1.5,
        migrate: bool = True,
    ) -> None:
        """``migrate=False``: a reader's store (service-list, serve, the admin commands), opened as
        it is. Upgrading is an engine's job: a schema upgraded by a mere look would lock out the
        older statecore that still runs on it, so a store that is not at this statecore's head is
        refused instead, and so is a database without statecore's tables (nothing is created)."""
        bounds = {"busy_timeout": busy_timeout, "timeout": timeout, "unresponsive_after": unresponsive_after}
        for name, seconds in bounds.items():  # 0 would mean no bound at all to PostgreSQL
            if not seconds > 0:
                raise ValueError(f"SqlStore {name}={seconds!r}: must be a number of seconds above 0")
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            check_sqlite_file(Path(parsed.database))
        options = _engine_options(self.dialect, busy_timeout, timeout)
        self.engine: SqlEngine = create_engine(url, pool_pre_ping=True, **options)
        self.name = parsed.render_as_string(hide_password=True)
        self.health = StoreHealth(self.name, unresponsive_after)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._upserts = {
            status: _upsert_statement(self.dialect, self._db_now(), with_status=status) for status in (True, False)
        }
        self._insert_new = _dialect_insert(self.dialect)(services).on_conflict_do_nothing(
            index_elements=[services.c.id]
        )
        """Built once: building a statement per call was most of what a commit cost."""
        self._migrate(migrate)

    def _migrate(self, migrate: bool = True) -> None:
        """A store at head is only read. Creation and upgrades hold the database's lock for schema
        changes from the look at ``alembic_version`` to the commit: engines starting together on a
        fresh database take turns, and each one after the first finds the schema at head.
        PostgreSQL: a transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE``, whose write lock
        the others wait for (busy timeout), where pysqlite would otherwise run the DDL outside any
        transaction."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        scripts = ScriptDirectory.from_config(config)
        head = tuple(scripts.get_heads())
        try:
            with self._tx("cannot open the store") as connection:
                current = MigrationContext.configure(connection).get_current_heads()
            if current == head:
                return  # no write, no lock: `statecore service-list` opens a store another process writes
            if not migrate:
                raise _not_at_head(self.name, current, head, scripts)
            with self._tx("cannot open the store") as connection:
                if self.dialect == "postgresql":
                    connection.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK)))
                elif self.dialect == "sqlite":
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except CommandError as error:
            raise StoreCorrupt(f"store schema is not one this statecore knows ({error})") from None

    @contextmanager
    def _tx(self, failure: str = "store write failed") -> Iterator[Connection]:
        """Every store call, watched (health.py) under the name of the method that called it: frame 2
        is that method's, past this generator's and ``contextmanager.__enter__``'s."""
        token, ok = self.health.begin(sys._getframe(2).f_code.co_name), False
        try:
            with self.engine.begin() as connection:
                yield connection
            ok = True
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"{failure}: {_short(error)}") from None
        finally:
            self.health.end(token, ok)

    def _db_now(self) -> ColumnElement[Any]:
        if self.dialect == "sqlite":
            return func.strftime("%Y-%m-%d %H:%M:%f000", "now")
        return func.clock_timestamp() if self.dialect == "postgresql" else func.now()

    def _db_later(self, seconds: float) -> ColumnElement[Any]:
        """``seconds`` after the database's now: when a lease taken now runs out."""
        if self.dialect == "sqlite":
            return func.strftime("%Y-%m-%d %H:%M:%f000", "now", f"+{seconds:f} seconds")
        return self._db_now() + timedelta(seconds=seconds)

    def now(self) -> datetime:
        """The database's clock: the reference for heartbeat age across hosts."""
        with self._tx() as connection:
            return _utc(connection.execute(select(self._db_now())).scalar_one(), self.engine)

    # -- services ---------------------------------------------------------------------------

    def load(self, sid: str) -> ServiceState | None:
        with self._tx() as connection:
            row = connection.execute(select(services).where(services.c.id == sid)).mappings().first()
        return None if row is None else _state(row)

    def save(self, state: ServiceState) -> None:
        self.save_many([state])

    def load_many(self, sids: Sequence[str]) -> dict[str, ServiceState]:
        found: dict[str, ServiceState] = {}
        with self._tx() as connection:
            for start in range(0, len(sids), BATCH):
                query = select(services).where(services.c.id.in_(list(sids[start : start + BATCH])))
                found.update({row["id"]: _state(row) for row in connection.execute(query).mappings()})
        return found

    def save_many(self, states: Sequence[ServiceState]) -> None:
        if states:
            with self._tx() as connection:
                connection.execute(self._upserts[True], [_state_values(state, came_up=False) for state in states])

    def set_status(self, sid: str, disabled: bool, reason: str | None) -> bool:
        """An admin's disable/enable, from any host; the owning engine picks it up at its next report."""
        with self._tx() as connection:
            changed = connection.execute(
                update(services).where(services.c.id == sid).values(disabled=disabled, disabled_reason=reason)
            ).rowcount
        return bool(changed)

    def set_backend_states(self, values: Mapping[str, str | None], leases: Mapping[str, int]) -> None:
        if values:
            rows = [{"b_id": sid, "backend_state": value, "b_generation": leases[sid]} for sid, value in values.items()]
            with self._tx() as connection:
                connection.execute(_SET_BACKEND_STATE, rows)

    def statuses_version(self) -> int | None:
        """Other hosts write the database: there is no cheap way to know, so the engine reads."""
        return None

    def statuses(self, sids: Sequence[str]) -> dict[str, tuple[bool, str | None]]:
        found: dict[str, tuple[bool, str | None]] = {}
        with self._tx() as connection:
            for start in range(0, len(sids), BATCH):
                query = select(services.c.id, services.c.disabled, services.c.disabled_reason).where(
                    services.c.id.in_(list(sids[start : start + BATCH]))
                )
                found.update({sid: (disabled, reason) for sid, disabled, reason in connection.execute(query)})
        return found

    def commit(
        self,
        state: ServiceState,
        record: TransitionRecord,
        envelope: Envelope,
        sinks: Sequence[str],
        *,
        status: bool = False,
    ) -> None:
        self.commit_many((Entry(state, record, envelope, status),), sinks)

    def commit_many(self, entries: Sequence[Entry], sinks: Sequence[str]) -> None:
        """One transaction, three statements built once and run as executemany: each service's
        last state (an upsert), every history row, every outbox row. A transition's upsert leaves
        the disabled status alone (an admin may have changed it from another host); a service
        with an admin action among the entries gets its status written too. A service that came
        up among the entries gets a heartbeat on the database's clock in the same upsert
        (``alive``: coming up counts as a heartbeat)."""
        last: dict[str, tuple[ServiceState, bool]] = {}
        up: set[str] = set()
        for entry in entries:
            sid = entry.state.id
            last[sid] = (entry.state, entry.status or (sid in last and last[sid][1]))
            if came_up(entry.record):
                up.add(sid)
        rows = {True: [], False: []}  # type: dict[bool, list[dict[str, Any]]]
        for sid, (state, status) in sorted(last.items()):  # rows locked in one order by every engine
            rows[status].append(_state_values(state, came_up=sid in up))
        history_rows, outbox_rows = [], []
        for state, record, envelope, _ in entries:
            message_id = envelope["message_id"]
            history_rows.append(_history_values(state.id, record, message_id))
            outbox_rows += _outbox_rows(envelope, state.id, sinks)
        with self._tx() as connection:
            for status, values in rows.items():
                if values:
                    connection.execute(self._upserts[status], values)
            _check_generations(connection, {state.id: state.generation for state, _ in last.values()})
            connection.execute(_INSERT_HISTORY, history_rows)
            if outbox_rows:
                connection.execute(_INSERT_OUTBOX, outbox_rows)

    def record_heartbeats(self, leases: Mapping[str, int], at: datetime) -> Collection[str]:
        """One UPDATE per batch of 500 services, not one per service; each only under its generation."""
        values = {"updated_at": at, "last_ok": at, "heartbeat_db_at": self._db_now()}
        return self._for_leases(leases, values)

    def _for_leases(self, leases: Mapping[str, int], values: Mapping[str, Any]) -> list[str]:
        """Update the rows still held under these generations; returns their ids. One statement per
        batch of 500: ``id IN (…)`` finds the rows through the primary key, and only then is each
        tested against the (id, generation) pairs (the pairs alone made PostgreSQL test every pair
        against every row of the table)."""
        pairs = sorted(leases.items())  # rows locked in one order by every engine: no deadlock
        done: list[str] = []
        with self._tx() as connection:
            for start in range(0, len(pairs), BATCH):
                chunk = pairs[start : start + BATCH]
                held = (
                    services.c.id.in_([sid for sid, _ in chunk]),
                    tuple_(services.c.id, services.c.generation).in_(chunk),
                )
                statement = update(services).where(*held).values(**values).returning(services.c.id)
                done += connection.execute(statement).scalars()
        return done

    # -- leases -------------------------------------------------------------------------------

    def insert_new(self, states: Sequence[ServiceState]) -> None:
        if states:
            with self._tx() as connection:
                connection.execute(self._insert_new, [_state_values(state) for state in states])

    def claim(self, sids: Sequence[str], owner: str, lease: float, now: datetime, *, own: bool = True) -> Claim:
        """One generation from ``statecore_claims`` for the whole claim, then one UPDATE ... RETURNING
        per batch of 500: whatever it did not take, another engine holds."""
        granted: dict[str, int] = {}
        free = [services.c.lease_until.is_(None), services.c.lease_until < self._db_now()]
        if own:
            free.append(services.c.owner == owner)
        ordered = sorted(sids)  # rows locked in one order by every engine: no deadlock between claims
        with self._tx() as connection:
            generation = connection.execute(_NEXT_GENERATION).scalar_one()
            take = {"owner": owner, "generation": generation, "lease_until": self._db_later(lease)}
            for start in range(0, len(ordered), BATCH):
                chunk = ordered[start : start + BATCH]
                statement = update(services).where(services.c.id.in_(chunk), or_(*free)).values(**take)
                granted.update(
                    dict.fromkeys(connection.execute(statement.returning(services.c.id)).scalars(), generation)
                )
            rest = [sid for sid in ordered if sid not in granted]
            query = select(services.c.id, services.c.owner, services.c.lease_until).where(services.c.id.in_(rest))
            held = {sid: Holder(holder, until) for sid, holder, until in connection.execute(query)} if rest else {}
        return Claim(granted, held)

    def reclaim(self, leases: Mapping[str, int], owner: str, lease: float, now: datetime) -> dict[str, int]:
        with self._tx() as connection:
            generation = connection.execute(_NEXT_GENERATION).scalar_one()
        take = {"owner": owner, "generation": generation, "lease_until": self._db_later(lease)}
        return dict.fromkeys(self._for_leases(leases, take), generation)

    def renew(self, leases: Mapping[str, int], lease: float, now: datetime) -> set[str]:
        return set(leases) - set(self._for_leases(leases, {"lease_until": self._db_later(lease)}))

    def release(self, leases: Mapping[str, int]) -> None:
        self._for_leases(leases, {"lease_until": None})

    def enqueue(self, envelope: Envelope, sinks: Sequence[str]) -> None:
        rows = _outbox_rows(envelope, service_of(envelope), sinks)
        if rows:
            with self._tx() as connection:
                connection.execute(_INSERT_OUTBOX, rows)

    # -- notifications ------------------------------------------------------------------------

    def acknowledge(self, sink: str, message_ids: Sequence[str]) -> None:
        with self._tx() as connection:
            for start in range(0, len(message_ids), BATCH):
                chunk = list(message_ids[start : start + BATCH])
                connection.execute(delete(outbox).where(outbox.c.sink == sink, outbox.c.message_id.in_(chunk)))

    def pending(self, sink: str, service_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Filtered here rather than in SQL: the outbox is small, and the list of ids may not be."""
        query = select(outbox.c.envelope, outbox.c.service_id).where(outbox.c.sink == sink).order_by(outbox.c.seq)
        with self._tx() as connection:
            rows = connection.execute(query).all()
        return [json.loads(body) for body, sid in rows if service_ids is None or sid in service_ids]

    def waiting(self) -> list[tuple[str, int, str | None]]:
        """Two reads, each by the (sink, seq) index: the counts and first rows, then those rows' envelopes."""
        counts = select(outbox.c.sink, func.count(), func.min(outbox.c.seq)).group_by(outbox.c.sink)
        with self._tx() as connection:
            rows = connection.execute(counts.order_by(outbox.c.sink)).all()
            query = select(outbox.c.seq, outbox.c.envelope).where(outbox.c.seq.in_([seq for _, _, seq in rows]))
            first: dict[int, str] = {seq: body for seq, body in connection.execute(query).all()}
        return [(sink, n, _timestamp(first.get(seq))) for sink, n, seq in rows]

    # -- retention ----------------------------------------------------------------------------

    def purge(self, before: datetime) -> int:
        """Batches of ``PURGE_BATCH`` rows, oldest first through the index on ``at``, each its own
        transaction, until a batch comes back short."""
        check_cutoff(before)
        statement = _purge_statement(before)
        deleted = 0
        while True:
            with self._tx() as connection:
                count = connection.execute(statement).rowcount
            deleted += count
            if count < PURGE_BATCH:
                return deleted

    def remove_service(self, sid: str, service_down_time: float | None, *, now: datetime | None = None) -> Removed:
        """The database's clock judges liveness, as in ``fleet``; the service row is locked
        (PostgreSQL) so a heartbeat landing meanwhile waits and then finds nothing to update."""
        with self._tx() as connection:
            row = self._locked(connection, sid, "removed")
            window = down_time_of(row["service_down_time"], service_down_time)
            check_removable(sid, row["heartbeat_db_at"], row["db_now"], window)
            rows = connection.execute(delete(history).where(history.c.service_id == sid)).rowcount
            undelivered = connection.execute(delete(outbox).where(outbox.c.service_id == sid)).rowcount
            connection.execute(delete(services).where(services.c.id == sid))
        return Removed(rows, undelivered)

    def reset_service(self, sid: str, *, now: datetime | None = None) -> ServiceState:
        """Under the row's lock, like ``remove_service``: an engine claiming it meanwhile waits, then
        takes the reset state. The new generation and the cleared lease are in the same transaction
        (``reset_state``): an engine that held the service is fenced from then on."""
        with self._tx("reset not written") as connection:
            row = self._locked(connection, sid, "reset")
            holder = Holder(row["owner"], row["lease_until"]) if row["lease_until"] is not None else None
            check_unleased(sid, holder, row["db_now"])
            window = down_time_of(row["service_down_time"], None)
            check_removable(sid, row["heartbeat_db_at"], row["db_now"], window, refused="reset")
            fresh = reset_state(_state(row), connection.execute(_NEXT_GENERATION).scalar_one())
            values = {name: value for name, value in _state_values(fresh).items() if name != "id"}
            connection.execute(update(services).where(services.c.id == sid).values(**values, lease_until=None))
        return fresh

    def _locked(self, connection: Connection, sid: str, refused: str) -> dict[str, Any]:
        """The service's row, locked for the transaction (PostgreSQL), with the database's now."""
        query = select(services, self._db_now().label("db_now")).where(services.c.id == sid)
        row = connection.execute(query.with_for_update(of=services)).mappings().first()
        if row is None:
            raise unknown_service(sid, refused)
        found = dict(row)
        found["db_now"] = _utc(row["db_now"], self.engine)
        return found

    # -- reading ------------------------------------------------------------------------------

    def history(self, sid: str | None = None) -> list[TransitionRecord]:
        query = select(history).order_by(history.c.seq)
        if sid is not None:
            query = query.where(history.c.service_id == sid)
        with self._tx() as connection:
            return [_record(row) for row in connection.execute(query).mappings()]

    def fleet(self, service_down_time: float | None = None, *, now: datetime | None = None) -> list[ServiceRow]:
        """The database's clock decides, whatever ``now`` says: every host reads the same time."""
        with self._tx() as connection:
            now = _utc(connection.execute(select(self._db_now())).scalar_one(), self.engine)
            rows = connection.execute(select(services).order_by(services.c.host, services.c.binary)).mappings().all()
        return [
            _state(row).row(
                alive=alive(
                    row["heartbeat_db_at"],
                    now,
                    timedelta(seconds=down_time_of(row["service_down_time"], service_down_time)),
                )
            )
            for row in rows
        ]

    def close(self) -> None:
        self.health.close()
        self.engine.dispose()


def _not_at_head(name: str, current: tuple[str, ...], head: tuple[str, ...], script: ScriptDirectory) -> StoreCorrupt:
    """Why a reader does not open this store, in one line that says what to do."""
    if not current:
        return StoreCorrupt(f"no statecore store in {name}: start `statecore run` on it first; nothing was created")
    known = {revision.revision for revision in script.walk_revisions()}
    if set(current) <= known:
        return StoreCorrupt(
            f"store {name} has schema {', '.join(current)}, older than this statecore's {', '.join(head)}: run"
            " `statecore run` with this statecore to upgrade it (statecore releases before it then refuse the"
            " store); nothing was changed"
        )
    return StoreCorrupt(f"store {name} has schema {', '.join(current)}, which this statecore does not know")


def _engine_options(dialect: str, busy_timeout: float, timeout: float) -> dict[str, Any]:
    """SQLite waits ``busy_timeout`` for a lock. PostgreSQL's bounds: libpq's ``connect_timeout``
    (whole seconds, at least 2 as libpq wants) for connecting, ``statement_timeout`` for a statement
    the server runs slowly, and ``pool_timeout`` for the wait on a pooled connection."""
    if dialect == "sqlite":
        return {"connect_args": {"timeout": busy_timeout, "check_same_thread": False}}
    options: dict[str, Any] = {"pool_size": 5, "max_overflow": 5, "pool_timeout": timeout}
    if dialect == "postgresql":
        options["connect_args"] = {
            "connect_timeout": max(2, math.ceil(timeout)),
            "options": f"-c statement_timeout={math.ceil(timeout * 1000)}",
        }
    return options


def _sqlite_pragmas(connection: sqlite3.Connection, _record: object) -> None:
    # WAL lets `statecore service-list` read while the engine writes; NORMAL is durable across crashes of us.
    cursor = connection.cursor()
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor, attempts: int = 40) -> None:
    """Only a new file is switched. SQLite answers "database is locked" at once, without its busy
    handler, while another process holds the file (engines starting together on it): try again
    a moment later, for up to about two seconds, like the busy timeout."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _short(error: SQLAlchemyError) -> str:
    orig = getattr(error, "orig", None)  # a DBAPIError's driver error says it best
    return str(orig if orig is not None else error).splitlines()[0]


def _utc(raw: Any, engine: SqlEngine) -> datetime:
    value = UtcDateTime().process_result_value(raw, engine.dialect)
    assert value is not None
    return value


_STATE_FIELDS = tuple(field for field in ServiceState.__dataclass_fields__)


_STATUS_FIELDS = ("disabled", "disabled_reason")


def _upsert_statement(dialect: str, db_now: ColumnElement[Any], *, with_status: bool) -> Any:
    """INSERT ... ON CONFLICT (id) DO UPDATE, for SQLite and PostgreSQL alike. Without
    ``with_status`` the update leaves disabled/disabled_reason alone: an admin may have changed
    them from another host, and only an admin action writes them. A row's ``came_up`` parameter
    sets its heartbeat to the database's now; without it the heartbeat stays as it was."""
    heartbeat = case((bindparam("came_up", type_=Boolean), db_now), else_=null())
    statement = _dialect_insert(dialect)(services).values(heartbeat_db_at=heartbeat)
    columns = [name for name in _STATE_FIELDS if with_status or name not in _STATUS_FIELDS]
    changes: dict[str, Any] = {name: statement.excluded[name] for name in columns}
    changes["heartbeat_db_at"] = func.coalesce(statement.excluded.heartbeat_db_at, services.c.heartbeat_db_at)
    return statement.on_conflict_do_update(
        index_elements=[services.c.id],
        set_=changes,
        where=services.c.generation == statement.excluded.generation,  # fenced: left alone, then refused
    )


def _dialect_insert(dialect: str) -> Any:
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def _timestamp(envelope: str | None) -> str | None:
    """A stored envelope's timestamp (None: acknowledged between the two reads)."""
    return None if envelope is None else str(json.loads(envelope)["timestamp"])


def _outbox_rows(envelope: Envelope, sid: str, sinks: Sequence[str]) -> list[dict[str, Any]]:
    """One row per sink, the envelope as the sinks will get it again after a restart."""
    if not sinks:
        return []
    body = json.dumps(envelope, sort_keys=True, separators=(",", ":"))
    return [{"sink": sink, "message_id": envelope["message_id"], "service_id": sid, "envelope": body} for sink in sinks]


def _check_generations(connection: Connection, expected: Mapping[str, int]) -> None:
    """Inside the commit's transaction, after its upserts (which hold the rows' locks): a service
    claimed by another engine since our claim fails the whole commit, which is rolled back."""
    ids = list(expected)
    found: dict[str, int] = {}
    for start in range(0, len(ids), BATCH):
        query = select(services.c.id, services.c.generation).where(services.c.id.in_(ids[start : start + BATCH]))
        found.update((sid, gen) for sid, gen in connection.execute(query))
    fenced = [sid for sid, generation in expected.items() if found.get(sid, generation) != generation]
    if fenced:
        raise Fenced(fenced)


def _state_values(state: ServiceState, **came_up: bool) -> dict[str, Any]:
    """A row's values; ``came_up=...`` for the upserts, which take it as a parameter."""
    values: dict[str, Any] = {name: getattr(state, name) for name in _STATE_FIELDS}
    values.update(came_up)
    values["id"], values["lifecycle"] = state.id, state.lifecycle.value
    return values


def _purge_statement(before: datetime) -> Any:
    """One batch: rows older than ``before`` that a newer row of the same service supersedes (the
    ``(service_id, seq)`` index answers that), so each service keeps its latest row."""
    newer = history.alias("newer")
    superseded = exists().where(newer.c.service_id == history.c.service_id, newer.c.seq > history.c.seq)
    oldest = select(history.c.seq).where(history.c.at < before, superseded).order_by(history.c.at)
    return delete(history).where(history.c.seq.in_(oldest.limit(PURGE_BATCH).scalar_subquery()))


_SET_BACKEND_STATE = update(services).where(
    services.c.id == bindparam("b_id"), services.c.generation == bindparam("b_generation")
)
_NEXT_GENERATION = (
    update(claims).where(claims.c.id == 1).values(generation=claims.c.generation + 1).returning(claims.c.generation)
)
_INSERT_HISTORY = insert(history)
_INSERT_OUTBOX = insert(outbox)


def _state(row: Any) -> ServiceState:
    values = {name: row[name] for name in _STATE_FIELDS}
    values["lifecycle"] = State(values["lifecycle"])
    return ServiceState(**values)


def _history_values(sid: str, record: TransitionRecord, message_id: str) -> dict[str, Any]:
    return {
        "service_id": sid, "host": record.host, "binary": record.binary, "zone": record.zone,
        "event": record.event.value, "from_state": record.from_state.value, "to_state": record.to_state.value,
        "at": record.at, "reason": record.reason,
        "error_type": record.error.type if record.error else None,
        "error_message": record.error.message if record.error else None,
        "attempt": record.attempt, "retries_left": record.retries_left, "next_retry_at": record.next_retry_at,
        "event_type": record.event_type, "priority": record.priority, "message_id": message_id,
    }  # fmt: skip


def _event_of(name: str) -> Event | AdminAction:
    return Event(name) if name in Event.__members__.values() else AdminAction(name)


def _record(row: Any) -> TransitionRecord:
    error = ErrorInfo(row["error_type"], row["error_message"] or "") if row["error_type"] else None
    return TransitionRecord(
        host=row["host"], binary=row["binary"], zone=row["zone"], event=_event_of(row["event"]),
        from_state=State(row["from_state"]), to_state=State(row["to_state"]), at=row["at"], reason=row["reason"],
        error=error, attempt=row["attempt"], retries_left=row["retries_left"], next_retry_at=row["next_retry_at"],
        event_type=row["event_type"], priority=row["priority"],
    )  # fmt: skip
