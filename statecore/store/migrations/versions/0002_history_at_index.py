"""An index on the history's ``at``: retention deletes the oldest rows in small batches, and each
batch finds them through it instead of scanning the table (docs/decisions.md, Retention)."""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_statecore_history_at", "statecore_history", ["at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_statecore_history_at", table_name="statecore_history", if_exists=True)
