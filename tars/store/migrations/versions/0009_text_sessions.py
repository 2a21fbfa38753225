"""Text sessions: a call row may be a text session (``call.kind`` "text", by SMS, n8n or
``tars send``; "voice" for every call before), with the address its result is posted to
(``call.reply_to``, n8n); and the n8n request ids accepted once (``hook_request``).

Only ``ADD COLUMN``, ``CREATE TABLE`` and ``CREATE INDEX`` (see 0002: no table copies).

Revision ID: 0009
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0005"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("call", sa.Column("kind", sa.String(8), nullable=False, server_default="voice"))
    op.add_column("call", sa.Column("reply_to", sa.Text(), nullable=True))
    op.create_table(
        "hook_request",
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_hook_request")),
    )
    op.create_index(op.f("ix_hook_request_expires_at"), "hook_request", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_hook_request_expires_at"), "hook_request")
    op.drop_table("hook_request")
    with op.batch_alter_table("call") as batch:
        batch.drop_column("reply_to")
        batch.drop_column("kind")
