"""The store protocol: the engine's only way to persist what happened.

A transition counts once ``commit`` returns: the service's new state, its
history row and its outbox rows (one per sink) are written together, so a
crash can lose neither a transition nor its notification.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from statecore.errors import ServiceAlive, StatecoreError, UnknownService
from statecore.records import ServiceRow, TransitionRecord
from statecore.table import Binary, State


class StoreUnavailable(StatecoreError):
    """The store could not be written; the transition did not happen and nothing changed."""


class Fenced(StoreUnavailable):
    """Another engine has claimed these services since we did: nothing of the write was kept, and
    this engine must stop driving them (their ``generation``, the fencing token, moved on)."""

    def __init__(self, sids: Sequence[str]) -> None:
        self.sids = tuple(sids)
        super().__init__(f"fenced: another engine now drives {', '.join(self.sids)}")


class StoreCorrupt(StatecoreError):
    """The store file is not statecore's (or not a database at all); it was not modified."""


def service_id(binary: str, host: str) -> str:
    return f"{binary}/{host}"


def service_of(envelope: Mapping[str, Any]) -> str:
    """The service a notification is about (its outbox rows are kept and re-sent per service)."""
    payload = envelope["payload"]
    return service_id(payload["binary"], payload["host"])


class Removed(NamedTuple):
    """What ``remove_service`` deleted besides the service row."""

    history: int
    outbox: int
    """Notifications of the service that no sink had acknowledged yet."""


def check_cutoff(before: datetime) -> None:
    """A naive instant would be read in some host's local time: refuse it before anything is deleted."""
    if before.tzinfo is None:
        raise ValueError(f"purge: {before.isoformat()} has no time zone; give an aware (UTC) instant")


def alive(heartbeat: datetime | None, now: datetime, window: timedelta) -> bool:
    """The fleet's liveness verdict, Cinder's: the last heartbeat at most ``service_down_time`` old.
    Coming up counts as a heartbeat (the store records one with every commit into ``up``; Cinder
    counts a new service from its ``created_at``, set when its process starts): a service that has
    just come up is ``up`` at once,
    one that never reports is ``down`` once the window has passed, and one that comes back up after
    a recovery or a takeover is ``up`` again, whatever its old heartbeat said. ``heartbeat`` and
    ``now`` are on one clock (a database's own), so engines' clocks never meet here."""
    return heartbeat is not None and now - heartbeat <= window


def came_up(record: TransitionRecord) -> bool:
    """A move into ``up``: the store records it as a heartbeat (``alive``)."""
    return record.to_state is State.UP and record.from_state is not State.UP


DEFAULT_DOWN_TIME = 60.0
"""The window for a row written before engines stored theirs: the settings' default."""


def down_time_of(stored: float | None, override: float | None) -> float:
    """The liveness window a reader applies to one row: the caller's ``override`` if it gave one,
    else what the row's engine used, else the default."""
    if override is not None:
        return override
    return DEFAULT_DOWN_TIME if stored is None else stored


def check_removable(
    sid: str, heartbeat: datetime | None, now: datetime, service_down_time: float, *, refused: str = "removed"
) -> None:
    """Only a service that is down by the fleet's own liveness rule (``alive``) may go: one whose
    engine still runs it would write it back at its next transition, and lose its history meanwhile."""
    if heartbeat is not None and alive(heartbeat, now, timedelta(seconds=service_down_time)):
        age = (now - heartbeat).total_seconds()
        raise ServiceAlive(
            f"service {sid!r} is alive (last heartbeat {age:.0f} s ago, service_down_time {service_down_time:g} s):"
            f" stop its engine and wait until it is down; nothing was {refused}"
        )


def check_unleased(sid: str, holder: Holder | None, now: datetime) -> None:
    """A service whose lease an engine holds is that engine's to change (failed services send no
    heartbeat, but their engine renews the lease): a store-side reset would be overwritten."""
    if holder is not None and holder.until >= now:
        raise ServiceAlive(
            f"service {sid!r} is driven by the engine of {holder.owner!r} (lease until {holder.until.isoformat()}):"
            " stop that engine, or reset it through that engine's API; nothing was reset"
        )


def reset_state(state: ServiceState, generation: int) -> ServiceState:
    """A stored service as new (``starting``: the next engine starts it with a fresh budget and
    loads its driver again), its stale error and retry plan forgotten. Kept: who it is, its admin
    status and ``total_attempts``, which counts attempts over its whole life. Owned by nobody,
    under ``generation``, a claim's token never handed out before: an engine still alive whose
    lease lapsed (a long pause) is fenced, its renewals and commits refused, so it drops the
    service instead of writing its old state back over the reset."""
    return dataclasses.replace(
        state, lifecycle=State.STARTING, initialized=False, attempt=0, retries_left=None, last_delay=None,
        next_retry_at=None, last_error_type=None, last_error_message=None, backend_state=None,
        owner="", generation=generation,
    )  # fmt: skip


def unknown_service(sid: str, refused: str = "removed") -> UnknownService:
    return UnknownService(f"no service {sid!r} in the store; nothing was {refused}")


@dataclass(slots=True)
class ServiceState:
    """The persisted part of a service: enough to rebuild its timers after a crash."""

    host: str
    binary: Binary
    zone: str
    owner: str
    lifecycle: State
    disabled: bool
    disabled_reason: str | None
    initialized: bool
    last_ok: datetime
    updated_at: datetime | None
    attempt: int
    total_attempts: int
    retries_left: int | None
    last_delay: float | None
    next_retry_at: datetime | None
    last_error_type: str | None
    last_error_message: str | None
    backend_state: str | None
    generation: int = 0
    """The fencing token of the claim this state was written under (``Store.claim``)."""
    service_down_time: float | None = None
    """The liveness window the engine that wrote this state used for it (settings may differ per
    service): readers with no engine of their own (``service-list``, ``serve``) judge by it. None:
    written before statecore kept it; ``DEFAULT_DOWN_TIME`` then."""

    @property
    def id(self) -> str:
        return service_id(self.binary, self.host)

    def row(self, *, alive: bool, admin: bool = True) -> ServiceRow:
        """The service-list row; ``alive`` is the caller's liveness verdict (engine or heartbeat age).
        ``updated_at`` is the last heartbeat or, before the first one, the moment liveness counted
        from (registration, or an engine's restart): Cinder's clients and tempest want a time."""
        up = alive and self.lifecycle is State.UP
        error = f"{self.last_error_type}: {self.last_error_message}" if self.last_error_type else None
        return ServiceRow(
            host=self.host,
            binary=self.binary,
            zone=self.zone,
            status="disabled" if self.disabled else "enabled",
            disabled_reason=self.disabled_reason,
            state="up" if up else "down",
            lifecycle=self.lifecycle,
            updated_at=self.updated_at or self.last_ok,
            attempts=self.attempt,
            total_attempts=self.total_attempts,
            retries_left=self.retries_left,
            next_retry_at=self.next_retry_at,
            last_error=error if admin else None,
            backend_state=self.backend_state if admin and up and self.binary == "volume" else None,
        )


Envelope = Mapping[str, Any]


class Holder(NamedTuple):
    """Who drives a service another engine wanted, and until when (the store's clock)."""

    owner: str
    until: datetime


class Claim(NamedTuple):
    granted: dict[str, int]
    """Services now ours, each with its new generation, the token every later write must carry."""
    held: dict[str, Holder]
    """Services whose lease another engine holds and has not let expire."""


class Entry(NamedTuple):
    """One committed fact: a transition (or audited admin action) with its state and notification."""

    state: ServiceState
    record: TransitionRecord
    envelope: Envelope
    status: bool = False
    """An admin action: the disabled status is written too (a transition never writes it)."""


class Store(Protocol):
    def load(self, sid: str) -> ServiceState | None:
        """The stored state of a service, or None if it was never registered."""
        ...

    def save(self, state: ServiceState) -> None:
        """Insert or update a service row outside any transition (registration, disable, enable)."""

    def load_many(self, sids: Sequence[str]) -> dict[str, ServiceState]:
        """The stored states of those services that have one (registering a fleet: one query)."""
        ...

    def save_many(self, states: Sequence[ServiceState]) -> None:
        """``save`` for many services, in one transaction."""

    def set_status(self, sid: str, disabled: bool, reason: str | None) -> bool:
        """Disable or enable a service (False: no such service); transitions never overwrite this."""
        ...

    def set_backend_states(self, values: Mapping[str, str | None], leases: Mapping[str, int]) -> None:
        """Many volumes' latest polled backend_state, in one transaction (a fleet coming up); a
        service no longer held under its generation in ``leases`` is left alone (fenced)."""

    def statuses(self, sids: Sequence[str]) -> dict[str, tuple[bool, str | None]]:
        """(disabled, reason) of those services, as admins last set them, from any host."""
        ...

    def statuses_version(self) -> int | None:
        """A number that changes whenever a disabled status may have: an engine that saw it last
        time need not read ``statuses`` again. None: no such number (another host may write), read."""
        ...

    def commit(
        self,
        state: ServiceState,
        record: TransitionRecord,
        envelope: Envelope,
        sinks: Sequence[str],
        *,
        status: bool = False,
    ) -> None:
        """Write the new state, the history row and one outbox row per sink, atomically. The
        disabled status is written only with ``status`` (an admin action), never by a transition."""

    def commit_many(self, entries: Sequence[Entry], sinks: Sequence[str]) -> None:
        """Group commit: every entry, in order, in one transaction; all of them or, on
        ``StoreUnavailable``, none. ``Fenced`` (none either) when a shared store's service was
        claimed by another engine since its entry's generation."""

    def record_heartbeats(self, leases: Mapping[str, int], at: datetime) -> Collection[str]:
        """Record a batch of heartbeats, each service's only under its generation (service id ->
        generation); returns the ids actually recorded (raise: none were)."""
        ...

    # -- leases: one engine drives a service at a time (docs/decisions.md, "Ownership") ------

    shared: bool
    """Other engines may use this store (a database): leases expire and must be renewed. A
    private store (``MemoryStore()``) grants every claim and never needs renewing."""

    def insert_new(self, states: Sequence[ServiceState]) -> None:
        """Insert the services that have no row yet, unowned; rows that exist are left alone."""

    def claim(self, sids: Sequence[str], owner: str, lease: float, now: datetime, *, own: bool = True) -> Claim:
        """Take the services whose lease is free, expired, or (with ``own``: a restart) ``owner``'s
        own, all under the next generation, one never handed out before; report the others'
        holders. Existing rows only."""
        ...

    def reclaim(self, leases: Mapping[str, int], owner: str, lease: float, now: datetime) -> dict[str, int]:
        """Take back, under a new generation, the services still at these generations: nobody has
        claimed them since (every claim changes the generation), whatever their lease says."""
        ...

    def renew(self, leases: Mapping[str, int], lease: float, now: datetime) -> set[str]:
        """Extend the leases still held under these generations; returns the services lost."""
        ...

    def release(self, leases: Mapping[str, int]) -> None:
        """A clean stop: let these leases go at once, so a standby need not wait them out."""

    def enqueue(self, envelope: Envelope, sinks: Sequence[str]) -> None:
        """An outbox entry for a notification that is no transition (an engine fenced off a service)."""

    def acknowledge(self, sink: str, message_ids: Sequence[str]) -> None:
        """Those envelopes reached that sink; drop them from its outbox."""

    def pending(self, sink: str, service_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Envelopes not yet delivered to ``sink``, oldest first (what a restart must re-send); with
        ``service_ids``, only theirs: an engine re-sends what its own services left, not another
        host's (sinks of several hosts share names, and acknowledging would take them away)."""
        ...

    def waiting(self) -> list[tuple[str, int, str | None]]:
        """Per sink with undelivered notifications, of every host: how many, and the oldest's
        timestamp (``statecore serve``'s metrics, where no engine's notifier is at hand)."""
        ...

    def purge(self, before: datetime) -> int:
        """Delete history rows older than ``before`` (aware), except each service's latest, which
        says how it got into the state it is in; returns how many were deleted. The outbox is never
        touched: its rows are the undelivered notifications (delivered ones are deleted already)."""
        ...

    def remove_service(self, sid: str, service_down_time: float | None, *, now: datetime | None = None) -> Removed:
        """Delete a service that is gone, with its history and its undelivered notifications, in one
        transaction. Refused (``ServiceAlive``) while its heartbeat is at most ``service_down_time``
        old (None: the window its engine stored), on the store's clock (``now`` as in ``fleet``);
        ``UnknownService`` if there is none."""
        ...

    def reset_service(self, sid: str, *, now: datetime | None = None) -> ServiceState:
        """An admin's reset with no engine running the service (``reset_state``): the next engine
        to take it starts it from scratch. Refused (``ServiceAlive``) while an engine holds its lease
        or its heartbeat is fresh (stored window), ``UnknownService`` if there is none; returns the
        state written. The clock is the store's, or ``now`` as in ``fleet``."""
        ...

    def history(self, sid: str | None = None) -> list[TransitionRecord]:
        """Every transition still kept (``purge``: retention), oldest first, of one service or of all."""
        ...

    def fleet(self, service_down_time: float | None = None, *, now: datetime | None = None) -> list[ServiceRow]:
        """Every service of every host, ``state`` from heartbeat age: alive while ``now - heartbeat
        <= service_down_time`` (BEHAVIOR.md section 5), the window each row's engine stored unless
        the caller gives one (``down_time_of``). A store with a clock of its own (a database's)
        reads its own time; one without (``MemoryStore``) takes ``now``, the clock of the engine
        that recorded the heartbeats, and the wall clock only if none is given."""
        ...

    def close(self) -> None:
        """Release connections."""
