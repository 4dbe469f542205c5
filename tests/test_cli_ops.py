"""The operator commands: run, service-list, disable/enable, backend-state, demo; and their errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statecore.cli import app

runner = CliRunner()


def config_file(tmp_path: Path, port: int, backups: Path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(
        f"""
store = "state.sqlite"
notifications = "notifications.jsonl"
owner = "node1"
refresh = 0.2

[settings]
report_interval = 0.5
service_down_time = 2
backend_stats_polling_interval = 3
backup_periodic_initialization = true
periodic_interval = 0.5

[[services]]
host = "node1@array"
binary = "volume"
driver = "statecore.drivers_builtin:TcpVolumeDriver"
driver_options = {{ host = "127.0.0.1", port = {port}, timeout = 0.5 }}

[[services]]
host = "node1"
binary = "backup"
driver = "statecore.drivers_builtin:PosixBackupDriver"
driver_options = {{ path = "{backups}" }}
"""
    )
    return path


@pytest.fixture
def array():
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_run_supervises_real_drivers_and_other_commands_read_its_store(tmp_path, array):
    backups = tmp_path / "backups"
    backups.mkdir()
    config = config_file(tmp_path, array, backups)
    assert invoke("run", str(config), "--duration", "2").exit_code == 0

    db = str(tmp_path / "state.sqlite")
    listed = json.loads(invoke("service-list", "--db", db, "--json").output)["services"]
    assert {(row["host"], row["lifecycle"], row["state"]) for row in listed} == {
        ("node1@array", "up", "up"), ("node1", "up", "up"),
    }  # fmt: skip
    lines = (tmp_path / "notifications.jsonl").read_text().splitlines()
    assert [json.loads(line)["event_type"] for line in lines][-1].endswith("init.success")

    assert "disabled: maintenance" in invoke("disable", "node1", "--reason", "maintenance", "--db", db).output
    listed = json.loads(invoke("service-list", "--db", db, "--json").output)["services"]
    assert {row["host"]: row["status"] for row in listed} == {"node1@array": "enabled", "node1": "disabled"}
    invoke("enable", "node1", "--db", db)
    listed = json.loads(invoke("service-list", "--db", db, "--json").output)["services"]
    assert {row["status"] for row in listed} == {"enabled"}

    assert invoke("backend-state", "--config", str(config)).output == "node1@array\tup\n"


def test_backend_state_reports_down_when_the_array_stops_answering(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = config_file(tmp_path, port, tmp_path)
    assert invoke("backend-state", "--config", str(config), "node1@array").output == "node1@array\tdown\n"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "statecore", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("service-list", "--db", "missing.sqlite"), "error: no store at missing.sqlite"),
        (("run", "missing.toml"), "error: missing.toml: cannot read the configuration"),
        (("backend-state", "--config", "bad.toml"), "error: bad.toml: services[0].binary: 'scheduler' is not"),
        (("run", "bad.toml"), "error: bad.toml: services[0].binary"),
        (("run", "unknown.toml"), "error: unknown.toml: services[0].driver: required field is missing"),
        (("run", "badopt.toml"), "error: settings: option 'report_interval'"),
        (("run", "badrotate.toml"), "error: badrotate.toml: notifications_max_bytes: Input should be greater than"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path, args, message):
    (tmp_path / "bad.toml").write_text('[[services]]\nhost = "a@b"\nbinary = "scheduler"\ndriver = "x:y"\n')
    (tmp_path / "unknown.toml").write_text('[[services]]\nhost = "a@b"\nbinary = "volume"\ndrivr = "x:y"\n')
    (tmp_path / "badrotate.toml").write_text(
        'notifications_max_bytes = -1\n[[services]]\nhost = "a@b"\nbinary = "volume"\ndriver = "x:y"\n'
    )
    (tmp_path / "badopt.toml").write_text(
        '[settings]\nreport_interval = -1\n[[services]]\nhost = "a@b"\nbinary = "volume"\ndriver = "x:y"\n'
    )
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing.sqlite").exists()


def test_unknown_host_for_disable_is_refused(tmp_path, array):
    backups = tmp_path / "backups"
    backups.mkdir()
    assert invoke("run", str(config_file(tmp_path, array, backups)), "--duration", "0.5").exit_code == 0
    result = run_cli("disable", "node9", "--reason", "x", "--db", str(tmp_path / "state.sqlite"))
    assert result.returncode == 2 and "no volume or backup service 'node9' in" in result.stderr


def test_demo_brings_both_late_services_up(tmp_path):
    result = run_cli("demo", "--seconds", "6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = json.loads(
        run_cli("service-list", "--db", ".statecore-demo/statecore.sqlite", "--json", cwd=tmp_path).stdout
    )["services"]
    assert {(row["host"], row["lifecycle"]) for row in listed} == {("demo@array", "up"), ("demo", "up")}
    events = [json.loads(line)["event_type"] for line in (tmp_path / ".statecore-demo/notifications.jsonl").open()]
    assert "volume.init.failure" in events and "backup.init.failure" in events
    assert events.count("volume.init.success") == 1 and events.count("backup.init.success") == 1


def test_run_stops_cleanly_on_ctrl_c(tmp_path, array):
    import signal
    import sqlite3
    import time

    backups = tmp_path / "backups"
    backups.mkdir()
    config = config_file(tmp_path, array, backups)
    process = subprocess.Popen(
        [sys.executable, "-m", "statecore", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 15
    db = tmp_path / "state.sqlite"
    while time.monotonic() < deadline:  # bounded wait for the engine's first successes, not a sleep
        try:
            with sqlite3.connect(db) as probe:
                if probe.execute("SELECT count(*) FROM statecore_history WHERE to_state = 'up'").fetchone()[0] == 2:
                    break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "stopping: Ctrl-C" in out and "Traceback" not in err
