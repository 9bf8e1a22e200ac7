"""Row-level security trusts only a signed tenant: HMAC key table, edu_tenant(), edu_unscoped().

Revision ID: 0002
Revises: 0001
Create Date: 2027-01-18 09:12:03.000000

The application role can call `set_config`, so raw SQL through a session could rewrite
`app.tenant_id`. The policies now read the tenant through SECURITY DEFINER functions that
accept it only with `app.tenant_sig` = HMAC-SHA256(key, 'tenant:<uuid>:<backend pid>')
(unscoped: 'unscoped:<backend pid>'). The key's padded inner/outer blocks live in an
owner-only table (stored by `edu migrate` from EDU_RLS_KEY), so HMAC is two calls of the
built-in `sha256(bytea)` (PostgreSQL 11+); no extension is needed. PostgreSQL only.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


POLICY_TABLES = (
    ("organizations", "id"),
    ("users", "organization_id"),
    ("user_profiles", "organization_id"),
    ("login_sessions", "organization_id"),
    ("user_tokens", "organization_id"),
    ("educational_contents", "organization_id"),
)

#: Only the owner reads it (and the functions below, which run as the owner).
KEY_TABLE = """
CREATE TABLE {schema}.edu_rls_key (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    ipad bytea NOT NULL CHECK (length(ipad) = 64),
    opad bytea NOT NULL CHECK (length(opad) = 64),
    rotated_at timestamptz NOT NULL DEFAULT now()
)
"""
#: RLS without a policy: a grant made by mistake still shows no row (the owner bypasses it).
KEY_TABLE_LOCKED = (
    "REVOKE ALL ON {schema}.edu_rls_key FROM PUBLIC",
    "ALTER TABLE {schema}.edu_rls_key ENABLE ROW LEVEL SECURITY",
)

#: Whether `app.tenant_sig` signs `message` for this backend. Not callable by others: it
#: only runs inside the two SECURITY DEFINER functions. PARALLEL RESTRICTED: a parallel
#: worker has another pid, so the check runs in the leader only.
SIGNED = """
CREATE FUNCTION {schema}.edu_rls_signed(message text) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    signature text := current_setting('app.tenant_sig', true);
    secret record;
BEGIN
    IF signature IS NULL OR signature !~ '^[0-9a-f]{{64}}$' THEN
        RETURN false;
    END IF;
    SELECT ipad, opad INTO secret FROM {schema}.edu_rls_key;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    RETURN sha256(secret.opad || sha256(
               secret.ipad || convert_to(message || ':' || pg_backend_pid(), 'UTF8')))
           = decode(signature, 'hex');
END
$$
"""
SIGNED_PRIVATE = "REVOKE ALL ON FUNCTION {schema}.edu_rls_signed(text) FROM PUBLIC"

TENANT = """
CREATE FUNCTION {schema}.edu_tenant() RETURNS uuid
    LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant text := current_setting('app.tenant_id', true);
BEGIN
    IF coalesce(tenant, '') = '' OR NOT {schema}.edu_rls_signed('tenant:' || tenant) THEN
        RETURN NULL;
    END IF;
    RETURN tenant::uuid;
END
$$
"""

UNSCOPED = """
CREATE FUNCTION {schema}.edu_unscoped() RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('app.unscoped', true) IS DISTINCT FROM 'on' THEN
        RETURN false;
    END IF;
    RETURN {schema}.edu_rls_signed('unscoped');
END
$$
"""


def _schema() -> str:
    """The schema the tables live in, quoted: the functions name everything they use."""
    bind = op.get_bind()
    name = bind.exec_driver_sql("SELECT quote_ident(current_schema())").scalar_one()
    return str(name)


def _set_policies(tenant: str, unscoped: str) -> None:
    """Rewrite each table's policy; scalar subqueries keep it one InitPlan per statement."""
    for table, key in POLICY_TABLES:
        rule = f"({key} = {tenant} OR {unscoped})"
        op.execute(f"ALTER POLICY tenant_isolation ON {table} USING {rule} WITH CHECK {rule}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = _schema()
    for ddl in (KEY_TABLE, *KEY_TABLE_LOCKED, SIGNED, SIGNED_PRIVATE, TENANT, UNSCOPED):
        op.execute(ddl.format(schema=schema))
    _set_policies("(SELECT edu_tenant())", "(SELECT edu_unscoped())")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = _schema()
    _set_policies(  # 0001's policies, exactly
        "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)",
        "(SELECT current_setting('app.unscoped', true)) = 'on'",
    )
    op.execute(f"DROP FUNCTION {schema}.edu_unscoped()")
    op.execute(f"DROP FUNCTION {schema}.edu_tenant()")
    op.execute(f"DROP FUNCTION {schema}.edu_rls_signed(text)")
    op.execute(f"DROP TABLE {schema}.edu_rls_key")
