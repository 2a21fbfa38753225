"""The first schema: contacts, reminders (with leases), calls, transcripts, tool use, messages.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen here on purpose: a migration describes the schema as it was, not as models.py is now.
Instant = sa.DateTime(timezone=True)  # tars.store.columns.UTCDateTime stores into this
Json = sa.JSON(none_as_null=True)


def _one_of(column: str, values: tuple[str, ...], table: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "contact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("relationship", sa.String(100), nullable=True),
        sa.Column("birthday", sa.String(10), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("role", sa.String(64), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact")),
        sa.UniqueConstraint("name_key", name=op.f("uq_contact_name_key")),
    )
    op.create_index(op.f("ix_contact_phone"), "contact", ["phone"])

    op.create_table(
        "call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(64), nullable=True),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=False),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("playbook", sa.String(200), nullable=True),
        sa.Column("inputs", Json, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", Instant, nullable=True),
        sa.Column("ended_at", Instant, nullable=True),
        sa.Column("outcome", Json, nullable=True),
        sa.Column("outcome_source", sa.String(16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("recording_path", sa.String(1000), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        *_stamps(),
        _one_of("direction", ("inbound", "outbound"), "call"),
        _one_of(
            "status",
            (
                "queued",
                "ringing",
                "in-progress",
                "completed",
                "busy",
                "no-answer",
                "failed",
                "voicemail",
            ),
            "call",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_call_contact_id_contact"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call")),
        sa.UniqueConstraint("sid", name=op.f("uq_call_sid")),
    )
    op.create_index(op.f("ix_call_contact_id"), "call", ["contact_id"])

    op.create_table(
        "reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("due", Instant, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("recurrence", sa.String(500), nullable=True),
        sa.Column("series_start", Instant, nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", Instant, nullable=True),
        sa.Column("retry_at", Instant, nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", Instant, nullable=True),
        *_stamps(),
        _one_of("channel", ("call", "sms", "webhook", "default"), "reminder"),
        _one_of("status", ("pending", "delivering", "delivered", "failed", "cancelled"), "reminder"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_reminder_contact_id_contact"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder")),
    )
    op.create_index(op.f("ix_reminder_contact_id"), "reminder", ["contact_id"])
    op.create_index("ix_reminder_status_due", "reminder", ["status", "due"])

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("caller_number", sa.String(32), nullable=True),
        sa.Column("caller_name", sa.String(200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("delivered_at", Instant, nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        _one_of("status", ("pending", "delivered", "failed"), "message"),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"], name=op.f("fk_message_call_id_call"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    op.create_index(op.f("ix_message_call_id"), "message", ["call_id"])

    op.create_table(
        "tool_invocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("arguments", Json, nullable=True),
        sa.Column("result", Json, nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call.id"],
            name=op.f("fk_tool_invocation_call_id_call"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_invocation")),
    )
    op.create_index(op.f("ix_tool_invocation_call_id"), "tool_invocation", ["call_id"])

    op.create_table(
        "transcript_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("at", Instant, nullable=False),
        sa.Column("speaker", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call.id"],
            name=op.f("fk_transcript_line_call_id_call"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_line")),
    )
    op.create_index(op.f("ix_transcript_line_call_id"), "transcript_line", ["call_id"])


def downgrade() -> None:
    for table in ("transcript_line", "tool_invocation", "message", "reminder", "call", "contact"):
        op.drop_table(table)
