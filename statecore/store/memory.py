"""The in-process store: the default for embedding and virtual time; nothing survives the process."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from statecore.records import ServiceRow, TransitionRecord
from statecore.store.base import Entry, Envelope, ServiceState, service_id


class MemoryStore:
    def __init__(self) -> None:
        self._services: dict[str, ServiceState] = {}
        self._history: list[TransitionRecord] = []
        self._outbox: dict[str, dict[str, Envelope]] = {}
        self.heartbeats: dict[str, datetime] = {}
        self._status_version = 0

    def load(self, sid: str) -> ServiceState | None:
        state = self._services.get(sid)
        return None if state is None else self._with_heartbeat(state)

    def save(self, state: ServiceState) -> None:
        self._services[state.id] = dataclasses.replace(state)
        self._status_version += 1

    def load_many(self, sids: Sequence[str]) -> dict[str, ServiceState]:
        return {sid: self._with_heartbeat(state) for sid in sids if (state := self._services.get(sid)) is not None}

    def _with_heartbeat(self, state: ServiceState, *, copy: bool = True) -> ServiceState:
        """The stored state with its latest heartbeat: ``record_heartbeats`` only notes the instant
        (one dict update for a whole batch), and it counts from here, on reading. A copy, unless the
        caller only reads it (``copy=False``) and no newer heartbeat needs one."""
        beat = self.heartbeats.get(state.id)
        if beat is None or beat <= state.last_ok:
            return dataclasses.replace(state) if copy else state
        return dataclasses.replace(state, last_ok=beat, updated_at=max(beat, state.updated_at or beat))

    def save_many(self, states: Sequence[ServiceState]) -> None:
        for state in states:
            self.save(state)

    def commit_many(self, entries: Sequence[Entry], sinks: Sequence[str]) -> None:
        """Through ``commit``, entry by entry (so a store built on this one sees each), and undone
        whole if one of them raises."""
        before = {entry.state.id: self._services.get(entry.state.id) for entry in entries}
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

    def set_backend_state(self, sid: str, value: str | None) -> None:
        self.set_backend_states({sid: value})

    def set_backend_states(self, values: Mapping[str, str | None]) -> None:
        for sid, value in values.items():
            state = self._services.get(sid)
            if state is not None:
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
        sid, message_id, outbox = service_id(state.binary, state.host), envelope["message_id"], self._outbox
        previous = self._services.get(sid)
        if previous is not None and not status:  # an admin may have changed these outside any transition
            state.disabled, state.disabled_reason = previous.disabled, previous.disabled_reason
        elif status:
            self._status_version += 1
        self._services[sid] = state
        self._history.append(record)
        for sink in sinks:
            box = outbox.get(sink)
            if box is None:
                box = outbox[sink] = {}
            box[message_id] = envelope

    def record_heartbeats(self, service_ids: Sequence[str], at: datetime) -> Sequence[str]:
        self.heartbeats.update(dict.fromkeys(service_ids, at))
        return service_ids

    def acknowledge(self, sink: str, message_ids: Sequence[str]) -> None:
        box = self._outbox.get(sink)
        if box is not None:
            for message_id in message_ids:
                box.pop(message_id, None)

    def pending(self, sink: str) -> list[dict[str, Any]]:
        return [dict(envelope) for envelope in self._outbox.get(sink, {}).values()]

    def history(self, sid: str | None = None) -> list[TransitionRecord]:
        if sid is None:
            return list(self._history)
        return [r for r in self._history if service_id(r.binary, r.host) == sid]

    def fleet(self, service_down_time: float, *, now: datetime | None = None) -> list[ServiceRow]:
        now = now or datetime.now(UTC)
        window = timedelta(seconds=service_down_time)
        return [
            self._with_heartbeat(state, copy=False).row(
                alive=(beat := self.heartbeats.get(sid)) is not None and now - beat <= window
            )
            for sid, state in self._services.items()
        ]

    def close(self) -> None:
        """Nothing to release."""
