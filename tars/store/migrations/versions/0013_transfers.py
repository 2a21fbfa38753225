"""Transfers: ``call_transfer``, one row per attempt to put a call through (cold, warm, or the
owner joining a goal call), with its result, times and the reason when it was refused.

Only ``CREATE TABLE`` and ``CREATE INDEX`` (see 0002: no table copies).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)
KINDS = ("cold", "warm", "join")
RESULTS = ("refused", "ringing", "connected", "completed", "busy", "no-answer", "declined", "failed")


def _one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_call_transfer_{column}"))


def upgrade() -> None:
    op.create_table(
        "call_transfer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("target_name", sa.String(200), nullable=True),
        sa.Column("number", sa.String(32), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=True),
        sa.Column("about", sa.Text(), nullable=True),
        sa.Column("brief", sa.Text(), nullable=True),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("leg_sid", sa.String(64), nullable=True),
        sa.Column("resumed", sa.Boolean(), nullable=False),
        sa.Column("started_at", Instant, nullable=False),
        sa.Column("answered_at", Instant, nullable=True),
        sa.Column("ended_at", Instant, nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        _one_of("kind", KINDS),
        _one_of("result", RESULTS),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_call_transfer_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_transfer")),
    )
    op.create_index(op.f("ix_call_transfer_call_id"), "call_transfer", ["call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_call_transfer_call_id"), "call_transfer")
    op.drop_table("call_transfer")
