"""Tables of the SQL store (SQLAlchemy Core). Migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend: SQLite keeps naive text, PostgreSQL a timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} would be ambiguous in the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


services = Table(
    "statecore_services",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("binary", String(16), nullable=False),
    Column("zone", String(255), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("lifecycle", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("disabled_reason", String(255)),
    Column("initialized", Boolean, nullable=False, default=False),
    Column("last_ok", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime()),
    Column("heartbeat_db_at", UtcDateTime()),
    Column("attempt", Integer, nullable=False),
    Column("total_attempts", Integer, nullable=False),
    Column("retries_left", Integer),
    Column("last_delay", Float),
    Column("next_retry_at", UtcDateTime()),
    Column("last_error_type", String(255)),
    Column("last_error_message", Text),
    Column("backend_state", String(16)),
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("lease_until", UtcDateTime()),
    Column("service_down_time", Float),
)

history = Table(
    "statecore_history",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(300), ForeignKey("statecore_services.id"), nullable=False),
    Column("host", String(255), nullable=False),
    Column("binary", String(16), nullable=False),
    Column("zone", String(255), nullable=False),
    Column("event", String(32), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("error_type", String(255)),
    Column("error_message", Text),
    Column("attempt", Integer, nullable=False),
    Column("retries_left", Integer),
    Column("next_retry_at", UtcDateTime()),
    Column("event_type", String(64), nullable=False),
    Column("priority", String(8), nullable=False),
    Column("message_id", String(36), nullable=False),
    Index("ix_statecore_history_service", "service_id", "seq"),
    Index("ix_statecore_history_at", "at"),
)

outbox = Table(
    "statecore_outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("sink", String(255), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("service_id", String(300), nullable=False),
    Column("envelope", Text, nullable=False),
    Index("ix_statecore_outbox_sink", "sink", "seq"),
)

claims = Table(
    "statecore_claims",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", Integer, nullable=False),
)
"""One row: the last generation handed out. Every claim takes the next, for all the services it
takes, so a generation is never handed out twice, even to a service removed and registered again."""
