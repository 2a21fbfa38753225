"""Search over past calls: a full-text index of transcripts, summaries and outcomes, and a
table of call embeddings (``call_embedding``) for search by meaning.

* SQLite: two FTS5 tables over the rows themselves (external content, so the text is not
  stored twice): ``transcript_line_fts`` (transcript_line.text) and ``call_fts``
  (call.summary, call.outcome). Triggers keep them in step with every insert, update and
  delete (a call's cascade-deleted lines included); existing rows are indexed here.
  https://www.sqlite.org/fts5.html#external_content_tables
* PostgreSQL: GIN indexes over ``to_tsvector('english', …)`` of the same text; an
  expression index is kept in step by PostgreSQL itself, and the search queries use the
  very same expression so the planner picks the index.
  https://www.postgresql.org/docs/current/textsearch-tables.html#TEXTSEARCH-TABLES-INDEX

Only ``CREATE`` statements (see 0002: no table copies).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Instant = sa.DateTime(timezone=True)

#: The text-search expressions; tars/store/call_search.py queries with the same ones.
PG_LINE = "to_tsvector('english', text)"
PG_CALL = "to_tsvector('english', coalesce(summary, '') || ' ' || coalesce(outcome::text, ''))"

_SQLITE = [
    # porter: "booked" finds "booking"; remove_diacritics: "Zoë" finds "zoe".
    "CREATE VIRTUAL TABLE transcript_line_fts USING fts5("
    "text, content='transcript_line', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE call_fts USING fts5("
    "summary, outcome, content='call', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER transcript_line_fts_insert AFTER INSERT ON transcript_line BEGIN "
    "INSERT INTO transcript_line_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER transcript_line_fts_delete AFTER DELETE ON transcript_line BEGIN "
    "INSERT INTO transcript_line_fts(transcript_line_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER transcript_line_fts_update AFTER UPDATE OF text ON transcript_line BEGIN "
    "INSERT INTO transcript_line_fts(transcript_line_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO transcript_line_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER call_fts_insert AFTER INSERT ON call BEGIN "
    "INSERT INTO call_fts(rowid, summary, outcome) VALUES (new.id, new.summary, new.outcome); END",
    "CREATE TRIGGER call_fts_delete AFTER DELETE ON call BEGIN "
    "INSERT INTO call_fts(call_fts, rowid, summary, outcome) VALUES ('delete', old.id, old.summary, old.outcome); END",
    "CREATE TRIGGER call_fts_update AFTER UPDATE OF summary, outcome ON call BEGIN "
    "INSERT INTO call_fts(call_fts, rowid, summary, outcome) VALUES ('delete', old.id, old.summary, old.outcome); "
    "INSERT INTO call_fts(rowid, summary, outcome) VALUES (new.id, new.summary, new.outcome); END",
    "INSERT INTO transcript_line_fts(transcript_line_fts) VALUES ('rebuild')",
    "INSERT INTO call_fts(call_fts) VALUES ('rebuild')",
]

_PG = [
    f"CREATE INDEX ix_transcript_line_search ON transcript_line USING GIN ({PG_LINE})",
    f'CREATE INDEX ix_call_search ON "call" USING GIN ({PG_CALL})',
]


def upgrade() -> None:
    op.create_table(
        "call_embedding",
        sa.Column("call_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_call_embedding_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_call_embedding")),
    )
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE if dialect == "sqlite" else _PG if dialect == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("transcript_line_fts_insert", "transcript_line_fts_delete", "transcript_line_fts_update",
                        "call_fts_insert", "call_fts_delete", "call_fts_update"):  # fmt: skip
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS transcript_line_fts")
        op.execute("DROP TABLE IF EXISTS call_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_transcript_line_search")
        op.execute("DROP INDEX IF EXISTS ix_call_search")
    op.drop_table("call_embedding")
