"""Group commit: the transitions of one moment share one transaction, and the promise holds.

A transition counts only once it is committed; its effects and its notification come after the
commit; a group the store refuses leaves every service in it as it was.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from support import BlockingHeartbeats, Harness

from statecore import Engine, MemorySink, Settings, StatecoreError
from statecore.service import ServiceSpec
from statecore.store import Entry, MemoryStore, StoreUnavailable, service_id
from statecore.store.sql import SqlStore
from statecore.testing import ScriptedDriver

HOSTS = ("node1@lvm", "node2@lvm", "node3@lvm")


class Groups(BlockingHeartbeats):
    """Counts group commits; refuses the next ``refuse`` of them, as a locked database would."""

    def __init__(self, refuse: int = 0) -> None:
        super().__init__()
        self.refuse = refuse
        self.groups: list[int] = []

    def commit_many(self, entries: Sequence[Entry], sinks: Sequence[str]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise StoreUnavailable("store write failed: database is locked")
        self.groups.append(len(entries))
        super().commit_many(entries, sinks)


def up_fleet(store: MemoryStore, **settings: Any) -> Harness:
    h = Harness(store=store, service_down_time=5, report_interval=1, **settings)
    for host in HOSTS:
        h.add(host, "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    return h


def test_services_starting_together_share_one_commit():
    store = Groups()
    up_fleet(store)
    assert store.groups[0] == len(HOSTS)  # the three start transitions


def test_expiries_of_one_instant_are_one_group_and_a_refused_group_changes_nothing():
    store = Groups()
    h = up_fleet(store)
    store.blocked.update(service_id("volume", host) for host in HOSTS)
    h.engine.advance(4)
    store.refuse, before = 1, len(h.sink.envelopes)
    h.engine.advance(1)  # t = 5: every deadline at once; the store refuses the group
    assert [h.lifecycle(host) for host in HOSTS] == ["up"] * 3
    assert len(h.sink.envelopes) == before and len(h.engine.history()) == len(HOSTS) * 2
    h.engine.advance(1)  # retried a second later, together
    assert [h.lifecycle(host) for host in HOSTS] == ["down"] * 3
    assert store.groups[-1] == len(HOSTS)
    assert [t for t, kind, _, _ in h.timeline() if kind == "volume.service.down"] == [6.0] * 3


def test_a_batch_commits_once_at_its_end_then_announces_and_runs_its_effects():
    store = Groups()
    h = up_fleet(store)
    history = len(h.engine.history())
    with h.engine.batch():
        for host in HOSTS:
            h.engine.fire(host, "heartbeat_expired")
        assert len(h.engine.history()) == history  # nothing counts until the batch commits
        assert h.sink.event_types().count("volume.service.down") == 0
    assert store.groups[-1] == len(HOSTS)
    assert h.sink.event_types()[-3:] == ["volume.service.down"] * 3
    assert [r.to_state.value for r in h.engine.history()[-3:]] == ["down"] * 3


def test_a_refused_batch_raises_and_puts_every_service_back():
    store = Groups()
    h = up_fleet(store)
    rows = [h.engine.service(host) for host in HOSTS]
    sent, history = len(h.sink.envelopes), len(h.engine.history())
    store.refuse = 1
    with pytest.raises(StoreUnavailable), h.engine.batch():
        for host in HOSTS:
            h.engine.fire(host, "heartbeat_expired")
        h.engine.disable(HOSTS[0], "maintenance")
    assert [h.engine.service(host) for host in HOSTS] == rows
    assert (len(h.sink.envelopes), len(h.engine.history())) == (sent, history)
    h.engine.advance(1)  # the deadlines still stand: nothing was half done
    assert [h.lifecycle(host) for host in HOSTS] == ["up"] * 3


def test_a_group_on_a_locked_sqlite_file_is_all_or_nothing(tmp_path):
    path = tmp_path / "s.sqlite"
    store = SqlStore(f"sqlite:///{path}", busy_timeout=0.2)
    h = up_fleet(store)
    history = len(h.engine.history())
    with sqlite3.connect(path, isolation_level=None) as locker:
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="store write failed"), h.engine.batch():
            for host in HOSTS:
                h.engine.fire(host, "heartbeat_expired")
        locker.execute("ROLLBACK")
    assert [h.lifecycle(host) for host in HOSTS] == ["up"] * 3 and len(h.engine.history()) == history
    with h.engine.batch():
        for host in HOSTS:
            h.engine.fire(host, "heartbeat_expired")
    reopened = SqlStore(f"sqlite:///{path}")
    assert [r.to_state.value for r in reopened.history()[-3:]] == ["down"] * 3
    assert {row.lifecycle.value for row in reopened.fleet(60)} == {"down"}


def test_add_services_refuses_a_bad_or_repeated_one_before_registering_any():
    store = MemoryStore()
    engine = Engine.virtual_time(store=store, sinks=[MemorySink()])
    good = ServiceSpec("node1@lvm", "volume", ScriptedDriver())
    for bad, named in (
        (ServiceSpec("node2", "volume", ScriptedDriver()), "'node2': a volume service is named 'host@backend'"),
        (good, "'node1@lvm' (volume) is already registered"),
    ):
        with pytest.raises(StatecoreError, match=re.escape(named)):
            engine.add_services([good, bad])
        assert engine.service_list() == [] and store.load(service_id("volume", "node1@lvm")) is None


def test_add_services_adopts_stored_states_and_saves_the_new_ones_in_one_go():
    store = MemoryStore()
    first = Engine.virtual_time(store=store, sinks=[MemorySink()], settings=Settings(reinit_driver_count=3))
    first.add_service("node1@lvm", "volume", ScriptedDriver(["recoverable"]))
    first.start()
    first.advance(0)
    second = Engine.virtual_time(store=store, sinks=[MemorySink()])
    ids = second.add_services([ServiceSpec(h, "volume", ScriptedDriver()) for h in ("node1@lvm", "node2@lvm")])
    assert ids == [service_id("volume", "node1@lvm"), service_id("volume", "node2@lvm")]
    assert [(r.host, r.lifecycle.value, r.attempts) for r in second.service_list()] == [
        ("node1@lvm", "failed_recoverable", 1),
        ("node2@lvm", "starting", 0),
    ]
    assert store.load(service_id("volume", "node2@lvm")) is not None


class Transactions(MemoryStore):
    """Counts transactions: a plain commit is one, a group commit is one."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.transactions: list[int] = []
        self._in_group = False

    def commit(self, *args: Any, **kwargs: Any) -> None:
        if not self._in_group:
            with self.lock:
                self.transactions.append(1)
        super().commit(*args, **kwargs)

    def commit_many(self, entries: Sequence[Entry], sinks: Sequence[str]) -> None:
        with self.lock:
            self.transactions.append(len(entries))
        self._in_group = True  # the engine commits under its lock: no other commit runs meanwhile
        try:
            super().commit_many(entries, sinks)
        finally:
            self._in_group = False


def test_real_time_attempt_outcomes_are_handed_over_in_groups():
    """Forty attempt threads finish together: their outcomes are committed in a few groups,
    not forty transactions (real threads, bounded to seconds)."""
    count, started, gate, done = 40, threading.Semaphore(0), threading.Event(), threading.Event()

    class Gated(ScriptedDriver):
        def do_setup(self) -> None:
            started.release()
            gate.wait(timeout=10)

    class Last(MemorySink):
        def emit(self, envelope: Any) -> None:
            super().emit(envelope)
            if self.event_types().count("volume.init.success") == count:
                done.set()

    store = Transactions()
    engine = Engine(Settings(), store=store, sinks=[Last()])
    engine.add_services([ServiceSpec(f"node{i}@lvm", "volume", Gated()) for i in range(count)])
    with engine:
        assert all(started.acquire(timeout=10) for _ in range(count))  # every attempt is in do_setup
        gate.set()
        assert done.wait(timeout=10)
    assert store.transactions[0] == count  # every start, one transaction
    assert sum(store.transactions) == 2 * count  # then every outcome, each committed once
    assert len(store.transactions) <= 1 + count // 2  # in far fewer transactions than outcomes
    assert len(engine.history()) == 2 * count
