"""Notifications: one envelope per fired transition, delivered in order to every sink.

Each sink has its own queue. A sink that raises keeps its place: the same
envelope is offered again later, so nothing is dropped and the order holds,
while the other sinks and the state machine go on unaffected. The transition
has already happened when a sink is called; a sink can delay a notification,
never undo or block a transition.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

if TYPE_CHECKING:
    from statecore.records import TransitionRecord

Envelope = dict[str, Any]

LOGURU_LEVEL = {"INFO": "INFO", "WARN": "WARNING", "ERROR": "ERROR"}


class Notification(Mapping[str, Any]):
    """A committed transition's notification: its message id and record, the envelope built on the
    first read and then kept (every sink that reads it gets the one dict).

    Every transition makes one, and its envelope (two dicts, an ISO 8601 timestamp) costs as much
    as a fifth of the engine's whole event: where nothing reads it (a memory sink nobody looks at,
    a memory store's outbox row acknowledged at once) it is never built. It reads as the envelope
    it stands for; sinks other than ``MemorySink`` itself are handed the envelope, a plain dict.
    """

    __slots__ = ("_envelope", "message_id", "record")

    def __init__(self, message_id: str, record: TransitionRecord) -> None:
        self.message_id = message_id
        self.record = record
        self._envelope: Envelope | None = None

    def envelope(self) -> Envelope:
        built = self._envelope
        if built is None:
            built = self._envelope = self.record.envelope(self.message_id)
        return built

    def __getitem__(self, key: str) -> Any:
        """The keys read on every transition (the outbox's acknowledgement, the metrics' count) come
        from the record, without building the envelope; they are the values it would hold."""
        if key == "message_id":
            return self.message_id
        if key == "event_type":
            return self.record.event_type
        return self.envelope()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.envelope())

    def __len__(self) -> int:
        return len(self.envelope())

    def __repr__(self) -> str:
        return f"Notification({self.envelope()!r})"


class Sink(Protocol):
    def emit(self, envelope: Mapping[str, Any]) -> None: ...


class LoguruSink:
    """The default sink: one log line per notification, with the envelope bound as ``extra``."""

    def emit(self, envelope: Mapping[str, Any]) -> None:
        payload = envelope["payload"]
        logger.bind(notification=envelope).log(
            LOGURU_LEVEL[envelope["priority"]],
            "{} {}: {} -> {} ({})",
            envelope["event_type"],
            payload["host"],
            payload["from_state"],
            payload["to_state"],
            payload["reason"],
        )


class MemorySink:
    """Keeps every envelope in a list, for tests and for embedding services that poll.

    The notifier hands this class (not a subclass that overrides ``emit``) the ``Notification``
    itself: it keeps the record (the one the store's history holds) and the message id, and
    ``envelopes`` builds their envelopes when it is read, so one nobody reads is never built and
    a fleet's notifications add no object of their own for the collector to walk.
    """

    def __init__(self) -> None:
        self._kept: list[Any] = []
        """Plain envelopes, and the records of notifications not read yet."""
        self._ids: list[str | None] = []
        """Beside each kept item: a record's message id (None beside a plain envelope); appended first."""
        self._plain = 0
        """``_kept[:_plain]`` are plain envelopes already."""

    @property
    def envelopes(self) -> list[Mapping[str, Any]]:
        """Read from any thread while a delivery thread emits: ``emit`` appends the id first, and
        only what was kept when the read began is turned into envelopes (idempotently)."""
        kept, ids = self._kept, self._ids
        end = len(kept)
        for index in range(self._plain, end):
            item = kept[index]
            if not isinstance(item, Mapping):  # a record, with its message id beside it
                kept[index] = item.envelope(ids[index])
        self._plain = end
        return kept

    def emit(self, envelope: Mapping[str, Any]) -> None:
        if type(envelope) is Notification:
            self._ids.append(envelope.message_id)
            self._kept.append(envelope.record)
        else:
            self._ids.append(None)
            self._kept.append(envelope)

    def event_types(self) -> list[str]:
        return [envelope["event_type"] for envelope in self.envelopes]


class JsonLinesSink:
    """Appends one JSON object per line and flushes, so a crash loses at most a partial line.

    With ``max_bytes``, a line that would take the file past it first rotates the file, as
    ``logging.handlers.RotatingFileHandler`` does: ``path`` becomes ``path.1``, ``path.1`` becomes
    ``path.2``, and so on up to ``backups`` files, the oldest dropped; ``tail -F`` follows it.
    A line is never split across two files, and one longer than ``max_bytes`` gets a file of its own.
    """

    def __init__(self, path: str | Path, *, max_bytes: int = 0, backups: int = 3) -> None:
        """``max_bytes`` 0: the file grows for ever (the library's default; ``run`` rotates)."""
        if max_bytes < 0 or backups < 1:
            raise ValueError(f"JsonLinesSink: max_bytes {max_bytes} must be >= 0 and backups {backups} >= 1")
        self.path, self.max_bytes, self.backups = Path(path), max_bytes, backups

    def emit(self, envelope: Mapping[str, Any]) -> None:
        line = json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n"  # ASCII: chars are bytes
        if self.max_bytes and self._would_overflow(len(line)):
            self._rotate()
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    def _would_overflow(self, adding: int) -> bool:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return False
        return size > 0 and size + adding > self.max_bytes

    def _rotate(self) -> None:
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))


EARLY = 0.001
"""Seconds: a retry timer set from a float backoff may fire this much early after rounding; it counts as due."""

Acknowledge = Callable[[str, Sequence[str]], None]
"""Told (sink name, message ids) after a delivery, so the store can drop those outbox rows."""


def sink_names(sinks: Sequence[Sink]) -> list[str]:
    """Stable names (a ``name`` attribute, else the class name), numbered when repeated: outbox keys."""
    names: list[str] = []
    for sink in sinks:
        base = getattr(sink, "name", None) or type(sink).__name__
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        names.append(name)
    return names


class Notifier:
    """Per-sink FIFO queues with at-least-once, in-order delivery and a capped backoff per sink.

    Sinks never wait for each other: each has its own lock (the real-time ``DeliveryThread`` gives
    each its own thread), and a sink in its backoff is not offered anything before the backoff ends,
    however many transitions happen meanwhile.
    """

    first_backoff = 0.5
    max_backoff = 30.0

    def __init__(self, sinks: Iterable[Sink], acknowledge: Acknowledge | None = None) -> None:
        self.sinks = list(sinks)
        self.names = sink_names(self.sinks)
        self._acknowledge = acknowledge
        self._queues: list[deque[Mapping[str, Any]]] = [deque() for _ in self.sinks]
        self._keeps = [type(sink).emit is MemorySink.emit for sink in self.sinks]
        """Per sink: it takes a ``Notification`` as it is (``MemorySink``), or needs the envelope."""
        self._failures = [0] * len(self.sinks)
        self._not_before = [0.0] * len(self.sinks)
        self._observers: list[Callable[[Mapping[str, Any]], None]] = []
        self._single = self._queues[0] if len(self._queues) == 1 else None
        self._lock = threading.Lock()
        self._delivering = [threading.Lock() for _ in self.sinks]

    def observe(self, observer: Callable[[Mapping[str, Any]], None]) -> None:
        """Call ``observer`` with each envelope as it is published, right after its commit, on the
        committing thread: no outbox row, never again after a restart (``preload`` does not call it).
        It must be quick and must not raise (metrics.py counts transitions this way)."""
        self._observers.append(observer)
        self._single = None  # the one-sink shortcut in ``publish`` skips the observers

    def preload(self, pending: Mapping[str, Sequence[Envelope]]) -> None:
        """Queue, ahead of anything new, what a previous run stored but never delivered, per sink
        name. Not while a delivery runs: it pops, unlocked, the envelope it has just emitted from the
        front. Given what was read, not a way to read it: no store I/O under every delivery lock."""
        with ExitStack() as held:
            for lock in (*self._delivering, self._lock):
                held.enter_context(lock)
            for name, queue in zip(self.names, self._queues, strict=True):
                queue.extendleft(reversed(pending[name]))

    def publish(self, envelope: Mapping[str, Any]) -> None:
        """Queue for every sink. The lock keeps the sinks' queues in one order when publishers race;
        with a single sink one append is atomic (a ``preload`` extends the other end), so it is not taken."""
        if self._single is not None:
            self._single.append(envelope)
            return
        with self._lock:
            for queue in self._queues:
                queue.append(envelope)
        for observer in self._observers:
            observer(envelope)

    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues)

    def waiting(self) -> list[tuple[str, int, str | None]]:
        """Per sink: its name, how many envelopes wait for it, and the timestamp of the oldest (monitoring)."""
        with self._lock:
            return [(name, len(queue), _oldest(queue)) for name, queue in zip(self.names, self._queues, strict=True)]

    def deliver(self, now: float | None = None, only: int | None = None) -> float | None:
        """Offer queued envelopes to their sinks; returns in how many seconds a sink that failed, or
        is in its backoff, wants to be offered them again (None: nothing waits for a retry).

        ``now``, seconds on the caller's clock: a sink whose backoff lasts past it is skipped (None:
        every sink is tried, as a last delivery at a stop does). ``only``: that sink alone (its own
        delivery thread). Called after every transition, so a sink with nothing queued costs one check.
        """
        shortest = None
        for index in range(len(self._queues)) if only is None else (only,):
            if self._queues[index] and (wait := self._drain(index, now)) is not None:
                shortest = wait if shortest is None else min(shortest, wait)
        return shortest

    def _drain(self, index: int, now: float | None) -> float | None:
        if now is not None and now + EARLY < self._not_before[index]:
            return self._not_before[index] - now
        sink, queue, keeps = self.sinks[index], self._queues[index], self._keeps[index]
        delivered: list[str] = []
        wait = None
        with self._delivering[index]:
            while queue:
                item = queue[0]
                try:
                    sink.emit(item if keeps or type(item) is not Notification else item.envelope())
                except Exception as error:
                    wait = self._failed(index, sink, error)
                    self._not_before[index] = (now or 0.0) + wait
                    break
                # No lock: only this sink's drainer pops (under its lock), publishers append at the other
                # end, and a deque's appends and pops are thread-safe; the envelope popped is the one emitted.
                queue.popleft()
                delivered.append(item.message_id if type(item) is Notification else item["message_id"])  # no call
                if self._failures[index]:
                    logger.info("notification sink {} recovered after {} failures", sink, self._failures[index])
                    self._failures[index] = 0
        if delivered and self._acknowledge is not None:
            try:
                self._acknowledge(self.names[index], delivered)
            except Exception as error:  # delivered twice after a restart is fine: ids are kept for dedup
                logger.warning("could not mark {} notifications delivered ({})", len(delivered), error)
        return wait

    def _failed(self, index: int, sink: Sink, error: Exception) -> float:
        """Count the sink's failure; returns how long to wait before offering it the envelope again."""
        self._failures[index] += 1
        if self._failures[index] == 1:
            logger.warning("notification sink {} failed ({}); will retry, nothing is dropped", sink, error)
        doublings = min(self._failures[index] - 1, 32)  # past the cap anyway; 2.0 ** 1024 overflows
        wait: float = min(self.max_backoff, self.first_backoff * 2**doublings)
        return wait


def _oldest(queue: deque[Mapping[str, Any]]) -> str | None:
    """The front envelope's timestamp; the drainer pops without the lock, so the queue may empty meanwhile."""
    try:
        return str(queue[0]["timestamp"])
    except IndexError:
        return None


class DeliveryThread:
    """Real time: one thread per sink, off the engine's threads, waking on new envelopes or when
    its backoff ends; a sink that hangs holds its own notifications only."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self._wakes = [threading.Event() for _ in notifier.sinks]
        self._stop = False
        self._threads = [
            threading.Thread(target=self._run, args=(index,), name=f"statecore-notifier-{name}", daemon=True)
            for index, name in enumerate(notifier.names)
        ]
        self._started = False

    def start(self) -> None:
        self._started = True
        for thread in self._threads:
            thread.start()

    def poke(self) -> None:
        for wake in self._wakes:
            wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Each thread makes one last delivery of everything queued, then ends. They are given
        ``timeout`` seconds together: a sink or store that hangs must not hold a stop, and what it did
        not deliver waits in the store's outbox for the next start."""
        self._stop = True
        self.poke()
        if not self._started:  # the caller delivers
            self.notifier.deliver()
            return
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if hung := [name for name, t in zip(self.notifier.names, self._threads, strict=True) if t.is_alive()]:
            logger.warning("notifications still being delivered to {} after {:g} s; what is left stays queued",
                           ", ".join(hung), timeout)  # fmt: skip

    def _run(self, index: int) -> None:
        wait: float | None = None
        wake = self._wakes[index]
        while True:
            wake.wait(wait)
            wake.clear()
            stopping = self._stop  # read before delivering: what was queued before the stop goes now
            wait = self.notifier.deliver(None if stopping else time.monotonic(), only=index)
            if stopping:
                return
