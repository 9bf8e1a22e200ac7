"""A host service's own Alembic tree, sharing a database with edu-core's migrations."""
