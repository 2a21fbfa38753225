"""Alembic environment: runs on the connection ``tars.store.schema`` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import tars.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("TARS migrations run through tars.store.schema.ensure_current(), online only")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER TABLE goes through copies
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
