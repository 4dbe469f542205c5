"""``statecore run examples/cinder/run.toml`` supervises Cinder's real drivers, in real time, as an
operator would run it: S3 backups against moto's S3 server, LVM on a host without ``lvm``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cinder_support import free_port, path_without_lvm, s3_server
from typer.testing import CliRunner

from statecore.cli import app

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cinder"


def test_run_on_the_example_supervises_the_real_drivers(tmp_path):
    copy = tmp_path / "examples" / "cinder"
    shutil.copytree(EXAMPLE, copy)
    port = free_port()
    conf = copy / "cinder.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace("127.0.0.1:9000", f"127.0.0.1:{port}"), encoding="utf-8")
    env = {**os.environ, "PATH": path_without_lvm(tmp_path / "bin"), "COLUMNS": "200"}
    statecore = [sys.executable, "-m", "statecore"]
    with s3_server(port):
        run = subprocess.run(
            [*statecore, "run", str(copy / "run.toml"), "--duration", "3"],
            env=env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    store = tmp_path / ".statecore" / "cinder.sqlite"  # the example's store, relative to its TOML file
    listed = subprocess.run(
        [*statecore, "service-list", "--db", str(store), "--json"], capture_output=True, text=True, timeout=60
    )
    rows = {row["host"]: row for row in json.loads(listed.stdout)["services"]}
    assert (rows["node1"]["binary"], rows["node1"]["lifecycle"]) == ("cinder-backup", "up")
    assert (rows["node1@lvm"]["binary"], rows["node1@lvm"]["lifecycle"]) == ("cinder-volume", "failed_permanent")
    assert re.search(r"Exit code: (96|127)\b", rows["node1@lvm"]["last_error"])  # root: 127; via rootwrap: 96
    notifications = (tmp_path / ".statecore" / "cinder-notifications.jsonl").read_text(encoding="utf-8")
    events = [json.loads(line)["event_type"] for line in notifications.splitlines()]
    assert "backup.init.success" in events and "volume.init.failure" in events


def test_backend_state_asks_the_example_cinder_drivers_after_setting_them_up(tmp_path, monkeypatch):
    """The CLI sets each cinder_config backend up (as one attempt would) before asking its stats."""
    monkeypatch.setenv("PATH", path_without_lvm(tmp_path / "bin"))
    copy = tmp_path / "cinder"
    shutil.copytree(EXAMPLE, copy)
    asked = CliRunner().invoke(app, ["backend-state", "--config", str(copy / "run.toml")])
    assert asked.exit_code == 0, asked.output
    assert re.fullmatch(r"node1@lvm\tdown \(ProcessExecutionError: .*Exit code: (96|127)\b.*\)\n", asked.output, re.S)
    conf = copy / "cinder.conf"
    text = conf.read_text(encoding="utf-8").replace(
        "cinder.volume.drivers.lvm.LVMVolumeDriver", "cinder_support.BackendDownDriver"
    )
    conf.write_text(text, encoding="utf-8")
    assert CliRunner().invoke(app, ["backend-state", "--config", str(copy / "run.toml")]).output == "node1@lvm\tdown\n"
    missing = CliRunner().invoke(app, ["backend-state", "--config", str(copy / "run.toml"), "node1@nowhere"])
    assert str(missing.exception).startswith("no volume service 'node1@nowhere' in ")
    assert str(missing.exception).endswith("(volume services: node1@lvm)")
    conf.write_text(text.replace("enabled_backends = lvm\n", ""), encoding="utf-8")  # the backup service alone
    none = CliRunner().invoke(app, ["backend-state", "--config", str(copy / "run.toml")])
    assert str(none.exception) == f"no volume service in {copy / 'run.toml'} (volume services: none)"
