"""A store as statecore's 0003 release made it, for the tests of what a newer statecore does to one.

Revision 0001 creates the tables of ``schema.py`` as the code stands, so running today's migrations
up to 0003 would give today's tables stamped 0003. Here 0001 is run with the tables of the 0003
release instead (``services`` without the columns added after it; the other tables are unchanged
since), then 0002 and 0003 as they are: the database that release left. Its
rows are the ones a real engine wrote, copied column for column.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, Table, create_engine, select
from sqlalchemy.engine import Engine

from statecore.store import schema
from statecore.store.sql import MIGRATIONS, SqlStore

AFTER_0003 = {"service_down_time"}
"""The columns of ``statecore_services`` that later revisions added (0004): the 0003 release's table
is today's without them. A revision that adds a column adds its name here."""
metadata_0003 = MetaData()
services_0003 = Table(
    "statecore_services",
    metadata_0003,
    *[column._copy() for column in schema.services.columns if column.name not in AFTER_0003],
)
for unchanged in (schema.history, schema.outbox, schema.claims):
    unchanged.to_metadata(metadata_0003)


@contextmanager
def _tables_of_0003() -> Iterator[None]:
    """0001 reads ``schema.metadata`` when alembic loads it, which it does for each upgrade."""
    today = schema.metadata
    schema.metadata = metadata_0003
    try:
        yield
    finally:
        schema.metadata = today


def make_0003_store(url: str, source: SqlStore) -> None:
    """The 0003 release's database at ``url``, holding the rows ``source``'s engine wrote."""
    engine: Engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with _tables_of_0003(), engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0003")
        with source.engine.connect() as read, engine.begin() as write:
            for table in metadata_0003.sorted_tables:
                copied = [column for column in table.columns if column.name != "seq"]  # numbered anew, in order
                rows = [dict(row) for row in read.execute(select(*copied).order_by(*table.primary_key)).mappings()]
                if rows:
                    write.execute(table.delete())
                    write.execute(table.insert(), rows)
    finally:
        engine.dispose()
