"""The lifecycle scenarios of the engine issue, each on the real engine in virtual time."""

from __future__ import annotations

import pytest
from support import BlockingHeartbeats, FlakySink, Harness

from statecore import InitTimeout

FAIL = "volume.init.failure"


def test_volume_recoverable_failures_back_off_1_2_4_then_fail_permanently():
    h = Harness(reinit_driver_count=3)
    driver = h.add("node1@lvm", "volume", h.driver("recoverable"))
    h.engine.start()
    h.engine.advance(600)

    assert h.timeline() == [
        (0, "volume.init.start", "starting", "initializing"),
        (0, FAIL, "initializing", "failed_recoverable"),
        (1, "volume.init.retry", "failed_recoverable", "initializing"),
        (1, FAIL, "initializing", "failed_recoverable"),
        (3, "volume.init.retry", "failed_recoverable", "initializing"),
        (3, FAIL, "initializing", "failed_recoverable"),
        (7, "volume.init.retry", "failed_recoverable", "initializing"),
        (7, FAIL, "initializing", "failed_permanent"),
    ]
    assert driver.calls == 4
    assert [e["payload"]["retries_left"] for e in h.sink.envelopes if e["event_type"] == FAIL] == [3, 2, 1, 0]
    row = h.engine.service("node1@lvm")
    assert (row.lifecycle.value, row.total_attempts, row.next_retry_at) == ("failed_permanent", 4, None)
    assert not [job for job in h.job_ids() if job.endswith("node1@lvm")]


def test_volume_that_fails_once_is_up_at_one_second_and_reports_backend_up_by_default():
    h = Harness()
    h.add("node1@lvm", "volume", h.driver("recoverable", "ok", backend_state=["omit"]))
    h.engine.start()
    h.engine.advance(0.999)
    assert h.lifecycle("node1@lvm") == "failed_recoverable"
    assert h.engine.service("node1@lvm").backend_state is None  # nothing published while not up

    h.engine.advance(0.001)
    assert h.timeline()[-1] == (1, "volume.init.success", "initializing", "up")
    row = h.engine.service("node1@lvm")
    assert (row.state, row.backend_state, h.t(row.updated_at)) == ("up", "up", 1)


def test_unlimited_volume_retries_never_fail_permanently_and_cap_their_wait():
    h = Harness(reinit_driver_count=0, reinit_backoff_max=16, service_down_time=60)
    h.add("node1@lvm", "volume", h.driver("recoverable"))
    h.engine.start()
    h.engine.advance(200)

    retries = [t for t, kind, _, _ in h.timeline() if kind == "volume.init.retry"]
    assert retries == [1, 3, 7, 15, 31, 47, 63, 79, 95, 111, 127, 143, 159, 175, 191]
    assert (60, "volume.service.down", "failed_recoverable", "down") in h.timeline()
    assert "failed_permanent" not in {to for _, _, _, to in h.timeline()}
    after_down = [to for t, kind, _, to in h.timeline() if kind == FAIL and t > 60]
    assert set(after_down) == {"down"}  # grace expired: a failed retry stays down
    assert h.engine.service("node1@lvm").retries_left is None


@pytest.mark.parametrize("outcome", ["config_error", "import_error", "missing_library", "not_supported"])
def test_unrecoverable_init_error_fails_permanently_after_one_attempt(outcome):
    h = Harness()
    driver = h.add("node1@lvm", "volume", h.driver(outcome))
    h.engine.start()
    h.engine.advance(600)

    assert [kind for _, kind, _, _ in h.timeline()] == ["volume.init.start", FAIL]
    assert driver.calls == 1
    assert h.lifecycle("node1@lvm") == "failed_permanent"
    assert h.job_ids() == ["caps|volume|60", "purge", "report|10"]  # the engine's own periodic jobs only


def test_unsupported_driver_fails_permanently_without_any_attempt():
    h = Harness()
    driver = h.add("node1@lvm", "volume", h.driver("ok", supported=False))
    h.engine.start()
    h.engine.advance(600)

    assert h.timeline() == [(0, FAIL, "starting", "failed_permanent")]
    envelope = h.sink.envelopes[0]
    assert envelope["payload"]["error"]["type"] == "DriverNotSupported"
    assert (driver.calls, h.engine.service("node1@lvm").total_attempts) == (0, 0)


def test_unsupported_driver_runs_when_enabled():
    h = Harness(enable_unsupported_driver=True)
    h.add("node1@lvm", "volume", h.driver("ok", supported=False))
    h.engine.start()
    h.engine.advance(0)
    assert h.lifecycle("node1@lvm") == "up"


def test_driver_import_path_that_fails_to_import_is_a_missing_library_without_attempt():
    h = Harness()
    h.engine.add_service("node1@lvm", "volume", "vendor_sdk_not_installed.driver:Driver")
    h.engine.start()

    assert h.timeline() == [(0, FAIL, "starting", "failed_permanent")]
    assert h.sink.envelopes[0]["payload"]["error"]["type"] == "MissingDriverLibrary"


def test_driver_given_by_import_path_is_built_with_its_options():
    h = Harness()
    h.engine.add_service(
        "node1@lvm", "volume", "statecore.testing:ScriptedDriver", driver_options={"attempts": ["recoverable", "ok"]}
    )
    h.engine.start()
    h.engine.advance(1)
    assert h.lifecycle("node1@lvm") == "up"


def test_backup_without_periodic_init_fails_permanently_at_first_failure():
    h = Harness(backup_periodic_initialization=False)
    h.add("bk1", "backup", h.driver("recoverable"))
    h.engine.start()
    h.engine.advance(600)

    assert h.timeline() == [
        (0, "backup.init.start", "starting", "initializing"),
        (0, "backup.init.failure", "initializing", "failed_permanent"),
    ]
    assert h.sink.envelopes[-1]["payload"]["retries_left"] == 0


def test_backup_with_periodic_init_retries_every_interval_until_storage_appears():
    h = Harness(backup_periodic_initialization=True, periodic_interval=20, service_down_time=60)
    h.add("bk1", "backup", h.driver("recoverable", "recoverable", "ok"))
    h.engine.start()
    h.engine.advance(100)

    assert h.timeline() == [
        (0, "backup.init.start", "starting", "initializing"),
        (0, "backup.init.failure", "initializing", "failed_recoverable"),
        (20, "backup.init.retry", "failed_recoverable", "initializing"),
        (20, "backup.init.failure", "initializing", "failed_recoverable"),
        (40, "backup.init.retry", "failed_recoverable", "initializing"),
        (40, "backup.init.success", "initializing", "up"),
    ]
    assert h.engine.service("bk1").state == "up"


def test_backup_not_up_within_service_down_time_is_down_and_keeps_retrying():
    h = Harness(backup_periodic_initialization=True, periodic_interval=25, service_down_time=60)
    h.add("bk1", "backup", h.driver("recoverable", "recoverable", "recoverable", "ok"))
    h.engine.start()
    h.engine.advance(100)

    assert h.timeline()[4:] == [
        (50, "backup.init.retry", "failed_recoverable", "initializing"),
        (50, "backup.init.failure", "initializing", "failed_recoverable"),
        (60, "backup.service.down", "failed_recoverable", "down"),
        (75, "backup.init.retry", "down", "initializing"),
        (75, "backup.init.success", "initializing", "up"),
    ]


def _assert_timed_out_at_60(h: Harness) -> None:
    failure = h.sink.envelopes[-1]
    assert (h.t(failure["timestamp"]), failure["event_type"]) == (60, FAIL)
    assert failure["payload"]["error"]["type"] == InitTimeout.__name__
    assert failure["payload"]["to_state"] == "failed_recoverable"


def test_slow_do_setup_times_out_and_its_late_success_is_ignored():
    h = Harness(init_timeout=60, service_down_time=300)
    h.add("node1@lvm", "volume", h.driver("ok", init_seconds=90))
    h.engine.start()
    h.engine.advance(60)
    _assert_timed_out_at_60(h)

    h.engine.advance(30)  # t=90: attempt 1 returns success, too late; attempt 2 (from t=61) is in flight
    assert [kind for _, kind, _, _ in h.timeline()][-1] == "volume.init.retry"
    assert (h.lifecycle("node1@lvm"), h.engine.service("node1@lvm").total_attempts) == ("initializing", 2)


def test_hung_do_setup_times_out_and_the_retry_goes_on():
    h = Harness(init_timeout=60, service_down_time=300)
    h.add("node1@lvm", "volume", h.driver("hang", "ok"))
    h.engine.start()
    h.engine.advance(60)
    _assert_timed_out_at_60(h)

    h.engine.advance(1)
    assert h.timeline()[-1] == (61, "volume.init.success", "initializing", "up")


def test_heartbeat_loss_takes_an_up_service_down_and_a_recorded_heartbeat_brings_it_back():
    store = BlockingHeartbeats()
    h = Harness(store=store, report_interval=10, service_down_time=60)
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(25)
    assert h.t(h.engine.service("node1@lvm").updated_at) == 20

    store.blocked.add("volume/node1@lvm")
    h.engine.advance(100 - 25)
    assert h.timeline()[-1] == (80, "volume.service.down", "up", "down")  # last_ok 20 + 60
    assert h.engine.service("node1@lvm").state == "down"

    store.blocked.clear()
    h.engine.advance(10)
    assert h.timeline()[-1] == (110, "volume.service.up", "down", "up")


def test_driver_lost_while_up_starts_a_fresh_retry_budget():
    h = Harness(reinit_driver_count=2, backend_stats_polling_interval=30)
    driver = h.add("node1@lvm", "volume", h.driver("recoverable", "ok", "recoverable", "ok"))
    h.engine.start()
    h.engine.advance(29)
    driver.working = False
    h.engine.advance(31)

    assert h.timeline()[4:] == [
        (30, "volume.driver.lost", "up", "failed_recoverable"),
        (31, "volume.init.retry", "failed_recoverable", "initializing"),
        (31, FAIL, "initializing", "failed_recoverable"),
        (33, "volume.init.retry", "failed_recoverable", "initializing"),
        (33, "volume.init.success", "initializing", "up"),
    ]
    lost = h.sink.envelopes[4]["payload"]
    assert (lost["attempt"], lost["retries_left"]) == (1, 2)


def test_backup_driver_lost_without_periodic_init_fails_permanently():
    h = Harness(backup_periodic_initialization=False, periodic_interval=30)
    driver = h.add("bk1", "backup", h.driver("ok"))
    h.engine.start()
    driver.working = False
    h.engine.advance(30)
    assert h.timeline()[-1] == (30, "backup.driver.lost", "up", "failed_permanent")


def test_sink_that_raises_three_times_still_gets_every_notification_in_order():
    flaky = FlakySink(failures=3)
    h = Harness(sinks=[flaky], reinit_driver_count=3)
    h.add("node1@lvm", "volume", h.driver("recoverable", "recoverable", "ok"))
    h.engine.start()
    h.engine.advance(600)

    assert flaky.calls >= 3 + len(h.sink.envelopes)
    assert [e["message_id"] for e in flaky.envelopes] == [e["message_id"] for e in h.sink.envelopes]
    assert h.lifecycle("node1@lvm") == "up"
    assert h.timeline()[-1] == (3, "volume.init.success", "initializing", "up")
    assert h.engine.notifier.pending() == 0


def test_same_scenario_gives_identical_notifications_including_ids():
    def run() -> list[dict]:
        h = Harness(reinit_backoff_jitter="full", reinit_backoff_seed=7, reinit_driver_count=0)
        h.add("node1@lvm", "volume", h.driver("recoverable"))
        h.add("bk1", "backup", h.driver("recoverable", "ok"), backup_periodic_initialization=True)
        h.engine.start()
        h.engine.advance(300)
        return h.sink.envelopes

    first, second = run(), run()
    assert first == second
    assert len({e["message_id"] for e in first}) == len(first)
