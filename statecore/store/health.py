"""Watching the store from the side: a call that hangs cannot report itself.

A PostgreSQL server stopped dead (SIGSTOP, a frozen VM) keeps its TCP
connections: the kernel still acknowledges them, so neither the server's
``statement_timeout`` nor TCP keepalives ever fire, and the caller waits for as
long as the server is stopped. So every store call is noted when it begins and
when it ends, and one daemon thread looks, every ``after / 3`` seconds while calls
are in progress, for one running longer than ``after``. It logs ``store
unresponsive`` once, and the next call that succeeds logs ``store back``. Only
the log speaks: nothing here changes what the engine does, which waits, in
order, for the store to answer.
"""

from __future__ import annotations

import itertools
import threading
import time

from loguru import logger


class StoreHealth:
    def __init__(self, name: str, after: float) -> None:
        """``name``: how the log names the store (a URL without its password)."""
        if not after > 0:
            raise ValueError(f"unresponsive_after={after!r}: must be a number of seconds above 0")
        self.name, self.after = name, after
        self._calls: dict[int, tuple[str, float]] = {}
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._busy = threading.Event()
        """Set while calls are in progress: the watcher sleeps, without waking, while the store is idle."""
        self._stalled_since: float | None = None
        self._watcher: threading.Thread | None = None
        self._closed = False

    @property
    def stalled(self) -> bool:
        """A call has run longer than ``after`` and no call has answered since."""
        return self._stalled_since is not None

    def begin(self, what: str) -> int:
        """A store call begins; returns the token its ``end`` gives back."""
        token = next(self._tokens)
        with self._lock:
            self._calls[token] = (what, time.monotonic())
            if self._watcher is None and not self._closed:
                self._watcher = threading.Thread(target=self._watch, name="statecore-store-health", daemon=True)
                self._watcher.start()
            self._busy.set()
        return token

    def end(self, token: int, ok: bool) -> None:
        """The call returned (``ok``) or raised: only an answer shows that the store is back."""
        with self._lock:
            del self._calls[token]
            stalled, back = self._stalled_since, ok and self._stalled_since is not None
            if back:
                self._stalled_since = None
            if not self._calls:
                self._busy.clear()
        if back:
            assert stalled is not None
            logger.warning("store back after {:.1f} s: {}", time.monotonic() - stalled, self.name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._busy.set()

    def _watch(self) -> None:
        while not self._closed:
            self._busy.wait()
            time.sleep(self.after / 3)
            self._look()

    def _look(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._stalled_since is not None or not self._calls:
                return
            what, started = min(self._calls.values(), key=lambda call: call[1])
            if now - started < self.after:
                return
            self._stalled_since = started
        logger.warning("store unresponsive: {} waiting {:.1f} s: {}", what, now - started, self.name)
