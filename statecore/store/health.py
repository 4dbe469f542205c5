"""Watching the store from the side: a call that hangs cannot report itself.

A PostgreSQL server stopped dead (SIGSTOP, a frozen VM) keeps its TCP
connections: the kernel still acknowledges them, so neither the server's
``statement_timeout`` nor TCP keepalives ever fire, and the caller waits for as
long as the server is stopped. So every store call is noted when it begins and
when it ends, and one daemon thread for the whole process, awake only while
calls are in progress, looks when the oldest call will have run ``after``
seconds. It logs ``store unresponsive`` once; a call that succeeds while no
other has waited that long logs ``store back``. Only the log speaks: nothing
here changes what the engine does, which waits for the store to answer.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref

from loguru import logger


class StoreHealth:
    def __init__(self, name: str, after: float) -> None:
        """``name``: how the log names the store (a URL without its password)."""
        self.name, self.after = name, after
        self._calls: dict[int, tuple[str, float]] = {}
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._stalled_since: float | None = None
        self.errors = 0
        """Store calls that raised since the store was opened: what monitoring counts (metrics.py)."""
        _WATCHER.watch(self)

    @property
    def stalled(self) -> bool:
        """A call has run longer than ``after`` and no call has answered since."""
        return self._stalled_since is not None

    @property
    def busy(self) -> bool:
        return bool(self._calls)

    def begin(self, what: str) -> int:
        """A store call begins; returns the token its ``end`` gives back."""
        token = next(self._tokens)
        with self._lock:
            self._calls[token] = (what, time.monotonic())
        _WATCHER.busy.set()
        return token

    def end(self, token: int, ok: bool) -> None:
        """The call returned (``ok``) or raised. The store is back when a call answers and none still
        in progress has waited ``after``; an error shows nothing (SQLite gives up on a lock after its
        busy timeout, and the lock may still be held)."""
        with self._lock:
            del self._calls[token]
            self.errors += not ok
            stalled = self._stalled_since if ok else None
            if stalled is not None:
                since = time.monotonic() - self.after
                if any(started <= since for _, started in self._calls.values()):
                    stalled = None  # another call is still stuck: not back yet
                else:
                    self._stalled_since = None
        if stalled is not None:
            logger.warning("store back after {:.1f} s: {}", time.monotonic() - stalled, self.name)

    def close(self) -> None:
        _WATCHER.forget(self)

    def due(self) -> float | None:
        """When the oldest call in progress will have waited ``after`` (None: none, or already reported)."""
        with self._lock:
            if self._stalled_since is not None or not self._calls:
                return None
            return min(started for _, started in self._calls.values()) + self.after

    def look(self) -> None:
        """Called by the watcher: report the oldest call if it has run too long (once a stall)."""
        now = time.monotonic()
        with self._lock:
            if self._stalled_since is not None or not self._calls:
                return
            what, started = min(self._calls.values(), key=lambda call: call[1])
            if now - started < self.after:
                return
            self._stalled_since = started
        logger.warning("store unresponsive: {} waiting {:.1f} s: {}", what, now - started, self.name)


class _Watcher:
    """The one thread that looks at every open store's calls; it sleeps while none is in progress."""

    def __init__(self) -> None:
        self.busy = threading.Event()
        self._stores: weakref.WeakSet[StoreHealth] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, health: StoreHealth) -> None:
        with self._lock:
            self._stores.add(health)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="statecore-store-health", daemon=True)
                self._thread.start()

    def forget(self, health: StoreHealth) -> None:
        with self._lock:
            self._stores.discard(health)

    def _run(self) -> None:
        """Sleep until the oldest call in progress is due, then look; while calls go on but none can
        be due (each store's stall already reported), look again every third of a period."""
        while True:
            self.busy.wait()
            self.busy.clear()  # cleared before looking: a call that begins meanwhile sets it again
            with self._lock:
                stores = list(self._stores)
            if any(store.busy for store in stores):
                self.busy.set()
            due = min((when for store in stores if (when := store.due()) is not None), default=None)
            if due is None:
                time.sleep(min((store.after for store in stores), default=1.0) / 3)
                continue
            time.sleep(max(0.0, due - time.monotonic()) + LATE)
            for store in stores:
                store.look()


LATE = 0.01
"""The watcher looks this long after a call falls due, so that it has."""


_WATCHER = _Watcher()
