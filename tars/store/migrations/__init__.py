"""Alembic migration scripts for the TARS store (run by ``tars.store.schema``, no alembic.ini)."""
