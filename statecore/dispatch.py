"""One step of a service's lifecycle: an event in, a transition record and its effects out.

``step`` runs the rulebook's machine on the service record and returns what
happened as data: a ``Moved`` (the ``TransitionRecord``, the effects to run
once it is committed, and the counters as they were, to put back if the commit
fails) or a ``Refused`` (why nothing happened). It does no I/O, takes no lock
and calls no driver, store or sink: the engine holds its lock around it, the
ledger (ledger.py) commits and publishes the record, and ``Jobs.run``
(jobs.py) carries out the effects. The engine's hot path: what it still costs
is measured in docs/performance.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from transitions import MachineError

from statecore.actions import ACTIONS
from statecore.drivers import Classifier
from statecore.effects import Effects
from statecore.errors import InvalidTransition
from statecore.guards import Context, retries_left
from statecore.machine import LifecycleMachine, Step
from statecore.records import ErrorInfo, TransitionRecord, iso
from statecore.service import Service
from statecore.table import AdminAction, Event, admin_action

_REASONS = {
    Event.START: "driver loaded; first attempt",
    Event.INIT_SUCCEEDED: "driver initialized",
    Event.HEARTBEAT: "heartbeat recorded again",
    Event.DRIVER_LOST: "is_working() returned false",
    Event.RESET: "reset by admin",
    Event.RESTART: "engine restarted: the driver is set up again in this process",
}
EVENTS: dict[str, Event] = {e.value: e for e in Event}
"""Event by name (an Event is its own name): a dict hit is faster than ``Event(name)`` on every fire."""
_new = tuple.__new__
"""``Moved(...)``, ``Context(...)`` and ``TransitionRecord(...)`` without their Python-level ``__new__``:
each is built on every event, and that call costs as much as the tuple itself."""
_SECONDS: dict[float, str] = {}
"""``service_down_time`` as the expiry's reason writes it, per value: ``:g`` costs a sixth of the sentence."""
_RETRY, _EXPIRED = Event.RETRY, Event.HEARTBEAT_EXPIRED
"""Read once: on Python 3.11 reading an Enum member off its class costs more than the comparison."""


class Moved(NamedTuple):
    record: TransitionRecord
    effects: Effects
    before: tuple[Any, ...]
    """``Service.snapshot()`` from before the step: the ledger restores it if the store refuses."""


class Refused(NamedTuple):
    """The event did nothing: not allowed in the state, or no guard of its rows held."""

    service: Service
    event: Event
    why: str

    def error(self) -> InvalidTransition:
        service = self.service
        return InvalidTransition(service.host, service.binary, service.state.value, self.event.value, self.why)


def event_named(service: Service, event: Event | str) -> Event:
    """The event a caller names, as a member or by name; an unknown name is refused for ``service``."""
    named = EVENTS.get(event) if isinstance(event, str) else None
    if named is not None:
        return named
    try:
        return Event(event)
    except ValueError:
        names = ", ".join(e.value for e in Event)
        raise InvalidTransition(
            service.host, service.binary, service.state.value, str(event), f"unknown event; events are: {names}"
        ) from None


def step(
    machine: LifecycleMachine,
    service: Service,
    event: Event,
    now: datetime,
    classify: Classifier,
    error: BaseException | None = None,
    reason: str | None = None,
) -> Moved | Refused:
    """Apply ``event`` to ``service`` at ``now``; ``error`` (with ``init_failed`` or ``start``) is
    classified by ``classify`` and decides the guards, unless the event is not allowed at all."""
    source, fatal = service.state, False
    if error is not None:  # an event not allowed here is refused before the classifier sees its error
        if event not in machine.allowed[source]:
            return Refused(service, event, machine.refusal(source, event))
        fatal = classify(error)
    ctx = _new(Context, (service.settings, service.attempt, service.last_ok, now, service.initialized, error, fatal))
    before = service.snapshot()
    try:
        fired = machine.fire(service, event, ctx)
    except MachineError:  # no row starts from this state: checked by the machine, not twice
        return Refused(service, event, machine.refusal(source, event))
    if fired is None:
        return Refused(service, event, machine.refusal(source, event))
    reason = reason or _reason(service, fired, error)
    info = None
    if error is not None:
        info = service.last_error = ErrorInfo.of(error)
    effects: Effects = []
    actions = ACTIONS
    for action in fired.actions:
        effects += actions[action](service, now)
    record = _new(TransitionRecord, (
        service.host, service.binary, service.zone, event, source, fired.dest, now, reason, info,
        service.attempt, retries_left(service.binary, service.settings, service.attempt), service.next_retry_at,
        fired.event_type, fired.priority,
    ))  # fmt: skip
    return _new(Moved, (record, effects, before))


def status_change(service: Service, disabled: bool, reason: str | None, now: datetime) -> Moved:
    """Disable or enable: no transition, but audited like one (a history row and a notification)."""
    action = admin_action(AdminAction.DISABLE if disabled else AdminAction.ENABLE)
    before = service.snapshot()
    service.disabled, service.disabled_reason = disabled, reason
    record = TransitionRecord(
        service.host, service.binary, service.zone, action.name, service.state, service.state, now,
        reason or action.meaning, None, service.attempt, service.retries_left(), service.next_retry_at,
        action.event_type(service.binary), action.priority,
    )  # fmt: skip
    return Moved(record, [], before)


def _reason(service: Service, fired: Step, error: BaseException | None) -> str:
    """A sentence for operators, computed before the row's actions change the counters."""
    event = fired.rule.event
    if error is not None:
        return f"{fired.guard_label or 'attempt failed'}: {ErrorInfo.of(error)}"
    if event is _RETRY:
        wait = f"{service.last_delay:g} s" if service.last_delay is not None else "its wait"
        kind = "backoff retry" if service.binary == "volume" else "periodic re-init"
        return f"{kind} {service.attempt} after {wait}"
    if event is _EXPIRED:
        window = service.settings.service_down_time
        seconds = _SECONDS.get(window) or _SECONDS.setdefault(window, f"{window:g} s")
        return f"no heartbeat since {iso(service.last_ok)} ({seconds})"
    return _REASONS.get(event) or fired.guard_label or event.value
