"""The lifecycle, as data: states, events, guards, actions and the transition table.

Everything else is derived from this module: the ``transitions`` machine
(``machine.py``), the diagrams and docs (``render/``), and the table-driven
tests. A change of lifecycle is a change of this file and nothing else, which
is what lets a reviewer trust the generated picture.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

Binary = Literal["volume", "backup"]
BINARIES: tuple[Binary, ...] = ("volume", "backup")
CINDER_BINARY: dict[Binary, str] = {binary: f"cinder-{binary}" for binary in BINARIES}
"""Cinder's name of each binary (``cinder-volume``), as its service list and API show it."""
BINARY_OF: dict[str, Binary] = {name: binary for binary, name in CINDER_BINARY.items()}


class State(StrEnum):
    STARTING = "starting"
    INITIALIZING = "initializing"
    FAILED_RECOVERABLE = "failed_recoverable"
    FAILED_PERMANENT = "failed_permanent"
    UP = "up"
    DOWN = "down"


class Event(StrEnum):
    START = "start"
    INIT_SUCCEEDED = "init_succeeded"
    INIT_FAILED = "init_failed"
    RETRY = "retry"
    HEARTBEAT = "heartbeat"
    HEARTBEAT_EXPIRED = "heartbeat_expired"
    DRIVER_LOST = "driver_lost"
    RESET = "reset"
    RESTART = "restart"


class AdminAction(StrEnum):
    """What an admin does to a service outside its lifecycle; audited and notified, never a transition."""

    DISABLE = "disable"
    ENABLE = "enable"


class Guard(StrEnum):
    """Named conditions; their predicates live in ``guards.py``, per binary."""

    DRIVER_USABLE = "driver_usable"
    DRIVER_UNUSABLE = "driver_unusable"
    UNRECOVERABLE = "unrecoverable"
    NO_RETRY = "no_retry"
    RETRY_GRACE_OPEN = "retry_grace_open"
    RETRY_GRACE_EXPIRED = "retry_grace_expired"
    FRESH_RETRY = "fresh_retry"
    NO_FRESH_RETRY = "no_fresh_retry"
    DRIVER_INITIALIZED = "driver_initialized"


class Action(StrEnum):
    """Side effects the engine performs; named here so diagrams and docs can show them."""

    BEGIN_ATTEMPT = "begin_attempt"
    ARM_RETRY = "arm_retry"
    MARK_LIVE = "mark_live"
    DISARM = "disarm"
    FRESH_BUDGET = "fresh_budget"
    COUNT_FAILED_ATTEMPT = "count_failed_attempt"
    RESTART_GRACE = "restart_grace"
    FORGET_DRIVER = "forget_driver"


Priority = Literal["INFO", "WARN", "ERROR"]
Origin = Literal["service", "admin", "attempt", "timer", "report_job", "capabilities_job"]
Kind = Literal["initial", "working", "healthy", "failed", "down"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StateSpec(_Frozen):
    name: State
    public: Literal["up", "down"]
    kind: Kind
    meaning: str
    on_enter: tuple[Action, ...] = ()


class EventSpec(_Frozen):
    name: Event
    origin: Origin
    timed: bool
    meaning: str


class AdminActionSpec(_Frozen):
    name: AdminAction
    notification: str
    priority: Priority
    meaning: str

    def event_type(self, binary: Binary) -> str:
        return f"{binary}.{self.notification}"


class GuardSpec(_Frozen):
    name: Guard
    label: str
    volume: str
    backup: str


class Rule(_Frozen):
    """One row of the transition table. Rows of one (source, event) are tried in order."""

    source: State
    event: Event
    guard: Guard | None
    dest: State
    notification: str
    priority: Priority
    effects: tuple[Action, ...] = ()

    def event_type(self, binary: Binary) -> str:
        return f"{binary}.{self.notification}"


S, E, G, A = State, Event, Guard, Action

STATES: tuple[StateSpec, ...] = (
    StateSpec(name=S.STARTING, public="down", kind="initial", meaning="created, not started"),
    StateSpec(
        name=S.INITIALIZING,
        public="down",
        kind="working",
        meaning="an attempt is in flight, bounded by init_timeout",
        on_enter=(A.BEGIN_ATTEMPT,),
    ),
    StateSpec(
        name=S.FAILED_RECOVERABLE,
        public="down",
        kind="failed",
        meaning="last attempt failed recoverably; a retry is scheduled; inside the grace window",
        on_enter=(A.ARM_RETRY,),
    ),
    StateSpec(
        name=S.FAILED_PERMANENT,
        public="down",
        kind="failed",
        meaning="unrecoverable, or no retry allowed; nothing scheduled; only reset leaves it",
        on_enter=(A.DISARM,),
    ),
    StateSpec(
        name=S.UP,
        public="up",
        kind="healthy",
        meaning="driver initialized, heartbeat fresh",
        on_enter=(A.MARK_LIVE,),
    ),
    StateSpec(
        name=S.DOWN,
        public="down",
        kind="down",
        meaning="not up for longer than service_down_time; pending retries still run",
    ),
)

EVENTS: tuple[EventSpec, ...] = (
    EventSpec(name=E.START, origin="service", timed=False, meaning="engine start or service registration"),
    EventSpec(name=E.INIT_SUCCEEDED, origin="attempt", timed=False, meaning="an attempt succeeded"),
    EventSpec(
        name=E.INIT_FAILED,
        origin="attempt",
        timed=False,
        meaning="an attempt failed, or outlived init_timeout (InitTimeout)",
    ),
    EventSpec(name=E.RETRY, origin="timer", timed=True, meaning="backoff (volume) or periodic (backup) job"),
    EventSpec(
        name=E.HEARTBEAT,
        origin="report_job",
        timed=False,
        meaning="report job, every report_interval, is_working() and heartbeat recorded",
    ),
    EventSpec(
        name=E.HEARTBEAT_EXPIRED,
        origin="timer",
        timed=True,
        meaning="job at last_ok + service_down_time",
    ),
    EventSpec(
        name=E.DRIVER_LOST,
        origin="capabilities_job",
        timed=False,
        meaning="capabilities job finds is_working() false while up",
    ),
    EventSpec(name=E.RESET, origin="admin", timed=False, meaning="an admin asks for a fresh start"),
    EventSpec(
        name=E.RESTART,
        origin="service",
        timed=False,
        meaning="the engine restarted on a stored state whose driver a dead process had set up: set it up again",
    ),
)

ADMIN_ACTIONS: tuple[AdminActionSpec, ...] = (
    AdminActionSpec(
        name=AdminAction.DISABLE,
        notification="service.disable",
        priority="INFO",
        meaning="an admin keeps the service from new work; its lifecycle goes on",
    ),
    AdminActionSpec(
        name=AdminAction.ENABLE,
        notification="service.enable",
        priority="INFO",
        meaning="an admin lets the service take new work again",
    ),
)

GUARDS: tuple[GuardSpec, ...] = (
    GuardSpec(
        name=G.DRIVER_USABLE,
        label="driver loadable and supported",
        volume="the driver imports, builds and is supported (or enable_unsupported_driver)",
        backup="the driver imports, builds and is supported (or enable_unsupported_driver)",
    ),
    GuardSpec(
        name=G.DRIVER_UNUSABLE,
        label="driver not loadable / not supported / config invalid",
        volume="import fails, construction raises, or supported is false",
        backup="import fails, construction raises, or supported is false",
    ),
    GuardSpec(
        name=G.UNRECOVERABLE,
        label="unrecoverable",
        volume="the classifier calls the error unrecoverable",
        backup="the classifier calls the error unrecoverable",
    ),
    GuardSpec(
        name=G.NO_RETRY,
        label="recoverable, no retry allowed",
        volume="attempts >= 1 + reinit_driver_count (and reinit_driver_count > 0)",
        backup="backup_periodic_initialization is false",
    ),
    GuardSpec(
        name=G.RETRY_GRACE_OPEN,
        label="recoverable, retry allowed, grace open",
        volume="retry allowed and now < last_ok + service_down_time",
        backup="retry allowed and now < last_ok + service_down_time",
    ),
    GuardSpec(
        name=G.RETRY_GRACE_EXPIRED,
        label="recoverable, retry allowed, grace expired",
        volume="retry allowed and now >= last_ok + service_down_time",
        backup="retry allowed and now >= last_ok + service_down_time",
    ),
    GuardSpec(
        name=G.FRESH_RETRY,
        label="retry allowed",
        volume="a fresh budget allows retry 1 (always: reinit_driver_count is 0 or >= 1)",
        backup="backup_periodic_initialization is true",
    ),
    GuardSpec(
        name=G.NO_FRESH_RETRY,
        label="no retry allowed",
        volume="never (a fresh budget always allows retry 1)",
        backup="backup_periodic_initialization is false",
    ),
    GuardSpec(
        name=G.DRIVER_INITIALIZED,
        label="driver initialized",
        volume="the driver has been set up and not lost since",
        backup="the driver has been set up and not lost since",
    ),
)

RULES: tuple[Rule, ...] = (
    Rule(
        source=S.STARTING,
        event=E.START,
        guard=G.DRIVER_USABLE,
        dest=S.INITIALIZING,
        notification="init.start",
        priority="INFO",
        effects=(A.RESTART_GRACE,),
    ),
    Rule(
        source=S.STARTING,
        event=E.START,
        guard=G.DRIVER_UNUSABLE,
        dest=S.FAILED_PERMANENT,
        notification="init.failure",
        priority="ERROR",
    ),
    Rule(
        source=S.INITIALIZING,
        event=E.INIT_SUCCEEDED,
        guard=None,
        dest=S.UP,
        notification="init.success",
        priority="INFO",
    ),
    Rule(
        source=S.INITIALIZING,
        event=E.INIT_FAILED,
        guard=G.UNRECOVERABLE,
        dest=S.FAILED_PERMANENT,
        notification="init.failure",
        priority="ERROR",
    ),
    Rule(
        source=S.INITIALIZING,
        event=E.INIT_FAILED,
        guard=G.NO_RETRY,
        dest=S.FAILED_PERMANENT,
        notification="init.failure",
        priority="ERROR",
    ),
    Rule(
        source=S.INITIALIZING,
        event=E.INIT_FAILED,
        guard=G.RETRY_GRACE_OPEN,
        dest=S.FAILED_RECOVERABLE,
        notification="init.failure",
        priority="ERROR",
    ),
    Rule(
        source=S.INITIALIZING,
        event=E.INIT_FAILED,
        guard=G.RETRY_GRACE_EXPIRED,
        dest=S.DOWN,
        notification="init.failure",
        priority="ERROR",
        effects=(A.ARM_RETRY,),
    ),
    Rule(
        source=S.FAILED_RECOVERABLE,
        event=E.RETRY,
        guard=None,
        dest=S.INITIALIZING,
        notification="init.retry",
        priority="INFO",
    ),
    Rule(
        source=S.FAILED_RECOVERABLE,
        event=E.HEARTBEAT_EXPIRED,
        guard=None,
        dest=S.DOWN,
        notification="service.down",
        priority="WARN",
    ),
    Rule(source=S.UP, event=E.HEARTBEAT_EXPIRED, guard=None, dest=S.DOWN, notification="service.down", priority="WARN"),
    Rule(
        source=S.UP,
        event=E.DRIVER_LOST,
        guard=G.FRESH_RETRY,
        dest=S.FAILED_RECOVERABLE,
        notification="driver.lost",
        priority="ERROR",
        effects=(A.FORGET_DRIVER, A.COUNT_FAILED_ATTEMPT, A.RESTART_GRACE),
    ),
    Rule(
        source=S.UP,
        event=E.DRIVER_LOST,
        guard=G.NO_FRESH_RETRY,
        dest=S.FAILED_PERMANENT,
        notification="driver.lost",
        priority="ERROR",
        effects=(A.FORGET_DRIVER,),
    ),
    Rule(
        source=S.DOWN,
        event=E.HEARTBEAT,
        guard=G.DRIVER_INITIALIZED,
        dest=S.UP,
        notification="service.up",
        priority="INFO",
    ),
    Rule(source=S.DOWN, event=E.RETRY, guard=None, dest=S.INITIALIZING, notification="init.retry", priority="INFO"),
    *(
        Rule(
            source=source,
            event=E.RESET,
            guard=None,
            dest=S.INITIALIZING,
            notification="init.reset",
            priority="INFO",
            effects=(A.FORGET_DRIVER, A.FRESH_BUDGET, A.RESTART_GRACE),
        )
        for source in (S.FAILED_PERMANENT, S.FAILED_RECOVERABLE, S.DOWN)
    ),
    Rule(
        source=S.UP,
        event=E.RESTART,
        guard=None,
        dest=S.INITIALIZING,
        notification="init.restart",
        priority="INFO",
        effects=(A.FORGET_DRIVER, A.FRESH_BUDGET),
    ),
    Rule(
        source=S.DOWN,
        event=E.RESTART,
        guard=G.DRIVER_INITIALIZED,
        dest=S.INITIALIZING,
        notification="init.restart",
        priority="INFO",
        effects=(A.FORGET_DRIVER, A.FRESH_BUDGET),
    ),
)


class Rulebook(_Frozen):
    """The frozen lifecycle of one binary, shared by every service of that binary."""

    binary: Binary
    states: tuple[StateSpec, ...]
    events: tuple[EventSpec, ...]
    guards: tuple[GuardSpec, ...]
    rules: tuple[Rule, ...]

    def rules_for(self, state: State, event: Event) -> tuple[Rule, ...]:
        return _index(self).get((state, event), ())

    def allowed_events(self, state: State) -> tuple[Event, ...]:
        return tuple(e for e in Event if (state, e) in _index(self))

    def state(self, name: State) -> StateSpec:
        return next(s for s in self.states if s.name == name)

    def event(self, name: Event) -> EventSpec:
        return next(e for e in self.events if e.name == name)

    def guard(self, name: Guard) -> GuardSpec:
        return next(g for g in self.guards if g.name == name)

    def __hash__(self) -> int:
        return hash(self.binary)


@cache
def _index(book: Rulebook) -> dict[tuple[State, Event], tuple[Rule, ...]]:
    index: dict[tuple[State, Event], list[Rule]] = {}
    for rule in book.rules:
        index.setdefault((rule.source, rule.event), []).append(rule)
    return {key: tuple(rules) for key, rules in index.items()}


def admin_action(name: AdminAction) -> AdminActionSpec:
    return next(spec for spec in ADMIN_ACTIONS if spec.name == name)


@cache
def rulebook(binary: Binary) -> Rulebook:
    """The one rulebook per binary; both binaries share rows and differ only in guard meaning."""
    return Rulebook(binary=binary, states=STATES, events=EVENTS, guards=GUARDS, rules=RULES)
