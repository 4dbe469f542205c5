"""Random lifecycles on the real engine, checked step by step against the reference model.

One volume and one backup service run in virtual time with small settings;
hypothesis changes what their drivers do, whether heartbeats are recorded and
when an admin resets, and after every step the engine and the model must agree
on state, counters, next retry, armed timers and the notifications sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest
from helpers_matrix import HOSTS, Attempt, Result, Rig, ScriptedDriver, seconds_since_start
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from loguru import logger
from reference_model import EVENTS, DriverKnobs, Note, Options, ReferenceModel, ServiceModel

from statecore import InvalidTransition
from statecore.table import Binary

COMPARED_TIMERS = {"retry", "timeout", "outcome"}
"""Per-service jobs compared by id; expiry deadlines share one engine job, so they are compared through
``Engine.deadline`` instead."""

BINARY: st.SearchStrategy[Binary] = st.sampled_from(["volume", "backup"])
RESULTS: st.SearchStrategy[Result] = st.sampled_from(["ok", "fail", "config", "ok", "fail"])
"""Attempt results, weighted towards ok and fail so that lifecycles go on after a config error."""


@pytest.fixture(autouse=True)
def _quiet_engine_logs():
    logger.disable("statecore")
    yield
    logger.enable("statecore")


class EngineAgainstModel(RuleBasedStateMachine):
    rig: Rig
    model: ReferenceModel

    @initialize(
        count=st.sampled_from([0, 2, 3]),
        periodic=st.booleans(),
        cap=st.sampled_from([2, 4, 300]),
        volume_result=RESULTS,
        backup_result=RESULTS,
    )
    def start_both_services(self, count: int, periodic: bool, cap: int, volume_result: Result, backup_result: Result):
        self.rig = Rig.build(reinit_backoff_max=cap)
        self.rig.add("volume", ScriptedDriver(default=Attempt(volume_result)), {"reinit_driver_count": count})
        self.rig.add(
            "backup", ScriptedDriver(default=Attempt(backup_result)), {"backup_periodic_initialization": periodic}
        )
        options = Options(reinit_driver_count=count, reinit_backoff_max=cap, backup_periodic_initialization=periodic)
        self.model = ReferenceModel(
            {
                "volume": ServiceModel("volume", options, DriverKnobs(result=volume_result)),
                "backup": ServiceModel("backup", options, DriverKnobs(result=backup_result)),
            }
        )
        self.rig.engine.start()
        self.model.start()

    # -- time ---------------------------------------------------------------------------------

    @rule(seconds=st.integers(min_value=0, max_value=6))
    def advance(self, seconds: int):
        self.rig.engine.advance(seconds)
        self.model.advance(seconds)

    @rule()
    def advance_one_second(self):
        self.advance(1)

    @rule(seconds=st.integers(min_value=2, max_value=4))
    def advance_a_few_seconds(self, seconds: int):
        self.advance(seconds)

    @rule(seconds=st.integers(min_value=5, max_value=9))
    def advance_past_the_grace_window(self, seconds: int):
        self.advance(seconds)

    # -- what the drivers and the store do --------------------------------------------------------

    @rule(binary=BINARY, result=RESULTS)
    def next_attempts_end_with(self, binary: Binary, result: Result):
        self.rig.drivers[binary].default = Attempt(result)
        self.model.services[binary].driver.result = result

    @rule(binary=BINARY)
    def next_attempt_hangs(self, binary: Binary):
        self.rig.drivers[binary].script.append(Attempt(None, hang=True))
        self.model.services[binary].driver.one_off.append(None)

    @rule(binary=BINARY, seconds=st.integers(min_value=1, max_value=6))
    def next_attempt_is_slow(self, binary: Binary, seconds: int):
        self.rig.drivers[binary].script.append(Attempt(None, duration=seconds))
        self.model.services[binary].driver.one_off.append(seconds)

    @rule(binary=BINARY, working=st.booleans())
    def driver_is_working(self, binary: Binary, working: bool):
        self.rig.drivers[binary].working = working
        self.model.services[binary].driver.working = working

    @rule(binary=BINARY, recorded=st.booleans())
    def heartbeats_are_recorded(self, binary: Binary, recorded: bool):
        self.rig.block_heartbeats(binary, not recorded)
        self.model.services[binary].driver.heartbeats_blocked = not recorded

    @rule(binary=BINARY)
    def driver_fails_one_health_check(self, binary: Binary):
        """is_working() is false for one capabilities period (3 s volume, 2 s backup), then true again."""
        self.driver_is_working(binary, False)
        self.advance(3 if binary == "volume" else 2)
        self.driver_is_working(binary, True)

    @rule(binary=BINARY, seconds=st.integers(min_value=4, max_value=7))
    def heartbeat_outage(self, binary: Binary, seconds: int):
        self.heartbeats_are_recorded(binary, False)
        self.advance(seconds)
        self.heartbeats_are_recorded(binary, True)

    # -- what an admin or the embedding service sends ---------------------------------------------

    @rule(binary=BINARY)
    def admin_reset(self, binary: Binary):
        service = self.model.services[binary]
        if service.allows("reset"):
            record = self.rig.engine.reset(HOSTS[binary], binary=binary)
            service.reset(self.model.now)
            assert (record.from_state.value, record.to_state.value) == (service.notes[-1].from_state, "initializing")
        else:
            self._assert_refused(binary, "reset")

    @rule(binary=BINARY, data=st.data())
    def event_outside_the_table_is_refused(self, binary: Binary, data: st.DataObject):
        service = self.model.services[binary]
        event = data.draw(st.sampled_from([e for e in EVENTS if not service.allows(e)]), label="event")
        self._assert_refused(binary, event)

    def _assert_refused(self, binary: Binary, event: str):
        before = self.rig.snapshot(binary)
        with pytest.raises(InvalidTransition) as caught:
            self.rig.engine.fire(HOSTS[binary], event, binary=binary)
        assert (caught.value.state, caught.value.event) == (self.model.services[binary].state, event)
        assert self.rig.snapshot(binary) == before

    # -- the comparison -----------------------------------------------------------------------------

    @invariant()
    def engine_agrees_with_the_model(self):
        engine = self.rig.engine
        assert seconds_since_start(engine, engine.now()) == self.model.now
        for binary, service in self.model.services.items():
            assert _engine_view(self.rig, binary) == _model_view(service), f"{binary} at t={self.model.now}"


def _engine_view(rig: Rig, binary: Binary) -> dict[str, Any]:
    row = rig.row(binary)
    return {
        "state": row.lifecycle.value,
        "public": row.state,
        "attempt": row.attempts,
        "total_attempts": row.total_attempts,
        "next_retry_at": seconds_since_start(rig.engine, row.next_retry_at),
        "jobs": rig.job_ids(binary) & COMPARED_TIMERS,
        **_expiry(
            row.lifecycle.value, seconds_since_start(rig.engine, rig.engine.deadline(HOSTS[binary], binary=binary))
        ),
        "notifications": [_note(rig, envelope) for envelope in rig.envelopes(binary)],
    }


def _expiry(state: str, deadline: float | None) -> dict[str, Any]:
    """Whether heartbeat_expired is armed, and when; while up, heartbeats move the deadline and the
    engine may re-arm lazily (at the old instant, then later), so only being armed is compared."""
    return {"expiry_armed": deadline is not None, "expiry_at": None if state == "up" else deadline}


def _note(rig: Rig, envelope: Mapping[str, Any]) -> Note:
    payload = envelope["payload"]
    retry_at = payload["next_retry_at"]
    return Note(
        envelope["event_type"],
        payload["from_state"],
        payload["to_state"],
        payload["event"],
        payload["attempt"],
        payload["retries_left"],
        None if retry_at is None else seconds_since_start(rig.engine, datetime.fromisoformat(retry_at)),
    )


def _model_view(service: ServiceModel) -> dict[str, Any]:
    return {
        "state": service.state,
        "public": "up" if service.state == "up" else "down",
        "attempt": service.attempt,
        "total_attempts": service.total_attempts,
        "next_retry_at": service.next_retry_at,
        "jobs": service.jobs() & COMPARED_TIMERS,
        **_expiry(service.state, service.expiry_at),
        "notifications": service.notes,
    }


EngineAgainstModel.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineAgainstModel = EngineAgainstModel.TestCase


# -- fixed lifecycles: the same-instant and boundary cases, replayed through engine and model --------


def _replay(*steps: tuple[str, dict[str, Any]], **start: Any) -> EngineAgainstModel:
    """Run named rules of the state machine in order, comparing engine and model after each."""
    machine = EngineAgainstModel()
    options = {"count": 0, "periodic": False, "cap": 300, "volume_result": "ok", "backup_result": "ok"}
    machine.start_both_services(**{**options, **start})
    machine.engine_agrees_with_the_model()
    for name, arguments in steps:
        getattr(machine, name)(**arguments)
        machine.engine_agrees_with_the_model()
    return machine


def _timeline(machine: EngineAgainstModel, binary: Binary = "volume") -> list[tuple[float | None, str]]:
    rig = machine.rig
    return [
        (seconds_since_start(rig.engine, datetime.fromisoformat(e["timestamp"])), e["event_type"].split(".", 1)[1])
        for e in rig.envelopes(binary)
    ]


def test_heartbeat_recorded_at_the_expiry_instant_keeps_the_service_up():
    """Alive while now - last_ok <= service_down_time: a heartbeat at that very instant runs before the expiry."""
    machine = _replay(
        ("heartbeats_are_recorded", {"binary": "volume", "recorded": False}),
        ("advance", {"seconds": 4}),
        ("heartbeats_are_recorded", {"binary": "volume", "recorded": True}),
        ("advance", {"seconds": 1}),
    )
    assert [kind for _, kind in _timeline(machine)] == ["init.start", "init.success"]


def test_attempt_ending_exactly_at_init_timeout_counts_as_finished():
    machine = _replay(
        ("advance", {"seconds": 0}),
        ("next_attempts_end_with", {"binary": "volume", "result": "ok"}),
        ("next_attempt_is_slow", {"binary": "volume", "seconds": 3}),
        ("admin_reset", {"binary": "volume"}),
        ("advance", {"seconds": 3}),
        volume_result="config",
    )
    assert _timeline(machine)[-2:] == [(0, "init.reset"), (3, "init.success")]


def test_outcome_of_a_timed_out_attempt_is_ignored_when_it_arrives():
    machine = _replay(
        ("advance", {"seconds": 0}),
        ("next_attempts_end_with", {"binary": "volume", "result": "ok"}),
        ("next_attempt_is_slow", {"binary": "volume", "seconds": 4}),
        ("admin_reset", {"binary": "volume"}),
        ("advance", {"seconds": 3}),
        ("advance", {"seconds": 1}),
        volume_result="config",
    )
    assert _timeline(machine)[-4:] == [(0, "init.reset"), (3, "init.failure"), (4, "init.retry"), (4, "init.success")]
    assert machine.rig.envelopes("volume")[-3]["payload"]["error"]["type"] == "InitTimeout"


def test_expiry_due_while_an_attempt_is_in_flight_leaves_the_decision_to_the_attempt():
    """Grace closes at t=5 during attempt 3 (t=3..6); its success at t=6 takes the service up, never down."""
    machine = _replay(
        ("advance", {"seconds": 2}),
        ("next_attempts_end_with", {"binary": "volume", "result": "ok"}),
        ("next_attempt_is_slow", {"binary": "volume", "seconds": 3}),
        ("advance", {"seconds": 4}),
        volume_result="fail",
    )
    assert _timeline(machine)[-3:] == [(1, "init.failure"), (3, "init.retry"), (6, "init.success")]


def test_driver_that_sets_up_but_never_works_cycles_with_a_fresh_budget_each_time():
    """Spec-silent: driver_lost after up starts a fresh budget, so reinit_driver_count never ends the cycle."""
    machine = _replay(
        ("driver_is_working", {"binary": "volume", "working": False}), ("advance", {"seconds": 10}), count=2
    )
    losses = [at for at, kind in _timeline(machine) if kind == "driver.lost"]
    assert losses == [3, 6, 9]
    assert machine.rig.row("volume").lifecycle.value == "up"


def test_late_outcome_of_an_abandoned_attempt_is_ignored_during_the_next_attempt():
    """Attempt 2 (t=1) takes 6 s and times out at t=4; its failure lands at t=7 while the hung attempt 3 runs."""
    machine = _replay(
        ("next_attempt_is_slow", {"binary": "volume", "seconds": 6}),
        ("next_attempt_hangs", {"binary": "volume"}),
        ("advance", {"seconds": 8}),
        volume_result="fail",
    )
    assert machine.rig.row("volume").lifecycle.value == "initializing"
    assert _timeline(machine)[-3:] == [(4, "init.failure"), (5, "service.down"), (6, "init.retry")]
