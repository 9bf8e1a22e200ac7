"""An id is one row: a unique index on `id` of every tenant table.

Revision ID: 0004
Revises: 0003
Create Date: 2027-02-02 10:00:00.000000

Tenant tables are keyed by (organization_id, id) for Citus, so nothing stopped a unit of
work of one organization from inserting a row with an id another organization already
uses; unscoped reads (`get`, `find` by id) then met two rows for one identity. Ids are
UUIDv7s edu-core generates; the port (and the memory adapter) treat an id as one row. The
plain index on `id` each tenant table had becomes a unique one (same cost).

Citus cannot enforce a unique index without the distribution column: with the `citus`
extension installed the plain index stays, and ids are unique per organization only
(README, "Running on Citus"). A database holding one id in two organizations cannot be
upgraded until one of them is removed: the upgrade fails naming the index.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("users", "user_profiles", "login_sessions", "user_tokens", "educational_contents")


def _on_citus() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")).first()
    return found is not None


def upgrade() -> None:
    if _on_citus():
        return
    for table in TENANT_TABLES:
        op.create_index(f"uq_{table}_id", table, ["id"], unique=True)
        op.drop_index(f"ix_{table}_id", table_name=table)


def downgrade() -> None:
    if _on_citus():
        return
    for table in TENANT_TABLES:
        op.create_index(f"ix_{table}_id", table, ["id"], unique=False)
        op.drop_index(f"uq_{table}_id", table_name=table)
