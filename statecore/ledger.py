"""The one commit path: a record becomes durable, or the service is put back as it was.

Transitions and admin actions (disable, enable) alike: the record gets its
notification envelope, the store takes the service's new state, the history row
and the outbox rows in one transaction, and only then is the envelope queued
for the sinks and ``on_committed`` told (the engine runs the step's effects
there). If the store refuses, the service's counters are restored from the
snapshot the step took before changing them, and ``StoreUnavailable`` goes to
the caller: nothing was recorded, so nothing is announced and nothing runs.

``batch`` groups commits: every step inside it is committed in one transaction
when it closes (group commit), then announced and its effects run, in order. If
that transaction fails, every service of the batch is put back, last change
first, and the batch raises ``StoreUnavailable``. ``flush`` hands what was
queued to the sinks; callers call it once they hold no lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from statecore.dispatch import Moved, status_change
from statecore.errors import StatecoreError
from statecore.notify import Notification, Notifier
from statecore.runtime import Delivery
from statecore.service import Service
from statecore.store import Entry, Fenced, Store, StoreUnavailable

Pending = tuple[Service, Moved, bool]


class Batch:
    """The steps a ``Ledger.batch`` has taken so far, not yet committed."""

    def __init__(self) -> None:
        self.pending: list[Pending] = []

    @property
    def services(self) -> list[Service]:
        """Each service once, in the order it first moved: what a refused batch put back."""
        return list({id(service): service for service, _, _ in self.pending}.values())


class Ledger:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        delivery: Delivery,
        owner: str,
        message_id: Callable[[], str],
        on_committed: Callable[[Moved], None],
        lock: threading.RLock,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.delivery = delivery
        self.owner = owner
        self.message_id = message_id
        self.on_committed = on_committed
        self._batch: Batch | None = None
        self.unlocked = store.shared
        """A database: commits run with the engine lock released (``_write``); a memory store's
        commit is no I/O, and keeps the hot path as it is."""
        self._lock = lock
        self._turn = threading.Condition(lock)
        self._issued = self._serving = 0
        """Tickets handed out, and the one whose commit goes to the store now."""
        self.fenced: set[str] = set()
        """Services a commit found claimed by another engine: the engine drops them once its lock
        is released (``Jobs.settle``), not under a caller that still holds them."""

    def commit(self, service: Service, moved: Moved, *, status: bool = False) -> bool:
        """``status``: an admin action, whose disabled status the store writes (a transition never does).
        True: committed now, and the caller runs what follows a commit (``on_committed``) itself,
        a call fewer on the hot path; False: it waits for the batch, which calls ``on_committed``."""
        if self._batch is not None:
            self._batch.pending.append((service, moved, status))
            return False
        record = moved.record
        note = Notification(self.message_id(), record)
        try:
            state = service.stored(self.owner, record.retries_left)
            if self.unlocked:
                names, envelope = self.notifier.names, note.envelope()
                self._write([service], lambda: self.store.commit(state, record, envelope, names, status=status))
            elif status:  # a memory store keeps the notification, its envelope built when read
                self.store.commit(state, record, note, self.notifier.names, status=True)
            else:  # without the keyword: a transition's commit is the hot path
                self.store.commit(state, record, note, self.notifier.names)
        except StoreUnavailable as failure:
            service.restore(moved.before)
            if isinstance(failure, Fenced):
                self.fenced.update(failure.sids)
            raise
        self.notifier.publish(note)
        return True

    # -- store I/O without the engine lock (a database: ``Store.shared``) -------------------------

    def _write(self, services: list[Service], write: Callable[[], None]) -> None:
        """Run ``write`` (a commit) with the engine lock released, so a store that hangs holds up
        only what must wait for it. Commits go to the store one at a time, in the order they were
        asked for (a ticket each), and the services they carry are pinned until theirs is done:
        no other step may start from a state that is not committed yet, and could be undone."""
        ticket, self._issued = self._issued, self._issued + 1
        for service in services:
            service.pinned = True
        try:
            while self._serving != ticket:
                self._turn.wait()
            saved = self._lock._release_save()  # type: ignore[attr-defined]
            try:
                write()
            finally:
                self._lock._acquire_restore(saved)  # type: ignore[attr-defined]
        finally:
            self._serving += 1
            for service in services:
                service.pinned = False
            self._turn.notify_all()

    @property
    def writes_asked(self) -> int:
        """Commits asked for so far, by the store's order (with a memory store: none, ever)."""
        return self._issued

    @property
    def writes_done(self) -> int:
        return self._serving

    @property
    def writes_waiting(self) -> int:
        """Commits asked for and not yet done (the one being written included)."""
        return self._issued - self._serving

    def await_service(self, service: Service) -> None:
        """A step of a service whose last transition is still being written waits for it (the lock
        released meanwhile). Inside a batch it may not wait, holding steps of its own that another
        commit might be waiting for: it is refused as the store would refuse it, and a timer's
        event is tried again a second later."""
        if self._batch is not None:
            raise StoreUnavailable(f"{service.host}: its previous transition is still being written")
        while service.pinned:
            self._turn.wait()

    def refuse_in_batch(self, what: str) -> None:
        """Starting services has its own commit and its own retry if the store refuses it; inside an
        embedder's batch, that retry could not run, so it is refused."""
        if self._batch is not None:
            raise StatecoreError(f"{what} outside engine.batch(): starting services commits on its own")

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Group commit of the steps taken inside; the caller holds the engine lock throughout.
        A batch inside a batch is the outer one: it commits when the outer one closes."""
        if self._batch is not None:
            yield self._batch
            return
        self._batch = batch = Batch()
        try:
            yield batch
        finally:
            self._batch = None
            if len(batch.pending) == 1:  # one step: the plain commit, as if there were no batch
                service, moved, status = batch.pending[0]
                if self.commit(service, moved, status=status):
                    self.on_committed(moved)
            elif batch.pending:
                self._commit_group(batch.pending)

    def _commit_group(self, pending: list[Pending]) -> None:
        names, plain = self.notifier.names, self.unlocked  # a database writes the envelope itself
        notes = [Notification(self.message_id(), moved.record) for _, moved, _ in pending]
        entries = [
            Entry(service.stored(self.owner, moved.record.retries_left), moved.record,
                  note.envelope() if plain else note, status)
            for (service, moved, status), note in zip(pending, notes, strict=True)
        ]  # fmt: skip
        try:
            if self.unlocked:
                self._write([service for service, _, _ in pending], lambda: self.store.commit_many(entries, names))
            else:
                self.store.commit_many(entries, names)
        except StoreUnavailable as failure:
            for service, moved, _ in reversed(pending):
                service.restore(moved.before)
            if isinstance(failure, Fenced):
                self.fenced.update(failure.sids)
            raise
        for (_, moved, _), note in zip(pending, notes, strict=True):
            self.notifier.publish(note)
            self.on_committed(moved)

    def set_status(self, service: Service, disabled: bool, reason: str | None, now: datetime) -> None:
        """Disable or enable, audited like a transition (dispatch.status_change), in one commit."""
        if service.pinned:
            self.await_service(service)
        moved = status_change(service, disabled, reason, now)
        if self.commit(service, moved, status=True):
            self.on_committed(moved)

    def flush(self) -> None:
        """Hand queued notifications to the sinks: never under the engine lock (a sink may be slow)."""
        self.delivery.poke()
