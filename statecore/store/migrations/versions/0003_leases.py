"""Leases: which engine drives a service, until when, and the fencing token of its claim.

Every claim takes the next ``generation`` from ``statecore_claims`` (one row, never going
back); every write of the service checks it, so an engine that lost its lease (it was
stopped, or cut off, while another took over) writes nothing more. ``lease_until`` is on the
database's clock, the one every host reads alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from statecore.store.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 creates ``schema.metadata`` as it stands today, so on a fresh database these exist.
    inspector = sa.inspect(op.get_bind())
    if "generation" not in {column["name"] for column in inspector.get_columns("statecore_services")}:
        with op.batch_alter_table("statecore_services") as batch:
            batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
            batch.add_column(sa.Column("lease_until", UtcDateTime(), nullable=True))
    if "statecore_claims" not in inspector.get_table_names():
        op.create_table(
            "statecore_claims",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("generation", sa.Integer(), nullable=False),
        )
    op.execute(
        "INSERT INTO statecore_claims (id, generation)"
        " SELECT 1, (SELECT COALESCE(MAX(generation), 0) FROM statecore_services)"
        " WHERE NOT EXISTS (SELECT 1 FROM statecore_claims)"
    )


def downgrade() -> None:
    op.drop_table("statecore_claims")
    with op.batch_alter_table("statecore_services") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("generation")
