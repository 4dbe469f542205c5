"""Options: defaults, TOML, environment, per-service overrides, and refusals that name what is wrong."""

from __future__ import annotations

import pytest

from statecore import Engine, Settings, SettingsError, load_settings


def test_defaults_are_those_of_the_contract():
    s = Settings()
    assert (s.reinit_driver_count, s.reinit_backoff_max, s.reinit_backoff_jitter) == (3, 300, "none")
    assert (s.backup_periodic_initialization, s.periodic_interval, s.init_timeout) == (False, 60, 60)
    assert (s.backup_initialization_timeout, s.service_down_time, s.report_interval) == (60, 60, 10)
    assert (s.backend_stats_polling_interval, s.enable_unsupported_driver) == (60, False)


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("reinit_driver_count", -1, "greater than or equal to 0"),
        ("reinit_backoff_max", 0, "greater than 0"),
        ("reinit_backoff_jitter", "random", "none, full, equal or decorrelated"),
        ("backend_stats_polling_interval", 2, "greater than or equal to 3"),
        ("service_down_time", "soon", "valid number"),
        ("backup_periodic_initialization", "maybe", "valid boolean"),
    ],
)
def test_bad_value_is_refused_naming_option_value_and_rule(option, value, rule):
    with pytest.raises(SettingsError) as refused:
        load_settings(**{option: value})
    message = str(refused.value)
    assert option in message and repr(value) in message and rule in message


def test_unknown_option_is_refused_by_name():
    with pytest.raises(SettingsError, match="unknown option 'reinit_count'"):
        load_settings(reinit_count=3)


def test_down_time_not_above_report_interval_is_corrected_with_a_warning(caplog_loguru):
    s = Settings(report_interval=10, service_down_time=10)
    assert s.service_down_time == 25
    assert "using 25 instead" in caplog_loguru.text


def test_toml_file_then_environment_then_explicit_values(tmp_path, monkeypatch):
    path = tmp_path / "statecore.toml"
    path.write_text("[settings]\nreinit_driver_count = 5\nperiodic_interval = 30\nreport_interval = 5\n")
    monkeypatch.setenv("STATECORE_PERIODIC_INTERVAL", "45")
    s = load_settings(path, report_interval=7)
    assert (s.reinit_driver_count, s.periodic_interval, s.report_interval) == (5, 45, 7)


def test_bad_toml_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[settings\nreinit_driver_count = ")
    with pytest.raises(SettingsError, match=r"broken.toml.*not valid TOML"):
        load_settings(path)
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_bad_environment_value_is_refused(monkeypatch):
    monkeypatch.setenv("STATECORE_REINIT_DRIVER_COUNT", "-2")
    with pytest.raises(SettingsError, match="reinit_driver_count"):
        load_settings()


def test_per_service_overrides_are_validated_and_shared():
    base = Settings()
    first = base.with_overrides({"reinit_driver_count": 0})
    assert first.reinit_driver_count == 0 and first.report_interval == base.report_interval
    assert base.with_overrides({"reinit_driver_count": 0}) is first
    assert base.with_overrides(None) is base
    with pytest.raises(SettingsError, match="periodic_interval"):
        base.with_overrides({"periodic_interval": -5})


def test_bad_override_registers_nothing():
    engine = Engine.virtual_time(sinks=[])
    with pytest.raises(SettingsError):
        engine.add_service("node1@lvm", "volume", "statecore.testing:ScriptedDriver", options={"init_timeout": 0})
    assert engine.service_list() == []


def test_values_built_without_the_environment_ignore_it(monkeypatch):
    from statecore.settings import build_settings

    monkeypatch.setenv("STATECORE_REINIT_DRIVER_COUNT", "9")
    assert build_settings({}, env=False).reinit_driver_count == 3
    assert build_settings({}).reinit_driver_count == 9
