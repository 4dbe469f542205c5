"""A scripted driver, for tests, the simulator and embedding services' own test suites.

Each attempt takes the next outcome from a list (the last one repeats), so a
test or scenario can say "fails twice, then works" in one line.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

from statecore.clock import Clock, VirtualClock
from statecore.errors import ConfigError, DriverNotSupported, MissingDriverLibrary

Outcome = Literal["ok", "recoverable", "config_error", "not_supported", "missing_library", "import_error", "hang"]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]


class ScriptedDriver:
    """A volume or backup driver whose attempts and stats follow a script."""

    def __init__(
        self,
        attempts: Sequence[Outcome] = ("ok",),
        *,
        clock: Clock | None = None,
        init_seconds: float = 0.0,
        backend_state: Sequence[str] = ("up",),
        supported: bool = True,
    ) -> None:
        if not attempts or not backend_state:
            raise ValueError("attempts and backend_state need at least one entry (the last one repeats)")
        unknown = [outcome for outcome in attempts if outcome not in OUTCOMES]
        if unknown:
            raise ValueError(f"unknown attempt outcome(s) {unknown}; known: {', '.join(OUTCOMES)}")
        self.attempts = tuple(attempts)  # tuples of strings: the collector stops tracking them
        self.clock = clock
        self.init_seconds = init_seconds
        self.backend_states = tuple(backend_state)
        self.supported = supported
        self.working = True
        self.calls = 0
        self.polls = 0
        self._released = threading.Event() if "hang" in self.attempts else None
        """Only a script that hangs needs one: an Event is half a dozen objects that the collector
        walks, for each of ten thousand services in a fleet."""

    def do_setup(self) -> None:
        outcome = self.attempts[min(self.calls, len(self.attempts) - 1)]
        self.calls += 1
        if self.init_seconds and self.clock is not None:
            self.clock.sleep(self.init_seconds)
        if outcome == "hang":
            self._hang()
        self.working = outcome in ("ok", "hang")
        _raise_for(outcome, self.calls)

    def check_for_setup_error(self) -> None:
        """do_setup already raised whatever the script asked for."""

    def is_working(self) -> bool:
        return self.working

    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        state = self.backend_states[min(self.polls, len(self.backend_states) - 1)]
        self.polls += 1
        if state == "raise":
            raise RuntimeError("stats call failed")
        stats: dict[str, Any] = {"volume_backend_name": "scripted", "free_capacity_gb": 100}
        if state != "omit":
            stats["backend_state"] = state
        return stats

    def release(self) -> None:
        """Real time only: let a hung attempt finish (successfully), as storage coming back would."""
        if self._released is not None:
            self._released.set()

    def _hang(self) -> None:
        if isinstance(self.clock, VirtualClock):
            self.clock.hang()
        elif self._released is not None:  # always: a script that hangs has one
            self._released.wait()


def _raise_for(outcome: str, attempt: int) -> None:
    if outcome == "recoverable":
        raise ConnectionError(f"storage not reachable (attempt {attempt})")
    if outcome == "config_error":
        raise ConfigError(f"invalid driver option (attempt {attempt})")
    if outcome == "not_supported":
        raise DriverNotSupported("driver is not supported")
    if outcome == "missing_library":
        raise MissingDriverLibrary("vendor library not installed")
    if outcome == "import_error":
        raise ImportError("No module named 'vendor_sdk'")
