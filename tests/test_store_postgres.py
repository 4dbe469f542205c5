"""Several hosts on one PostgreSQL: every host sees every service, and a dead host goes down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pg_server import postgres_bindir
from support import Harness, seconds_until

from statecore.store.sql import SqlStore

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def fleet_states(store: SqlStore) -> dict[str, str]:
    return {f"{row.binary}/{row.host}": row.state for row in store.fleet(2)}


def test_the_same_lifecycle_runs_on_postgresql(pg_url):
    store = SqlStore(pg_url)
    h = Harness(store=store, reinit_driver_count=3)
    h.add("pgcheck@lvm", "volume", h.driver("recoverable", "ok"))
    h.engine.start()
    h.engine.advance(5)
    assert [r.to_state.value for r in h.engine.history("pgcheck@lvm")] == [
        "initializing", "failed_recoverable", "initializing", "up",
    ]  # fmt: skip
    assert store.pending("MemorySink") == []


def test_a_killed_host_is_seen_down_by_the_others_after_service_down_time(pg_url):
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    hosts = {name: subprocess.Popen([sys.executable, str(HERE / "host_child.py"), name, pg_url], env=env)
             for name in ("hosta", "hostb")}  # fmt: skip
    observer = SqlStore(pg_url)
    try:
        everyone = {"volume/hosta@lvm", "backup/hosta", "volume/hostb@lvm", "backup/hostb"}
        seconds_until(lambda: {k for k, v in fleet_states(observer).items() if v == "up"} >= everyone, 20, "all up")

        os.kill(hosts["hosta"].pid, signal.SIGKILL)
        hosts["hosta"].wait(timeout=10)
        killed_at = time.monotonic()
        seconds_until(
            lambda: fleet_states(observer)["volume/hosta@lvm"] == "down" == fleet_states(observer)["backup/hosta"],
            10,
            "hosta down",
        )
        took = time.monotonic() - killed_at
        states = fleet_states(observer)
        assert states["volume/hostb@lvm"] == "up" and states["backup/hostb"] == "up"
        assert 1.0 <= took <= 6  # service_down_time is 2 s; the last heartbeat was up to 0.5 s before the kill
        lifecycles = {f"{r.binary}/{r.host}": r.lifecycle.value for r in observer.fleet(2)}
        assert lifecycles["volume/hosta@lvm"] == "up"  # its engine died believing it was up: heartbeat age decides
    finally:
        for process in hosts.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def test_a_service_that_came_up_is_up_on_the_databases_clock_before_its_first_heartbeat(pg_url):
    """The engine's virtual clock is months behind the server's: coming up is recorded on the server's."""
    store = SqlStore(pg_url)
    h = Harness(store=store)
    h.add("pgnew@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(1)
    assert [row.state for row in store.fleet(60) if row.host == "pgnew@lvm"] == ["up"]
    store.close()
