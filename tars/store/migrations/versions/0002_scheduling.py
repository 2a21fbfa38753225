"""Scheduling: late reminders, goal calls for later and their retries, reminder calls, live owner calls.

Only ``ADD COLUMN`` and ``CREATE INDEX``: on SQLite neither copies a table (a copy of
``call`` would, with foreign keys on, cascade-delete its transcript lines and tool uses).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("reminder", sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))
    for column in (
        sa.Column("scheduled_at", Instant, nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("retry_of", sa.Integer(), nullable=True),
        sa.Column("follow_up", sa.String(16), nullable=True),
        sa.Column("reminder_id", sa.Integer(), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", Instant, nullable=True),
        sa.Column("live_on", sa.String(200), nullable=True),
        sa.Column("live_until", Instant, nullable=True),
    ):
        op.add_column("call", column)
    op.create_index("ix_call_retry_of", "call", ["retry_of"], unique=True)
    op.create_index("ix_call_status_scheduled_at", "call", ["status", "scheduled_at"])
    op.create_index(op.f("ix_call_reminder_id"), "call", ["reminder_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_call_reminder_id"), "call")
    op.drop_index("ix_call_status_scheduled_at", "call")
    op.drop_index("ix_call_retry_of", "call")
    with op.batch_alter_table("call") as batch:
        for name in (
            "live_until",
            "live_on",
            "lease_expires_at",
            "lease_owner",
            "reminder_id",
            "follow_up",
            "retry_of",
            "attempt",
            "scheduled_at",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("reminder") as batch:
        batch.drop_column("late")
