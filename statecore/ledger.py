"""The one commit path: a record becomes durable, or the service is put back as it was.

Transitions and admin actions (disable, enable) alike: the record gets its
notification envelope, the store takes the service's new state, the history row
and the outbox rows in one transaction, and only then is the envelope queued
for the sinks. If the store refuses, the service's counters are restored from
the snapshot the step took before changing them, and ``StoreUnavailable`` goes
to the caller: nothing was recorded, so nothing is announced. ``flush`` hands
what was queued to the sinks; callers call it once they hold no lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from statecore.dispatch import Moved, status_change
from statecore.notify import Notifier
from statecore.runtime import Delivery
from statecore.service import Service
from statecore.store import Store, StoreUnavailable


class Ledger:
    def __init__(
        self, store: Store, notifier: Notifier, delivery: Delivery, owner: str, message_id: Callable[[], str]
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.delivery = delivery
        self.owner = owner
        self.message_id = message_id

    def commit(self, service: Service, moved: Moved, *, status: bool = False) -> None:
        """``status``: an admin action, whose disabled status the store writes (a transition never does)."""
        record = moved.record
        envelope = record.envelope(self.message_id())
        try:
            state = service.stored(self.owner, record.retries_left)
            if status:
                self.store.commit(state, record, envelope, self.notifier.names, status=True)
            else:  # without the keyword: a transition's commit is the hot path
                self.store.commit(state, record, envelope, self.notifier.names)
        except StoreUnavailable:
            service.restore(moved.before)
            raise
        self.notifier.publish(envelope)

    def set_status(self, service: Service, disabled: bool, reason: str | None, now: datetime) -> None:
        """Disable or enable, audited like a transition (dispatch.status_change), in one commit."""
        self.commit(service, status_change(service, disabled, reason, now), status=True)

    def flush(self) -> None:
        """Hand queued notifications to the sinks: never under the engine lock (a sink may be slow)."""
        self.delivery.poke()
