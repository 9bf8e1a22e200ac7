"""Initial schema: organizations, users, profiles, sessions, tokens, content; RLS on PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 08:24:47.087620
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TENANT_TABLES = (
    "users",
    "user_profiles",
    "login_sessions",
    "user_tokens",
    "educational_contents",
)


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _text(length: int | None = None) -> sa.types.TypeEngine[str]:
    """Text compared by code point: COLLATE "C" on PostgreSQL, BINARY on SQLite."""
    if length is None:
        return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.types.TypeEngine[Any]:
    """timestamptz on PostgreSQL; fixed-width UTC text on SQLite (sorts as time)."""
    return sa.DateTime(timezone=True).with_variant(sa.String(26), "sqlite")


def _tags() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _app_role() -> str:
    role = context.config.attributes.get("app_role")
    role = role or context.get_x_argument(as_dictionary=True).get("app_role") or "edu_app"
    if not role.replace("_", "").isalnum():
        raise ValueError(f"invalid role name {role!r}")
    return str(role)


def _enable_row_level_security() -> None:
    """FORCE RLS on every tenant table; the tenant comes from a transaction-local setting.

    The settings are read in scalar subqueries so PostgreSQL evaluates them once per
    statement (an InitPlan), not once per row: counts and bulk inserts pay for RLS once.
    """
    unscoped = "(SELECT current_setting('app.unscoped', true)) = 'on'"
    for table, key in [("organizations", "id"), *((t, "organization_id") for t in TENANT_TABLES)]:
        tenant = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
        rule = f"({key} = {tenant} OR {unscoped})"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING {rule} WITH CHECK {rule}")


def _grant_app_role() -> None:
    """DML for the application role (when it exists); it never owns the tables."""
    role = _app_role()
    tables = ", ".join(["organizations", *TENANT_TABLES])
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO "{role}";
            END IF;
        END
        $$
        """
    )


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", _text(200), nullable=False),
        sa.Column("slug", _text(63), nullable=False),
        sa.Column("status", _text(32), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'archived')", name="ck_organizations_status"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
    )
    op.create_index("ix_organizations_created", "organizations", ["created_at", "id"], unique=False)
    op.create_index("ix_organizations_status", "organizations", ["status"], unique=False)
    op.create_index(
        "uq_organizations_slug",
        "organizations",
        ["slug"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "users",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", _text(254), nullable=False),
        sa.Column("username", _text(32), nullable=False),
        sa.Column("hashed_password", _text(255), nullable=False),
        sa.Column("full_name", _text(200), nullable=True),
        sa.Column("role", _text(32), nullable=False),
        sa.Column("status", _text(32), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("email_verified_at", _timestamp(), nullable=True),
        sa.Column("last_login_at", _timestamp(), nullable=True),
        sa.Column("failed_login_count", sa.BigInteger(), nullable=False),
        sa.Column("locked_until", _timestamp(), nullable=True),
        sa.Column("password_changed_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "role IN ('student', 'teacher', 'teaching_assistant', 'parent', 'staff', 'admin')",
            name="ck_users_role",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'suspended', 'deactivated')", name="ck_users_status"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_users_organization_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name="pk_users"),
    )
    op.create_index(
        "ix_users_created", "users", ["organization_id", "created_at", "id"], unique=False
    )
    op.create_index("ix_users_id", "users", ["id"], unique=False)
    op.create_index("ix_users_role", "users", ["organization_id", "role"], unique=False)
    op.create_index("ix_users_status", "users", ["organization_id", "status"], unique=False)
    op.create_index(
        "uq_users_email",
        "users",
        ["organization_id", "email"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "uq_users_username",
        "users",
        ["organization_id", "username"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "educational_contents",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", _text(200), nullable=False),
        sa.Column("slug", _text(120), nullable=False),
        sa.Column("body", _text(), nullable=False),
        sa.Column("content_type", _text(32), nullable=False),
        sa.Column("difficulty", _text(32), nullable=False),
        sa.Column("status", _text(32), nullable=False),
        sa.Column("tags", _tags(), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("published_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "content_type IN ('lesson', 'quiz', 'article', 'video', 'exercise', 'assessment', 'course')",
            name="ck_educational_contents_content_type",
        ),
        sa.CheckConstraint(
            "difficulty IN ('beginner', 'intermediate', 'advanced', 'expert')",
            name="ck_educational_contents_difficulty",
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'archived')", name="ck_educational_contents_status"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "author_id"],
            ["users.organization_id", "users.id"],
            name="fk_educational_contents_author_id",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_educational_contents_organization_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name="pk_educational_contents"),
    )
    op.create_index(
        "ix_educational_contents_author",
        "educational_contents",
        ["organization_id", "author_id"],
        unique=False,
    )
    op.create_index(
        "ix_educational_contents_created",
        "educational_contents",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_index("ix_educational_contents_id", "educational_contents", ["id"], unique=False)
    op.create_index(
        "ix_educational_contents_status",
        "educational_contents",
        ["organization_id", "status", "published_at"],
        unique=False,
    )
    if _is_postgres():
        op.create_index(
            "ix_educational_contents_tags",
            "educational_contents",
            ["tags"],
            unique=False,
            postgresql_using="gin",
        )
    op.create_index(
        "uq_educational_contents_slug",
        "educational_contents",
        ["organization_id", "slug"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "login_sessions",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("jti", _text(64), nullable=False),
        sa.Column("token_hash", _text(128), nullable=False),
        sa.Column("ip_address", _text(45), nullable=True),
        sa.Column("user_agent", _text(512), nullable=True),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.Column("revoked_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name="fk_login_sessions_user_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_login_sessions_organization_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name="pk_login_sessions"),
    )
    op.create_index(
        "ix_login_sessions_created",
        "login_sessions",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_index("ix_login_sessions_id", "login_sessions", ["id"], unique=False)
    op.create_index(
        "ix_login_sessions_user", "login_sessions", ["organization_id", "user_id"], unique=False
    )
    op.create_index(
        "uq_login_sessions_jti",
        "login_sessions",
        ["organization_id", "jti"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "user_profiles",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("bio", _text(2000), nullable=True),
        sa.Column("skills", _tags(), nullable=False),
        sa.Column("avatar_url", _text(2048), nullable=True),
        sa.Column("timezone", _text(64), nullable=False),
        sa.Column("locale", _text(35), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name="fk_user_profiles_user_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_user_profiles_organization_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name="pk_user_profiles"),
    )
    op.create_index(
        "ix_user_profiles_created",
        "user_profiles",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_index("ix_user_profiles_id", "user_profiles", ["id"], unique=False)
    op.create_index(
        "uq_user_profiles_user_id",
        "user_profiles",
        ["organization_id", "user_id"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "user_tokens",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", _text(32), nullable=False),
        sa.Column("token_hash", _text(128), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.Column("used_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.Column("deleted_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "purpose IN ('email_verification', 'password_reset')", name="ck_user_tokens_purpose"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name="fk_user_tokens_user_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_user_tokens_organization_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name="pk_user_tokens"),
    )
    op.create_index(
        "ix_user_tokens_created",
        "user_tokens",
        ["organization_id", "created_at", "id"],
        unique=False,
    )
    op.create_index("ix_user_tokens_id", "user_tokens", ["id"], unique=False)
    op.create_index(
        "ix_user_tokens_token_hash", "user_tokens", ["organization_id", "token_hash"], unique=False
    )
    op.create_index(
        "ix_user_tokens_user_purpose",
        "user_tokens",
        ["organization_id", "user_id", "purpose"],
        unique=False,
    )

    if _is_postgres():
        _enable_row_level_security()
        _grant_app_role()


def downgrade() -> None:
    op.drop_index("ix_user_tokens_user_purpose", table_name="user_tokens")
    op.drop_index("ix_user_tokens_token_hash", table_name="user_tokens")
    op.drop_index("ix_user_tokens_id", table_name="user_tokens")
    op.drop_index("ix_user_tokens_created", table_name="user_tokens")
    op.drop_table("user_tokens")
    op.drop_index(
        "uq_user_profiles_user_id",
        table_name="user_profiles",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_user_profiles_id", table_name="user_profiles")
    op.drop_index("ix_user_profiles_created", table_name="user_profiles")
    op.drop_table("user_profiles")
    op.drop_index(
        "uq_login_sessions_jti",
        table_name="login_sessions",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_login_sessions_user", table_name="login_sessions")
    op.drop_index("ix_login_sessions_id", table_name="login_sessions")
    op.drop_index("ix_login_sessions_created", table_name="login_sessions")
    op.drop_table("login_sessions")
    op.drop_index(
        "uq_educational_contents_slug",
        table_name="educational_contents",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    if _is_postgres():
        op.drop_index(
            "ix_educational_contents_tags",
            table_name="educational_contents",
            postgresql_using="gin",
        )
    op.drop_index("ix_educational_contents_status", table_name="educational_contents")
    op.drop_index("ix_educational_contents_id", table_name="educational_contents")
    op.drop_index("ix_educational_contents_created", table_name="educational_contents")
    op.drop_index("ix_educational_contents_author", table_name="educational_contents")
    op.drop_table("educational_contents")
    op.drop_index(
        "uq_users_username",
        table_name="users",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index(
        "uq_users_email",
        table_name="users",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_users_status", table_name="users")
    op.drop_index("ix_users_role", table_name="users")
    op.drop_index("ix_users_id", table_name="users")
    op.drop_index("ix_users_created", table_name="users")
    op.drop_table("users")
    op.drop_index(
        "uq_organizations_slug",
        table_name="organizations",
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_organizations_status", table_name="organizations")
    op.drop_index("ix_organizations_created", table_name="organizations")
    op.drop_table("organizations")
