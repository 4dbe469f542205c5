"""A store left by statecore's 0003 release (``store_0003.py``), holding rows its engine wrote: the
engine (``statecore run``) upgrades it to 0004 and keeps every row, read with the default window
until the engine writes its own; readers (service-list, the admin commands, serve) never upgrade it
but refuse it in one line, so the release that wrote it can still open it. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pg_server import fresh_database
from sqlalchemy import create_engine, inspect, text
from store_0003 import make_0003_store
from test_cli_ops import run_cli
from test_cli_service_list import one_line_refusal
from test_retention import backdate_heartbeats
from test_store_down_time import FAST, SLOW, states, stopped_engine

from statecore.store import StoreCorrupt, service_id
from statecore.store.sql import SqlStore

IDS = [service_id("volume", FAST), service_id("volume", SLOW)]
names = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Where a current engine writes its rows, and where the 0003 store holding them is made."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'today.sqlite'}", f"sqlite:///{tmp_path / 'old.sqlite'}"
    else:
        server = request.getfixturevalue("pg_url")
        yield fresh_database(server, f"today{next(names)}"), fresh_database(server, f"old{next(names)}")


def schema_of(url: str) -> tuple[str, set[str]]:
    """The store's alembic revision and the columns of its services table, read around statecore."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            return version, {column["name"] for column in inspect(connection).get_columns("statecore_services")}
    finally:
        engine.dispose()


@pytest.fixture
def old_store(urls: tuple[str, str]) -> Iterator[tuple[str, dict[str, object], list[object]]]:
    """A 0003 store with the rows of an engine that ran two volumes, then stopped; with those rows."""
    today, old = urls
    source = SqlStore(today)
    stopped_engine(source)
    written, history = source.load_many(IDS), source.history()
    make_0003_store(old, source)
    source.close()
    version, columns = schema_of(old)
    assert version == "0003" and "service_down_time" not in columns and "lease_until" in columns
    yield old, dict(written), list(history)


def test_the_engine_upgrades_a_0003_store_and_its_rows_survive_read_with_the_default(old_store):
    old, written, history = old_store
    store = SqlStore(old)  # as `statecore run` opens its store, before its engine starts
    try:
        assert schema_of(old) == ("0004", schema_of(old)[1]) and "service_down_time" in schema_of(old)[1]
        loaded = store.load_many(IDS)
        assert loaded == {sid: dataclasses.replace(state, service_down_time=None) for sid, state in written.items()}
        assert store.history() == history
        backdate_heartbeats(store, timedelta(seconds=59))  # the 6 s volume too: 0003 never stored its 6 s
        assert {row.host: row.state for row in store.fleet()} == {FAST: "up", SLOW: "up"}
        backdate_heartbeats(store, timedelta(seconds=2))
        assert {row.host: row.state for row in store.fleet()} == {FAST: "down", SLOW: "down"}

        h = stopped_engine(store)  # the engine of the new release runs them again and writes its windows
        assert {sid: state.service_down_time for sid, state in store.load_many(IDS).items()} == {
            IDS[0]: 6.0,
            IDS[1]: 60.0,
        }
        backdate_heartbeats(store, timedelta(seconds=7))
        assert states(store, h) == {FAST: "down", SLOW: "up"}
    finally:
        store.close()


def test_a_reader_refuses_a_0003_store_in_one_line_and_leaves_it_at_0003(old_store):
    old, _, _ = old_store
    with pytest.raises(StoreCorrupt, match=r"schema 0003, older than this statecore's 0004: run `statecore run`"):
        SqlStore(old, migrate=False)
    assert schema_of(old)[0] == "0003"


@pytest.mark.parametrize(
    "args",
    [
        ("service-list",),
        ("disable", FAST, "--reason", "maintenance"),
        ("enable", FAST),
        ("reset", FAST, "volume"),
        ("service", "remove", FAST, "volume"),
        ("purge", "--before", "2025-01-01"),
    ],
)
def test_admin_commands_refuse_a_0003_sqlite_store_and_leave_it_at_0003(tmp_path, args):
    source = SqlStore(f"sqlite:///{tmp_path / 'today.sqlite'}")
    stopped_engine(source)
    old = f"sqlite:///{tmp_path / 'old.sqlite'}"
    make_0003_store(old, source)
    source.close()
    result = run_cli(*args, "--db", old)
    one_line_refusal(result, f"error: store {old} has schema 0003, older than this statecore's 0004")
    assert "`statecore run` with this statecore to upgrade it" in result.stderr
    assert schema_of(old)[0] == "0003"


def test_a_reader_creates_nothing_in_an_empty_postgresql_database(pg_url):
    url = fresh_database(pg_url, f"empty{next(names)}")
    with pytest.raises(StoreCorrupt, match=r"no statecore store in .*: start `statecore run` on it first"):
        SqlStore(url, migrate=False)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert inspect(connection).get_table_names() == []
    finally:
        engine.dispose()
