"""Alembic migrations of the SQL store, run from code: no alembic.ini to ship or find."""
