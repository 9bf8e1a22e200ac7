"""Alembic migrations of edu-core, shipped with the package (see `edu_infra.sqlalchemy.migrate`)."""
