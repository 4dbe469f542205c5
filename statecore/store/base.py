"""The store protocol: the engine's only way to persist what happened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from statecore.records import TransitionRecord


class Store(Protocol):
    def append(self, record: TransitionRecord) -> None:
        """Keep one transition; called before its notification is published."""

    def record_heartbeats(self, service_ids: Sequence[str], at: datetime) -> Sequence[str]:
        """Record a batch of heartbeats; returns the ids actually recorded (raise: none were)."""
        ...

    def history(self, service_id: str | None = None) -> list[TransitionRecord]:
        """Every transition, oldest first, of one service or of all."""
        ...
