"""Hardening: wrong owner PINs counted across calls (``pin_lockout``) and signed stream
tokens accepted once (``used_stream_token``).

Only ``CREATE TABLE`` and ``CREATE INDEX`` (see 0002: no table copies).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pin_lockout",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", Instant, nullable=True),
        sa.Column("updated_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_pin_lockout")),
    )
    op.create_table(
        "used_stream_token",
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("expires_at", Instant, nullable=False),
        sa.PrimaryKeyConstraint("mac", name=op.f("pk_used_stream_token")),
    )
    op.create_index(op.f("ix_used_stream_token_expires_at"), "used_stream_token", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_used_stream_token_expires_at"), "used_stream_token")
    op.drop_table("used_stream_token")
    op.drop_table("pin_lockout")
