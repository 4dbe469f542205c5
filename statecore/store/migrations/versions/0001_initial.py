"""Services, transition history and notification outbox.

The first revision creates ``schema.metadata`` as it stands in the code, so a
new database gets every later column and index here too; later revisions use
explicit ``op`` calls that find their change already made on such a database
(``if_not_exists``, or a look at the columns). ``tests/test_store_sql.py``
checks that the migrated schema matches ``schema.py``, so a column added
without a migration fails the suite.
"""

from __future__ import annotations

from alembic import op

from statecore.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata.drop_all(bind=op.get_bind())
