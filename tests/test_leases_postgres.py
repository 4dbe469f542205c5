"""Engines in separate processes on one PostgreSQL, configured with the same services.

Exactly one drives each service at a time: the owner column never flips while both run, and
every service's history is one chain (each row starts where the previous one ended). When the
owner is killed or stopped, the standby takes over within a lease, and a stopped owner that
resumes is fenced: it writes nothing more and says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lease_child import HOSTS, SETTINGS
from pg_server import fresh_database, postgres_bindir
from support import chain_breaks, seconds_until

from statecore.store.sql import SqlStore

HERE = Path(__file__).resolve().parent
SIDS = [f"volume/{host}" for host in HOSTS]
OVERLAP = float(os.environ.get("STATECORE_OVERLAP_SECONDS", "8"))
"""How long both engines run together; the issue's figure is for 60 s (set it to measure that)."""
pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


class Engines:
    """Child engines by owner name, each logging to its own file; all killed at the end."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url, self.logs, self.children = url, logs, dict[str, subprocess.Popen[bytes]]()

    def start(self, owner: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        with (self.logs / f"{owner}.log").open("wb") as log:
            command = [sys.executable, str(HERE / "lease_child.py"), owner, self.url]
            self.children[owner] = subprocess.Popen(command, env=env, stderr=log, stdout=log)

    def log(self, owner: str) -> str:
        return (self.logs / f"{owner}.log").read_text(encoding="utf-8", errors="replace")

    def stop_all(self) -> None:
        for child in self.children.values():
            child.send_signal(signal.SIGCONT)
            child.kill()
            child.wait(timeout=10)


@pytest.fixture()
def db_url(pg_url: str, request: pytest.FixtureRequest) -> str:
    """A database of its own for each test: the same service names in each."""
    return fresh_database(pg_url, f"leases{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture()
def engines(db_url: str, tmp_path: Path) -> Iterator[Engines]:
    running = Engines(db_url, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def owners(store: SqlStore) -> dict[str, str]:
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id, owner FROM statecore_services").all()
    return {sid: owner for sid, owner in rows}


def all_up_by(store: SqlStore, owner: str) -> bool:
    states = {f"{row.binary}/{row.host}": row for row in store.fleet(SETTINGS.service_down_time)}
    return set(owners(store).values()) == {owner} and all(
        sid in states and states[sid].state == "up" and states[sid].lifecycle.value == "up" for sid in SIDS
    )


def test_two_engines_on_the_same_services_never_both_drive_one(engines, db_url):
    observer = SqlStore(db_url)
    engines.start("hosta")
    seconds_until(lambda: all_up_by(observer, "hosta"), 20, "hosta drives every service")
    engines.start("hostb")
    flips, seen, deadline = 0, owners(observer), time.monotonic() + OVERLAP
    while time.monotonic() < deadline:  # both run: hostb must only wait
        now = owners(observer)
        flips += sum(1 for sid in SIDS if now[sid] != seen[sid])
        seen = now
        time.sleep(0.1)
    print(f"\n{OVERLAP:g} s of two engines: {flips} owner changes, {chain_breaks(observer, SIDS)} chain breaks")
    assert flips == 0 and set(seen.values()) == {"hosta"}
    assert chain_breaks(observer, SIDS) == 0
    assert "standby for volume/node0@lvm: driven by hosta" in engines.log("hostb")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_the_standby_takes_over_when_the_owner_dies_or_stops(engines, db_url, how):
    observer = SqlStore(db_url)
    engines.start("hosta")
    seconds_until(lambda: all_up_by(observer, "hosta"), 20, "hosta drives every service")
    engines.start("hostb")
    time.sleep(1)  # hostb has registered and waits (a real process starting up; nothing of ours to wait on)
    engines.children["hosta"].send_signal(how)
    took = seconds_until(lambda: all_up_by(observer, "hostb"), 15, "hostb took over and brought every service up")
    print(f"\nowner {signal.Signals(how).name}: every service up on the standby after {took:.2f} s")
    assert took <= SETTINGS.lease_time + SETTINGS.service_down_time + 5
    if how is signal.SIGSTOP:
        written = {sid: len(observer.history(sid)) for sid in SIDS}
        engines.children["hosta"].send_signal(signal.SIGCONT)
        seconds_until(lambda: "fenced" in engines.log("hosta"), 10, "the resumed engine says it was fenced")
        time.sleep(2)  # the resumed engine's timers have all come due by now: it must not have written
        assert set(owners(observer).values()) == {"hostb"}
        assert all(len(observer.history(sid)) >= written[sid] for sid in SIDS)
    assert chain_breaks(observer, SIDS) == 0
