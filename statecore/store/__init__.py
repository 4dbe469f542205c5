"""Where services, transitions and pending notifications are kept.

The engine talks to the ``Store`` protocol only: ``MemoryStore`` for embedding
and virtual time, ``SqlStore`` (SQLite file or PostgreSQL) to survive crashes
and to share one service list between hosts.
"""

from pathlib import Path

from statecore.errors import StatecoreError
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
    "UnsupportedStore",
    "open_store",
    "service_id",
    "sqlite_path",
]


SUPPORTED = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
"""The URL forms statecore opens: SQLite through Python's own sqlite3, PostgreSQL through psycopg 3
(``postgresql://`` means psycopg 3 here). Other drivers are not installed with statecore."""


class UnsupportedStore(StatecoreError):
    """A database URL statecore does not run on; nothing was opened or created."""


def open_store(target: str, *, migrate: bool = True, **bounds: float) -> Store:
    """``memory``, a SQLite path, or a SQLAlchemy URL (``postgresql://`` uses psycopg 3). MySQL and
    MariaDB are refused in one line: no driver for them ships with statecore (OpenStack's is
    PyMySQL) and the store's upserts, fencing and clock are written and tested for SQLite and
    PostgreSQL only. ``migrate`` and ``bounds``: ``SqlStore``'s."""
    from statecore.store.sql import SqlStore, default_url

    if target == "memory":
        return MemoryStore()
    if target.startswith("postgresql://") or target.startswith("postgres://"):
        return SqlStore("postgresql+psycopg://" + target.split("://", 1)[1], migrate=migrate, **bounds)
    if "://" in target:
        check_supported(target)
        return SqlStore(target, migrate=migrate, **bounds)
    return SqlStore(default_url(target), migrate=migrate, **bounds)


def check_supported(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UnsupportedStore(f"store {url!r} is not a database URL (e.g. sqlite:///statecore.sqlite)") from None
    backend, shown = parsed.get_backend_name(), parsed.render_as_string(hide_password=True)
    if backend in ("mysql", "mariadb"):
        raise UnsupportedStore(
            f"store {shown}: MySQL/MariaDB is not supported (statecore ships no PyMySQL and runs on"
            " SQLite or PostgreSQL); use sqlite:///FILE or postgresql://..."
        )
    if parsed.drivername not in SUPPORTED:
        forms = ", ".join(f"{form}://" for form in SUPPORTED)
        raise UnsupportedStore(
            f"store {shown}: {parsed.drivername} is not supported; use one of {forms} (postgresql:// is psycopg 3)"
        )


def sqlite_path(target: str) -> Path | None:
    """The file a SQLite store lives in (a path or a ``sqlite:///`` URL), None for any other store."""
    if target == "memory":
        return None
    if "://" not in target:
        return Path(target)
    if not target.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(target).database
    return Path(database) if database not in (None, "", ":memory:") else None
