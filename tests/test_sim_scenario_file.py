"""A bad scenario file is one error naming the file and the field, and nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from statecore.engine import Engine
from statecore.sim import ScenarioError, load_scenario, parse_scenario

ONE_VOLUME = """\
duration: 600
services:
  - host: node1@lvm
    binary: volume
"""

BAD = {
    "yaml syntax": (
        "duration: 600\nservices: [\n",
        "invalid YAML: line 3, column 1: expected the node content, but found '<stream end>'",
    ),
    "not a mapping": ("- duration\n", "a scenario is a mapping with duration, services and events"),
    "unknown top-level field": (
        ONE_VOLUME + "sevices: []\n",
        "sevices: unknown field (allowed: start, seed, duration, settings, services, events)",
    ),
    "unknown driver field": (
        ONE_VOLUME + "    driver: {atempts: [ok]}\n",
        "services[0].driver.atempts: unknown field (allowed: supported, attempts, init_seconds, backend_state)",
    ),
    "wrong type": (
        "duration: ten\nservices: [{host: a@b, binary: volume}]\n",
        "duration: Input should be a valid number, unable to parse string as a number (got 'ten')",
    ),
    "missing field": ("services: [{host: a@b, binary: volume}]\n", "duration: required field is missing"),
    "unknown outcome": (
        ONE_VOLUME + "    driver: {attempts: [recoverable, ok, okk]}\n",
        "services[0].driver.attempts[2]: 'okk' is not one of ok, recoverable, config_error, not_supported, "
        "missing_library, import_error, hang",
    ),
    "unknown binary": (
        "duration: 6\nservices: [{host: a@b, binary: tape}]\n",
        "services[0].binary: 'tape' is not one of volume, backup",
    ),
    "duplicate host": (
        ONE_VOLUME + "  - {host: node1@lvm, binary: volume}\n",
        "services[1].host: 'node1@lvm' is already defined by services[0]",
    ),
    "duplicate host from a count": (
        ONE_VOLUME + "  - {host: 'node{n}@lvm', binary: volume, count: 3}\n",
        "services[1].host: 'node1@lvm' is already defined by services[0]",
    ),
    "count without placeholder": (
        "duration: 6\nservices: [{host: node1@lvm, binary: volume, count: 2}]\n",
        "services[0].host: with count, the host needs an {n} placeholder, e.g. 'node{n}@lvm'",
    ),
    "badly named service": (
        "duration: 6\nservices: [{host: node1, binary: volume}]\n",
        "services[0].host: service 'node1': a volume service is named 'host@backend'",
    ),
    "unknown host in an event": (
        ONE_VOLUME + "events: [{at: 1, host: nodeX@lvm, do: reset}]\n",
        "events[0].host: unknown host 'nodeX@lvm' (hosts: node1@lvm)",
    ),
    "event beyond the duration": (
        ONE_VOLUME + "events: [{at: 700, host: node1@lvm, do: reset}]\n",
        "events[0].at: 700 is beyond the duration (600 s)",
    ),
    "negative event time": (
        ONE_VOLUME + "events: [{at: -1, host: node1@lvm, do: reset}]\n",
        "events[0].at: Input should be greater than or equal to 0 (got -1)",
    ),
    "unknown event": (
        ONE_VOLUME + "events: [{at: 1, host: node1@lvm, do: explode}]\n",
        "events[0].do: 'explode' is not one of heartbeat_fail, heartbeat_restore, driver_lost, reset, disable, enable",
    ),
    "reason on an event that takes none": (
        ONE_VOLUME + "events: [{at: 1, host: node1@lvm, do: enable, reason: x}]\n",
        "events[0].reason: only reset and disable take a reason, not enable",
    ),
    "bad setting": (
        ONE_VOLUME + "settings: {reinit_driver_count: -1}\n",
        "settings: option 'reinit_driver_count': value -1 refused: Input should be greater than or equal to 0 "
        "(rule: int >= 0; 0 = unlimited retries)",
    ),
    "unknown setting": (
        ONE_VOLUME + "settings: {reinit_count: 1}\n",
        "settings: unknown option 'reinit_count' (value 1)",
    ),
    "bad per-service option": (
        ONE_VOLUME + "    options: {report_interval: 0}\n",
        "services[0].options: option 'report_interval': value 0 refused: Input should be greater than 0 "
        "(rule: seconds > 0; heartbeat period)",
    ),
    "start without a time zone": (
        ONE_VOLUME + "start: 2026-01-01T00:00:00\n",
        "start: Input should have timezone info (got 2026-01-01 00:00:00)",
    ),
}


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Engine) -> None:
        raise AssertionError("an engine was started for a bad scenario")

    monkeypatch.setattr(Engine, "start", refuse)


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
@pytest.mark.usefixtures("nothing_starts")
def test_a_bad_file_is_one_error_naming_the_file_and_the_field(tmp_path: Path, text: str, message: str):
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as refused:
        load_scenario(path)
    assert str(refused.value) == f"{path}: {message}"


def test_several_problems_name_the_first_and_count_the_others():
    with pytest.raises(ScenarioError, match=r"^s.yaml: duration: .* \(got 'x'\) \(and 2 more problems\)$"):
        parse_scenario("duration: x\nservices: [{host: 1, binary: tape}]\n", "s.yaml")


def test_a_missing_file_is_named(tmp_path: Path):
    with pytest.raises(ScenarioError, match=r"absent\.yaml: cannot read the scenario"):
        load_scenario(tmp_path / "absent.yaml")


def test_count_expands_the_placeholder_with_an_optional_format():
    scenario = parse_scenario(
        "duration: 60\nservices:\n"
        "  - {host: 'node{n:02d}@lvm', binary: volume, count: 3}\n"
        "  - {host: b, binary: backup}\n"
    )
    assert [member.host for member in scenario.members()] == ["node01@lvm", "node02@lvm", "node03@lvm", "b"]


def test_defaults_are_one_working_driver_in_zone_nova_and_the_seed_seeds_the_jitter():
    scenario = parse_scenario("seed: 7\nduration: 60\nservices: [{host: a@b, binary: volume}]\n")
    spec = scenario.services[0]
    assert (spec.zone, spec.driver.attempts, spec.driver.backend_state, spec.driver.supported) == (
        "nova", ["ok"], ["up"], True,
    )  # fmt: skip
    assert scenario.engine_settings().reinit_backoff_seed == 7


def test_the_environment_does_not_change_a_scenario(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STATECORE_REINIT_DRIVER_COUNT", "9")
    scenario = parse_scenario("duration: 60\nservices: [{host: a@b, binary: volume}]\n")
    assert scenario.engine_settings().reinit_driver_count == 3
