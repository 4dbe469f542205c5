"""The table's actions (``Action`` in table.py): what a row does to the service's counters.

Each is a function of the service record and the instant. It changes the
record's counters now, so the notification and the stored row carry the new
values, and returns the effects (effects.py) that must wait for the commit:
timers to arm or cancel, an attempt to launch. It calls nothing else: no
scheduler, no store, no driver. If the commit fails, the dispatcher's snapshot
puts the counters back and the effects are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from statecore.backoff import backoff_delay, base_delay, retry_rng
from statecore.effects import ArmExpiry, ArmJob, CancelJob, DisarmExpiry, Effect, Launch, PollStats
from statecore.service import Service
from statecore.table import Action
from statecore.timers import JobKind

ActionFunction = Callable[[Service, datetime], tuple[Effect, ...]]
NONE: tuple[Effect, ...] = ()
_new = tuple.__new__
"""Builds a named tuple without the Python-level ``__new__`` that ``ArmExpiry(...)`` runs: half the
cost. Every effect of a transition is built this way; the order of the values is the fields'."""


def begin_attempt(service: Service, now: datetime) -> tuple[Effect, ...]:
    """A new attempt: its number, a token that outdates any earlier attempt's outcome, its limit."""
    cancelled = _cancel_retry(service)
    service.attempt += 1
    service.total_attempts += 1
    service.attempt_token += 1
    token, sid = service.attempt_token, service.id
    limit = service.settings.init_windows[service.binary]
    return (*cancelled, _new(ArmJob, (_TIMEOUT, sid, now + limit, token)), _new(Launch, (sid, token)))


def arm_retry(service: Service, now: datetime) -> tuple[Effect, ...]:
    """The next retry: a volume backs off (seeded jitter), a backup waits its periodic interval."""
    settings = service.settings
    if service.binary == "backup":
        delay = settings.periodic_interval
    elif settings.reinit_backoff_jitter == "none":  # no draw, so no generator to build
        delay = base_delay(service.attempt, settings.reinit_backoff_max)
    else:
        rng = retry_rng(settings.reinit_backoff_seed, service.id, service.attempt)
        delay = backoff_delay(
            service.attempt, settings.reinit_backoff_max, settings.reinit_backoff_jitter, rng, service.last_delay
        )
    service.last_delay = delay
    service.next_retry_at = when = now + timedelta(seconds=delay)
    service.retry_token += 1
    return (_new(ArmJob, (_RETRY, service.id, when, service.retry_token)),)


def mark_live(service: Service, now: datetime) -> tuple[Effect, ...]:
    """Up: the driver works, liveness counts from now, and a volume's stats are asked for at once."""
    cancelled = _cancel_retry(service)
    service.initialized = True
    service.last_ok = service.updated_at = now
    service.last_error = None
    expiry = _new(ArmExpiry, (service.id, now + service.settings.down_window))  # its deadline(), a call fewer
    if service.binary == "volume":
        return (*cancelled, expiry, _new(PollStats, (service.id, now)))
    return (*cancelled, expiry)


def disarm(service: Service, now: datetime) -> tuple[Effect, ...]:
    """Failed for good: no retry, no expiry, no attempt timeout may fire any more."""
    return (*_cancel_retry(service), DisarmExpiry(service.id), CancelJob(JobKind.TIMEOUT, service.id))


def fresh_budget(service: Service, now: datetime) -> tuple[Effect, ...]:
    service.attempt = 0
    service.last_delay = None
    return NONE


def count_failed_attempt(service: Service, now: datetime) -> tuple[Effect, ...]:
    """A lost driver counts as a first failed attempt of a new budget."""
    service.attempt = 1
    service.last_delay = None
    return NONE


def restart_grace(service: Service, now: datetime) -> tuple[Effect, ...]:
    """The grace window (and the liveness deadline) count from now."""
    service.last_ok = now
    return (_new(ArmExpiry, (service.id, service.deadline())),)


def forget_driver(service: Service, now: datetime) -> tuple[Effect, ...]:
    service.initialized = False
    service.backend_state = None
    return NONE


def _cancel_retry(service: Service) -> tuple[Effect, ...]:
    if service.next_retry_at is None:
        return NONE
    service.retry_token += 1
    service.next_retry_at = None
    return (_new(CancelJob, (_RETRY, service.id)),)


_RETRY, _TIMEOUT = JobKind.RETRY, JobKind.TIMEOUT
"""Read once: on Python 3.11 reading an Enum member off its class costs more than building the effect."""

ACTIONS: dict[Action, ActionFunction] = {
    Action.BEGIN_ATTEMPT: begin_attempt,
    Action.ARM_RETRY: arm_retry,
    Action.MARK_LIVE: mark_live,
    Action.DISARM: disarm,
    Action.FRESH_BUDGET: fresh_budget,
    Action.COUNT_FAILED_ATTEMPT: count_failed_attempt,
    Action.RESTART_GRACE: restart_grace,
    Action.FORGET_DRIVER: forget_driver,
}
