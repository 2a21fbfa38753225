"""Persona history: every change to a persona asked for by voice or with ``tars persona``,
applied or refused (``persona_change``).

Only ``CREATE TABLE`` and ``CREATE INDEX`` (see 0002: no table copies).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "persona_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("persona", sa.String(128), nullable=False),
        sa.Column("setting", sa.String(32), nullable=False),
        sa.Column("old", sa.String(256), nullable=True),
        sa.Column("new", sa.String(256), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.CheckConstraint("result IN ('applied', 'refused')", name=op.f("ck_persona_change_result")),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_persona_change_call_id_call"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persona_change")),
    )
    op.create_index(op.f("ix_persona_change_at"), "persona_change", ["at"])
    op.create_index(op.f("ix_persona_change_call_id"), "persona_change", ["call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_persona_change_call_id"), "persona_change")
    op.drop_index(op.f("ix_persona_change_at"), "persona_change")
    op.drop_table("persona_change")
