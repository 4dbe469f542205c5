"""The liveness boundary of BEHAVIOR.md section 5, at its exact instant, for both binaries (issue 18).

A service is alive, and the grace window of ``failed_recoverable`` open, while
``now - last_ok <= service_down_time``; ``heartbeat_expired`` fires at exactly
``last_ok + service_down_time``. Jobs due at one instant run one at a time in
(kind, id) order, the queue read again after each, and the expiry watchdog comes
last: so at that instant an attempt's failure still lands in ``failed_recoverable``
and the watchdog then takes the service ``down``, and a heartbeat due then keeps an
``up`` service up.

Every scenario runs on the engine (virtual time, public API) and on the reference
model side by side; both must give the whole expected timeline.
"""

from __future__ import annotations

from typing import Any

import pytest
from reference_model import DriverKnobs, Options, ReferenceModel, Result, ServiceModel
from support import BlockingHeartbeats, Harness

from statecore.testing import Outcome

HOSTS = {"volume": "node1@lvm", "backup": "node1"}
MODEL_RESULT: dict[str, Result] = {"ok": "ok", "recoverable": "fail", "hang": "fail", "config_error": "config"}
"""A scripted outcome as the model's driver knobs say it (a hang's result is never delivered)."""

Timeline = list[tuple[float, str, str, str]]


class Run:
    """One service on a virtual-time engine and on the reference model, advanced in lockstep."""

    def __init__(self, binary: str, *outcomes: Outcome, **settings: Any) -> None:
        self.binary, self.host = binary, HOSTS[binary]
        self.store = BlockingHeartbeats()
        self.h = Harness(store=self.store, **settings)
        self.driver = self.h.add(self.host, binary, self.h.driver(*outcomes))
        self.service = ServiceModel(binary, _model_options(self.h, binary), _model_knobs(outcomes))
        self.model = ReferenceModel({binary: self.service})
        self.model_timeline: Timeline = []
        self._seen = 0

    def start(self) -> Run:
        self.h.engine.start()
        self.model.start()
        self._collect()
        return self

    def advance(self, seconds: int) -> None:
        """Both sides run every job due up to now + ``seconds`` (the current instant included)."""
        self.h.engine.advance(seconds)
        target = self.model.now + seconds
        self.model.advance(0)
        self._collect()
        while self.model.now < target:
            self.model.advance(1)
            self._collect()

    def block_heartbeats(self, blocked: bool) -> None:
        sid = f"{self.binary}/{self.host}"
        (self.store.blocked.add if blocked else self.store.blocked.discard)(sid)
        self.service.driver.heartbeats_blocked = blocked

    def timeline(self) -> Timeline:
        return self.h.timeline(self.host)

    def lifecycle(self) -> str:
        return self.h.lifecycle(self.host)

    def errors(self) -> list[str | None]:
        """The error type of every init.failure, in order."""
        return [
            (e["payload"]["error"] or {}).get("type")
            for e in self.h.sink.envelopes
            if e["event_type"] == f"{self.binary}.init.failure"
        ]

    def assert_timeline(self, expected: Timeline, state: str) -> None:
        """The model first (the expectation is the contract's reading), then the engine."""
        assert self.model_timeline == expected, "reference model"
        assert self.service.state == state, "reference model"
        assert self.timeline() == expected, "engine"
        assert self.lifecycle() == state, "engine"

    def _collect(self) -> None:
        notes = self.service.notes[self._seen :]
        self._seen += len(notes)
        self.model_timeline += [(self.model.now, n.event_type, n.from_state, n.to_state) for n in notes]


def _whole(seconds: float) -> int:
    assert seconds == int(seconds), f"the reference model counts whole seconds, not {seconds}"
    return int(seconds)


def _model_options(h: Harness, binary: str) -> Options:
    s = h.engine.settings
    return Options(
        report_interval=_whole(s.report_interval),
        service_down_time=_whole(s.service_down_time),
        stats_interval=_whole(s.backend_stats_polling_interval),
        periodic_interval=_whole(s.periodic_interval),
        init_timeout=_whole(s.init_timeout_for(binary)),
        reinit_driver_count=s.reinit_driver_count,
        reinit_backoff_max=_whole(s.reinit_backoff_max),
        backup_periodic_initialization=s.backup_periodic_initialization,
    )


def _model_knobs(outcomes: tuple[Outcome, ...]) -> DriverKnobs:
    """The scripted driver's attempts (the last one repeats) as the model's knobs."""
    *script, last = outcomes or ("ok",)
    assert last != "hang", "the model's knobs cannot repeat a hang"
    return DriverKnobs(
        result=MODEL_RESULT[last],
        results=[MODEL_RESULT[o] for o in script],
        one_off=[None if o == "hang" else 0 for o in script],
    )


def _moves(binary: str, *rows: tuple[float, str, str, str]) -> Timeline:
    return [(t, f"{binary}.{kind}", src, dst) for t, kind, src, dst in rows]


# -- an attempt that fails at exactly last_ok + service_down_time -------------------------------------

FAILS_FOUR_TIMES: tuple[Outcome, ...] = ("recoverable", "recoverable", "recoverable", "recoverable", "ok")
FAILS_THREE_TIMES: tuple[Outcome, ...] = ("recoverable", "recoverable", "recoverable", "ok")

RETRY_AT_THE_BOUNDARY: dict[str, tuple[tuple[Outcome, ...], dict[str, Any], list[Any]]] = {
    # Backoff without jitter: retries at 1, 3, 7, 15; last_ok = 0 (start), service_down_time 3.
    "volume": (
        FAILS_FOUR_TIMES,
        {"service_down_time": 3, "report_interval": 1, "reinit_driver_count": 0, "reinit_backoff_jitter": "none"},
        [
            (0, "init.start", "starting", "initializing"),
            (0, "init.failure", "initializing", "failed_recoverable"),
            (1, "init.retry", "failed_recoverable", "initializing"),
            (1, "init.failure", "initializing", "failed_recoverable"),
            (3, "init.retry", "failed_recoverable", "initializing"),
            (3, "init.failure", "initializing", "failed_recoverable"),  # 3 - 0 <= 3: grace still open
            (3, "service.down", "failed_recoverable", "down"),  # heartbeat_expired at 0 + 3, judged last
            (7, "init.retry", "down", "initializing"),
            (7, "init.failure", "initializing", "down"),  # 7 - 0 > 3: grace closed
            (15, "init.retry", "down", "initializing"),
            (15, "init.success", "initializing", "up"),
        ],
    ),
    # Periodic retries every 5 s with service_down_time 5: the retry at 5 fails on the boundary.
    "backup": (
        FAILS_THREE_TIMES,
        {"backup_periodic_initialization": True, "periodic_interval": 5, "service_down_time": 5, "report_interval": 1},
        [
            (0, "init.start", "starting", "initializing"),
            (0, "init.failure", "initializing", "failed_recoverable"),
            (5, "init.retry", "failed_recoverable", "initializing"),
            (5, "init.failure", "initializing", "failed_recoverable"),  # 5 - 0 <= 5: grace still open
            (5, "service.down", "failed_recoverable", "down"),  # heartbeat_expired at 0 + 5, judged last
            (10, "init.retry", "down", "initializing"),
            (10, "init.failure", "initializing", "down"),  # 10 - 0 > 5: grace closed
            (15, "init.retry", "down", "initializing"),
            (15, "init.success", "initializing", "up"),
        ],
    ),
}


@pytest.mark.parametrize("binary", ["volume", "backup"])
def test_retry_failing_at_the_expiry_instant_is_in_grace_then_goes_down(binary):
    outcomes, settings, rows = RETRY_AT_THE_BOUNDARY[binary]
    run = Run(binary, *outcomes, **settings).start()
    run.advance(30)

    run.assert_timeline(_moves(binary, *rows), "up")
    assert run.driver.calls == len(outcomes)


# -- a heartbeat due at exactly last_ok + service_down_time ----------------------------------------------


@pytest.mark.parametrize("binary", ["volume", "backup"])
def test_heartbeat_at_the_expiry_instant_keeps_an_up_service_up(binary):
    """Up at 0; heartbeats at 1..4 are lost, the one at 5 (= 0 + 5) is recorded and runs before the
    watchdog due then; lost again from 6, so the service goes down at exactly 5 + 5 and back up at 11."""
    run = Run(binary, "ok", service_down_time=5, report_interval=1).start()
    run.advance(0)
    run.block_heartbeats(True)
    run.advance(4)
    run.block_heartbeats(False)
    run.advance(1)

    up = _moves(binary, (0, "init.start", "starting", "initializing"), (0, "init.success", "initializing", "up"))
    run.assert_timeline(up, "up")
    assert run.h.t(run.h.engine.service(run.host).updated_at) == 5

    run.block_heartbeats(True)
    run.advance(4)
    run.assert_timeline(up, "up")  # 9 - 5 < 5
    run.advance(1)
    run.assert_timeline(up + _moves(binary, (10, "service.down", "up", "down")), "down")

    run.block_heartbeats(False)
    run.advance(1)
    expected = up + _moves(binary, (10, "service.down", "up", "down"), (11, "service.up", "down", "up"))
    run.assert_timeline(expected, "up")


# -- an attempt whose init timeout ends at exactly last_ok + service_down_time -------------------------------

TIMEOUT_AT_THE_BOUNDARY = {
    # Attempt 2 (retry at 1) hangs; init_timeout 4 ends it at 5 = 0 + service_down_time; retry 2 at 5 + 2.
    "volume": (
        {"service_down_time": 5, "report_interval": 1, "init_timeout": 4},
        [
            (0, "init.start", "starting", "initializing"),
            (0, "init.failure", "initializing", "failed_recoverable"),
            (1, "init.retry", "failed_recoverable", "initializing"),
            (5, "init.failure", "initializing", "failed_recoverable"),  # InitTimeout; 5 - 0 <= 5
            (5, "service.down", "failed_recoverable", "down"),
            (7, "init.retry", "down", "initializing"),
            (7, "init.success", "initializing", "up"),
        ],
    ),
    # Attempt 2 (retry at 2) hangs; the backup timeout 3 ends it at 5 = 0 + service_down_time; retry at 5 + 2.
    "backup": (
        {
            "backup_periodic_initialization": True,
            "periodic_interval": 2,
            "service_down_time": 5,
            "report_interval": 1,
            "backup_initialization_timeout": 3,
        },
        [
            (0, "init.start", "starting", "initializing"),
            (0, "init.failure", "initializing", "failed_recoverable"),
            (2, "init.retry", "failed_recoverable", "initializing"),
            (5, "init.failure", "initializing", "failed_recoverable"),  # InitTimeout; 5 - 0 <= 5
            (5, "service.down", "failed_recoverable", "down"),
            (7, "init.retry", "down", "initializing"),
            (7, "init.success", "initializing", "up"),
        ],
    ),
}


@pytest.mark.parametrize("binary", ["volume", "backup"])
def test_init_timeout_ending_at_the_expiry_instant_is_in_grace_then_goes_down(binary):
    settings, rows = TIMEOUT_AT_THE_BOUNDARY[binary]
    run = Run(binary, "recoverable", "hang", "ok", **settings).start()
    run.advance(4)
    assert run.lifecycle() == "initializing"  # the hung attempt, until its timeout
    run.advance(8)

    run.assert_timeline(_moves(binary, *rows), "up")
    assert run.errors() == ["ConnectionError", "InitTimeout"]


# -- last_ok is the moment the service left up: a driver lost ----------------------------------------------

LOST_THEN_RETRY_AT_THE_BOUNDARY: dict[str, tuple[tuple[Outcome, ...], dict[str, Any], list[Any]]] = {
    # Capabilities job at 3 loses the driver (last_ok = 3); retries 1 s and 2 s later: the one at 6 = 3 + 3.
    "volume": (
        ("ok", "recoverable", "recoverable", "ok"),
        {"service_down_time": 3, "report_interval": 1, "backend_stats_polling_interval": 3},
        [
            (0, "init.start", "starting", "initializing"),
            (0, "init.success", "initializing", "up"),
            (3, "driver.lost", "up", "failed_recoverable"),
            (4, "init.retry", "failed_recoverable", "initializing"),
            (4, "init.failure", "initializing", "failed_recoverable"),
            (6, "init.retry", "failed_recoverable", "initializing"),
            (6, "init.failure", "initializing", "failed_recoverable"),  # 6 - 3 <= 3
            (6, "service.down", "failed_recoverable", "down"),
            (10, "init.retry", "down", "initializing"),
            (10, "init.success", "initializing", "up"),
        ],
    ),
    # Capabilities job at 3 loses the driver (last_ok = 3); the periodic retry at 6 = 3 + 3.
    "backup": (
        ("ok", "recoverable", "ok"),
        {"backup_periodic_initialization": True, "periodic_interval": 3, "service_down_time": 3, "report_interval": 1},
        [
            (0, "init.start", "starting", "initializing"),
            (0, "init.success", "initializing", "up"),
            (3, "driver.lost", "up", "failed_recoverable"),
            (6, "init.retry", "failed_recoverable", "initializing"),
            (6, "init.failure", "initializing", "failed_recoverable"),  # 6 - 3 <= 3
            (6, "service.down", "failed_recoverable", "down"),
            (9, "init.retry", "down", "initializing"),
            (9, "init.success", "initializing", "up"),
        ],
    ),
}


@pytest.mark.parametrize("binary", ["volume", "backup"])
def test_retry_failing_at_the_expiry_instant_after_a_lost_driver(binary):
    outcomes, settings, rows = LOST_THEN_RETRY_AT_THE_BOUNDARY[binary]
    run = Run(binary, *outcomes, **settings).start()
    run.advance(2)  # heartbeats at 1 and 2 recorded
    run.driver.working = run.service.driver.working = False
    run.advance(5)
    run.service.driver.working = True  # the scripted driver works again after its next successful setup
    run.advance(5)

    run.assert_timeline(_moves(binary, *rows), "up")


# -- the issue's example: backup_periodic_initialization with default options -------------------------


def test_issue_18_backup_failing_twice_with_default_options():
    """periodic_interval = service_down_time = 60, report_interval 10: the retry at 60 fails on the
    boundary (grace still open), heartbeat_expired due at 0 + 60 is judged after it, the retry at 120 works."""
    run = Run("backup", "recoverable", "recoverable", "ok", backup_periodic_initialization=True).start()
    run.advance(200)

    run.assert_timeline(
        [
            (0, "backup.init.start", "starting", "initializing"),
            (0, "backup.init.failure", "initializing", "failed_recoverable"),
            (60, "backup.init.retry", "failed_recoverable", "initializing"),
            (60, "backup.init.failure", "initializing", "failed_recoverable"),
            (60, "backup.service.down", "failed_recoverable", "down"),
            (120, "backup.init.retry", "down", "initializing"),
            (120, "backup.init.success", "initializing", "up"),
        ],
        "up",
    )
    row = run.h.engine.service("node1", binary="backup")
    assert (row.state, row.total_attempts, row.next_retry_at) == ("up", 3, None)
