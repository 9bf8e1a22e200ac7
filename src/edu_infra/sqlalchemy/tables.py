"""The schema as SQLAlchemy Core tables: one table per entity, Citus-ready.

Rules the schema follows (tests walk the metadata to hold them):
- every tenant table leads its primary key and every unique index with organization_id,
  so PostgreSQL/Citus can shard by tenant and no uniqueness check ever crosses tenants;
- references are composite foreign keys (organization_id, <field>) -> (organization_id, id),
  so a row can never point into another organization;
- uniqueness is a partial unique index `WHERE deleted_at IS NULL`: a soft-deleted row frees
  its email, username or slug;
- string lengths are the limits of `edu_domain.model.rules`, so valid input always fits.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Uuid,
    text,
)
from sqlalchemy.schema import SchemaItem
from sqlalchemy.sql.elements import TextClause

from edu_domain.model import (
    ContentStatus,
    ContentType,
    DifficultyLevel,
    EducationalContent,
    Entity,
    LoginSession,
    Organization,
    OrganizationStatus,
    TokenPurpose,
    User,
    UserProfile,
    UserRole,
    UserStatus,
    UserToken,
    rules,
)
from edu_infra.sqlalchemy.types import EnumText, Tags, UtcDateTime, json_object, ordered_text

metadata = MetaData()

LIVE: TextClause = text("deleted_at IS NULL")


def _audit_columns() -> list[SchemaItem]:
    return [
        Column("created_at", UtcDateTime(), nullable=False),
        Column("created_by", Uuid(), nullable=True),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("updated_by", Uuid(), nullable=True),
        Column("deleted_at", UtcDateTime(), nullable=True),
        Column("deleted_by", Uuid(), nullable=True),
        Column("version", Integer(), nullable=False),
    ]


def _enum(table: str, name: str, enum: type[Enum], *, nullable: bool = False) -> list[SchemaItem]:
    """An enum column and the CHECK constraint that keeps it to the enum's values."""
    values = ", ".join(f"'{member.value}'" for member in enum)
    return [
        Column(name, EnumText(enum), nullable=nullable),
        CheckConstraint(f"{name} IN ({values})", name=f"ck_{table}_{name}"),
    ]


def _tenant_table(name: str, *columns: SchemaItem) -> Table:
    """A tenant table: (organization_id, id) primary key, organization foreign key, audit."""
    return Table(
        name,
        metadata,
        Column("organization_id", Uuid(), nullable=False),
        Column("id", Uuid(), nullable=False),
        *columns,
        *_audit_columns(),
        PrimaryKeyConstraint("organization_id", "id", name=f"pk_{name}"),
        ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=f"fk_{name}_organization_id",
            ondelete="CASCADE",
        ),
        # an id is one row across organizations (migration 0004; not on Citus)
        Index(f"uq_{name}_id", "id", unique=True),
        Index(f"ix_{name}_created", "organization_id", "created_at", "id"),
    )


def _reference(table: str, field: str, target: str, on_delete: str | None) -> ForeignKeyConstraint:
    """A same-tenant reference; RESTRICT is NO ACTION so cascades in one statement work."""
    return ForeignKeyConstraint(
        ["organization_id", field],
        [f"{target}.organization_id", f"{target}.id"],
        name=f"fk_{table}_{field}",
        ondelete=on_delete,
    )


def _unique_live(table: str, *fields: str, key: str) -> Index:
    return Index(
        f"uq_{table}_{key}",
        *fields,
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )


organizations = Table(
    "organizations",
    metadata,
    Column("id", Uuid(), nullable=False),
    Column("name", ordered_text(rules.NAME_MAX), nullable=False),
    Column("slug", ordered_text(63), nullable=False),
    *_enum("organizations", "status", OrganizationStatus),
    *_audit_columns(),
    PrimaryKeyConstraint("id", name="pk_organizations"),
    Index("uq_organizations_slug", "slug", unique=True, postgresql_where=LIVE, sqlite_where=LIVE),
    Index("ix_organizations_status", "status"),
    Index("ix_organizations_created", "created_at", "id"),
)

users = _tenant_table(
    "users",
    Column("email", ordered_text(rules.EMAIL_MAX), nullable=False),
    Column("username", ordered_text(rules.USERNAME_MAX), nullable=False),
    Column("hashed_password", ordered_text(rules.SECRET_HASH_MAX), nullable=False),
    Column("full_name", ordered_text(rules.NAME_MAX), nullable=True),
    *_enum("users", "role", UserRole),
    *_enum("users", "status", UserStatus),
    Column("email_verified", Boolean(create_constraint=False), nullable=False),
    Column("email_verified_at", UtcDateTime(), nullable=True),
    Column("last_login_at", UtcDateTime(), nullable=True),
    Column("failed_login_count", BigInteger(), nullable=False),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("password_changed_at", UtcDateTime(), nullable=True),
    _unique_live("users", "organization_id", "email", key="email"),
    _unique_live("users", "organization_id", "username", key="username"),
    Index("ix_users_status", "organization_id", "status"),
    Index("ix_users_role", "organization_id", "role"),
)

user_profiles = _tenant_table(
    "user_profiles",
    Column("user_id", Uuid(), nullable=False),
    Column("bio", ordered_text(rules.BIO_MAX), nullable=True),
    Column("skills", Tags(), nullable=False),
    Column("avatar_url", ordered_text(rules.URL_MAX), nullable=True),
    Column("timezone", ordered_text(rules.TIMEZONE_MAX), nullable=False),
    Column("locale", ordered_text(rules.LOCALE_MAX), nullable=False),
    _reference("user_profiles", "user_id", "users", "CASCADE"),
    _unique_live("user_profiles", "organization_id", "user_id", key="user_id"),
)

login_sessions = _tenant_table(
    "login_sessions",
    Column("user_id", Uuid(), nullable=False),
    Column("jti", ordered_text(64), nullable=False),
    Column("token_hash", ordered_text(128), nullable=False),
    Column("ip_address", ordered_text(45), nullable=True),
    Column("user_agent", ordered_text(rules.USER_AGENT_MAX), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    _reference("login_sessions", "user_id", "users", "CASCADE"),
    _unique_live("login_sessions", "organization_id", "jti", key="jti"),
    Index("ix_login_sessions_user", "organization_id", "user_id"),
)

user_tokens = _tenant_table(
    "user_tokens",
    Column("user_id", Uuid(), nullable=False),
    *_enum("user_tokens", "purpose", TokenPurpose),
    Column("token_hash", ordered_text(128), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    _reference("user_tokens", "user_id", "users", "CASCADE"),
    Index("ix_user_tokens_user_purpose", "organization_id", "user_id", "purpose"),
    Index("ix_user_tokens_token_hash", "organization_id", "token_hash"),
)

educational_contents = _tenant_table(
    "educational_contents",
    Column("title", ordered_text(rules.TITLE_MAX), nullable=False),
    Column("slug", ordered_text(rules.SLUG_MAX), nullable=False),
    Column("body", ordered_text(), nullable=False),
    *_enum("educational_contents", "content_type", ContentType),
    *_enum("educational_contents", "difficulty", DifficultyLevel),
    *_enum("educational_contents", "status", ContentStatus),
    Column("tags", Tags(), nullable=False),
    Column("metadata", json_object(), nullable=False),
    Column("author_id", Uuid(), nullable=False),
    Column("published_at", UtcDateTime(), nullable=True),
    _reference("educational_contents", "author_id", "users", None),
    _unique_live("educational_contents", "organization_id", "slug", key="slug"),
    Index("ix_educational_contents_status", "organization_id", "status", "published_at"),
    Index("ix_educational_contents_author", "organization_id", "author_id"),
    Index("ix_educational_contents_tags", "tags", postgresql_using="gin").ddl_if(
        dialect="postgresql"
    ),
)

#: The table of each persisted entity class, parents before children.
TABLES: dict[type[Entity], Table] = {
    Organization: organizations,
    User: users,
    UserProfile: user_profiles,
    LoginSession: login_sessions,
    UserToken: user_tokens,
    EducationalContent: educational_contents,
}

#: Tables that carry organization_id (row-level security, the Citus rule).
TENANT_TABLES: tuple[Table, ...] = tuple(t for t in TABLES.values() if "organization_id" in t.c)

__all__ = [
    "TABLES",
    "TENANT_TABLES",
    "educational_contents",
    "login_sessions",
    "metadata",
    "organizations",
    "user_profiles",
    "user_tokens",
    "users",
]
