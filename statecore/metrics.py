"""Prometheus metrics (``pip install 'statecore[metrics]'``): what an operator alerts on.

Nothing here runs on the engine's hot path. Per-service gauges, the outbox and the
store's error count are read when Prometheus scrapes (``FleetCollector``); transitions
are counted as the notifier publishes them, right after each commit (an observer, not a
sink: no outbox row, no wait behind a slow sink, no second count after a restart); timer
lateness is measured by a listener on the scheduler, when a job is handed to its executor.
Names follow Prometheus' conventions: the ``statecore_`` prefix, base units (seconds),
``_total`` on counters. docs/metrics.md lists them with example alert rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from statecore.clock import RealClock
from statecore.errors import MissingExtra
from statecore.records import ServiceRow
from statecore.table import State

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as error:
    raise MissingExtra("metrics", "metrics", error.name) from None

if TYPE_CHECKING:
    from statecore.engine import Engine
    from statecore.store import Store

LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
"""Seconds: a healthy scheduler starts jobs within milliseconds; seconds mean a starved process."""

SERVICE_LABELS = ["host", "binary", "zone"]


class FleetCollector(Collector):
    """Read at scrape time: per-service gauges from ``rows``, the store's errors, and the
    notifications ``waiting`` in the outbox (per sink: how many, the oldest's timestamp) with how
    long the oldest has waited by ``now``."""

    def __init__(
        self,
        rows: Callable[[], list[ServiceRow]],
        store: Store,
        waiting: Callable[[], list[tuple[str, int, str | None]]],
        now: Callable[[], datetime],
    ) -> None:
        self.rows, self.store, self.waiting, self.now = rows, store, waiting, now

    def collect(self) -> Iterator[Metric]:
        yield from self._services()
        health = getattr(self.store, "health", None)  # a database store watches its calls (store/health.py)
        if health is not None:
            yield CounterMetricFamily("statecore_store_errors", "store calls that raised", value=health.errors)
        yield from self._outbox(self.waiting(), self.now())

    def _services(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily
        up = gauge("statecore_service_up", "1: heartbeat within service_down_time; 0: down", labels=SERVICE_LABELS)
        lifecycle = gauge("statecore_service_lifecycle", "1 for the lifecycle state the service is in, 0 for "
                          "the others", labels=[*SERVICE_LABELS, "lifecycle"])  # fmt: skip
        backend = gauge("statecore_service_backend_up", "volume services: 1 if the driver reports its backend "
                        "up, 0 if down", labels=SERVICE_LABELS)  # fmt: skip
        attempts = gauge("statecore_service_attempts", "init attempts in the current cycle", labels=SERVICE_LABELS)
        retries = gauge("statecore_service_retries_left", "volume services: init retries left before "
                        "failed_permanent", labels=SERVICE_LABELS)  # fmt: skip
        for row in self.rows():
            labels = [row.host, row.binary, row.zone]
            up.add_metric(labels, float(row.state == "up"))
            for state in State:
                lifecycle.add_metric([*labels, state.value], float(row.lifecycle is state))
            if row.backend_state is not None:
                backend.add_metric(labels, float(row.backend_state == "up"))
            attempts.add_metric(labels, row.attempts)
            if row.retries_left is not None:
                retries.add_metric(labels, row.retries_left)
        yield from (up, lifecycle, backend, attempts, retries)

    def _outbox(self, per_sink: list[tuple[str, int, str | None]], now: datetime) -> Iterator[Metric]:
        waiting = GaugeMetricFamily("statecore_notifications_waiting", "notifications queued for a sink, "
                                         "not delivered yet", labels=["sink"])  # fmt: skip
        oldest = GaugeMetricFamily("statecore_notifications_oldest_waiting_seconds", "age of the oldest "
                                        "notification waiting for a sink (0: none waits)", labels=["sink"])  # fmt: skip
        for sink, count, timestamp in per_sink:
            waiting.add_metric([sink], count)
            age = 0.0 if timestamp is None else (now - datetime.fromisoformat(timestamp)).total_seconds()
            oldest.add_metric([sink], max(age, 0.0))
        yield from (waiting, oldest)


class EngineMetrics:
    """An engine's metrics in a registry of their own; ``watch(engine)`` counts its transitions and
    adds what is read from the engine and its scheduler."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.transitions = Counter("statecore_transitions", "notified transitions and admin actions, by "
                                         "event type", ["event_type"], registry=self.registry)  # fmt: skip
        self.lateness = Histogram("statecore_timer_lateness_seconds", "how late timed jobs start, "
                                             "after the instant they were due", buckets=LATENESS_BUCKETS,
                                             registry=self.registry)  # fmt: skip
        self._now: Callable[[], datetime] | None = None

    def watch(self, engine: Engine) -> None:
        from apscheduler.events import EVENT_JOB_SUBMITTED

        self._now = engine.clock.now
        engine.notifier.observe(self._published)
        engine.timers.scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        collector = FleetCollector(engine.service_list, engine.store, engine.notifier.waiting, engine.clock.now)
        self.registry.register(collector)

    def _published(self, envelope: Mapping[str, Any]) -> None:
        self.transitions.labels(envelope["event_type"]).inc()

    def _submitted(self, event: Any) -> None:
        """APScheduler's ``JobSubmissionEvent``: the instants the job was due (several when coalesced)."""
        if self._now is not None and event.scheduled_run_times:
            self.lateness.observe(max((self._now() - min(event.scheduled_run_times)).total_seconds(), 0.0))


def store_registry(store: Store, service_down_time: float | None) -> CollectorRegistry:
    """``statecore serve``'s metrics: every host's services in the store, the store's errors, and the
    outbox's undelivered notifications (sinks with none are not listed: serve does not know them)."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: store.fleet(service_down_time), store, store.waiting, RealClock().now))
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text a scrape gets, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
