"""Each service's ``service_down_time``, as the engine that writes it uses it.

Readers with no engine of their own (``statecore service-list``, ``statecore serve``) judged
liveness with a window of their own (60 s by default), whatever the engine used: a service of a
6 s engine that died looked ``up`` for a minute. Settings may differ per service, so the window
is a column of the service row. Rows written before it have none, and are read with the default.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 creates ``schema.metadata`` as it stands today, so on a fresh database it exists.
    inspector = sa.inspect(op.get_bind())
    if "service_down_time" not in {column["name"] for column in inspector.get_columns("statecore_services")}:
        with op.batch_alter_table("statecore_services") as batch:
            batch.add_column(sa.Column("service_down_time", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("statecore_services") as batch:
        batch.drop_column("service_down_time")
