"""Where services, transitions and pending notifications are kept.

The engine talks to the ``Store`` protocol only: ``MemoryStore`` for embedding
and virtual time, ``SqlStore`` (SQLite file or PostgreSQL) to survive crashes
and to share one service list between hosts.
"""

from statecore.store.base import (
    Claim,
    Entry,
    Fenced,
    Holder,
    Removed,
    ServiceState,
    Store,
    StoreCorrupt,
    StoreUnavailable,
    service_id,
)
from statecore.store.memory import MemoryStore

__all__ = [
    "Claim",
    "Entry",
    "Fenced",
    "Holder",
    "MemoryStore",
    "Removed",
    "ServiceState",
    "Store",
    "StoreCorrupt",
    "StoreUnavailable",
    "open_store",
    "service_id",
]


def open_store(target: str) -> Store:
    """``memory``, a SQLite path, or a SQLAlchemy URL (``postgresql://`` uses psycopg 3)."""
    from statecore.store.sql import SqlStore, default_url

    if target == "memory":
        return MemoryStore()
    if target.startswith("postgresql://") or target.startswith("postgres://"):
        return SqlStore("postgresql+psycopg://" + target.split("://", 1)[1])
    if "://" in target:
        return SqlStore(target)
    return SqlStore(default_url(target))
