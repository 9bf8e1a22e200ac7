"""Fresh statistics after bulk work: `edu_analyze(table)` for the application role.

Revision ID: 0006
Revises: 0005
Create Date: 2027-04-01 08:00:00.000000

Right after a bulk insert that changed a large share of a table, the planner still plans
with the old statistics (an index scan over every row of an organization instead of the
primary key) until autovacuum analyzes the table. The unit of work therefore runs ANALYZE
of the tables a large bulk insert filled, after its commit (`sqlalchemy/statistics.py`).
ANALYZE needs the table's owner, which the application role is not (it owns nothing, see
the threat model), so it calls this SECURITY DEFINER function: it accepts edu-core's own
entity tables only, runs `ANALYZE (SKIP_LOCKED)` (never waiting on a lock: an autovacuum
already at work is as good), and has a fixed search_path. Statistics are no secret of any
tenant, and ANALYZE changes no row. On Citus the same function analyzes a distributed
table through the coordinator (Citus propagates ANALYZE to its shards). PostgreSQL only.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import context, op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "organizations",
    "users",
    "user_profiles",
    "login_sessions",
    "user_tokens",
    "educational_contents",
)

ANALYZE = """
CREATE FUNCTION {schema}.edu_analyze(target regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target IS NULL OR target <> ALL (ARRAY[{tables}]::regclass[]) THEN
        RAISE EXCEPTION 'edu_analyze: not an edu-core table' USING ERRCODE = '22023';
    END IF;
    EXECUTE format('ANALYZE (SKIP_LOCKED) %s', target);
END
$$
"""
SIGNATURE = "edu_analyze(regclass)"


def _app_role() -> str:
    role = context.config.attributes.get("app_role")
    role = role or context.get_x_argument(as_dictionary=True).get("app_role") or "edu_app"
    if not role.replace("_", "").isalnum():
        raise ValueError(f"invalid role name {role!r}")
    return str(role)


def _schema() -> tuple[str, str]:
    """The schema the tables live in: its name (as a literal) and its quoted form."""
    literal, quoted = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT quote_literal(quote_ident(current_schema())), quote_ident(current_schema())"
        )
        .one()
    )
    return str(literal)[1:-1], str(quoted)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    qualified, schema = _schema()
    tables = ", ".join(f"'{qualified}.{table}'" for table in TABLES)
    op.execute(ANALYZE.format(schema=schema, tables=tables))
    op.execute(f"REVOKE ALL ON FUNCTION {schema}.{SIGNATURE} FROM PUBLIC")
    role = _app_role()
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                GRANT EXECUTE ON FUNCTION {schema}.{SIGNATURE} TO "{role}";
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _, schema = _schema()
    op.execute(f"DROP FUNCTION IF EXISTS {schema}.{SIGNATURE}")
