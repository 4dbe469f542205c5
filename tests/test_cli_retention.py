"""``statecore purge --before DATE`` and ``statecore service remove HOST BINARY``: what they delete,
what they refuse, and that a refusal is one line on stderr, exit code 2, and changes nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import Harness
from test_cli_ops import invoke, run_cli
from test_retention import FLAPPER, STEADY, backdate_heartbeats, flap, survivors

from statecore.store import service_id
from statecore.store.sql import SqlStore

START = datetime(2025, 1, 1, tzinfo=UTC)
"""In the past, whatever day the suite runs: ``purge`` refuses a date in the future."""


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store in which a flapper and a steady volume ran for three hours from ``START``."""
    path = tmp_path / "state.sqlite"
    h = Harness(store=SqlStore(f"sqlite:///{path}"), start=START, history_retention=0)
    h.add(FLAPPER, "volume", h.driver("ok"))
    h.add(STEADY, "volume", h.driver("ok"))
    h.add("node1", "backup", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    flap(h, 3)
    h.engine.store.close()
    return str(path)


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_purge_deletes_history_before_the_date_and_keeps_each_services_latest(db):
    store = SqlStore(f"sqlite:///{db}")
    everything = store.history()
    before = START + timedelta(hours=2)

    result = invoke("purge", "--before", "2025-01-01T02:00:00Z", "--db", db)

    left = survivors(everything, before)
    assert (
        result.output
        == f"purged {len(everything) - len(left)} history rows older than {before.isoformat()} from {db}\n"
    )
    assert store.history() == left


def test_purge_takes_a_plain_date_as_midnight_utc(db):
    store = SqlStore(f"sqlite:///{db}")
    everything = store.history()
    assert invoke("purge", "--before", "2025-01-02", "--db", db).exit_code == 0
    assert store.history() == survivors(everything, datetime(2025, 1, 2, tzinfo=UTC))
    assert len(store.history()) == 3  # one latest row per service


@pytest.mark.parametrize(
    ("before", "message"),
    [
        ("yesterday", "error: --before 'yesterday': not an ISO 8601 date or date-time"),
        ("2025-13-01", "error: --before '2025-13-01': not an ISO 8601 date or date-time"),
        ("2999-01-01", "error: --before '2999-01-01' is in the future; nothing was purged"),
    ],
)
def test_a_bad_date_is_one_line_exit_2_and_the_store_is_untouched(db, before, message):
    untouched = digest(db)
    result = run_cli("purge", "--before", before, "--db", db)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert digest(db) == untouched


def test_service_remove_deletes_a_dead_service_with_its_history(db):
    store = SqlStore(f"sqlite:///{db}")
    backdate_heartbeats(store, timedelta(hours=1))
    history = len(store.history(service_id("volume", FLAPPER)))

    result = invoke("service", "remove", FLAPPER, "volume", "--db", db)

    assert result.output == f"removed volume {FLAPPER} from {db}: {history} history rows, 0 undelivered notifications\n"
    listed = json.loads(invoke("service-list", "--db", db, "--json").output)["services"]
    assert sorted(row["host"] for row in listed) == ["node1", STEADY]


@pytest.mark.parametrize("words", [("cinder-backup", "node1"), ("backup", "node1"), ("node1", "cinder-backup")])
def test_service_remove_takes_cinders_order_and_binary_names_too(db, words):
    backdate_heartbeats(SqlStore(f"sqlite:///{db}"), timedelta(hours=1))
    assert invoke("service", "remove", *words, "--db", db).output.startswith(f"removed backup node1 from {db}")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ((FLAPPER, "volume"), f"error: service 'volume/{FLAPPER}' is alive (last heartbeat "),
        (("node9", "backup"), "error: no service 'backup/node9' in the store; nothing was removed"),
        (
            ("node1", "scheduler"),
            "error: binary 'scheduler': choose volume or backup (or cinder-volume, cinder-backup); nothing was removed",
        ),
    ],
)
def test_service_remove_refuses_a_live_unknown_or_misnamed_service_by_name(db, words, message):
    untouched = digest(db)
    result = run_cli("service", "remove", *words, "--db", db, "--service-down-time", "1e9")
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert digest(db) == untouched


def test_purge_waits_for_a_locked_store_as_long_as_its_timeout(db):
    """Another process holds the write lock: purge waits --timeout (4 s, not the store's default 2 s)
    and gives up in one line, having deleted nothing; once the lock is let go, it purges."""
    import subprocess
    import sys
    import time

    from test_store_health import LOCKER

    rows = len(SqlStore(f"sqlite:///{db}").history())
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        began = time.monotonic()
        result = run_cli("purge", "--before", "2025-01-01T02:00:00Z", "--db", db, "--timeout", "4")
        took = time.monotonic() - began
    finally:
        locker.communicate("\n", timeout=10)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: store write failed: database is locked"), result.stderr
    assert 4 <= took < 20  # four seconds of waiting for the lock, and the interpreter's start on a busy host
    assert len(SqlStore(f"sqlite:///{db}").history()) == rows
    assert run_cli("purge", "--before", "2025-01-01T02:00:00Z", "--db", db, "--timeout", "0.5").returncode == 0
