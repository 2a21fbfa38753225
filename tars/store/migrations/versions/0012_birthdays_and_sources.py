"""Birthday reminders and search sources: ``reminder.kind`` ("birthday" for the yearly
reminder TARS keeps for a contact's birthday; None for the owner's own) and ``call.sources``
(the web pages Google Search grounding used on the call).

``ALTER TABLE … ADD COLUMN`` only (see 0002: no table copies).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reminder", sa.Column("kind", sa.String(16), nullable=True))
    op.add_column("call", sa.Column("sources", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.drop_column("sources")
    with op.batch_alter_table("reminder") as batch:
        batch.drop_column("kind")
