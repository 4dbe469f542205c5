"""Where transitions and heartbeats are kept. The engine talks to the ``Store`` protocol only."""

from statecore.store.base import Store
from statecore.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
