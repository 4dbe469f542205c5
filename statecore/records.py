"""What the engine says about itself: transition records, notification envelopes, service rows.

A fired event returns a ``TransitionRecord``; the same record is what the store
keeps and what the notification carries, so a test, the history and the
message bus all see one fact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from statecore.table import AdminAction, Binary, Event, Priority, State


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a 'Z', microseconds kept, the same in every output.

    Formatted with ``%`` from the fields: every notification formats one or two instants, and this
    is half the cost of ``strftime`` (a third less than ``isoformat``) for the same text. The
    engine's clocks already give UTC, and ``astimezone`` would cost as much again.
    """
    if moment is None:
        return None
    m = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    fields = (m.year, m.month, m.day, m.hour, m.minute, m.second, m.microsecond)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % fields  # noqa: UP031 (faster than an f-string here)


_UUID_WIDTH = 37
"""A uuid's 36 characters and the newline that parts it from the next, in ``uuid4_texts``."""
_UUID_PLACES = tuple(
    (digit, digit + (digit >= 8) + (digit >= 12) + (digit >= 16) + (digit >= 20)) for digit in range(32)
)
"""(hex digit of the 128 bits, its place in the text): a dash before digits 8, 12, 16 and 20."""
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")
"""Digit 16 with its top two bits set to 10, the RFC 4122 variant."""


def uuid4_texts(bits: int, count: int) -> list[str]:
    """``count`` uuid4 texts from ``128 * count`` random bits, the last one from the lowest 128 bits.

    Each is ``str(uuid.UUID(int=chunk, version=4))`` of its 128-bit chunk. ``getrandbits(128 * n)``
    fills its result from the lowest bits up, so popping from the end yields the texts of ``n``
    successive ``getrandbits(128)`` draws, in order. Every notification needs one: formatting them
    a column at a time (a slice assignment per hex digit, in C) costs a quarter of formatting each, or less.
    """
    digits = bits.to_bytes(16 * count, "big").hex().encode()
    text = bytearray(b"-" * (_UUID_WIDTH * count))
    text[_UUID_WIDTH - 1 :: _UUID_WIDTH] = b"\n" * count
    for digit, place in _UUID_PLACES:
        text[place::_UUID_WIDTH] = digits[digit::32]
    text[14::_UUID_WIDTH] = b"4" * count  # the version
    text[19::_UUID_WIDTH] = digits[16::32].translate(_VARIANT)
    return text.decode().splitlines()


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    type: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> ErrorInfo:
        return cls(type=type(error).__name__, message=str(error))

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


class TransitionRecord(NamedTuple):
    """One fired transition (or audited admin action), immutable.

    A named tuple rather than a frozen dataclass: one is built for every event, and a frozen
    dataclass sets each of its fourteen fields through ``object.__setattr__`` (3.5 µs against
    0.7 µs here, docs/performance.md).
    """

    host: str
    binary: Binary
    zone: str
    event: Event | AdminAction
    from_state: State
    to_state: State
    at: datetime
    reason: str
    error: ErrorInfo | None
    attempt: int
    retries_left: int | None
    next_retry_at: datetime | None
    event_type: str
    priority: Priority

    def envelope(self, message_id: uuid.UUID | str) -> dict[str, Any]:
        """The oslo.messaging-style notification for this transition (BEHAVIOR.md section 7).

        States and events go in as plain strings (``str()`` of a StrEnum member is its value, and
        cheaper than ``.value``), so sinks and JSON see exactly the table's names. The fields are
        unpacked at once: one step, where fourteen attribute reads of a named tuple are fourteen.
        """
        host, binary, zone, event, source, dest, at, reason, error, attempt, left, next_retry_at, kind, priority = self
        return {
            "message_id": str(message_id),
            "publisher_id": f"{binary}.{host}",
            "event_type": kind,
            "priority": priority,
            "timestamp": iso(at),
            "payload": {
                "host": host,
                "binary": binary,
                "zone": zone,
                "from_state": str(source),
                "to_state": str(dest),
                "event": str(event),
                "reason": reason,
                "error": None if error is None else {"type": error.type, "message": error.message},
                "attempt": attempt,
                "retries_left": left,
                "next_retry_at": None if next_retry_at is None else iso(next_retry_at),
            },
        }


class ServiceRow(BaseModel):
    """One line of the service list (BEHAVIOR.md section 8)."""

    model_config = ConfigDict(frozen=True)

    host: str
    binary: Binary
    zone: str
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    state: Literal["up", "down"]
    lifecycle: State
    updated_at: datetime | None
    attempts: int
    total_attempts: int
    retries_left: int | None
    next_retry_at: datetime | None
    last_error: str | None
    backend_state: Literal["up", "down"] | None
