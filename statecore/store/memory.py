"""The in-process store: history in a list, heartbeats in a dict; nothing survives the process."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from statecore.records import TransitionRecord


def service_id(binary: str, host: str) -> str:
    return f"{binary}/{host}"


class MemoryStore:
    def __init__(self) -> None:
        self._history: list[TransitionRecord] = []
        self.heartbeats: dict[str, datetime] = {}

    def append(self, record: TransitionRecord) -> None:
        self._history.append(record)

    def record_heartbeats(self, service_ids: Sequence[str], at: datetime) -> Sequence[str]:
        for sid in service_ids:
            self.heartbeats[sid] = at
        return service_ids

    def history(self, service_id: str | None = None) -> list[TransitionRecord]:
        if service_id is None:
            return list(self._history)
        return [r for r in self._history if f"{r.binary}/{r.host}" == service_id]
