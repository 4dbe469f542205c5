"""What the embedding service calls: registration, events, lookups, and the errors of bad input."""

from __future__ import annotations

import pytest
from support import Harness

from statecore import InvalidTransition, StatecoreError, UnknownService


def test_event_not_allowed_is_refused_by_name_and_changes_nothing():
    h = Harness()
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    before = (h.engine.service("node1@lvm"), h.job_ids(), len(h.sink.envelopes), len(h.engine.history()))

    with pytest.raises(InvalidTransition) as refused:
        h.engine.reset("node1@lvm")
    assert str(refused.value) == (
        "service 'node1@lvm' (volume) is 'up': event 'reset' is not allowed "
        "(allowed: heartbeat_expired, driver_lost, restart)"
    )
    assert (refused.value.state, refused.value.event) == ("up", "reset")
    assert before == (h.engine.service("node1@lvm"), h.job_ids(), len(h.sink.envelopes), len(h.engine.history()))


def test_unknown_event_name_is_refused():
    h = Harness()
    h.add("node1@lvm", "volume", h.driver("ok"))
    with pytest.raises(InvalidTransition, match=r"'reboot' is not allowed.*unknown event"):
        h.engine.fire("node1@lvm", "reboot")


def test_guard_that_does_not_hold_is_refused_with_the_guard_named():
    h = Harness(service_down_time=5, report_interval=1, reinit_driver_count=0)
    h.add("node1@lvm", "volume", h.driver("recoverable"))
    h.engine.start()
    h.engine.advance(5)
    assert h.lifecycle("node1@lvm") == "down"  # never initialized: a heartbeat cannot bring it up
    with pytest.raises(InvalidTransition, match="'heartbeat' is not allowed \\(no guard holds: driver initialized\\)"):
        h.engine.fire("node1@lvm", "heartbeat")
    assert h.lifecycle("node1@lvm") == "down"


def test_admin_reset_of_a_failed_service_starts_a_fresh_budget():
    h = Harness(reinit_driver_count=1)
    driver = h.add("node1@lvm", "volume", h.driver("recoverable", "recoverable", "ok"))
    h.engine.start()
    h.engine.advance(10)
    assert h.lifecycle("node1@lvm") == "failed_permanent"

    record = h.engine.reset("node1@lvm", reason="array replaced")
    assert (record.from_state, record.to_state, record.reason, record.attempt) == (
        "failed_permanent", "initializing", "array replaced", 1,
    )  # fmt: skip
    h.engine.advance(0)
    assert h.lifecycle("node1@lvm") == "up" and driver.calls == 3


def test_init_failed_fired_by_the_embedding_service_is_classified():
    from statecore import ConfigError

    h = Harness()
    h.add("node1@lvm", "volume", h.driver("hang"))
    h.engine.start()
    record = h.engine.fire("node1@lvm", "init_failed", error=ConfigError("bad san_ip"))
    assert (record.to_state, record.error.type) == ("failed_permanent", "ConfigError")


def test_unknown_and_ambiguous_hosts_are_refused():
    h = Harness()
    h.add("node1", "backup", h.driver("ok"))
    with pytest.raises(UnknownService, match="no volume or backup service 'nodeX'"):
        h.engine.service("nodeX")
    with pytest.raises(UnknownService, match="no volume service 'node1'"):
        h.engine.backend_state("node1")


@pytest.mark.parametrize(
    ("host", "binary", "message"),
    [
        ("node1", "volume", "a volume service is named 'host@backend'"),
        ("node1@lvm", "backup", "a backup service is named a plain host name"),
        ("node1@lvm", "scheduler", "binary 'scheduler' is not one of volume, backup"),
        ("", "backup", "a backup service is named"),
    ],
)
def test_bad_service_names_are_refused(host, binary, message):
    h = Harness()
    with pytest.raises(StatecoreError, match=message):
        h.engine.add_service(host, binary, "statecore.testing:ScriptedDriver")
    assert h.engine.service_list() == []


def test_duplicate_registration_is_refused():
    h = Harness()
    h.add("node1@lvm", "volume", h.driver("ok"))
    with pytest.raises(StatecoreError, match="already registered"):
        h.add("node1@lvm", "volume", h.driver("ok"))


def test_service_added_after_start_starts_at_once_and_gets_heartbeats():
    h = Harness(report_interval=10)
    h.engine.start()
    h.engine.advance(5)
    h.add("late@lvm", "volume", h.driver("ok"), report_interval=7)
    h.engine.advance(0)
    assert h.lifecycle("late@lvm") == "up"
    h.engine.advance(7)
    assert h.t(h.engine.service("late@lvm").updated_at) == 12


def test_history_keeps_every_transition_of_a_service():
    h = Harness()
    h.add("node1@lvm", "volume", h.driver("recoverable", "ok"))
    h.add("bk1", "backup", h.driver("ok"))
    h.engine.start()
    h.engine.advance(5)
    assert [(r.event.value, r.to_state.value) for r in h.engine.history("node1@lvm")] == [
        ("start", "initializing"), ("init_failed", "failed_recoverable"), ("retry", "initializing"),
        ("init_succeeded", "up"),
    ]  # fmt: skip
    assert len(h.engine.history()) == 6


def test_reset_reloads_a_driver_whose_library_was_missing_at_start():
    h = Harness()
    h.engine.add_service("node1@lvm", "volume", "statecore.testing:ScriptedDriver", driver_options={"attempts": ["ok"]})
    import statecore.testing as testing

    real = testing.ScriptedDriver
    del testing.ScriptedDriver  # the library is "not installed" at start
    try:
        h.engine.start()
    finally:
        testing.ScriptedDriver = real
    assert h.lifecycle("node1@lvm") == "failed_permanent"
    h.engine.reset("node1@lvm")  # installed since: reset loads it again
    h.engine.advance(0)
    assert h.lifecycle("node1@lvm") == "up"
