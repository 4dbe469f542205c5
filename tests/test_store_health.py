"""A store that stops answering is reported within seconds, and back when it answers; nothing is lost.

Real parts, real time: a PostgreSQL server stopped dead with SIGSTOP (its connections stay open, so
no driver timeout fires), a SQLite file write-locked by another process; and the bounds that do fire:
PostgreSQL's statement timeout, and libpq's connect timeout against a server that never answers.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from pg_server import fresh_database, frozen
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from support import seconds_until

from statecore import Engine, MemorySink, Settings
from statecore.screen import LiveView
from statecore.store import StoreUnavailable
from statecore.store.sql import SqlStore
from statecore.testing import ScriptedDriver

LOCKER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
"""
"""Another process that holds the SQLite file's write lock until told (a line on stdin)."""


class Seen(MemorySink):
    """A sink that lets a test wait for a notification instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.success = threading.Event()

    def emit(self, envelope: Any) -> None:
        super().emit(envelope)
        if envelope["event_type"] == "volume.init.success" and envelope["payload"]["host"] == "late@lvm":
            self.success.set()


def running_engine(store: SqlStore) -> tuple[Engine, Seen, ScriptedDriver]:
    """A volume up and heartbeating, and one whose attempt hangs until the test lets it finish."""
    seen, late = Seen(), ScriptedDriver(["hang"])
    engine = Engine(Settings(report_interval=0.5, service_down_time=60), store=store, sinks=[seen])
    engine.add_service("steady@lvm", "volume", ScriptedDriver(["ok"]))
    engine.add_service("late@lvm", "volume", late)
    engine.start()
    seconds_until(lambda: engine.service("steady@lvm").lifecycle.value == "up", 5, "steady@lvm up")
    return engine, seen, late


def check_nothing_lost(engine: Engine, seen: Seen) -> None:
    assert seen.success.wait(10)
    steps = [(r.from_state.value, r.to_state.value) for r in engine.history("late@lvm")]
    assert steps == [("starting", "initializing"), ("initializing", "up")]
    assert seen.event_types().count("volume.init.success") == 2  # steady's and late's, each once
    seconds_until(lambda: engine.store.pending("Seen") == [], 5, "the outbox acknowledged")  # after emit


def test_a_stopped_postgresql_server_is_reported_within_seconds_and_back_after(pg_url, caplog_loguru):
    url = fresh_database(pg_url, "frozen")
    engine, seen, late = running_engine(SqlStore(url))
    text = lambda: caplog_loguru.text  # noqa: E731
    try:
        with frozen(url):
            late.release()  # its outcome's commit now waits for the stopped server
            reported = seconds_until(lambda: "store unresponsive" in text(), 5, "store unresponsive")
            began = time.monotonic()
            cli = subprocess.run([sys.executable, "-m", "statecore", "service-list", "--db", url, "--timeout", "2"],
                                 capture_output=True, text=True, timeout=20)  # fmt: skip
            cli_took = time.monotonic() - began
        seconds_until(lambda: "store back after" in text(), 10, "store back")
        check_nothing_lost(engine, seen)
    finally:
        engine.shutdown()
    assert reported <= 3
    assert cli.returncode != 0 and cli.stdout == ""
    assert cli.stderr.strip().splitlines() == [f"error: store did not answer within 2 s: {url}"]
    assert cli_took < 5


def test_a_write_locked_sqlite_file_is_reported_within_seconds_and_back_after(tmp_path, caplog_loguru):
    path = tmp_path / "state.sqlite"
    engine, seen, late = running_engine(SqlStore(f"sqlite:///{path}"))
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        late.release()
        reported = seconds_until(lambda: "store unresponsive" in caplog_loguru.text, 5, "store unresponsive")
        locker.communicate("\n", timeout=10)
        released = len(caplog_loguru.messages)
        back = lambda: any("store back after" in m for m in caplog_loguru.messages[released:])  # noqa: E731
        seconds_until(back, 10, "store back once the lock is released")
        check_nothing_lost(engine, seen)
    finally:
        if locker.poll() is None:
            locker.kill()
        engine.shutdown()
    assert reported <= 3


def test_the_live_screen_is_drawn_while_a_commit_waits_for_a_locked_store(tmp_path):
    path = tmp_path / "state.sqlite"
    engine, seen, late = running_engine(SqlStore(f"sqlite:///{path}", busy_timeout=10))
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        late.release()  # its outcome's commit holds the engine lock while it waits up to 10 s
        seconds_until(lambda: engine.store.health.stalled, 5, "the commit waiting")
        began = time.monotonic()
        screen = LiveView(engine, rows=10).changed()
        took = time.monotonic() - began
        locker.communicate("\n", timeout=10)
        check_nothing_lost(engine, seen)
    finally:
        if locker.poll() is None:
            locker.kill()
        engine.shutdown()
    assert screen is not None and took < 1


def test_the_engine_lock_is_free_while_a_commit_waits_and_later_steps_take_their_turn(tmp_path):
    """The commit waits for the store with the engine lock released: the service list answers at
    once; an admin's disable of another service, asked meanwhile, waits its turn and is written
    after it; nothing is lost."""
    path = tmp_path / "state.sqlite"
    engine, seen, late = running_engine(SqlStore(f"sqlite:///{path}", busy_timeout=10))
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    admin = threading.Thread(target=engine.disable, args=("steady@lvm", "maintenance"))
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        late.release()  # its outcome's commit now waits for the lock, up to 10 s
        seconds_until(lambda: engine.store.health.stalled, 5, "the commit waiting")
        began = time.monotonic()
        rows = engine.service_list()
        took = time.monotonic() - began
        admin.start()
        seconds_until(lambda: engine.ledger.writes_waiting == 2, 5, "the disable waiting its turn")
        locker.communicate("\n", timeout=10)
        admin.join(10)
        check_nothing_lost(engine, seen)
    finally:
        if locker.poll() is None:
            locker.kill()
        engine.shutdown()
    assert took < 1 and {row.host for row in rows} == {"steady@lvm", "late@lvm"}
    written = [(record.host, record.event.value) for record in engine.history()]
    assert written.index(("late@lvm", "init_succeeded")) < written.index(("steady@lvm", "disable"))
    assert engine.service("steady@lvm").status == "disabled"


def test_a_postgresql_statement_is_cut_at_the_stores_timeout(pg_url):
    store = SqlStore(fresh_database(pg_url, "slow"), timeout=1)
    began = time.monotonic()
    with pytest.raises(OperationalError, match="statement timeout"), store.engine.connect() as connection:
        connection.execute(text("SELECT pg_sleep(5)"))
    assert time.monotonic() - began < 3


def test_connecting_to_a_server_that_never_answers_gives_up_at_the_timeout():
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        began = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot open the store"):
            SqlStore(f"postgresql+psycopg://nobody@127.0.0.1:{silent.getsockname()[1]}/none", timeout=2)
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("bound", ["busy_timeout", "timeout", "unresponsive_after"])
def test_a_bound_that_is_no_bound_is_refused_by_name_before_the_file_is_made(tmp_path, bound):
    with pytest.raises(ValueError, match=f"SqlStore {bound}=0: must be a number of seconds above 0"):
        SqlStore(f"sqlite:///{tmp_path / 'state.sqlite'}", **{bound: 0})
    assert not (tmp_path / "state.sqlite").exists()


def test_a_store_at_head_opens_and_reads_while_another_process_holds_the_write_lock(tmp_path):
    path = tmp_path / "state.sqlite"
    SqlStore(f"sqlite:///{path}").close()
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        began = time.monotonic()
        assert SqlStore(f"sqlite:///{path}", busy_timeout=5).fleet(60) == []
        assert time.monotonic() - began < 1  # the schema is only read: no wait for the lock
    finally:
        locker.communicate("\n", timeout=10)
