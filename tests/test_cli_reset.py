"""``statecore reset HOST BINARY``: after the operator fixes a bad driver path, the service that
was ``failed_permanent`` starts from scratch at the next ``statecore run``; refused while an
engine drives it, and one line on stderr, exit code 2, for what it cannot do."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from support import Harness
from test_cli_ops import config_file, invoke, run_cli
from test_cli_retention import digest

from statecore.store.sql import SqlStore

GOOD, BAD = "statecore.drivers_builtin:PosixBackupDriver", "statecore.drivers_builtin:NoSuchDriver"


def backup_row(db: str) -> dict[str, object]:
    rows = json.loads(invoke("service-list", "--db", db, "--host", "node1", "--binary", "backup", "--json").output)[
        "services"
    ]
    assert len(rows) == 1
    row: dict[str, object] = rows[0]
    return row


def test_after_fixing_a_bad_driver_path_reset_lets_the_next_run_start_it_from_scratch(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    with socket.create_server(("127.0.0.1", 0)) as array:  # the volume of the configuration answers
        config, db = config_file(tmp_path, array.getsockname()[1], backups), str(tmp_path / "state.sqlite")
        fixed = config.read_text()
        config.write_text(fixed.replace(GOOD, BAD))
        assert invoke("run", str(config), "--duration", "0.5").exit_code == 0
        failed = backup_row(db)
        assert failed["lifecycle"] == "failed_permanent" and "NoSuchDriver" in str(failed["last_error"])

        config.write_text(fixed)
        assert invoke("run", str(config), "--duration", "0.5").exit_code == 0
        assert backup_row(db)["lifecycle"] == "failed_permanent"  # a fixed configuration alone changes nothing

        result = run_cli("reset", "node1", "backup", "--db", db)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"reset backup node1 in {db}: starting, error and retries cleared")
        assert (backup_row(db)["lifecycle"], backup_row(db)["last_error"]) == ("starting", None)

        assert invoke("run", str(config), "--duration", "1").exit_code == 0
    row = backup_row(db)
    assert (row["lifecycle"], row["last_error"], row["attempts"]) == ("up", None, 1)


def test_reset_takes_cinders_order_and_names(tmp_path):
    path = tmp_path / "state.sqlite"
    h = Harness(store=SqlStore(f"sqlite:///{path}"), reinit_driver_count=0)
    h.add("node1@array", "volume", h.driver("config_error"))
    h.engine.start()
    h.engine.advance(0)
    h.engine.shutdown()
    result = run_cli("reset", "cinder-volume", "node1@array", "--db", str(path))
    assert result.returncode == 0 and result.stdout.startswith("reset volume node1@array"), result.stderr


def test_reset_is_refused_in_one_line_while_an_engine_drives_the_service(tmp_path):
    path = tmp_path / "state.sqlite"
    h = Harness(store=SqlStore(f"sqlite:///{path}"), owner="host-a", reinit_driver_count=0)
    h.add("node1@array", "volume", h.driver("config_error"))
    h.engine.start()
    h.engine.advance(0)
    try:
        result = run_cli("reset", "node1@array", "volume", "--db", str(path))
        stored = h.engine.store.load("volume/node1@array")
    finally:
        h.engine.shutdown()
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: service 'volume/node1@array' is driven by the engine of 'host-a'")
    assert result.stderr.rstrip().endswith("nothing was reset")
    assert stored is not None and stored.lifecycle.value == "failed_permanent" and stored.last_error_type


def test_reset_of_an_unknown_service_changes_nothing(tmp_path):
    path = tmp_path / "state.sqlite"
    SqlStore(f"sqlite:///{path}").close()
    untouched = digest(str(path))
    result = run_cli("reset", "node9", "backup", "--db", str(path))
    assert result.returncode == 2
    assert result.stderr == "error: no service 'backup/node9' in the store; nothing was reset\n"
    assert digest(str(path)) == untouched


def test_service_remove_of_a_stopped_service_uses_the_down_time_its_engine_stored(tmp_path: Path):
    path = tmp_path / "state.sqlite"
    h = Harness(store=SqlStore(f"sqlite:///{path}"), report_interval=1, service_down_time=3600)
    h.add("node1", "backup", h.driver("ok"))
    h.engine.start()
    h.engine.advance(1)
    h.engine.shutdown()
    result = run_cli("service", "remove", "node1", "cinder-backup", "--db", str(path))
    assert result.returncode == 2 and "service_down_time 3600 s" in result.stderr, result.stderr
