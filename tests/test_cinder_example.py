"""``statecore run examples/cinder/run.toml`` supervises Cinder's real drivers, in real time, as an
operator would run it: S3 backups against moto's S3 server, LVM on a host without ``lvm``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cinder_support import free_port, path_without_lvm, s3_server

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
    assert "Exit code: 127" in rows["node1@lvm"]["last_error"]
    notifications = (tmp_path / ".statecore" / "cinder-notifications.jsonl").read_text(encoding="utf-8")
    events = [json.loads(line)["event_type"] for line in notifications.splitlines()]
    assert "backup.init.success" in events and "volume.init.failure" in events
