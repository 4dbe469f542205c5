"""Where services, transitions and pending notifications are kept.

The engine talks to the ``Store`` protocol only: ``MemoryStore`` for embedding
and virtual time, ``SqlStore`` (SQLite file or PostgreSQL) to survive crashes
and to share one service list between hosts.
"""

from statecore.store.base import ServiceState, Store, StoreCorrupt, StoreUnavailable, service_id
from statecore.store.memory import MemoryStore

__all__ = ["MemoryStore", "ServiceState", "Store", "StoreCorrupt", "StoreUnavailable", "service_id"]
