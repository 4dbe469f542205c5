"""Leases: which engine drives a service, until when, and the fencing token of its claim.

``generation`` goes up by one at every claim; every write of the service checks it, so an
engine that lost its lease (it was stopped, or cut off, while another took over) writes
nothing more. ``lease_until`` is on the database's clock, the one every host reads alike.
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
    # 0001 creates ``schema.metadata`` as it stands today, so on a fresh database the columns exist.
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("statecore_services")}
    if "generation" in present:
        return
    with op.batch_alter_table("statecore_services") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_until", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("statecore_services") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("generation")
