"""``statecore simulate``: a timeline and the service list, JSON lines that replay byte for byte,
plots, and one plain error line for a bad file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from statecore.cli import app
from statecore.sim.report import compact_json

runner = CliRunner()
SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
NOT_READY = str(SCENARIOS / "backend_not_ready_at_start.yaml")
ENVELOPE_KEYS = {"message_id", "publisher_id", "event_type", "priority", "timestamp", "payload"}
JITTERED = """\
seed: {seed}
duration: 300
settings: {{reinit_driver_count: 0, reinit_backoff_jitter: full}}
services:
  - host: "node{{n}}@lvm"
    binary: volume
    count: 3
    driver: {{attempts: [recoverable, recoverable, recoverable, ok]}}
events:
  - {{at: 100, host: node1@lvm, do: driver_lost}}
"""


def simulate(*args: str) -> tuple[int, str, str]:
    """The real entry point in a child process, as an operator runs it: exit code, stdout, stderr."""
    child = subprocess.run(
        [sys.executable, "-c", "from statecore.cli import main; main()", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return child.returncode, child.stdout, child.stderr


def jittered(tmp_path: Path, seed: int) -> str:
    path = tmp_path / f"jittered-{seed}.yaml"
    path.write_text(JITTERED.format(seed=seed), encoding="utf-8")
    return str(path)


def test_simulate_prints_the_timeline_then_the_final_service_list():
    result = runner.invoke(app, ["simulate", NOT_READY])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "backend_not_ready_at_start: 4 services, 120 s of virtual time from 2026-01-01T00:00:00+00:00"
    assert re.search(r"^t=\+3\.000s +node1@lvm +init\.success +initializing -> up +\(driver initialized\)$",
                     result.stdout, re.MULTILINE)  # fmt: skip
    assert re.search(r"^t=\+7\.000s +node2@ceph +init\.failure +initializing -> failed_permanent +\(recoverable, "
                     r"no retry allowed: ConnectionError", result.stdout, re.MULTILINE)  # fmt: skip
    table = result.stdout[result.stdout.index("after 120 s") :]
    assert all(host in table for host in ("node1@lvm", "node2@ceph", "node3@nfs", "node4@iscsi"))


def test_json_lines_are_the_envelopes_in_order_then_the_service_list():
    result = runner.invoke(app, ["simulate", NOT_READY, "--json"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    documents = [json.loads(line) for line in lines]

    *envelopes, last = documents
    assert all(set(envelope) == ENVELOPE_KEYS for envelope in envelopes)
    assert all(line == compact_json(document) for line, document in zip(lines, documents, strict=True))
    assert [e["timestamp"] for e in envelopes] == sorted(e["timestamp"] for e in envelopes)
    assert envelopes[0]["event_type"] == "volume.init.start" and envelopes[0]["publisher_id"] == "volume.node1@lvm"
    assert [row["host"] for row in last["service_list"]] == ["node1@lvm", "node2@ceph", "node3@nfs", "node4@iscsi"]
    assert last["service_list"][1]["lifecycle"] == "failed_permanent"


def test_the_same_scenario_and_seed_give_byte_identical_output(tmp_path: Path):
    path = jittered(tmp_path, seed=7)
    for mode in (["--json"], []):
        first = runner.invoke(app, ["simulate", path, *mode])
        second = runner.invoke(app, ["simulate", path, *mode])
        assert first.exit_code == second.exit_code == 0
        assert first.stdout_bytes == second.stdout_bytes


def test_another_seed_gives_other_message_ids_and_other_jittered_waits(tmp_path: Path):
    seven = runner.invoke(app, ["simulate", jittered(tmp_path, 7), "--json"]).stdout.splitlines()
    eight = runner.invoke(app, ["simulate", jittered(tmp_path, 8), "--json"]).stdout.splitlines()
    ids = [{json.loads(line)["message_id"] for line in lines[:-1]} for lines in (seven, eight)]
    assert not ids[0] & ids[1]
    retries = [
        [json.loads(line)["timestamp"] for line in lines[:-1] if "init.retry" in line] for lines in (seven, eight)
    ]
    assert retries[0] != retries[1]


def test_plot_writes_the_timeline_picture(tmp_path: Path):
    for name in ("timeline.svg", "timeline.html"):
        target = tmp_path / name
        result = runner.invoke(app, ["simulate", NOT_READY, "--json", "--plot", str(target)])
        assert result.exit_code == 0, result.output
        assert "node2@ceph" in target.read_text(encoding="utf-8")
        assert result.stderr == f"wrote {target}\n"
        assert json.loads(result.stdout.splitlines()[-1])["service_list"]  # stdout stays pure JSON lines


def test_a_bad_file_is_one_plain_line_on_stderr_and_exit_2(tmp_path: Path):
    path = tmp_path / "scenario.yaml"
    path.write_text("duration: 60\nservices: [{host: a@b, binary: volume, driver: {attempts: [okk]}}]\n")
    code, out, err = simulate(str(path))
    assert code == 2
    assert out == ""
    assert err == (
        f"error: {path}: services[0].driver.attempts[0]: 'okk' is not one of ok, recoverable, config_error, "
        "not_supported, missing_library, import_error, hang\n"
    )


def test_a_plot_format_that_cannot_be_written_is_refused_before_anything_runs(tmp_path: Path):
    code, out, err = simulate(NOT_READY, "--plot", str(tmp_path / "timeline.pdf"))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"error: plot '{tmp_path / 'timeline.pdf'}': unknown format '.pdf'; use .svg, .html or .png"
    ]
    assert not (tmp_path / "timeline.pdf").exists()
