"""Security events: every refused inbound request (``security_event``), and when the owner
was last told of each kind (``security_alert``, so every process keeps to one message per
kind an hour).

Only ``CREATE TABLE`` and ``CREATE INDEX`` (see 0002: no table copies).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)
KINDS = ("twilio_signature", "stream_token", "pin_lockout", "api_token")


def upgrade() -> None:
    op.create_table(
        "security_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("source", sa.String(128), nullable=True),
        sa.CheckConstraint(
            "kind IN ({})".format(", ".join(f"'{k}'" for k in KINDS)), name=op.f("ck_security_event_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_event")),
    )
    op.create_index(op.f("ix_security_event_at"), "security_event", ["at"])
    op.create_table(
        "security_alert",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sent_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_security_alert")),
    )


def downgrade() -> None:
    op.drop_table("security_alert")
    op.drop_index(op.f("ix_security_event_at"), "security_event")
    op.drop_table("security_event")
