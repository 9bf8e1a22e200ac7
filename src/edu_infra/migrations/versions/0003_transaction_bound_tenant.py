"""The tenant proof is bound to one transaction; no TEMP or CREATE for the application role.

Revision ID: 0003
Revises: 0002
Create Date: 2027-02-02 06:30:00.000000

0002 bound a signature to its backend: raw SQL that read one (from `pg_stat_activity`, a
server log, or `current_setting`) could replay it on that backend later. Now:

- The client signs `enter:<scope>:<pid>:<vxid>:<postmaster start>` for the virtual
  transaction id it predicts, and `edu_enter(scope, signature)` (SECURITY DEFINER, called in
  the query that opens the transaction) checks it against the transaction's real vxid,
  which no transaction ever has twice. A wrong one raises EDU01 naming the real vxid, so
  the client can resynchronise.
- On success `edu_enter` writes the settings and `app.tenant_proof`, an HMAC of the scope,
  the backend and the transaction's start time, which never travels as SQL text. The
  policies compare each row with `edu_tenant()` / `edu_unscoped()` (InitPlans: once per
  statement), each of which recomputes the proof for the settings it reads itself.
- COPY lands in UNLOGGED stage tables (the application role may only INSERT their data
  columns; a hidden column records the inserting transaction) and `edu_stage_move` moves
  this transaction's rows, under the policies, as the owner: temp tables are no longer
  needed, so the application role loses TEMP (and CREATE on the schema), and nothing it
  runs can shadow a table, type, function or operator edu-core's statements use.
PostgreSQL only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
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
STAGE_PREFIX = "edu_stage_"

#: HMAC-SHA256 under the stored key, as SQL over `{message}` (the key row is `k`).
_HMAC = "sha256(k.opad || sha256(k.ipad || convert_to({message}, 'UTF8')))"

ENTER = """
CREATE FUNCTION {schema}.edu_enter(scope text, signature text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vxid text;
    accepted boolean;
    proof text;
BEGIN
    -- a canonical UUID or '*' (a cast, not a regex: cheaper; garbage fails the cast)
    IF scope IS NULL OR (scope <> '*' AND scope::uuid::text <> scope) THEN
        RAISE EXCEPTION 'edu_enter: malformed scope' USING ERRCODE = '22023';
    END IF;
    SELECT l.virtualxid INTO vxid FROM pg_lock_status() l
     WHERE l.locktype = 'virtualxid' AND l.pid = pg_backend_pid()
       AND l.virtualxid = l.virtualtransaction;
    -- hex text compared as text: no regex and no decode (each costs more than the HMAC)
    SELECT encode({enter_mac}, 'hex') = signature,
           encode({proof_mac}, 'hex')
      INTO accepted, proof FROM {schema}.edu_rls_key k;
    IF accepted IS NOT TRUE THEN
        RAISE EXCEPTION 'edu_enter: tenant signature refused'
            USING ERRCODE = 'EDU01', DETAIL = 'vxid=' || coalesce(vxid, '');
    END IF;
    PERFORM set_config('app.tenant_id', CASE WHEN scope = '*' THEN '' ELSE scope END, true),
            set_config('app.unscoped', CASE WHEN scope = '*' THEN 'on' ELSE 'off' END, true),
            set_config('app.tenant_proof', proof, true);
    RETURN true;
END
$$
"""

#: The scope the settings name ('*': unscoped), or NULL when they name none or both.
_SCOPE = """CASE
        WHEN current_setting('app.unscoped', true) = 'on'
            THEN CASE WHEN coalesce(current_setting('app.tenant_id', true), '') = '' THEN '*' END
        ELSE nullif(current_setting('app.tenant_id', true), '')
    END"""

VERIFIED = """
CREATE FUNCTION {schema}.edu_verified() RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    proof text := current_setting('app.tenant_proof', true);
    scope text := {scope};
    ok boolean;
BEGIN
    IF scope IS NULL OR proof IS NULL THEN
        RETURN false;
    END IF;
    SELECT encode({proof_mac}, 'hex') = proof INTO ok FROM {schema}.edu_rls_key k;
    RETURN coalesce(ok, false);
END
$$
"""

#: The two entry points of the policies. Each verifies the proof against the settings it
#: reads, in one call, so raw SQL that changes the settings mid-statement (between rows, or
#: before a cursor's next fetch) gains nothing: a value is only ever returned for settings
#: the proof covers. `edu_unscoped()` skips the HMAC unless unscoped work is claimed.
TENANT = """
CREATE OR REPLACE FUNCTION {schema}.edu_tenant() RETURNS uuid
    LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant text := current_setting('app.tenant_id', true);
BEGIN
    IF coalesce(tenant, '') = '' OR current_setting('app.unscoped', true) = 'on'
       OR NOT {schema}.edu_verified() THEN
        RETURN NULL;
    END IF;
    RETURN tenant::uuid;
END
$$
"""
UNSCOPED = """
CREATE OR REPLACE FUNCTION {schema}.edu_unscoped() RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('app.unscoped', true) IS DISTINCT FROM 'on' THEN
        RETURN false;
    END IF;
    RETURN {schema}.edu_verified();
END
$$
"""

#: Moves this transaction's staged rows. It checks the tenant itself, as the policy would:
#: an owner that is a superuser (a migration run as `postgres`) bypasses row-level security.
STAGE_MOVE = """
CREATE FUNCTION {schema}.edu_stage_move(target text) RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stage text := '{prefix}' || target;
    key text := CASE WHEN target = 'organizations' THEN 'id' ELSE 'organization_id' END;
    foreign_rows boolean := false;
    columns text;
    moved bigint;
BEGIN
    IF target IS NULL OR target <> ALL (ARRAY[{targets}]) THEN
        RAISE EXCEPTION 'edu_stage_move: unknown table' USING ERRCODE = '22023';
    END IF;
    IF NOT {schema}.edu_verified() THEN
        foreign_rows := true;
    ELSIF current_setting('app.unscoped', true) IS DISTINCT FROM 'on' THEN
        EXECUTE format(
            'SELECT EXISTS (SELECT FROM %I.%I WHERE edu_xact = pg_current_xact_id()::text::bigint'
            ' AND %I IS DISTINCT FROM $1)', '{schema_name}', stage, key)
        INTO foreign_rows USING current_setting('app.tenant_id', true)::uuid;
    END IF;
    IF foreign_rows THEN
        RAISE EXCEPTION 'new row violates row-level security policy for table "%"', target
            USING ERRCODE = '42501';
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
      FROM pg_attribute a
     WHERE a.attrelid = format('%I.%I', '{schema_name}', target)::regclass
       AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format(
        'WITH moved AS (DELETE FROM %1$I.%2$I WHERE edu_xact = pg_current_xact_id()::text::bigint RETURNING %3$s)'
        ' INSERT INTO %1$I.%4$I (%3$s) SELECT %3$s FROM moved',
        '{schema_name}', stage, columns, target);
    GET DIAGNOSTICS moved = ROW_COUNT;
    RETURN moved;
END
$$
"""


def _schema() -> tuple[str, str]:
    """The schema the tables live in: its name and its quoted form."""
    bind = op.get_bind()
    name, quoted = bind.exec_driver_sql(
        "SELECT current_schema(), quote_ident(current_schema())"
    ).one()
    return str(name), str(quoted)


def _app_role() -> str:
    role = context.config.attributes.get("app_role")
    role = role or context.get_x_argument(as_dictionary=True).get("app_role") or "edu_app"
    if not role.replace("_", "").isalnum():
        raise ValueError(f"invalid role name {role!r}")
    return str(role)


def _rule(schema: str, key: str) -> str:
    """The policy. Its scalar subqueries are InitPlans (once per statement, not per row);
    PostgreSQL evaluates them lazily, on first use, so each must verify what it reads
    itself: the settings are never read on their own next to a cached verdict."""
    return f"({key} = (SELECT {schema}.edu_tenant()) OR (SELECT {schema}.edu_unscoped()))"


def _set_policies(rule_for: Callable[[str], str]) -> None:
    for table, key in POLICY_TABLES:
        rule = rule_for(key)
        op.execute(f"ALTER POLICY tenant_isolation ON {table} USING {rule} WITH CHECK {rule}")


def _stage_tables(schema: str, role: str) -> None:
    """One UNLOGGED stage per table: the role may INSERT its data columns, nothing else."""
    for table, _ in POLICY_TABLES:
        stage = f"{schema}.{STAGE_PREFIX}{table}"
        op.execute(f"CREATE UNLOGGED TABLE {stage} (LIKE {schema}.{table})")
        # the 64-bit transaction id as bigint (xid8 is a type SQLAlchemy cannot reflect)
        op.execute(
            f"ALTER TABLE {stage} ADD COLUMN edu_xact bigint NOT NULL"
            " DEFAULT pg_current_xact_id()::text::bigint"
        )
        op.execute(f"REVOKE ALL ON {stage} FROM PUBLIC")
        op.execute(
            f"""
            DO $$
            DECLARE columns text;
            BEGIN
                IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO columns
                      FROM pg_attribute
                     WHERE attrelid = '{stage}'::regclass AND attnum > 0
                       AND NOT attisdropped AND attname <> 'edu_xact';
                    EXECUTE format('GRANT INSERT (%s) ON {stage} TO "{role}"', columns);
                END IF;
            END
            $$
            """  # noqa: S608 - checked identifiers
        )


def _lock_down(schema: str, role: str) -> None:
    """No TEMP and no CREATE for PUBLIC and the role: only the database owner may revoke
    on the database, so a migration run by another role leaves a notice (and `edu health`
    reports the privilege) instead of failing."""
    op.execute(
        f"""
        DO $$
        DECLARE
            db text := quote_ident(current_database());
            grantee text;
        BEGIN
            EXECUTE format('REVOKE CREATE ON SCHEMA %s FROM PUBLIC', '{schema}');
            FOR grantee IN SELECT 'PUBLIC' UNION ALL
                           SELECT quote_ident(rolname) FROM pg_roles WHERE rolname = '{role}'
            LOOP
                EXECUTE format('REVOKE CREATE ON SCHEMA %s FROM %s', '{schema}', grantee);
                BEGIN
                    EXECUTE format('REVOKE TEMPORARY, CREATE ON DATABASE %s FROM %s', db, grantee);
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE NOTICE 'not the database owner: revoke TEMPORARY on % from % by hand',
                        db, grantee;
                END;
            END LOOP;
        END
        $$
        """  # noqa: S608 - checked identifiers
    )


def _grant_functions(schema: str, role: str) -> None:
    for signature in ("edu_enter(text, text)", "edu_verified()", "edu_stage_move(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION {schema}.{signature} FROM PUBLIC")
        op.execute(
            f"""
            DO $$
            BEGIN
                IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    GRANT EXECUTE ON FUNCTION {schema}.{signature} TO "{role}";
                END IF;
            END
            $$
            """
        )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    name, schema = _schema()
    role = _app_role()
    enter_mac = _HMAC.format(
        message="'enter:' || scope || ':' || pg_backend_pid() || ':' || coalesce(vxid, '')"
        " || ':' || extract(epoch from pg_postmaster_start_time())::text"
    )
    proof_mac = _HMAC.format(
        message="'proof:' || scope || ':' || pg_backend_pid() || ':'"
        " || extract(epoch from transaction_timestamp())::text"
    )
    targets = ", ".join(f"'{table}'" for table, _ in POLICY_TABLES)
    for ddl in (
        ENTER.format(schema=schema, enter_mac=enter_mac, proof_mac=proof_mac),
        VERIFIED.format(schema=schema, scope=_SCOPE, proof_mac=proof_mac),
        STAGE_MOVE.format(
            schema=schema, schema_name=name.replace("'", "''"), targets=targets, prefix=STAGE_PREFIX
        ),
    ):
        op.execute(ddl)
    op.execute(TENANT.format(schema=schema))
    op.execute(UNSCOPED.format(schema=schema))
    _set_policies(lambda key: _rule(schema, key))
    op.execute(f"DROP FUNCTION {schema}.edu_rls_signed(text)")
    _grant_functions(schema, role)
    _stage_tables(schema, role)
    _lock_down(schema, role)


def _revision_0002() -> Any:
    """0002's module (its functions and policies are what a downgrade restores)."""
    path = Path(__file__).with_name("0002_signed_tenant.py")
    spec = importlib.util.spec_from_file_location("edu_migration_0002", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    previous = _revision_0002()
    _, schema = _schema()
    op.execute(previous.SIGNED.format(schema=schema))
    op.execute(previous.SIGNED_PRIVATE.format(schema=schema))
    for body in (previous.TENANT, previous.UNSCOPED):  # the policies depend on them: replace
        op.execute(
            body.format(schema=schema).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
        )
    previous._set_policies("(SELECT edu_tenant())", "(SELECT edu_unscoped())")
    for table, _ in POLICY_TABLES:
        op.execute(f"DROP TABLE {schema}.{STAGE_PREFIX}{table}")
    op.execute(f"DROP FUNCTION {schema}.edu_stage_move(text)")
    op.execute(f"DROP FUNCTION {schema}.edu_verified()")
    op.execute(f"DROP FUNCTION {schema}.edu_enter(text, text)")
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %s TO PUBLIC',"
        " quote_ident(current_database())); EXCEPTION WHEN insufficient_privilege THEN NULL; END $$"
    )
