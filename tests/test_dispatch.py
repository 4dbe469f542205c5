"""Single steps of ``dispatch.step``: the record and the effects it returns, with no timer, store,
driver or sink anywhere (the way sismic's tests assert one step of a statechart).

Each test builds a bare ``Service`` and the rulebook's machine, sends one event at a chosen
instant, and compares what came back with what the table says, as data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from statecore.dispatch import Moved, Refused, status_change, step
from statecore.drivers import default_classifier
from statecore.effects import ArmExpiry, ArmJob, CancelJob, DisarmExpiry, Launch, PollStats
from statecore.errors import ConfigError, InvalidTransition
from statecore.guards import PREDICATES
from statecore.machine import LifecycleMachine
from statecore.service import Service
from statecore.settings import Settings
from statecore.table import Binary, Event, State, rulebook
from statecore.timers import JobKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(
    service_down_time=60,
    report_interval=10,
    init_timeout=30,
    reinit_driver_count=2,
    backup_periodic_initialization=True,
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def service(binary: Binary = "volume") -> tuple[LifecycleMachine, Service]:
    host = "node1@lvm" if binary == "volume" else "node1"
    return LifecycleMachine(rulebook(binary), PREDICATES[binary]), Service(
        host, binary, "nova", SETTINGS, None, None, T0
    )


def moved(machine: LifecycleMachine, svc: Service, event: Event, seconds: float, **kwargs) -> Moved:
    outcome = step(machine, svc, event, at(seconds), default_classifier, **kwargs)
    assert isinstance(outcome, Moved), outcome
    return outcome


def test_start_begins_the_first_attempt_with_its_deadline_timeout_and_launch():
    machine, svc = service()
    outcome = moved(machine, svc, Event.START, 0)
    record = outcome.record
    assert (record.event, record.from_state, record.to_state) == (Event.START, State.STARTING, State.INITIALIZING)
    assert (record.event_type, record.priority, record.reason) == (
        "volume.init.start",
        "INFO",
        "driver loaded; first attempt",
    )
    assert (record.attempt, record.retries_left, record.next_retry_at) == (1, 2, None)
    assert outcome.effects == [
        ArmExpiry(svc.id, at(60)),  # restart_grace: the grace window counts from now
        ArmJob(JobKind.TIMEOUT, svc.id, at(30), 1),  # begin_attempt, on entering initializing
        Launch(svc.id, 1),
    ]
    assert svc.state is State.INITIALIZING and svc.attempt_token == 1


def test_a_recoverable_failure_inside_grace_arms_the_backoff_retry():
    machine, svc = service()
    moved(machine, svc, Event.START, 0)
    outcome = moved(machine, svc, Event.INIT_FAILED, 10, error=ConnectionError("array unreachable"))
    assert outcome.record.to_state is State.FAILED_RECOVERABLE
    assert outcome.record.reason == "recoverable, retry allowed, grace open: ConnectionError: array unreachable"
    assert outcome.record.error is not None and outcome.record.error.type == "ConnectionError"
    assert outcome.effects == [ArmJob(JobKind.RETRY, svc.id, at(11), 1)]
    assert outcome.record.next_retry_at == at(11)


@pytest.mark.parametrize("binary", ["volume", "backup"])
def test_a_failure_at_exactly_the_deadline_is_still_inside_grace(binary):
    """BEHAVIOR.md section 5: alive (and so in grace) while now - last_ok <= service_down_time."""
    machine, svc = service(binary)
    moved(machine, svc, Event.START, 0)
    at_deadline = moved(machine, svc, Event.INIT_FAILED, 60, error=ConnectionError("x"))
    assert at_deadline.record.to_state is State.FAILED_RECOVERABLE
    assert "grace open" in at_deadline.record.reason


@pytest.mark.parametrize("binary", ["volume", "backup"])
def test_a_failure_just_past_the_deadline_goes_down_with_its_retry(binary):
    machine, svc = service(binary)
    moved(machine, svc, Event.START, 0)
    past = moved(machine, svc, Event.INIT_FAILED, 60.001, error=ConnectionError("x"))
    assert past.record.to_state is State.DOWN
    assert "grace expired" in past.record.reason
    assert [type(e) for e in past.effects] == [ArmJob] and past.effects[0].kind is JobKind.RETRY


def test_an_unrecoverable_error_fails_for_good_and_disarms_everything():
    machine, svc = service()
    moved(machine, svc, Event.START, 0)
    outcome = moved(machine, svc, Event.INIT_FAILED, 5, error=ConfigError("bad option"))
    assert outcome.record.to_state is State.FAILED_PERMANENT
    assert outcome.effects == [DisarmExpiry(svc.id), CancelJob(JobKind.TIMEOUT, svc.id)]


def test_success_marks_the_service_live_and_a_volume_asks_for_its_stats():
    machine, svc = service()
    moved(machine, svc, Event.START, 0)
    outcome = moved(machine, svc, Event.INIT_SUCCEEDED, 2)
    assert outcome.record.to_state is State.UP
    assert outcome.effects == [ArmExpiry(svc.id, at(62)), PollStats(svc.id, at(2))]
    assert (svc.initialized, svc.last_ok) == (True, at(2))


def test_a_backup_coming_up_polls_no_stats():
    machine, svc = service("backup")
    moved(machine, svc, Event.START, 0)
    assert moved(machine, svc, Event.INIT_SUCCEEDED, 2).effects == [ArmExpiry(svc.id, at(62))]


def test_a_retry_cancels_nothing_twice_and_starts_the_next_attempt():
    machine, svc = service()
    moved(machine, svc, Event.START, 0)
    moved(machine, svc, Event.INIT_FAILED, 1, error=ConnectionError("x"))
    outcome = moved(machine, svc, Event.RETRY, 2)
    assert outcome.record.reason == "backoff retry 1 after 1 s"
    assert outcome.effects == [
        CancelJob(JobKind.RETRY, svc.id),
        ArmJob(JobKind.TIMEOUT, svc.id, at(32), 2),
        Launch(svc.id, 2),
    ]
    assert (svc.attempt, svc.retry_token, svc.next_retry_at) == (2, 2, None)


def test_an_event_not_allowed_is_refused_and_changes_nothing():
    machine, svc = service()
    before = svc.snapshot()
    outcome = step(machine, svc, Event.RESET, at(0), default_classifier)
    assert isinstance(outcome, Refused)
    assert outcome.why == "allowed: start"
    assert svc.snapshot() == before
    error = outcome.error()
    assert isinstance(error, InvalidTransition) and (error.state, error.event) == ("starting", "reset")


def test_an_error_with_an_event_not_allowed_is_refused_before_it_is_classified():
    machine, svc = service()
    seen: list[BaseException] = []

    def classify(error: BaseException) -> bool:
        seen.append(error)
        return False

    outcome = step(machine, svc, Event.INIT_FAILED, at(0), classify, error=ConnectionError("x"))
    assert isinstance(outcome, Refused) and seen == []


def test_a_guard_that_does_not_hold_names_the_guard():
    machine, svc = service()
    moved(machine, svc, Event.START, 0)
    moved(machine, svc, Event.INIT_FAILED, 61, error=ConnectionError("x"))  # down, never initialized
    outcome = step(machine, svc, Event.HEARTBEAT, at(62), default_classifier)
    assert isinstance(outcome, Refused) and outcome.why == "no guard holds: driver initialized"
    assert svc.state is State.DOWN


def test_heartbeat_expired_takes_an_up_service_down_and_says_since_when():
    machine, svc = service()
    moved(machine, svc, Event.START, 0)
    moved(machine, svc, Event.INIT_SUCCEEDED, 0)
    outcome = moved(machine, svc, Event.HEARTBEAT_EXPIRED, 60)
    assert (outcome.record.to_state, outcome.record.event_type) == (State.DOWN, "volume.service.down")
    assert outcome.record.reason == "no heartbeat since 2026-01-01T00:00:00.000000Z (60 s)"
    assert outcome.effects == []


def test_the_snapshot_taken_before_the_step_restores_the_service():
    """What the ledger does when the store refuses: the service is exactly as it was."""
    machine, svc = service()
    moved(machine, svc, Event.START, 0)
    before = svc.snapshot()
    outcome = moved(machine, svc, Event.INIT_FAILED, 1, error=ConnectionError("x"))
    assert outcome.before == before
    svc.restore(outcome.before)
    assert svc.snapshot() == before and svc.state is State.INITIALIZING and svc.fsm_state == "initializing"


def test_disable_is_audited_like_a_transition_without_moving():
    _, svc = service()
    outcome = status_change(svc, True, "maintenance", at(3))
    record = outcome.record
    assert (record.from_state, record.to_state, record.reason) == (State.STARTING, State.STARTING, "maintenance")
    assert record.event_type == "volume.service.disable" and outcome.effects == []
    assert (svc.disabled, svc.disabled_reason) == (True, "maintenance")
    svc.restore(outcome.before)
    assert (svc.disabled, svc.disabled_reason) == (False, None)
