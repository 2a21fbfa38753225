"""The switchboard: what outlives one media stream, as real columns; messages between calls.

``_callee``, ``_late`` and ``_reminder_lease`` move out of ``call.inputs`` (where they hid
among the playbook's inputs) into columns of their own; the playbook run across a keypad
handover, the live session's role and the goal call's requester and follow-ups join them.
``call_message`` holds questions, notes and reports between live calls and the owner.

Only ``ADD COLUMN``, ``CREATE TABLE`` and ``CREATE INDEX`` (see 0002: no table copies).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)
MOVED = {"_callee": "callee", "_late": "late", "_reminder_lease": "reminder_lease", "_window": "window_override"}
NEW_COLUMNS = (
    ("callee", sa.String(200)),
    ("role", sa.String(64)),
    ("reminder_lease", sa.String(200)),
    ("step", sa.String(200)),
    ("run_state", sa.JSON(none_as_null=True)),
    ("resume_digits", sa.String(64)),
    ("requested_by", sa.Integer()),
    ("report_via", sa.String(16)),
    ("after_outcome", sa.JSON(none_as_null=True)),
    ("window_override", sa.Text()),
)


def upgrade() -> None:
    op.add_column("call", sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))
    for name, kind in NEW_COLUMNS:
        op.add_column("call", sa.Column(name, kind, nullable=True))
    _move_hidden_inputs()
    op.create_table(
        "call_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_call_id", sa.Integer(), nullable=True),
        sa.Column("to_call_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("code", sa.String(8), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("expires_at", Instant, nullable=True),
        sa.Column("answered_at", Instant, nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
        sa.CheckConstraint("kind IN ('question', 'note', 'report')", name=op.f("ck_call_message_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'answered', 'expired', 'failed')", name=op.f("ck_call_message_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_message")),
    )
    op.create_index(op.f("ix_call_message_from_call_id"), "call_message", ["from_call_id"])
    op.create_index(op.f("ix_call_message_to_call_id"), "call_message", ["to_call_id"])
    op.create_index("ix_call_message_status_code", "call_message", ["status", "code"])


def _move_hidden_inputs() -> None:
    """Each call's hidden ``_…`` inputs into their columns; the playbook's inputs stay."""
    call = sa.table(
        "call",
        sa.column("id", sa.Integer()),
        sa.column("inputs", sa.JSON(none_as_null=True)),
        sa.column("callee", sa.String()),
        sa.column("late", sa.Boolean()),
        sa.column("reminder_lease", sa.String()),
        sa.column("window_override", sa.Text()),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(call.c.id, call.c.inputs)).all():
        inputs = row.inputs
        if not isinstance(inputs, dict) or not any(key in inputs for key in MOVED):
            continue
        values = {column: inputs[key] for key, column in MOVED.items() if key in inputs}
        values["late"] = bool(values.get("late", False))
        rest = {k: v for k, v in inputs.items() if k not in MOVED}
        connection.execute(call.update().where(call.c.id == row.id).values(inputs=rest or None, **values))


def downgrade() -> None:
    op.drop_index("ix_call_message_status_code", "call_message")
    op.drop_index(op.f("ix_call_message_to_call_id"), "call_message")
    op.drop_index(op.f("ix_call_message_from_call_id"), "call_message")
    op.drop_table("call_message")
    with op.batch_alter_table("call") as batch:
        for name in ("late", *(name for name, _ in reversed(NEW_COLUMNS))):
            batch.drop_column(name)
