"""Prometheus metrics, scraped and read back with prometheus-client's own parser."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_SUBMITTED
from fastapi.testclient import TestClient
from support import FlakySink, Harness, seconds_until

from statecore import Engine
from statecore.api import StaticTokenPolicy, StoreSource, create_app
from statecore.api.metrics import add_metrics
from statecore.live import ConfigFileError, build_engine, engine_metrics, load_run_config, metrics_server
from statecore.metrics import EngineMetrics, exposition
from statecore.settings import Settings
from statecore.store import StoreUnavailable, open_store
from statecore.testing import ScriptedDriver

parser = pytest.importorskip("prometheus_client.parser")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(metrics: EngineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return samples(exposition(metrics.registry)[0].decode())


def service(host: str, binary: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"host": host, "binary": binary, "zone": "nova", **more}.items()))


def metered(*sinks: object, **settings: object) -> tuple[Harness, EngineMetrics]:
    metrics = EngineMetrics()
    h = Harness(sinks=sinks, **settings)
    metrics.watch(h.engine)
    return h, metrics


def test_per_service_gauges_follow_the_service_list():
    h, metrics = metered()
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.add("node2@bad", "volume", h.driver("config_error"))
    h.add("node3@flaky", "volume", h.driver("recoverable", "recoverable", "ok"))
    h.add("bk1", "backup", h.driver("ok"))
    h.engine.start()
    h.engine.advance(2)
    got = scrape(metrics)

    for row in h.engine.service_list():
        labels = service(row.host, row.binary)
        assert got[("statecore_service_up", labels)] == (row.state == "up")
        assert got[("statecore_service_lifecycle", service(row.host, row.binary, lifecycle=row.lifecycle.value))] == 1
        assert sum(v for (name, lab), v in got.items() if name == "statecore_service_lifecycle" and
                   dict(lab)["host"] == row.host) == 1  # fmt: skip
        assert got[("statecore_service_attempts", labels)] == row.attempts
        assert got.get(("statecore_service_retries_left", labels)) == row.retries_left
        backend = got.get(("statecore_service_backend_up", labels))
        assert backend == (None if row.backend_state is None else float(row.backend_state == "up"))
    failed = service("node2@bad", "volume", lifecycle="failed_permanent")
    assert got[("statecore_service_lifecycle", failed)] == 1


def test_transitions_are_counted_by_event_type():
    h, metrics = metered()
    h.add("node1@lvm", "volume", h.driver("recoverable", "ok"))
    h.add("bk1", "backup", h.driver("ok"))
    h.engine.start()
    h.engine.advance(5)
    h.engine.disable("bk1", "maintenance")
    got = scrape(metrics)

    counted = {dict(labels)["event_type"]: value for (name, labels), value in got.items()
               if name == "statecore_transitions_total"}  # fmt: skip
    assert counted == Counter(h.sink.event_types())
    assert counted["backup.service.disable"] == 1


def test_transitions_are_counted_at_their_commit_with_no_outbox_row_of_their_own(tmp_path):
    h, metrics = metered(FlakySink(failures=1000), store=open_store(str(tmp_path / "s.sqlite")))
    h.add("node1@lvm", "volume", h.driver("recoverable", "ok"))
    h.engine.start()
    h.engine.advance(5)
    got = scrape(metrics)

    counted = {dict(labels)["event_type"]: value for (name, labels), value in got.items()
               if name == "statecore_transitions_total"}  # fmt: skip
    assert counted == Counter(h.sink.event_types())  # counted though the only other sink refuses them
    assert h.engine.notifier.names == ["MemorySink", "FlakySink"]
    assert {dict(labels)["sink"] for (name, labels) in got if name == "statecore_notifications_waiting"} == {
        "MemorySink", "FlakySink"}  # fmt: skip
    with sqlite3.connect(tmp_path / "s.sqlite") as db:  # one row per transition, for the refusing sink
        assert db.execute("SELECT sink, count(*) FROM statecore_outbox GROUP BY sink").fetchall() == [
            ("FlakySink", len(h.sink.envelopes))]  # fmt: skip


def test_notifications_waiting_and_their_age_show_a_sink_that_refuses():
    h, metrics = metered(FlakySink(failures=1000))
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(0)
    h.engine.advance(90)
    got = scrape(metrics)

    assert got[("statecore_notifications_waiting", (("sink", "FlakySink"),))] == len(h.sink.envelopes) > 0
    assert got[("statecore_notifications_oldest_waiting_seconds", (("sink", "FlakySink"),))] == 90
    assert got[("statecore_notifications_waiting", (("sink", "MemorySink"),))] == 0
    assert got[("statecore_notifications_oldest_waiting_seconds", (("sink", "MemorySink"),))] == 0


def test_store_errors_count_the_calls_that_raised(tmp_path):
    store = open_store(str(tmp_path / "s.sqlite"))
    metrics = EngineMetrics()
    engine = Engine.virtual_time(store=store)
    metrics.watch(engine)
    assert scrape(metrics)[("statecore_store_errors_total", ())] == 0
    with sqlite3.connect(tmp_path / "s.sqlite") as damage:
        damage.execute("DROP TABLE statecore_outbox")
    for _ in range(2):
        with pytest.raises(StoreUnavailable, match="no such table"):
            store.pending("metrics")
    assert scrape(metrics)[("statecore_store_errors_total", ())] == 2


def test_timer_lateness_is_observed_in_real_time():
    metrics = EngineMetrics()
    settings = Settings(report_interval=0.05, service_down_time=1)
    engine = Engine(settings)
    metrics.watch(engine)
    engine.add_service("node1@lvm", "volume", ScriptedDriver())
    blocked = threading.Event()

    def block(event: Any) -> None:
        """The scheduler's thread calls listeners: held 0.3 s on the blocker, it starts the next job late."""
        if event.job_id == "blocker":
            blocked.set()
            time.sleep(0.3)

    with engine:
        scheduler = engine.timers.scheduler
        scheduler.add_listener(block, EVENT_JOB_SUBMITTED)
        soon = datetime.now(UTC) + timedelta(seconds=0.2)
        scheduler.add_job(lambda: None, "date", run_date=soon, id="blocker")
        scheduler.add_job(lambda: None, "date", run_date=soon + timedelta(seconds=0.05), id="late")
        seconds_until(lambda: scheduler.get_job("late") is None, 10, "the late job")
        seconds_until(lambda: scrape(metrics)[("statecore_timer_lateness_seconds_count", ())] >= 5, 10, "5 jobs")
    got = scrape(metrics)
    count = got[("statecore_timer_lateness_seconds_count", ())]
    assert blocked.is_set() and 0.1 < got[("statecore_timer_lateness_seconds_sum", ())] < count
    assert got[("statecore_timer_lateness_seconds_bucket", (("le", "0.1"),))] < count  # one job started > 0.1 s late
    assert (
        got[("statecore_timer_lateness_seconds_bucket", (("le", "+Inf"),))]
        == got[("statecore_timer_lateness_seconds_count", ())]
    )


def test_serve_answers_get_metrics_from_the_store(tmp_path):
    h = Harness(store=open_store(str(tmp_path / "s.sqlite")), sinks=[FlakySink(failures=1000)])
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(1)
    app = create_app(StoreSource(h.engine.store), StaticTokenPolicy("secret"))
    add_metrics(app, h.engine.store, 60.0)
    answer = TestClient(app).get("/metrics")

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    lifecycle = h.engine.service("node1@lvm").lifecycle.value
    assert got[("statecore_service_lifecycle", service("node1@lvm", "volume", lifecycle=lifecycle))] == 1
    assert ("statecore_store_errors_total", ()) in got
    # the outbox, read from the store: what the alert on notifications waiting > 5 minutes needs
    assert got[("statecore_notifications_waiting", (("sink", "FlakySink"),))] == len(h.sink.envelopes) > 0
    oldest = datetime.fromisoformat(h.sink.envelopes[0]["timestamp"])
    age = got[("statecore_notifications_oldest_waiting_seconds", (("sink", "FlakySink"),))]
    assert abs(age - (datetime.now(UTC) - oldest).total_seconds()) < 60
    assert ("statecore_notifications_waiting", (("sink", "MemorySink"),)) not in got  # nothing waits for it


def test_the_memory_store_lists_its_outbox_like_the_database():
    h = Harness(sinks=[FlakySink(failures=1000)])
    h.add("node1@lvm", "volume", h.driver("ok"))
    h.engine.start()
    h.engine.advance(1)
    assert h.engine.store.waiting() == [("FlakySink", len(h.sink.envelopes), h.sink.envelopes[0]["timestamp"])]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_run_serves_metrics_at_the_configured_address(tmp_path):
    port = _free_port()
    (tmp_path / "run.toml").write_text(
        f'store = "memory"\nnotifications = ""\nmetrics = "127.0.0.1:{port}"\n'
        '[[services]]\nhost = "node1@lvm"\nbinary = "volume"\ndriver = "statecore.testing:ScriptedDriver"\n',
        encoding="utf-8",
    )
    config, base = load_run_config(tmp_path / "run.toml")
    metrics = engine_metrics(config)
    engine = build_engine(config, base, metrics=metrics)
    with metrics_server(metrics, config.metrics), engine:
        seconds_until(lambda: engine.service("node1@lvm").lifecycle.value == "up", 10, "node1@lvm up")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            got = samples(answer.read().decode())
    assert got[("statecore_service_up", service("node1@lvm", "volume"))] == 1
    assert got[("statecore_transitions_total", (("event_type", "volume.init.start"),))] == 1
    with pytest.raises(OSError):  # the server stopped with the block
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ('metrics = "9464"', "metrics"),
        ('[messaging]\ntopics = ["n"]', "messaging.transport_url"),
        ('[messaging]\ntransport_url = "rabbit://h/"\ndriver = "log"', "messaging.driver"),
        ('[messaging]\ntransport_url = "rabbit://h/"\ntopics = []', "messaging.topics"),
    ],
)
def test_bad_messaging_or_metrics_settings_are_refused_by_name(tmp_path, document, named):
    path = tmp_path / "run.toml"
    services = '[[services]]\nhost = "n@b"\nbinary = "volume"\ndriver = "statecore.testing:ScriptedDriver"\n'
    path.write_text(f"{document}\n{services}" if document.startswith("metrics") else f"{services}{document}\n")
    with pytest.raises(ConfigFileError, match=named.replace(".", r"\.")):
        load_run_config(path)


def test_a_transport_option_it_does_not_know_is_refused_by_name(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        '[[services]]\nhost = "n@b"\nbinary = "volume"\ndriver = "statecore.testing:ScriptedDriver"\n'
        '[messaging]\ntransport_url = "rabbit://g:g@127.0.0.1:9/"\noptions = {no_such_option = 1}\n'
    )
    config, base = load_run_config(path)
    with pytest.raises(ConfigFileError, match=r"messaging: .*no_such_option"):
        build_engine(config, base)
