"""The transactional outbox: outbox_events, under the tenant policy of every table.

Revision ID: 0005
Revises: 0004
Create Date: 2027-03-01 08:00:00.000000

One row per durable domain event, written in the transaction of the change and deleted
once the relay delivered it (`edu_infra.outbox`). On PostgreSQL the table gets the policy
of every tenant table (0003's rule: the signed tenant, or signed unscoped work, FORCE row
level security): a scoped connection reads, changes and inserts only its own
organization's events; only the relay's unscoped units of work see them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "outbox_events"


def _text(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.String(26), "sqlite")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _app_role() -> str:
    role = context.config.attributes.get("app_role")
    role = role or context.get_x_argument(as_dictionary=True).get("app_role") or "edu_app"
    if not role.replace("_", "").isalnum():
        raise ValueError(f"invalid role name {role!r}")
    return str(role)


def _secure(schema: str, role: str) -> None:
    """FORCE row-level security with 0003's policy; DML for the application role only."""
    rule = f"(organization_id = (SELECT {schema}.edu_tenant()) OR (SELECT {schema}.edu_unscoped()))"
    op.execute(f"ALTER TABLE {schema}.{TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {schema}.{TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {schema}.{TABLE} USING {rule} WITH CHECK {rule}")
    op.execute(f"REVOKE ALL ON {schema}.{TABLE} FROM PUBLIC")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.{TABLE} TO "{role}";
            END IF;
        END
        $$
        """
    )


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", _text(128), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("state", _text(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", _timestamp(), nullable=False),
        sa.Column("lease_owner", _text(128), nullable=True),
        sa.Column("lease_until", _timestamp(), nullable=True),
        sa.Column("last_error", _text(512), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'dead')", name="ck_outbox_events_state"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_outbox_events_organization_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name="pk_outbox_events"),
    )
    op.create_index("ix_outbox_events_due", TABLE, ["state", "available_at"], unique=False)
    op.create_index("ix_outbox_events_id", TABLE, ["id"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        schema = bind.exec_driver_sql("SELECT quote_ident(current_schema())").scalar_one()
        _secure(str(schema), _app_role())


def downgrade() -> None:
    op.drop_index("ix_outbox_events_id", table_name=TABLE)
    op.drop_index("ix_outbox_events_due", table_name=TABLE)
    op.drop_table(TABLE)
