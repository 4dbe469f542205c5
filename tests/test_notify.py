"""Notification envelopes and sinks: in order, never dropped, never blocking a transition."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from support import FlakySink, Harness, seconds_until

from statecore import Engine, JsonLinesSink, LoguruSink, MemorySink
from statecore.notify import Notifier
from statecore.settings import Settings
from statecore.testing import ScriptedDriver


def test_envelope_has_the_oslo_fields_and_the_contract_payload():
    h = Harness()
    h.add("node1@lvm", "volume", h.driver("recoverable", "ok"))
    h.engine.start()
    h.engine.advance(0)
    failure = h.sink.envelopes[1]

    assert set(failure) == {"message_id", "publisher_id", "event_type", "priority", "timestamp", "payload"}
    assert uuid.UUID(failure["message_id"]).version == 4
    assert (failure["publisher_id"], failure["priority"]) == ("volume.node1@lvm", "ERROR")
    assert failure["timestamp"] == "2026-01-01T00:00:00.000000Z"
    assert failure["payload"] == {
        "host": "node1@lvm",
        "binary": "volume",
        "zone": "nova",
        "from_state": "initializing",
        "to_state": "failed_recoverable",
        "event": "init_failed",
        "reason": "recoverable, retry allowed, grace open: ConnectionError: storage not reachable (attempt 1)",
        "error": {"type": "ConnectionError", "message": "storage not reachable (attempt 1)"},
        "attempt": 1,
        "retries_left": 3,
        "next_retry_at": "2026-01-01T00:00:01.000000Z",
    }


def test_failing_sink_does_not_hold_back_the_other_sinks():
    flaky, steady = FlakySink(failures=100), MemorySink()
    notifier = Notifier([flaky, steady])
    for n in range(3):
        notifier.publish({"n": n, "message_id": str(n)})
        assert notifier.deliver() is not None
    assert [e["n"] for e in steady.envelopes] == [0, 1, 2]
    assert flaky.envelopes == [] and notifier.pending() == 3


def test_failing_sink_backs_off_and_then_gets_everything_in_order():
    flaky = FlakySink(failures=4)
    notifier = Notifier([flaky])
    notifier.publish({"n": 0, "message_id": "0"})
    notifier.publish({"n": 1, "message_id": "1"})
    waits = [notifier.deliver() for _ in range(4)]
    assert waits == [0.5, 1.0, 2.0, 4.0]
    assert notifier.deliver() is None
    assert [e["n"] for e in flaky.envelopes] == [0, 1]


def test_sink_failures_are_retried_by_a_timer_even_when_nothing_else_happens():
    flaky = FlakySink(failures=6)
    h = Harness(sinks=[flaky], backup_periodic_initialization=False)
    h.add("bk1", "backup", h.driver("recoverable"))
    h.engine.start()
    h.engine.advance(0)
    assert h.lifecycle("bk1") == "failed_permanent" and flaky.envelopes == []

    h.engine.advance(60)  # no transition is due: only the notifier's retry job runs
    assert [e["event_type"] for e in flaky.envelopes] == ["backup.init.start", "backup.init.failure"]
    assert len(h.engine.history()) == 2


def refused(failures: int) -> tuple[FlakySink, Harness]:
    """A volume that comes up, with a sink that refuses its first ``failures`` notifications."""
    flaky = FlakySink(failures=failures)
    h = Harness(sinks=[flaky])
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    return flaky, h


def test_a_sink_in_its_backoff_is_not_offered_anything_however_many_transitions_happen():
    flaky, h = refused(1000)
    tried = flaky.calls
    for _ in range(5):  # ten transitions within the first backoff (0.5 s): none retries the sink
        h.engine.disable("node1@lvm", "maintenance")
        h.engine.enable("node1@lvm")
    assert flaky.calls == tried == 1
    h.engine.advance(0.5)  # its backoff is over: offered again once, by the retry timer
    assert flaky.calls == 2 and len(h.sink.envelopes) == 12


class HangingSink:
    """Blocks in ``emit`` until released, as a send to a frozen broker does."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.envelopes: list[Any] = []

    def emit(self, envelope: Any) -> None:
        self.release.wait(10)
        self.envelopes.append(envelope)


def test_a_hung_sink_holds_no_other_sink_in_real_time():
    hung, steady = HangingSink(), MemorySink()
    engine = Engine(Settings(report_interval=0.05, service_down_time=1), sinks=[hung, steady])
    engine.add_service("node1@lvm", "volume", ScriptedDriver())
    with engine:
        took = seconds_until(lambda: steady.event_types() == ["volume.init.start", "volume.init.success"], 5,
                             "the steady sink's notifications while the other hangs")  # fmt: skip
        engine.disable("node1@lvm", "maintenance")
        seconds_until(lambda: len(steady.envelopes) == 3, 5, "the disable while the other sink hangs")
        assert hung.envelopes == [] and took < 5
        hung.release.set()
    assert [e["message_id"] for e in hung.envelopes] == [e["message_id"] for e in steady.envelopes]


def test_delivered_notifications_leave_the_store_outbox_and_undelivered_ones_stay():
    _, h = refused(100)
    assert h.engine.store.pending("MemorySink") == []
    assert [e["event_type"] for e in h.engine.store.pending("FlakySink")] == [
        "volume.init.start",
        "volume.init.success",
    ]


def test_json_lines_sink_writes_one_object_per_line(tmp_path):
    path = tmp_path / "notifications.jsonl"
    h = Harness(sinks=[JsonLinesSink(path)])
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == h.sink.envelopes


def test_json_lines_sink_rotates_past_max_bytes_keeping_whole_lines_and_the_newest_backups(tmp_path):
    path = tmp_path / "notifications.jsonl"
    envelopes = [{"message_id": f"{n:04d}", "payload": "x" * 40} for n in range(60)]
    line_bytes = len(json.dumps(envelopes[0], sort_keys=True, separators=(",", ":"))) + 1
    sink = JsonLinesSink(path, max_bytes=5 * line_bytes, backups=2)
    for envelope in envelopes:
        sink.emit(envelope)

    files = [path.with_name(f"{path.name}.2"), path.with_name(f"{path.name}.1"), path]
    kept = [json.loads(line) for file in files for line in file.read_text().splitlines()]
    assert kept == envelopes[-len(kept) :]  # oldest first across the files, in order, none split
    assert len(kept) == 15 and all(file.stat().st_size <= 5 * line_bytes for file in files)
    assert not path.with_name(f"{path.name}.3").exists()


def test_json_lines_sink_refuses_a_negative_size_or_no_backup(tmp_path):
    with pytest.raises(ValueError, match="max_bytes -1 must be >= 0 and backups 3 >= 1"):
        JsonLinesSink(tmp_path / "n.jsonl", max_bytes=-1)
    with pytest.raises(ValueError, match="backups 0 >= 1"):
        JsonLinesSink(tmp_path / "n.jsonl", max_bytes=10, backups=0)


def test_loguru_sink_logs_at_the_notification_priority(caplog_loguru):
    h = Harness(sinks=[LoguruSink()], backup_periodic_initialization=False)
    h.add("bk1", "backup", h.driver("config_error"))
    h.engine.start()
    h.engine.advance(0)
    assert "INFO backup.init.start bk1: starting -> initializing" in caplog_loguru.text
    assert "ERROR backup.init.failure bk1: initializing -> failed_permanent" in caplog_loguru.text
