"""Two engines configured with the same service: one drives it, the other refuses or stands by.

Virtual time, on one shared memory store whose leases expire on the engines' clocks: an engine
that is "stopped" (SIGSTOP) is one whose clock is not advanced, and it carries on when it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pytest
from rich.console import Console
from support import FlakySink, Harness, chain_breaks

from statecore.leases import ServiceHeld
from statecore.screen import LiveView
from statecore.store import Fenced, MemoryStore, StoreUnavailable
from statecore.store.sql import SqlStore
from statecore.testing import ScriptedDriver

SID = "volume/node1@lvm"
SETTINGS = {"report_interval": 1, "service_down_time": 5, "lease_time": 3}


def engine_on(store: MemoryStore, owner: str, **settings: object) -> Harness:
    harness = Harness(store=store, owner=owner, seed=len(owner), **{**SETTINGS, **settings})
    harness.add("node1@lvm", "volume", ScriptedDriver(["ok"], clock=harness.clock))
    return harness


def owner_and_standby(store: MemoryStore, seconds: float) -> tuple[Harness, Harness]:
    """hosta drives the service, hostb stands by; both started and run together for ``seconds``."""
    owner, standby = engine_on(store, "hosta"), engine_on(store, "hostb", standby=True)
    owner.engine.start()
    standby.engine.start()
    advance_together(seconds, owner, standby)
    return owner, standby


def advance_together(seconds: float, *harnesses: Harness) -> None:
    """Engines in lockstep, half a second at a time: each sees the other's writes as they happen."""
    for _ in range(int(seconds * 2)):
        for harness in harnesses:
            harness.engine.advance(0.5)


def test_a_second_engine_is_refused_by_default_naming_who_drives_the_service():
    store = MemoryStore(shared=True)
    first = engine_on(store, "hosta")
    first.engine.start()
    first.engine.advance(1)
    with pytest.raises(ServiceHeld, match=r"volume/node1@lvm \(by hosta, lease until .*standby = true"):
        engine_on(store, "hostb")
    assert store.load(SID).owner == "hosta"


def test_a_standby_waits_then_takes_over_when_the_owner_stops_and_the_stopped_one_is_fenced():
    store = MemoryStore(shared=True)
    owner, standby = owner_and_standby(store, 10)
    assert [row.state for row in owner.engine.service_list()] == ["up"]
    assert standby.engine.service_list() == []  # it waits: it drives nothing
    console = Console(width=200, record=True, color_system=None)
    console.print(LiveView(standby.engine, rows=5).changed())
    assert "standby for 1 driven by another engine" in console.export_text()
    written = len(store.history(SID))

    standby.engine.advance(3 + 1)  # the owner is stopped (its clock stands still): its lease runs out
    assert store.load(SID).owner == "hostb"
    standby.engine.advance(2)
    assert [row.lifecycle.value for row in standby.engine.service_list()] == ["up"]
    assert len(store.history(SID)) > written  # the new owner carried the service on

    owner.engine.advance_to(standby.engine.now())  # the stopped engine resumes
    assert owner.engine.service_list() == []
    assert "volume.service.fenced" in owner.sink.event_types()
    settled = len(store.history(SID))
    advance_together(10, owner, standby)
    assert store.load(SID).owner == "hostb" and chain_breaks(store, [SID]) == 0
    assert len(store.history(SID)) == settled  # the fenced engine wrote nothing more


def test_a_commit_under_a_lost_lease_is_refused_and_the_engine_stops_driving_the_service():
    store = MemoryStore(shared=True)
    owner, standby = owner_and_standby(store, 5)
    standby.engine.advance(5)  # takes over while the owner's clock stands still
    before = store.history(SID)
    with pytest.raises(Fenced, match="another engine now drives volume/node1@lvm"):
        owner.engine.fire("node1@lvm", "driver_lost")  # before its own lease job has noticed
    assert store.history(SID) == before
    assert owner.engine.service_list() == []


def test_a_clean_stop_lets_a_standby_take_over_at_its_next_look():
    store = MemoryStore(shared=True)
    owner, standby = owner_and_standby(store, 5)
    owner.engine.shutdown()
    standby.engine.advance(1)  # a third of lease_time: one look, not a whole lease
    assert store.load(SID).owner == "hostb"
    assert [row.host for row in standby.engine.service_list()] == ["node1@lvm"]


def test_a_private_memory_store_grants_every_claim_and_arms_no_lease_job():
    harness = engine_on(MemoryStore(), "hosta")
    harness.engine.start()
    harness.engine.advance(10)
    assert not any(job_id.startswith("lease") for job_id, _ in harness.engine.jobs())
    assert [row.state for row in harness.engine.service_list()] == ["up"]


def test_sql_store_claims_fences_and_renews_by_generation(tmp_path):
    url = f"sqlite:///{tmp_path / 'leases.sqlite'}"
    a, b = SqlStore(url), SqlStore(url)
    first = Harness(store=a, owner="hosta", **SETTINGS)
    first.add("node1@lvm", "volume", first.driver("ok"))
    first.engine.start()
    first.engine.advance(2)
    generation = a.load(SID).generation
    now = first.engine.now()
    assert b.claim([SID], "hostb", 3, now).held[SID].owner == "hosta"
    with a.engine.begin() as connection:  # the owner's lease ran out on the database's clock
        connection.exec_driver_sql("UPDATE statecore_services SET lease_until = '2000-01-01 00:00:00.000000'")
    taken = b.claim([SID], "hostb", 3, now).granted[SID]
    assert taken > generation
    assert b.renew({SID: taken}, 3, now) == set()
    assert a.renew({SID: generation}, 3, now) == {SID}
    assert a.record_heartbeats({SID: generation}, now) == []
    before = a.history(SID)
    with pytest.raises(Fenced):
        first.engine.fire("node1@lvm", "driver_lost")
    assert a.history(SID) == before and a.load(SID).owner == "hostb"
    assert first.engine.service_list() == []


def test_an_engine_resends_only_its_own_services_notifications_and_a_takeover_sends_the_lost_ones():
    store = MemoryStore(shared=True)
    down_bus = FlakySink(failures=10**6)  # the owner's bus never takes anything: its rows stay
    owner = Harness(store=store, owner="hosta", sinks=[down_bus], **SETTINGS)
    owner.add("node1@lvm", "volume", ScriptedDriver(["ok"], clock=owner.clock))
    owner.engine.start()
    owner.engine.advance(2)
    left = [envelope["message_id"] for envelope in store.pending("FlakySink")]
    assert left  # starting, initializing, up: undelivered

    bus = FlakySink(failures=0)
    other = Harness(store=store, owner="hostb", sinks=[bus], seed=1, standby=True, **SETTINGS)
    other.add("node2@lvm", "volume", ScriptedDriver(["ok"], clock=other.clock))
    other.add("node1@lvm", "volume", ScriptedDriver(["ok"], clock=other.clock))
    other.engine.start()
    other.engine.advance(0)
    assert {e["payload"]["host"] for e in bus.envelopes} == {"node2@lvm"}  # not hosta's service's
    assert {e["message_id"] for e in store.pending("FlakySink")} >= set(left)

    other.engine.advance(7)  # hosta stopped at 2 s, its lease ran to 5 s: hostb takes node1 over, and what it left
    sent = [e["message_id"] for e in bus.envelopes]
    assert set(left) <= set(sent)


def test_a_service_removed_and_registered_again_never_gets_a_generation_an_old_engine_holds(tmp_path):
    url = f"sqlite:///{tmp_path / 'aba.sqlite'}"
    old = Harness(store=SqlStore(url), owner="hosta", **SETTINGS)
    old.add("node1@lvm", "volume", old.driver("recoverable"))
    old.engine.start()
    old.engine.advance(2)
    held = old.engine.registry.services[SID].generation
    store = SqlStore(url)
    store.remove_service(SID, 0.001)  # an admin removes it: it has not heartbeated
    new = Harness(store=store, owner="hostb", seed=1, **SETTINGS)
    new.add("node1@lvm", "volume", new.driver("ok"))
    assert store.load(SID).generation > held
    assert store.renew({SID: held}, 3, new.engine.now()) == {SID}
    with pytest.raises(Fenced):
        old.engine.fire("node1@lvm", "reset")
    assert store.load(SID).owner == "hostb"


def test_two_engines_given_one_name_do_not_take_a_service_from_each_other_at_every_look():
    store = MemoryStore(shared=True)
    first = engine_on(store, "samehost", standby=True)
    first.engine.start()
    advance_together(2, first)
    second = engine_on(store, "samehost", standby=True)  # a restart: its own name's lease is taken
    second.engine.start()
    advance_together(20, first, second)
    assert store.load(SID).generation == second.engine.registry.services[SID].generation
    assert first.engine.service_list() == [] and len(second.engine.service_list()) == 1
    assert first.sink.event_types().count("volume.service.fenced") == 1


def test_an_engine_cut_off_from_the_store_stops_driving_before_its_lease_can_run_out():
    store = BrokenRenewals(shared=True)
    owner = engine_on(store, "hosta")
    owner.engine.start()
    owner.engine.advance(0.5)
    store.broken = True  # before its first renewal
    owner.engine.advance(2)  # two looks (every 1 s) without a renewal: 2/3 of its 3 s lease
    assert owner.engine.service_list() == []
    assert "volume.service.fenced" in owner.sink.event_types()
    store.broken = False
    owner.engine.advance(1)  # nobody claimed it meanwhile: it carries on, its driver as it was
    assert [row.lifecycle.value for row in owner.engine.service_list()] == ["up"]
    assert "restart" not in [record.event.value for record in store.history(SID)]


class BrokenRenewals(MemoryStore):
    """A store this engine cannot reach (another could) while ``broken``."""

    broken = False

    def renew(self, leases: Mapping[str, int], lease: float, now: datetime) -> set[str]:
        self._reach()
        return super().renew(leases, lease, now)

    def reclaim(self, leases: Mapping[str, int], owner: str, lease: float, now: datetime) -> dict[str, int]:
        self._reach()
        return super().reclaim(leases, owner, lease, now)

    def _reach(self) -> None:
        if self.broken:
            raise StoreUnavailable("store write failed: connection refused")
