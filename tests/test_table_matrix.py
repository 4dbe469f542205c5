"""Every (state, event) pair of both binaries, generated from ``statecore.table``.

A pair in the table is driven on the real engine in virtual time, once per
guarded row, and must land in the row's destination with the row's
notification. A pair not in the table must raise ``InvalidTransition`` naming
the service, the state and the event, and change nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from helpers_matrix import HOSTS, Attempt, BackendUnreachable, Rig, ScriptedDriver
from loguru import logger

from statecore import ConfigError, InvalidTransition, StatecoreError
from statecore.table import BINARIES, Binary, Event, Guard, Rule, State, rulebook

S, E, G = State, Event, Guard


@pytest.fixture(autouse=True)
def _quiet_engine_logs():
    logger.disable("statecore")
    yield
    logger.enable("statecore")


# -- putting a service into each state, by driving the engine ------------------------------------


def _rig(binary: Binary, driver: ScriptedDriver, options: dict[str, Any] | None = None, **settings: Any) -> Rig:
    rig = Rig.build(**settings)
    rig.add(binary, driver, options)
    return rig


def _started(rig: Rig, *advance: float) -> Rig:
    rig.engine.start()
    for seconds in advance:
        rig.engine.advance(seconds)
    return rig


def _retrying(binary: Binary) -> dict[str, Any]:
    return {"backup_periodic_initialization": True} if binary == "backup" else {}


def starting(binary: Binary) -> Rig:
    return _rig(binary, ScriptedDriver.of())


def initializing(binary: Binary) -> Rig:
    """Attempt 1 takes 2 s of the 3 s init_timeout: still in flight right after start."""
    return _started(_rig(binary, ScriptedDriver.of(Attempt("ok", duration=2))))


def failed_recoverable(binary: Binary) -> Rig:
    return _started(_rig(binary, ScriptedDriver.of("fail", then="fail"), _retrying(binary)), 0)


def failed_permanent(binary: Binary) -> Rig:
    return _started(_rig(binary, ScriptedDriver.of("config")), 0)


def up(binary: Binary) -> Rig:
    return _started(_rig(binary, ScriptedDriver.of()), 0)


def up_without_periodic_init(binary: Binary) -> Rig:
    return _started(_rig(binary, ScriptedDriver.of(), {"backup_periodic_initialization": False}), 0)


def down_after_heartbeat_loss(binary: Binary) -> Rig:
    """Up at t=0, then no heartbeat is recorded: heartbeat_expired at t=5; the driver stays initialized."""
    rig = _started(_rig(binary, ScriptedDriver.of()), 0)
    rig.block_heartbeats(binary)
    rig.engine.advance(5)
    return rig


def down_while_retrying(binary: Binary) -> Rig:
    """Every attempt fails; the grace window closes at t=5 with a retry still pending."""
    return _started(_rig(binary, ScriptedDriver.of(then="fail"), _retrying(binary)), 0, 5)


STATE_SETUPS: dict[State, Callable[[Binary], Rig]] = {
    S.STARTING: starting,
    S.INITIALIZING: initializing,
    S.FAILED_RECOVERABLE: failed_recoverable,
    S.FAILED_PERMANENT: failed_permanent,
    S.UP: up,
    S.DOWN: down_while_retrying,
}

# -- the setup and the trigger of each row ------------------------------------------------------

Trigger = Callable[[Rig, Binary, Event], None]


def fire(rig: Rig, binary: Binary, event: Event) -> None:
    record = rig.engine.fire(HOSTS[binary], event, binary=binary)
    assert record.event is event


def fire_with(error: BaseException, *, after: float = 0) -> Trigger:
    """The embedding service reports an attempt's failure itself (``fire(..., error=...)``)."""

    def run(rig: Rig, binary: Binary, event: Event) -> None:
        rig.engine.advance(after)
        assert rig.row(binary).lifecycle is S.INITIALIZING
        record = rig.engine.fire(HOSTS[binary], event, binary=binary, error=error)
        assert record.event is event

    return run


def start_engine(rig: Rig, binary: Binary, event: Event) -> None:
    rig.engine.start()


def advance(seconds: float) -> Trigger:
    """The attempt in flight delivers its outcome: init_succeeded/init_failed come from attempts."""

    def run(rig: Rig, binary: Binary, event: Event) -> None:
        rig.engine.advance(seconds)

    return run


def unusable_driver(binary: Binary) -> Rig:
    return _rig(binary, ScriptedDriver.of(supported=False))


def config_error_after_1s(binary: Binary) -> Rig:
    return _started(_rig(binary, ScriptedDriver.of(Attempt("config", duration=1))))


def last_allowed_attempt_in_flight(binary: Binary) -> Rig:
    """volume: reinit_driver_count=1, attempt 2 in flight; backup: no periodic init, attempt 1 in flight."""
    if binary == "backup":
        driver = ScriptedDriver.of(Attempt("fail", duration=1))
        return _started(_rig(binary, driver, {"backup_periodic_initialization": False}))
    driver = ScriptedDriver.of("fail", Attempt("fail", duration=1))
    rig = _started(_rig(binary, driver, {"reinit_driver_count": 1}), 0, 1)
    assert rig.row(binary).attempts == 2
    return rig


def recoverable_failure_after_1s(binary: Binary) -> Rig:
    return _started(_rig(binary, ScriptedDriver.of(Attempt("fail", duration=1)), _retrying(binary)))


def recoverable_failure_after_grace(binary: Binary) -> Rig:
    """Attempt 1 fails after 6 s, past the 5 s grace window (init_timeout raised to 10 s)."""
    options = {**_retrying(binary), "init_timeout": 10, "backup_initialization_timeout": 10}
    return _started(_rig(binary, ScriptedDriver.of(Attempt("fail", duration=6)), options))


def crash_and_restart(rig: Rig, binary: Binary, event: Event) -> None:
    """The engine raises ``restart`` itself when it adopts a stored service whose driver was set up."""
    rig.crash_and_restart()


def up_with_retry_allowed(binary: Binary) -> Rig:
    return _started(_rig(binary, ScriptedDriver.of(), _retrying(binary)), 0)


OUTAGE = "BackendUnreachable"


@dataclass(frozen=True)
class RowCase:
    """How to reach a row's source with its guard holding, and the ways to send its event.

    ``triggers`` maps an id suffix to a trigger; the first one has no suffix. init_failed rows
    run twice: from the engine's own attempt, and fired by the embedding service with an error.
    """

    setup: Callable[[Binary], Rig]
    triggers: dict[str, Trigger] = field(default_factory=lambda: {"": fire})
    error: str | None = None
    """The error type the notification carries: it tells apart rows that share a destination."""


ROW_CASES: dict[tuple[State, Event, Guard | None], RowCase] = {
    (S.STARTING, E.START, G.DRIVER_USABLE): RowCase(starting, {"": start_engine}),
    (S.STARTING, E.START, G.DRIVER_UNUSABLE): RowCase(unusable_driver, {"": start_engine}, "DriverNotSupported"),
    (S.INITIALIZING, E.INIT_SUCCEEDED, None): RowCase(initializing, {"": fire, "attempt": advance(2)}),
    (S.INITIALIZING, E.INIT_FAILED, G.UNRECOVERABLE): RowCase(
        config_error_after_1s, {"": advance(1), "fired": fire_with(ConfigError("bad option"))}, "ConfigError"
    ),
    (S.INITIALIZING, E.INIT_FAILED, G.NO_RETRY): RowCase(
        last_allowed_attempt_in_flight, {"": advance(1), "fired": fire_with(BackendUnreachable("gone"))}, OUTAGE
    ),
    (S.INITIALIZING, E.INIT_FAILED, G.RETRY_GRACE_OPEN): RowCase(
        recoverable_failure_after_1s, {"": advance(1), "fired": fire_with(BackendUnreachable("gone"))}, OUTAGE
    ),
    (S.INITIALIZING, E.INIT_FAILED, G.RETRY_GRACE_EXPIRED): RowCase(
        recoverable_failure_after_grace,
        # fired half a second past the window: its last instant, t = 5, still belongs to it (BEHAVIOR.md 5)
        {"": advance(6), "fired": fire_with(BackendUnreachable("gone"), after=5.5)},
        OUTAGE,
    ),
    (S.FAILED_RECOVERABLE, E.RETRY, None): RowCase(failed_recoverable),
    (S.FAILED_RECOVERABLE, E.HEARTBEAT_EXPIRED, None): RowCase(failed_recoverable),
    (S.UP, E.HEARTBEAT_EXPIRED, None): RowCase(up),
    (S.UP, E.DRIVER_LOST, G.FRESH_RETRY): RowCase(up_with_retry_allowed),
    (S.UP, E.DRIVER_LOST, G.NO_FRESH_RETRY): RowCase(up_without_periodic_init),
    (S.DOWN, E.HEARTBEAT, G.DRIVER_INITIALIZED): RowCase(down_after_heartbeat_loss),
    (S.DOWN, E.RETRY, None): RowCase(down_while_retrying),
    (S.UP, E.RESTART, None): RowCase(up, {"": fire, "recovered": crash_and_restart}),
    (S.DOWN, E.RESTART, G.DRIVER_INITIALIZED): RowCase(
        down_after_heartbeat_loss, {"": fire, "recovered": crash_and_restart}
    ),
    (S.FAILED_PERMANENT, E.RESET, None): RowCase(failed_permanent),
    (S.FAILED_RECOVERABLE, E.RESET, None): RowCase(failed_recoverable),
    (S.DOWN, E.RESET, None): RowCase(down_while_retrying),
}

UNREACHABLE: set[tuple[Binary, State, Event, Guard | None]] = {
    # A fresh budget always allows retry 1 for a volume (reinit_driver_count is 0 = unlimited, or >= 1).
    ("volume", S.UP, E.DRIVER_LOST, G.NO_FRESH_RETRY),
}


def _row_key(rule: Rule) -> tuple[State, Event, Guard | None]:
    return rule.source, rule.event, rule.guard


def _pair_id(binary: Binary, state: State, event: Event) -> str:
    return f"{binary}-{state.value}-{event.value}"


def _row_params() -> list[Any]:
    params = []
    for binary in BINARIES:
        book = rulebook(binary)
        for rule in book.rules:
            if (binary, *_row_key(rule)) in UNREACHABLE:
                continue
            several = len(book.rules_for(rule.source, rule.event)) > 1
            suffix = f"-{rule.guard.value}" if several and rule.guard is not None else ""
            case = ROW_CASES.get(_row_key(rule))
            for how in case.triggers if case is not None else ("",):
                row_id = _pair_id(binary, rule.source, rule.event) + suffix + (f"-{how}" if how else "")
                params.append(pytest.param(binary, rule, how, id=row_id))
    return params


def _forbidden_params() -> list[Any]:
    return [
        pytest.param(binary, state, event, id=_pair_id(binary, state, event))
        for binary in BINARIES
        for state in State
        for event in Event
        if not rulebook(binary).rules_for(state, event)
    ]


# -- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("binary", "rule", "how"), _row_params())
def test_table_row_moves_to_its_destination_with_its_notification(binary: Binary, rule: Rule, how: str):
    case = ROW_CASES.get(_row_key(rule))
    assert case is not None, f"no setup for the row {rule}: add one to ROW_CASES"
    rig = case.setup(binary)
    assert rig.row(binary).lifecycle is rule.source, "the setup did not reach the row's source state"
    seen, history = len(rig.envelopes(binary)), len(rig.engine.history())

    case.triggers[how](rig, binary, rule.event)

    row = rig.row(binary)
    assert row.lifecycle is rule.dest
    assert row.state == ("up" if rule.dest is S.UP else "down")
    new = rig.envelopes(binary)[seen:]
    assert len(new) == 1, [e["event_type"] for e in new]
    envelope = new[0]
    assert (envelope["event_type"], envelope["priority"]) == (rule.event_type(binary), rule.priority)
    payload = envelope["payload"]
    assert (payload["from_state"], payload["to_state"], payload["event"]) == (
        rule.source.value,
        rule.dest.value,
        rule.event.value,
    )
    assert (payload["error"] or {}).get("type") == case.error
    if rule.guard is Guard.NO_RETRY:
        assert payload["retries_left"] == 0
    records = rig.engine.history()[history:]
    assert [(r.from_state, r.event, r.to_state) for r in records] == [(rule.source, rule.event, rule.dest)]


@pytest.mark.parametrize(("binary", "state", "event"), _forbidden_params())
def test_pair_outside_the_table_is_rejected_and_changes_nothing(binary: Binary, state: State, event: Event):
    rig = STATE_SETUPS[state](binary)
    assert rig.row(binary).lifecycle is state
    before = rig.snapshot(binary)

    with pytest.raises(InvalidTransition) as caught:
        rig.engine.fire(HOSTS[binary], event, binary=binary)

    message = str(caught.value)
    assert HOSTS[binary] in message and f"'{state.value}'" in message and f"'{event.value}'" in message
    assert (caught.value.service, caught.value.state, caught.value.event) == (HOSTS[binary], state.value, event.value)
    assert rig.snapshot(binary) == before


def test_matrix_covers_every_pair_of_both_binaries():
    forbidden = {p.values for p in _forbidden_params()}
    in_table = {(b, r.source, r.event) for b in BINARIES for r in rulebook(b).rules}
    assert len(forbidden) + len(in_table) == len(BINARIES) * len(State) * len(Event)
    assert not {(b, s, e) for b, s, e in forbidden} & in_table


@pytest.mark.parametrize("binary", BINARIES)
def test_every_table_row_has_a_case(binary: Binary):
    tested = {p.values[1] for p in _row_params() if p.values[0] == binary}
    skipped = {r for r in rulebook(binary).rules if (binary, *_row_key(r)) in UNREACHABLE}
    assert tested | skipped == set(rulebook(binary).rules)
    assert not tested & skipped
    assert set(ROW_CASES) == {_row_key(r) for r in rulebook(binary).rules}


# -- guard edges the matrix does not reach by itself ---------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_volume_driver_lost_always_has_a_fresh_retry(count: int):
    """The volume's no_fresh_retry row can never fire: a fresh budget always allows retry 1."""
    rig = _started(_rig("volume", ScriptedDriver.of(), {"reinit_driver_count": count}), 0)

    record = rig.engine.fire(HOSTS["volume"], E.DRIVER_LOST, binary="volume")

    assert record.to_state is S.FAILED_RECOVERABLE
    assert rig.row("volume").attempts == 1
    assert rig.row("volume").next_retry_at == rig.engine.now() + timedelta(seconds=1)


@pytest.mark.parametrize("event", [E.HEARTBEAT, E.RESTART])
@pytest.mark.parametrize("binary", BINARIES)
def test_event_in_down_without_an_initialized_driver_is_rejected_and_changes_nothing(binary: Binary, event: Event):
    rig = down_while_retrying(binary)
    before = rig.snapshot(binary)

    with pytest.raises(InvalidTransition, match="no guard holds"):
        rig.engine.fire(HOSTS[binary], event, binary=binary)

    assert rig.snapshot(binary) == before


@pytest.mark.parametrize("binary", BINARIES)
def test_late_outcome_after_fired_init_succeeded_is_ignored(binary: Binary):
    rig = initializing(binary)
    rig.engine.fire(HOSTS[binary], E.INIT_SUCCEEDED, binary=binary)
    seen = len(rig.sink.envelopes)

    rig.engine.advance(3)

    assert rig.row(binary).lifecycle is S.UP
    assert rig.sink.envelopes[seen:] == []


@pytest.mark.parametrize(
    ("supported", "final", "event_types", "setups"),
    [
        (True, S.UP, ["init.start", "init.success"], 1),
        (False, S.FAILED_PERMANENT, ["init.failure"], 0),
    ],
    ids=["usable", "unusable"],
)
def test_start_fired_by_the_embedding_service_is_either_engine_start_or_refused(
    supported: bool, final: State, event_types: list[str], setups: int
):
    rig = _rig("volume", ScriptedDriver.of(supported=supported))
    before = rig.snapshot("volume")
    try:
        rig.engine.fire(HOSTS["volume"], E.START, binary="volume")
    except StatecoreError:
        assert rig.snapshot("volume") == before  # refusing is acceptable; a half transition is not

    rig.engine.start()
    rig.engine.advance(0)

    assert rig.row("volume").lifecycle is final
    assert [e["event_type"] for e in rig.sink.envelopes] == [f"volume.{t}" for t in event_types]
    assert rig.drivers["volume"].attempts == setups


# -- recovery: the restart row, and the timers a new engine must rebuild -------------------------------


def _crashed_while_up(binary: Binary) -> Rig:
    """Up at t=0, heartbeats at t=1, 2; the process dies at t=2 and the next attempts fail."""
    rig = _started(_rig(binary, ScriptedDriver.of("ok", then="fail"), {"reinit_driver_count": 0}), 2)
    rig.crash_and_restart()
    return rig


def _crashed_while_initializing(binary: Binary) -> Rig:
    """Attempt 1 (2 s) is in flight when the process dies at t=1; the next attempts fail."""
    driver = ScriptedDriver.of(Attempt("ok", duration=2), then="fail")
    rig = _started(_rig(binary, driver, {"reinit_driver_count": 0}), 1)
    rig.crash_and_restart()
    return rig


@pytest.mark.parametrize(
    ("setup", "grace_ends_at"), [(_crashed_while_up, 7), (_crashed_while_initializing, 5)], ids=["up", "initializing"]
)
def test_failed_recoverable_after_a_restart_goes_down_when_the_grace_window_ends(
    setup: Callable[[Binary], Rig], grace_ends_at: int
):
    rig = setup("volume")
    rig.engine.advance(0)
    assert rig.row("volume").lifecycle is S.FAILED_RECOVERABLE

    rig.engine.advance_to(rig.at(grace_ends_at))

    assert rig.row("volume").lifecycle is S.DOWN
    assert rig.envelopes("volume")[-1]["event_type"] == "volume.service.down"
