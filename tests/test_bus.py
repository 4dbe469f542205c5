"""Notifications on a real RabbitMQ, read back by a real oslo.messaging notification listener.

The broker is Debian's rabbitmq-server, started by the module on a loopback port of its own
(rabbit_server.py); the engines run in virtual time, so only the bus is real. Queues are
declared durable on both sides (``amqp_durable_queues``), so what is sent while the listener
reconnects after the broker's restart waits in its queue.
"""

from __future__ import annotations

import inspect
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kombu.exceptions import OperationalError
from rabbit_server import Broker, rabbitmq_installed, rabbitmq_server, sweep
from support import Harness, seconds_until

from statecore import Engine, MemorySink
from statecore.bus import MessagingSink
from statecore.errors import MissingExtra
from statecore.live import RunConfig, build_engine
from statecore.settings import Settings
from statecore.store import open_store
from statecore.testing import ScriptedDriver

oslo_messaging = pytest.importorskip("oslo_messaging")
cfg = pytest.importorskip("oslo_config.cfg")

DURABLE = {"amqp_durable_queues": True}
WAIT = 30.0
"""Seconds a test waits for the listener, at most; a healthy broker hands messages over in milliseconds."""


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    if not rabbitmq_installed():
        pytest.skip("needs Debian's rabbitmq-server package")
    with rabbitmq_server() as started:
        yield started


class Received:
    """A notification listener's endpoint: every message, as (priority, message) in arrival order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._arrived = threading.Condition()

    def _keep(self, priority: str, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        message = {"publisher_id": publisher_id, "event_type": event_type, "priority": priority, "payload": payload}
        with self._arrived:
            self.messages.append((priority, {**message, **metadata}))
            self._arrived.notify_all()

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        self._keep("INFO", publisher_id, event_type, payload, metadata)

    def warn(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        self._keep("WARN", publisher_id, event_type, payload, metadata)

    def error(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any) -> None:
        self._keep("ERROR", publisher_id, event_type, payload, metadata)

    def distinct(self) -> set[str]:
        with self._arrived:
            return {message["message_id"] for _, message in self.messages}

    def wait_for(self, ids: set[str]) -> None:
        self.wait_until(lambda: ids <= self.distinct(), f"{len(ids)} notifications")

    def wait_until(self, predicate: Callable[[], bool], what: str) -> None:
        with self._arrived:
            assert self._arrived.wait_for(predicate, timeout=WAIT), f"not within {WAIT:g} s: {what}"


@contextmanager
def listening(url: str, topic: str = "notifications") -> Iterator[Received]:
    """A listener on ``topic``, one message at a time, so arrival order is the queue's order."""
    conf = cfg.ConfigOpts()
    conf([], project="statecore-test", default_config_files=[], default_config_dirs=[])
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    conf.set_override("amqp_durable_queues", True, group="oslo_messaging_rabbit")
    endpoint = Received()
    targets = [oslo_messaging.Target(topic=topic)]
    listener = oslo_messaging.get_notification_listener(transport, targets, [endpoint], executor="threading")
    conf.set_override("executor_thread_pool_size", 1)  # registered by the listener
    listener.start()
    try:
        yield endpoint
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()


@pytest.fixture
def received(broker: Broker) -> Iterator[Received]:
    with listening(broker.url) as endpoint:
        yield endpoint


class Recording(MessagingSink):
    """The sink, with what it sent in the order it sent it, and how long each try took."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, options=DURABLE, **options)
        self.sent: list[str] = []
        self.tries: list[tuple[float, bool]] = []  # (seconds, taken)

    def emit(self, envelope: Mapping[str, Any]) -> None:
        began = time.monotonic()
        try:
            super().emit(envelope)
        except Exception:
            self.tries.append((time.monotonic() - began, False))
            raise
        self.tries.append((time.monotonic() - began, True))
        self.sent.append(envelope["message_id"])


@pytest.fixture
def sink(broker: Broker) -> Iterator[Recording]:
    made = Recording(broker.url)
    yield made
    made.close()


def sent_in_outbox_order(sink: Recording, envelopes: Sequence[Mapping[str, Any]]) -> None:
    """Across priorities too: the sink sends in the order the outbox holds (each priority's queue on
    the broker then keeps its own order; consumers must not infer one across queues)."""
    assert without_repeats(sink.sent) == [e["message_id"] for e in envelopes]


def without_repeats(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def fleet(h: Harness) -> None:
    """Volumes that fail and recover, one that never works, and backups: every priority on the bus."""
    for n in range(4):
        h.add(f"node{n}@lvm", "volume", h.driver("recoverable", "recoverable", "ok"))
    slow = h.driver(*["recoverable"] * 8, "ok")
    h.add("node8@slow", "volume", slow, reinit_driver_count=0, reinit_backoff_max=16)  # down after its grace
    h.add("node9@bad", "volume", h.driver("config_error"))
    for n in range(2):
        h.add(f"node{n}", "backup", h.driver("recoverable", "ok"))


def without_duplicates(messages: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    first = []
    for _, message in messages:
        if message["message_id"] not in seen:
            seen.add(message["message_id"])
            first.append(message)
    return first


def in_order_per_queue(sent: list[Any], messages: list[tuple[str, dict[str, Any]]]) -> None:
    """RabbitMQ keeps each queue's order (one per priority), not an order across queues."""
    for priority in ("INFO", "WARN", "ERROR"):
        arrived = [m["message_id"] for m in without_duplicates([p for p in messages if p[0] == priority])]
        assert arrived == [e["message_id"] for e in sent if e["priority"] == priority]


def test_each_notification_arrives_as_the_documented_envelope(sink, received):
    h = Harness(sinks=[sink])
    fleet(h)
    h.engine.start()
    h.engine.advance(200)
    sent = h.sink.envelopes
    received.wait_for({e["message_id"] for e in sent})

    assert {e["priority"] for e in sent} == {"INFO", "WARN", "ERROR"}
    by_id = {message["message_id"]: message for _, message in received.messages}
    assert [by_id[e["message_id"]] for e in sent] == [dict(e) for e in sent]  # every field, the id kept
    in_order_per_queue(sent, received.messages)
    sent_in_outbox_order(sink, sent)
    assert h.engine.notifier.waiting()[1][:2] == ("messaging", 0)


def test_notifications_wait_out_a_broker_outage_and_then_arrive_in_order(broker, sink, received, capsys):
    h = Harness(sinks=[sink])
    fleet(h)
    h.engine.start()
    h.engine.advance(1)
    before = list(h.sink.envelopes)
    received.wait_for({e["message_id"] for e in before})

    broker.stop()
    stopped = time.monotonic()
    for n in range(4):  # transitions go on while the bus is away
        h.engine.disable(f"node{n}@lvm", "maintenance")
        h.engine.advance(10)
        h.engine.enable(f"node{n}@lvm")
    during = h.sink.envelopes[len(before) :]
    waiting = dict((name, count) for name, count, _ in h.engine.notifier.waiting())
    assert len(during) >= 8 and waiting["messaging"] == len(during) and waiting["MemorySink"] == 0
    restart = broker.start()
    outage = time.monotonic() - stopped

    for _ in range(20):  # the outbox's backoff is virtual time: advance until the bus has taken it all
        if dict((name, count) for name, count, _ in h.engine.notifier.waiting())["messaging"] == 0:
            break
        h.engine.advance(30)
    sent = h.sink.envelopes
    received.wait_for({e["message_id"] for e in sent})

    by_id = {message["message_id"]: message for _, message in received.messages}
    assert [by_id[e["message_id"]] for e in sent] == [dict(e) for e in sent]
    in_order_per_queue(sent, received.messages)
    sent_in_outbox_order(sink, sent)
    copies = Counter(message["message_id"] for _, message in received.messages)
    duplicates = {mid: n - 1 for mid, n in copies.items() if n > 1}
    assert set(copies) == {e["message_id"] for e in sent}  # a duplicate is only ever a re-send of one sent
    assert h.engine.store.pending("messaging") == []
    with capsys.disabled():
        print(
            f"\nbus outage: {len(sent)} notifications sent, {len(received.messages)} received "
            f"({len(copies)} distinct, {sum(duplicates.values())} duplicates), {len(during)} made while "
            f"the broker was down for {outage:.1f} s (restart {restart:.1f} s)"
        )


def test_run_configuration_sends_to_the_bus(broker, received, tmp_path):
    config = RunConfig.model_validate(
        {
            "store": "memory",
            "notifications": None,
            "messaging": {"transport_url": broker.url, "topics": ["notifications"], "options": DURABLE},
            "services": [{"host": "cfg@lvm", "binary": "volume", "driver": "statecore.testing:ScriptedDriver"}],
        }
    )
    engine = build_engine(config, tmp_path)
    engine.start()
    try:
        row = engine.disable("cfg@lvm", "maintenance")
        received.wait_until(lambda: any(m["payload"]["reason"] == "maintenance" for _, m in received.messages),
                            "the disable on the bus")  # fmt: skip
    finally:
        engine.shutdown()
    arrived = [m for _, m in received.messages if m["publisher_id"] == "volume.cfg@lvm"]
    assert row.disabled_reason == "maintenance"
    kinds = [m["event_type"] for m in arrived]
    assert kinds[0] == "volume.init.start" and "volume.service.disable" in kinds


def test_a_send_to_a_dead_broker_fails_at_once_and_raises():
    sink = MessagingSink("rabbit://guest:guest@127.0.0.1:9/", options=DURABLE)  # discard: nobody listens
    envelope = {"message_id": "m", "publisher_id": "p", "event_type": "e", "priority": "INFO", "payload": {}}
    started = time.monotonic()
    with pytest.raises((oslo_messaging.MessageDeliveryFailure, OperationalError)):
        sink.emit(envelope)
    assert time.monotonic() - started < 5
    sink.close()


def test_the_sink_reads_no_configuration_file_and_sets_its_options_before_the_transport(tmp_path, monkeypatch):
    (tmp_path / ".statecore").mkdir()
    (tmp_path / ".statecore" / "statecore.conf").write_text(  # where oslo.config looks for project statecore
        "[DEFAULT]\ncontrol_exchange = elsewhere\n[oslo_messaging_rabbit]\namqp_durable_queues = false\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    sink = MessagingSink("rabbit://guest:guest@127.0.0.1:9/", timeout=3, options=DURABLE)
    conf = sink.transport.conf  # what the driver was built with
    assert conf.control_exchange == "openstack"
    assert conf.oslo_messaging_rabbit.amqp_durable_queues is True
    assert conf.oslo_messaging_rabbit.heartbeat_timeout_threshold == 3
    sink.close()


def test_kombu_urls_take_rabbits_options_and_other_transports_refuse_them():
    sink = MessagingSink("kombu://guest:guest@127.0.0.1:9/", options=DURABLE)  # kombu:// loads rabbit's driver
    assert sink.transport.conf.oslo_messaging_rabbit.amqp_durable_queues is True
    sink.close()
    with pytest.raises(ValueError, match=r"options \['amqp_durable_queues'\]: transport 'fake' has none"):
        MessagingSink("fake://", options=DURABLE)
    with pytest.raises(ValueError, match="heartbeat_timeout_threshold must be >= 1"):
        MessagingSink("rabbit://g:g@127.0.0.1:9/", options={"heartbeat_timeout_threshold": 0})


def test_the_one_private_call_the_sink_makes_has_the_signature_it_relies_on():
    """oslo.messaging's own notification driver sends through it; pyproject.toml bounds the version."""
    parameters = list(inspect.signature(oslo_messaging.Transport._send_notification).parameters)
    assert parameters == ["self", "target", "ctxt", "message", "version", "retry"]


def test_without_the_messaging_extra_the_sink_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "oslo_messaging", None)  # what an install without the extra has
    with pytest.raises(MissingExtra, match=r"the messaging extra \(oslo_messaging is missing\): pip install"):
        MessagingSink("rabbit://guest:guest@127.0.0.1:9/")


def test_a_broker_ends_with_the_test_run_that_started_it_and_the_next_run_sweeps_its_files(broker):
    """A test run ended by SIGTERM runs no clean-up: the kernel ends its broker and epmd, and the next
    ``rabbitmq_server`` removes the base directory it left."""
    tests = str(Path(__file__).parent)
    script = (
        f"import sys, time; sys.path.insert(0, {tests!r}); from rabbit_server import rabbitmq_server\n"
        "with rabbitmq_server() as b:\n"
        "    print(b.root, b._node.pid, b._epmd.pid, flush=True)\n"
        "    time.sleep(120)\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    root, *pids = run.stdout.readline().split()
    run.send_signal(signal.SIGTERM)
    run.wait(10)
    run.stdout.close()
    gone = seconds_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), 10, "broker and epmd gone")
    assert Path(root).is_dir() and gone < 10  # left behind: nobody ran the clean-up
    assert Path(root) in sweep(Path(root).parent) and not Path(root).exists()
    assert Path(broker.root).is_dir()  # a live run's broker (this module's) is left alone


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n{line}")


def copies_of(received: Received, ids: Sequence[str]) -> Counter[str]:
    """How many times each of ``ids`` arrived (a topic of its own: nothing else arrives there)."""
    copies = Counter(message["message_id"] for _, message in received.messages)
    assert set(copies) == set(ids)  # a duplicate is only ever a re-send of one sent
    return copies


def real_engine(*sinks: Any, volumes: int = 1) -> Engine:
    engine = Engine(Settings(report_interval=0.5, service_down_time=5), sinks=list(sinks))
    for n in range(volumes):
        engine.add_service(f"node{n}@lvm", "volume", ScriptedDriver())
    return engine


def test_a_frozen_broker_fails_each_send_within_its_timeout_and_holds_no_other_sink(broker, capsys):
    steady, sink = MemorySink(), Recording(broker.url, topics=["statecore-frozen"], timeout=2)
    engine = real_engine(steady, sink)
    with listening(broker.url, "statecore-frozen") as got, engine:
        seconds_until(lambda: len(sink.sent) == 2, 10, "the init notifications on the bus")
        broker.freeze()  # SIGSTOP: its sockets stay open, nothing answers
        frozen = time.monotonic()
        try:
            for n in range(3):
                engine.disable("node0@lvm", f"maintenance {n}")
                engine.enable("node0@lvm")
            other = seconds_until(lambda: len(steady.envelopes) == 8, 2, "the other sink, the broker frozen")
            seconds_until(lambda: any(not taken for _, taken in sink.tries), 20, "a send to the frozen broker failing")
        finally:
            broker.freeze(False)
        thawed = time.monotonic() - frozen
        got.wait_for({e["message_id"] for e in steady.envelopes})
    failed = [seconds for seconds, taken in sink.tries if not taken]
    assert max(failed) < 2 * 2 + 5 + 1  # twice the socket timeout on an open connection, or kombu's 5 s connect
    assert other < 2 and engine.notifier.waiting()[1][1] == 0
    sent_in_outbox_order(sink, steady.envelopes)
    copies = copies_of(got, [e["message_id"] for e in steady.envelopes])
    report(capsys, f"frozen broker: {len(failed)} failed sends, the longest {max(failed):.1f} s (timeout 2 s); "
                   f"the other sink had its 6 in {other:.2f} s; frozen {thawed:.1f} s; {len(steady.envelopes)} "
                   f"sent, {sum(copies.values())} received ({len(copies)} distinct)")  # fmt: skip


def test_a_broker_killed_mid_send_loses_nothing_queued_or_in_flight(broker, capsys):
    """Real time: the delivery thread sends while admin actions go on; nobody consumes, so what the
    broker took waits in its durable queue when it is killed (SIGKILL), and must survive the restart."""
    steady, sink = MemorySink(), Recording(broker.url, topics=["statecore-killed"], timeout=2)
    engine = real_engine(steady, sink, volumes=4)
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.wait(0.005):
            engine.disable(f"node{n % 4}@lvm", "maintenance")
            engine.enable(f"node{n % 4}@lvm")
            n += 1

    with engine:
        worker = threading.Thread(target=churn)
        worker.start()
        try:
            seconds_until(lambda: len(sink.sent) >= 40, 10, "40 notifications taken by the broker")
            broker.kill()
            killed, taken = time.monotonic(), list(sink.sent)
            made = len(steady.envelopes)
            seconds_until(lambda: len(steady.envelopes) >= made + 20, 10, "transitions going on, the broker dead")
        finally:
            stop.set()
            worker.join(10)
        restart = broker.start()
        outage = time.monotonic() - killed
        with listening(broker.url, "statecore-killed") as got:
            got.wait_for({e["message_id"] for e in steady.envelopes})
    ids = [e["message_id"] for e in steady.envelopes]
    copies = copies_of(got, ids)
    assert set(taken) <= set(copies) and len(taken) >= 40  # queued, unconsumed, across the kill
    by_id = {message["message_id"]: message for _, message in got.messages}
    assert [by_id[i] for i in ids] == [dict(e) for e in steady.envelopes]
    assert [m for _, m in got.messages] == [by_id[m["message_id"]] for _, m in got.messages]  # copies identical
    in_order_per_queue(steady.envelopes, got.messages)
    sent_in_outbox_order(sink, steady.envelopes)
    failed = sum(not taken for _, taken in sink.tries)
    received = sum(copies.values())
    report(capsys, f"broker killed mid-send: {len(ids)} sent, {received} received ({len(copies)} distinct, "
                   f"{received - len(copies)} duplicates), {len(taken)} waiting unconsumed across the kill, "
                   f"{failed} failed sends; outage {outage:.1f} s (restart {restart:.1f} s)")  # fmt: skip


def test_a_restart_re_sends_what_was_never_acknowledged_with_the_same_message_ids(broker, tmp_path, monkeypatch,
                                                                                    capsys):  # fmt: skip
    db = str(tmp_path / "s.sqlite")
    store = open_store(db)
    monkeypatch.setattr(store, "acknowledge", lambda sink, ids: None)  # a crash before every acknowledgement
    first = Recording(broker.url, topics=["statecore-resent"])
    h = Harness(store=store, sinks=[first])
    fleet(h)
    h.engine.start()
    h.engine.advance(30)
    h.engine.shutdown()
    first.close()
    made = [e["message_id"] for e in h.sink.envelopes]
    assert [e["message_id"] for e in open_store(db).pending("messaging")] == made  # all still in the outbox

    second = Recording(broker.url, topics=["statecore-resent"])
    again = Harness(store=open_store(db), sinks=[second], seed=1)
    fleet(again)
    with listening(broker.url, "statecore-resent") as got:
        again.engine.start()  # the outbox re-sends from storage, ahead of anything new
        again.engine.advance(1)
        ids = without_repeats([*made, *(e["message_id"] for e in again.sink.envelopes)])
        got.wait_until(lambda: len(got.messages) >= len(ids) + len(made), f"{len(ids) + len(made)} messages")
        again.engine.shutdown()
    second.close()
    copies = copies_of(got, ids)
    assert second.sent[: len(made)] == made and all(copies[i] == 2 for i in made)
    firsts = {}
    for _, message in got.messages:  # each re-send is the same message, its message_id included
        assert firsts.setdefault(message["message_id"], message) == message
    assert again.engine.store.pending("messaging") == []
    report(capsys, f"restart without acknowledgements: {len(made)} sent by the first engine, re-sent from the "
                   f"SQLite outbox by the second; {sum(copies.values())} received ({len(copies)} distinct, "
                   f"{sum(copies.values()) - len(copies)} duplicates, each with its message_id)")  # fmt: skip
