"""A plain simulator of the same contract, for the simulator's benchmark: what the work costs
with no state machine library, no scheduler, no store and no engine.

It reads the same scenario files (``statecore.sim.scenario``) and runs them on one heap of
(instant, kind, sequence) entries, services as slotted records, guards as if-statements, and
the contract's own formulas for backoff (``statecore.backoff``) and options
(``Settings.init_timeout_for``). Each transition makes a notification envelope, and the run's
output is those envelopes as JSON lines, as ``statecore simulate --json`` prints them. Kinds
due at one instant run in the engine's order (``SAME_INSTANT_ORDER``). It is a yardstick, not a
second implementation: tests/reference_model.py is the model the engine is checked against.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from statecore.backoff import backoff_delay, base_delay, retry_rng
from statecore.clock import DEFAULT_VIRTUAL_START
from statecore.settings import Settings
from statecore.sim.scenario import DriverScript, Scenario
from statecore.timers import SAME_INSTANT_ORDER, JobKind

RANK = {kind: rank for rank, kind in enumerate(SAME_INSTANT_ORDER)}
UNRECOVERABLE = ("config_error", "not_supported", "missing_library", "import_error")


class Svc:
    __slots__ = ("attempt", "backend", "binary", "blocked", "calls", "deadline", "host", "initialized", "last_delay",
                 "last_ok", "next_retry", "polls", "retry_token", "script", "settings", "state", "token", "total",
                 "working")  # fmt: skip

    def __init__(self, host: str, binary: str, settings: Settings, script: DriverScript) -> None:
        self.host, self.binary, self.settings, self.script = host, binary, settings, script
        self.state, self.attempt, self.total, self.token, self.retry_token = "starting", 0, 0, 0, 0
        self.calls = self.polls = 0
        self.initialized, self.working, self.blocked = False, True, False
        self.last_ok, self.deadline, self.next_retry = 0.0, None, None
        self.last_delay: float | None = None
        self.backend: str | None = None


class PlainSimulation:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.start = scenario.start or DEFAULT_VIRTUAL_START
        self.settings = scenario.engine_settings()
        self.ids = random.Random(scenario.seed)
        self.heap: list[tuple[float, int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.sequence = 0
        self.now = 0.0
        self.envelopes: list[dict[str, Any]] = []
        self.services = {
            m.host: Svc(m.host, m.spec.binary, self.settings.with_overrides(m.spec.options or None), m.spec.driver)
            for m in scenario.members()
        }

    def push(self, at: float, kind: JobKind, action: Callable[..., None], *args: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (at, RANK[kind], self.sequence, action, args))

    def run(self) -> list[str]:
        for service in self.services.values():
            self.begin(service)
        intervals = {(s.settings.report_interval, JobKind.REPORT, None) for s in self.services.values()}
        intervals |= {(_caps(s), JobKind.CAPS, s.binary) for s in self.services.values()}
        for seconds, kind, binary in intervals:
            self.push(seconds, kind, self.periodic, seconds, kind, binary)
        for event in self.scenario.events:
            self.push(event.at, JobKind.SAMPLE, self.operator, event.host, event.do, event.reason)
        end = self.scenario.duration
        while self.heap and self.heap[0][0] <= end:
            self.now, _, _, action, args = heapq.heappop(self.heap)
            action(*args)
        return [json.dumps(envelope, sort_keys=True) for envelope in self.envelopes]

    # -- transitions ------------------------------------------------------------------------------

    def move(self, s: Svc, event: str, to: str, what: str, priority: str, reason: str) -> None:
        moment = self.start + timedelta(seconds=self.now)
        self.envelopes.append({
            "message_id": f"{self.ids.getrandbits(128):032x}", "event_type": f"{s.binary}.{what}",
            "priority": priority, "timestamp": _iso(moment),
            "payload": {"host": s.host, "binary": s.binary, "event": event, "from_state": s.state, "to_state": to,
                        "reason": reason, "attempt": s.attempt, "next_retry_at": None if s.next_retry is None
                        else _iso(self.start + timedelta(seconds=s.next_retry))},
        })  # fmt: skip
        s.state = to

    def begin(self, s: Svc) -> None:
        if not s.script.supported:
            self.move(s, "start", "failed_permanent", "init.failure", "ERROR", "driver not supported")
            return
        s.last_ok = self.now
        self.arm_expiry(s)
        self.move(s, "start", "initializing", "init.start", "INFO", "driver loaded; first attempt")
        self.attempt(s)

    def attempt(self, s: Svc) -> None:
        s.attempt, s.total, s.token, s.next_retry = s.attempt + 1, s.total + 1, s.token + 1, None
        outcome = s.script.attempts[min(s.calls, len(s.script.attempts) - 1)]
        s.calls += 1
        s.working = outcome in ("ok", "hang")
        self.push(self.now + s.settings.init_timeout_for(s.binary), JobKind.TIMEOUT, self.finish, s, s.token, "timeout")
        if outcome != "hang":
            self.push(self.now + s.script.init_seconds, JobKind.OUTCOME, self.finish, s, s.token, outcome)

    def finish(self, s: Svc, token: int, outcome: str) -> None:
        if token != s.token or s.state != "initializing":
            return
        s.token += 1  # the other of outcome and timeout is stale now
        if outcome == "ok":
            self.live(s, "init_succeeded", "init.success", "driver initialized")
        elif outcome in UNRECOVERABLE:
            self.move(s, "init_failed", "failed_permanent", "init.failure", "ERROR", f"unrecoverable: {outcome}")
        elif not self.retry_allowed(s, s.attempt):
            self.move(s, "init_failed", "failed_permanent", "init.failure", "ERROR", "no retry allowed")
        else:
            to = "failed_recoverable" if self.now <= s.last_ok + s.settings.service_down_time else "down"
            self.arm_retry(s)
            self.move(s, "init_failed", to, "init.failure", "ERROR", f"recoverable: {outcome}")

    def live(self, s: Svc, event: str, what: str, reason: str) -> None:
        s.initialized, s.last_ok = True, self.now
        self.arm_expiry(s)
        if s.binary == "volume":
            self.push(self.now, JobKind.STATS, self.poll, s)
        self.move(s, event, "up", what, "INFO", reason)

    def retry_allowed(self, s: Svc, attempt: int) -> bool:
        if s.binary == "backup":
            return s.settings.backup_periodic_initialization
        return s.settings.reinit_driver_count == 0 or attempt < 1 + s.settings.reinit_driver_count

    def arm_retry(self, s: Svc) -> None:
        settings = s.settings
        if s.binary == "backup":
            delay = settings.periodic_interval
        elif settings.reinit_backoff_jitter == "none":
            delay = base_delay(s.attempt, settings.reinit_backoff_max)
        else:
            rng = retry_rng(settings.reinit_backoff_seed, f"volume/{s.host}", s.attempt)
            delay = backoff_delay(s.attempt, settings.reinit_backoff_max, settings.reinit_backoff_jitter, rng,
                                  s.last_delay)  # fmt: skip
        s.last_delay, s.next_retry, s.retry_token = delay, self.now + delay, s.retry_token + 1
        self.push(s.next_retry, JobKind.RETRY, self.retry, s, s.retry_token)

    def retry(self, s: Svc, token: int) -> None:
        if token == s.retry_token and s.state in ("failed_recoverable", "down"):
            kind = "backoff retry" if s.binary == "volume" else "periodic re-init"
            self.move(s, "retry", "initializing", "init.retry", "INFO", f"{kind} {s.attempt}")
            self.attempt(s)

    def arm_expiry(self, s: Svc) -> None:
        s.deadline = s.last_ok + s.settings.service_down_time
        self.push(s.deadline, JobKind.WATCHDOG, self.expire, s)

    def expire(self, s: Svc) -> None:
        if s.state not in ("up", "failed_recoverable") or s.deadline is None or self.now < s.deadline:
            return  # an older deadline (heartbeats moved it), or the attempt decides
        if self.now < s.last_ok + s.settings.service_down_time:
            self.arm_expiry(s)
            return
        s.deadline = None
        self.move(s, "heartbeat_expired", "down", "service.down", "WARN", "no heartbeat")

    # -- periodic jobs and operator events ------------------------------------------------------

    def periodic(self, seconds: float, kind: JobKind, binary: str | None) -> None:
        self.push(self.now + seconds, kind, self.periodic, seconds, kind, binary)
        for s in self.services.values():
            if kind is JobKind.REPORT and s.settings.report_interval == seconds:
                self.report(s)
            elif kind is JobKind.CAPS and s.binary == binary and _caps(s) == seconds and s.state == "up":
                self.capabilities(s)

    def report(self, s: Svc) -> None:
        if not s.initialized or s.blocked or not s.working:
            return
        if s.state == "up":
            s.last_ok = self.now
            if s.deadline is None:
                self.arm_expiry(s)
        elif s.state == "down":
            self.live(s, "heartbeat", "service.up", "heartbeat recorded again")

    def capabilities(self, s: Svc) -> None:
        if s.working:
            if s.binary == "volume":
                self.poll(s)
        elif self.retry_allowed(s, 1):
            s.initialized, s.backend, s.attempt, s.last_delay, s.last_ok = False, None, 1, None, self.now
            self.arm_expiry(s)
            self.arm_retry(s)
            self.move(s, "driver_lost", "failed_recoverable", "driver.lost", "ERROR", "is_working() returned false")
        else:
            s.initialized = False
            self.move(s, "driver_lost", "failed_permanent", "driver.lost", "ERROR", "is_working() returned false")

    def poll(self, s: Svc) -> None:
        if s.state == "up":
            s.backend = s.script.backend_state[min(s.polls, len(s.script.backend_state) - 1)]
            s.polls += 1

    def operator(self, host: str, do: str, reason: str | None) -> None:
        s = self.services[host]
        if do in ("heartbeat_fail", "heartbeat_restore"):
            s.blocked = do == "heartbeat_fail"
        elif do == "driver_lost":
            s.working = False
        elif do in ("disable", "enable"):
            self.move(s, do, s.state, f"service.{do}", "INFO", reason or f"{do}d by admin")
        elif s.state in ("failed_permanent", "failed_recoverable", "down"):
            s.attempt, s.last_delay, s.initialized, s.backend, s.last_ok = 0, None, False, None, self.now
            self.arm_expiry(s)
            self.move(s, "reset", "initializing", "init.reset", "INFO", reason or "reset by admin")
            self.attempt(s)


def _caps(s: Svc) -> float:
    return s.settings.backend_stats_polling_interval if s.binary == "volume" else s.settings.periodic_interval


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
