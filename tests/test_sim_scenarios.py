"""Each example scenario, run through the real engine in virtual time, does what its comments say."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from statecore.sim import SimResult, Simulation, load_scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"


def run(name: str) -> SimResult:
    return run_scenario(load_scenario(SCENARIOS / f"{name}.yaml"), name)


def notifications(result: SimResult, host: str) -> list[tuple[float, str, str, str]]:
    """(t, what, from, to) of one host's notifications, as the timeline prints them."""
    return [
        (line.at, line.what, line.from_state or "", line.to_state or "")
        for line in result.lines
        if line.host == host and line.kind == "notification"
    ]


def instants(result: SimResult, host: str, what: str) -> list[float]:
    return [line.at for line in result.lines if line.host == host and line.what == what]


def first_down(result: SimResult, host: str) -> float:
    """When the host first entered ``down``, whichever transition took it there."""
    return next(at for at, _, _, dest in notifications(result, host) if dest == "down")


def rows(result: SimResult) -> dict[str, str]:
    return {row.host: row.lifecycle.value for row in result.rows}


def payloads(result: SimResult, host: str, event_type: str) -> list[dict]:
    return [e["payload"] for e in result.envelopes if e["payload"]["host"] == host and e["event_type"] == event_type]


def test_every_example_scenario_loads():
    names = sorted(path.stem for path in SCENARIOS.glob("*.yaml"))
    assert names == [
        "backend_not_ready_at_start", "backup_storage_appears_late", "flapping_backend", "fleet_day",
        "heartbeat_loss_and_recovery", "permanent_config_error",
    ]  # fmt: skip
    for name in names:
        load_scenario(SCENARIOS / f"{name}.yaml")


def test_backend_not_ready_at_start_backs_off_1_2_4_and_stops_after_the_budget():
    result = run("backend_not_ready_at_start")

    assert instants(result, "node1@lvm", "init.retry") == [1, 3]
    assert notifications(result, "node1@lvm")[-1] == (3, "init.success", "initializing", "up")
    assert instants(result, "node2@ceph", "init.retry") == [1, 3, 7]
    assert notifications(result, "node2@ceph")[-1] == (7, "init.failure", "initializing", "failed_permanent")
    assert [p["retries_left"] for p in payloads(result, "node2@ceph", "volume.init.failure")] == [3, 2, 1, 0]
    assert instants(result, "node3@nfs", "init.retry") == [1, 3, 7, 15, 23, 31]  # capped at 8 s, no limit
    assert instants(result, "node3@nfs", "init.success") == [31]
    timeout = payloads(result, "node4@iscsi", "volume.init.failure")
    assert [(p["error"]["type"], p["to_state"]) for p in timeout] == [("InitTimeout", "failed_recoverable")]
    assert instants(result, "node4@iscsi", "init.failure") == [20]
    assert instants(result, "node4@iscsi", "init.success") == [21]
    assert rows(result) == {"node1@lvm": "up", "node2@ceph": "failed_permanent", "node3@nfs": "up", "node4@iscsi": "up"}


def test_permanent_config_errors_are_never_retried_and_only_a_reset_leaves_them():
    result = run("permanent_config_error")

    assert not [line for line in result.lines if line.what == "init.retry"]
    errors = {
        host: [p["error"]["type"] for p in payloads(result, host, "volume.init.failure")] for host in rows(result)
    }
    assert errors == {
        "node1@lvm": ["ConfigError", "ConfigError"],
        "node2@vendor": ["MissingDriverLibrary"],
        "node3@legacy": ["DriverNotSupported"],
        "node4@lvm": ["ConfigError"],
    }
    assert notifications(result, "node3@legacy") == [(0, "init.failure", "starting", "failed_permanent")]
    assert payloads(result, "node3@legacy", "volume.init.failure")[0]["attempt"] == 0  # refused before any attempt
    assert notifications(result, "node1@lvm")[2:] == [
        (100, "init.reset", "failed_permanent", "initializing"),
        (100, "init.failure", "initializing", "failed_permanent"),
    ]
    assert notifications(result, "node4@lvm")[-1] == (300, "init.success", "initializing", "up")
    refused = [line for line in result.lines if line.kind == "refused"]
    assert [(line.at, line.host) for line in refused] == [(400, "node4@lvm")]
    assert "is 'up': event 'reset' is not allowed" in refused[0].detail
    assert rows(result)["node4@lvm"] == "up"  # the refused reset changed nothing


def test_backup_storage_that_appears_late_is_down_until_a_periodic_reinit_succeeds():
    result = run("backup_storage_appears_late")

    assert instants(result, "backup1", "init.retry") == [30, 60, 90, 120]
    assert first_down(result, "backup1") == 60  # by its expiry, or by the failed retry of the same instant
    assert notifications(result, "backup1")[-1] == (120, "init.success", "initializing", "up")
    assert notifications(result, "backup2")[1] == (0, "init.failure", "initializing", "failed_permanent")
    assert notifications(result, "backup2")[-2:] == [
        (200, "init.reset", "failed_permanent", "initializing"),
        (200, "init.success", "initializing", "up"),
    ]
    assert [p["error"]["type"] for p in payloads(result, "backup3", "backup.init.failure")] == ["InitTimeout"]
    assert instants(result, "backup3", "init.failure") == [45]
    assert first_down(result, "backup3") == 60
    assert instants(result, "backup3", "init.success") == [75]
    assert set(rows(result).values()) == {"up"}


def test_flapping_backend_shows_in_the_service_list_while_the_service_stays_up():
    sim = Simulation(load_scenario(SCENARIOS / "flapping_backend.yaml"), "flapping_backend")
    sim.start()
    seen = []
    # polls at t=0, 10, 20 ...: up, up, down, down, up, down, raise, up, omit, bogus, up
    for second in (5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 105):
        sim.run_until(second)
        row = sim.engine.service("node1@array")
        assert row.lifecycle.value == "up"
        seen.append(row.backend_state)
    assert seen == ["up", "up", "down", "down", "up", "down", "down", "up", "up", "down", "up"]
    assert sim.engine.service("node2@array").backend_state == "down"

    sim.run_until(240)
    result = sim.result()
    assert notifications(result, "node1@array")[2:] == [
        (160, "driver.lost", "up", "failed_recoverable"),
        (161, "init.retry", "failed_recoverable", "initializing"),
        (161, "init.failure", "initializing", "failed_recoverable"),
        (163, "init.retry", "failed_recoverable", "initializing"),
        (163, "init.success", "initializing", "up"),
    ]
    observed = [(line.at, line.from_state, line.to_state) for line in result.lines if line.host == "node1@array"
                and line.kind == "observed"]  # fmt: skip
    assert observed == [(20, "up", "down"), (40, "down", "up"), (50, "up", "down"), (70, "down", "up"),
                        (90, "up", "down"), (100, "down", "up")]  # fmt: skip
    assert {row.host: row.backend_state for row in result.rows} == {"node1@array": "up", "node2@array": "down"}


def test_heartbeat_loss_takes_a_host_down_after_service_down_time_and_back_up_on_the_next_heartbeat():
    sim = Simulation(load_scenario(SCENARIOS / "heartbeat_loss_and_recovery.yaml"))
    sim.start()
    sim.run_until(179.9)
    assert sim.engine.service("node1@lvm").state == "up"
    sim.run_until(450)
    assert sim.engine.service("node2@lvm").status == "disabled"
    assert sim.engine.service("node2@lvm").disabled_reason == "array firmware upgrade"
    sim.run_until(600)
    result = sim.result()

    for host, binary in (("node1@lvm", "volume"), ("node1", "backup")):
        down, up = payloads(result, host, f"{binary}.service.down"), payloads(result, host, f"{binary}.service.up")
        assert instants(result, host, "service.down") == [180]
        assert instants(result, host, "service.up") == [310]
        assert down[0]["reason"] == "no heartbeat since 2026-01-01T00:02:00.000000Z (60 s)"
        assert up[0]["from_state"] == "down"
    assert [line.what for line in result.lines if line.host == "node2@lvm"] == [
        "init.start", "init.success", "service.disable", "disable", "service.enable", "enable",
    ]  # fmt: skip
    assert {row.host: (row.state, row.status) for row in result.rows} == dict.fromkeys(
        ("node1@lvm", "node1", "node2@lvm"), ("up", "enabled")
    )


def test_a_day_of_a_100_service_fleet_runs_in_seconds():
    scenario = load_scenario(SCENARIOS / "fleet_day.yaml")
    began = time.perf_counter()
    result = run_scenario(scenario, "fleet_day")
    elapsed = time.perf_counter() - began

    assert len(result.rows) == 100 and result.duration == 86400
    assert elapsed < 30, f"a day of 100 services took {elapsed:.1f} s"
    lifecycles = [row.lifecycle.value for row in result.rows]
    assert (lifecycles.count("up"), lifecycles.count("failed_permanent")) == (93, 7)
    assert notifications(result, "node05@lvm")[-2:] == [(3660, "service.down", "up", "down"),
                                                        (7210, "service.up", "down", "up")]  # fmt: skip
    assert instants(result, "node10@lvm", "driver.lost") == [30060]
    assert [line.host for line in result.lines if line.kind == "refused"] == ["node03@ceph"]
    ceph_up = instants(result, "node01@ceph", "init.success")
    assert len(ceph_up) == 1 and 10 < ceph_up[0] < 60  # 3 failed attempts of 5 s each, jittered waits


@pytest.mark.parametrize("name", ["backend_not_ready_at_start", "flapping_backend"])
def test_the_same_scenario_and_seed_give_the_same_envelopes(name: str):
    first, second = run(name), run(name)
    assert first.envelopes == second.envelopes
    assert len({e["message_id"] for e in first.envelopes}) == len(first.envelopes)
