"""The in-process store: the default for embedding and virtual time; nothing survives the process.

Private by default: one engine uses it, so every claim is granted and no lease expires.
``MemoryStore(shared=True)`` is the one store of several engines in one process (tests of
ownership and failover in virtual time): leases expire on the clock the engines pass in, and
every write is fenced by generation, as in the SQL store.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from statecore.notify import Notification
from statecore.records import ServiceRow, TransitionRecord
from statecore.store.base import (
    Claim,
    Entry,
    Envelope,
    Fenced,
    Holder,
    Removed,
    ServiceState,
    alive,
    came_up,
    check_cutoff,
    check_removable,
    check_unleased,
    down_time_of,
    reset_state,
    service_id,
    service_of,
    unknown_service,
)


class MemoryStore:
    def __init__(self, *, shared: bool = False) -> None:
        self.shared = shared
        self._leases: dict[str, tuple[str, datetime]] = {}
        """Per service, (owner, until): a plain tuple of atoms, which the collector stops tracking
        (a ``Holder`` per service of a large fleet would be walked by every full collection)."""
        self._generation = 0
        """The last generation handed out: one per claim, never twice."""
        self._services: dict[str, ServiceState] = {}
        self._history: list[TransitionRecord] = []
        self._outbox: dict[str, dict[str, Envelope]] = {}
        self.heartbeats: dict[str, datetime] = {}
        self._status_version = 0
        self._rewriting = threading.Lock()
        """Held while the history list is rewritten (``purge``, ``remove_service``, a group commit
        undone): in real time a purge runs off the engine lock. A plain append needs no lock: the
        rewrite replaces only the slice it read, so a row appended meanwhile stays."""

    def load(self, sid: str) -> ServiceState | None:
        state = self._services.get(sid)
        return None if state is None else self._with_heartbeat(state)

    def save(self, state: ServiceState) -> None:
        self._services[state.id] = _copy(state)
        self._status_version += 1

    def load_many(self, sids: Sequence[str]) -> dict[str, ServiceState]:
        return {sid: self._with_heartbeat(state) for sid in sids if (state := self._services.get(sid)) is not None}

    def _with_heartbeat(self, state: ServiceState, *, copy: bool = True) -> ServiceState:
        """The stored state with its latest heartbeat: ``record_heartbeats`` only notes the instant
        (one dict update for a whole batch), and it counts from here, on reading. A copy, unless the
        caller only reads it (``copy=False``) and no newer heartbeat needs one."""
        beat = self.heartbeats.get(state.id)
        if beat is None or beat <= state.last_ok:
            return _copy(state) if copy else state
        fresh = _copy(state)
        fresh.last_ok, fresh.updated_at = beat, max(beat, state.updated_at or beat)
        return fresh

    def save_many(self, states: Sequence[ServiceState]) -> None:
        for state in states:
            self.save(state)

    def commit_many(self, entries: Sequence[Entry], sinks: Sequence[str]) -> None:
        """Through ``commit``, entry by entry (so a store built on this one sees each), and undone
        whole if one of them raises."""
        with self._rewriting:
            self._commit_or_undo(entries, sinks)

    def _commit_or_undo(self, entries: Sequence[Entry], sinks: Sequence[str]) -> None:
        before = {entry.state.id: self._services.get(entry.state.id) for entry in entries}
        beats = {sid: self.heartbeats.get(sid) for sid in before}
        length = len(self._history)
        try:
            for entry in entries:
                self.commit(entry.state, entry.record, entry.envelope, sinks, status=entry.status)
        except BaseException:
            for sid, state in before.items():
                if state is None:
                    self._services.pop(sid, None)
                else:
                    self._services[sid] = state
                beat = beats[sid]
                if beat is None:
                    self.heartbeats.pop(sid, None)
                else:
                    self.heartbeats[sid] = beat
            del self._history[length:]
            for entry in entries:
                for sink in sinks:
                    self._outbox.get(sink, {}).pop(entry.envelope["message_id"], None)
            raise

    def set_status(self, sid: str, disabled: bool, reason: str | None) -> bool:
        state = self._services.get(sid)
        if state is None:
            return False
        state.disabled, state.disabled_reason = disabled, reason
        self._status_version += 1
        return True

    def set_backend_states(self, values: Mapping[str, str | None], leases: Mapping[str, int]) -> None:
        for sid, value in values.items():
            state = self._services.get(sid)
            if state is not None and (not self.shared or state.generation == leases[sid]):
                state.backend_state = value

    def statuses_version(self) -> int | None:
        """Only this process writes here: a status changes with ``save``, ``set_status`` or an admin
        action's commit, each of which counts."""
        return self._status_version

    def statuses(self, sids: Sequence[str]) -> dict[str, tuple[bool, str | None]]:
        return {sid: (s.disabled, s.disabled_reason) for sid in sids if (s := self._services.get(sid)) is not None}

    def commit(
        self,
        state: ServiceState,
        record: TransitionRecord,
        envelope: Envelope,
        sinks: Sequence[str],
        *,
        status: bool = False,
    ) -> None:
        """The outbox keeps ``envelope`` as given: a ``Notification`` is built only if ``pending`` reads it."""
        message_id = envelope.message_id if type(envelope) is Notification else envelope["message_id"]
        sid, outbox = service_id(state.binary, state.host), self._outbox
        previous = self._services.get(sid)
        if self.shared and previous is not None and previous.generation != state.generation:
            raise Fenced([sid])
        if previous is not None and not status:  # an admin may have changed these outside any transition
            state.disabled, state.disabled_reason = previous.disabled, previous.disabled_reason
        elif status:
            self._status_version += 1
        self._services[sid] = state
        if came_up(record):  # coming up counts as a heartbeat (``alive``), on the engine's clock
            self.heartbeats[sid] = record.at
        self._history.append(record)
        for sink in sinks:
            box = outbox.get(sink)
            if box is None:
                box = outbox[sink] = {}
            box[message_id] = envelope

    def record_heartbeats(self, leases: Mapping[str, int], at: datetime) -> Collection[str]:
        if not self.shared:  # every heartbeat is ours to record: no copy of a fleet-sized batch
            self.heartbeats.update(dict.fromkeys(leases, at))
            return leases.keys()
        recorded = [sid for sid, generation in leases.items() if self._holds(sid, generation)]
        self.heartbeats.update(dict.fromkeys(recorded, at))
        return recorded

    def _holds(self, sid: str, generation: int) -> bool:
        state = self._services.get(sid)
        return state is not None and state.generation == generation

    # -- leases -------------------------------------------------------------------------------

    def insert_new(self, states: Sequence[ServiceState]) -> None:
        self.save_many([state for state in states if state.id not in self._services])

    def claim(self, sids: Sequence[str], owner: str, lease: float, now: datetime, *, own: bool = True) -> Claim:
        granted, held = {}, {}
        self._generation += 1
        for sid in sids:
            holder, state = self._leases.get(sid), self._services.get(sid)
            if state is None:
                continue  # never stored: the caller inserts it first
            if self.shared and holder is not None and (holder[0] != owner or not own) and holder[1] >= now:
                held[sid] = Holder(*holder)
                continue
            state.generation = granted[sid] = self._generation
            state.owner = owner
            self._leases[sid] = (owner, now + timedelta(seconds=lease))
        return Claim(granted, held)

    def reclaim(self, leases: Mapping[str, int], owner: str, lease: float, now: datetime) -> dict[str, int]:
        self._generation += 1
        taken = {}
        for sid, generation in leases.items():
            if self._holds(sid, generation):
                state = self._services[sid]
                state.generation = taken[sid] = self._generation
                state.owner = owner
                self._leases[sid] = (owner, now + timedelta(seconds=lease))
        return taken

    def renew(self, leases: Mapping[str, int], lease: float, now: datetime) -> set[str]:
        until, lost = now + timedelta(seconds=lease), set()
        for sid, generation in leases.items():
            if self._holds(sid, generation):
                self._leases[sid] = (self._leases[sid][0], until)
            else:
                lost.add(sid)
        return lost

    def release(self, leases: Mapping[str, int]) -> None:
        for sid, generation in leases.items():
            if self._holds(sid, generation):
                self._leases.pop(sid, None)

    def enqueue(self, envelope: Envelope, sinks: Sequence[str]) -> None:
        for sink in sinks:
            self._outbox.setdefault(sink, {})[envelope["message_id"]] = envelope

    def acknowledge(self, sink: str, message_ids: Sequence[str]) -> None:
        box = self._outbox.get(sink)
        if box is not None:
            for message_id in message_ids:
                box.pop(message_id, None)

    def pending(self, sink: str, service_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        envelopes = self._outbox.get(sink, {}).values()
        if service_ids is None:
            return [dict(envelope) for envelope in envelopes]
        return [dict(e) for e in envelopes if service_of(e) in service_ids]

    def waiting(self) -> list[tuple[str, int, str | None]]:
        """A box keeps insertion order: its first envelope is its oldest."""
        return [
            (sink, len(box), str(next(iter(box.values()))["timestamp"]))
            for sink, box in sorted(self._outbox.items())
            if box
        ]

    def purge(self, before: datetime) -> int:
        check_cutoff(before)
        if not self._history or self._history[0].at >= before:
            return 0  # appended in time order: nothing is old enough, and a long history is not rebuilt
        with self._rewriting:
            read = self._history[:]
            latest = {service_id(r.binary, r.host): index for index, r in enumerate(read)}
            kept = set(latest.values())
            left = [r for index, r in enumerate(read) if r.at >= before or index in kept]
            self._history[: len(read)] = left
        return len(read) - len(left)

    def remove_service(self, sid: str, service_down_time: float | None, *, now: datetime | None = None) -> Removed:
        state = self._services.get(sid)
        if state is None:
            raise unknown_service(sid)
        window = down_time_of(state.service_down_time, service_down_time)
        check_removable(sid, self.heartbeats.get(sid), now or datetime.now(UTC), window)
        with self._rewriting:
            read = self._history[:]
            left = [r for r in read if service_id(r.binary, r.host) != sid]
            self._history[: len(read)] = left
            undelivered = 0
            for box in self._outbox.values():
                for message_id in [m for m, envelope in box.items() if service_of(envelope) == sid]:
                    del box[message_id]
                    undelivered += 1
            del self._services[sid]
            self.heartbeats.pop(sid, None)
            self._status_version += 1
        return Removed(len(read) - len(left), undelivered)

    def reset_service(self, sid: str, *, now: datetime | None = None) -> ServiceState:
        """Leases count only in a shared store: a private one has no engine but its caller's."""
        state = self._services.get(sid)
        if state is None:
            raise unknown_service(sid, "reset")
        now = now or datetime.now(UTC)
        if self.shared:
            check_unleased(sid, None if (lease := self._leases.get(sid)) is None else Holder(*lease), now)
        window = down_time_of(state.service_down_time, None)
        check_removable(sid, self.heartbeats.get(sid), now, window, refused="reset")
        self._generation += 1
        self._services[sid] = fresh = reset_state(self._with_heartbeat(state), self._generation)
        self._leases.pop(sid, None)
        self._status_version += 1
        return _copy(fresh)

    def history(self, sid: str | None = None) -> list[TransitionRecord]:
        if sid is None:
            return list(self._history)
        return [r for r in self._history if service_id(r.binary, r.host) == sid]

    def fleet(self, service_down_time: float | None = None, *, now: datetime | None = None) -> list[ServiceRow]:
        now = now or datetime.now(UTC)
        return [
            self._with_heartbeat(state, copy=False).row(
                alive=alive(
                    self.heartbeats.get(sid),
                    now,
                    timedelta(seconds=down_time_of(state.service_down_time, service_down_time)),
                )
            )
            for sid, state in self._services.items()
        ]

    def close(self) -> None:
        """Nothing to release."""


_FIELDS = attrgetter(*(field.name for field in dataclasses.fields(ServiceState)))


def _copy(state: ServiceState) -> ServiceState:
    """``dataclasses.replace(state)``, a fifth of its cost: it reads the class's fields on every
    call, and registering or adopting a fleet copies every service's state once or twice."""
    return ServiceState(*_FIELDS(state))
