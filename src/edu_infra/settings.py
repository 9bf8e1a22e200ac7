"""Configuration from `EDU_*` environment variables (or a dict), checked at start-up.

Every variable has a default that gives the embedded profile: a SQLite file and the
in-memory cache. A bad value fails fast with a `ConfigurationError` naming the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from attrs import field, frozen

from edu_domain.services import SecurityPolicy

T = TypeVar("T")

MEMORY_URL = "memory://"
#: Shortest EDU_RLS_KEY accepted (e.g. `openssl rand -hex 32` gives 64 characters).
MIN_RLS_KEY_LENGTH = 32


def redact_url(url: str) -> str:
    """The URL without its password, for reprs, logs and banners."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}@{host}"
    return url


class ConfigurationError(ValueError):
    """A missing or invalid setting; the message names the variable."""


@frozen(kw_only=True)
class Variable:
    name: str
    default: str | None
    help: str


#: Every setting: name, default (None: unset), meaning. The README table is generated from it.
VARIABLES: tuple[Variable, ...] = (
    Variable(
        name="EDU_DATABASE_URL",
        default="sqlite+aiosqlite:///./edu.db",
        help="SQLAlchemy URL the application connects with (`postgresql+asyncpg://edu_app@host/db`, `sqlite+aiosqlite:///path.db`, or `memory://` for the in-memory adapters)",
    ),
    Variable(
        name="EDU_MIGRATION_DATABASE_URL",
        default=None,
        help="URL migrations run with: the table owner on PostgreSQL (default: EDU_DATABASE_URL)",
    ),
    Variable(
        name="EDU_DATABASE_APP_ROLE",
        default="edu_app",
        help="PostgreSQL role the application connects as; migrations grant it DML under row-level security",
    ),
    Variable(
        name="EDU_RLS_KEY",
        default=None,
        help="secret (at least 32 characters) that signs the tenant PostgreSQL row-level security trusts; required with PostgreSQL, the same for the application and `edu migrate`, which stores it (see *Roles and row-level security*)",
    ),
    Variable(name="EDU_DB_POOL_SIZE", default="5", help="connections kept in the pool"),
    Variable(
        name="EDU_DB_MAX_OVERFLOW",
        default="10",
        help="extra connections beyond the pool under load",
    ),
    Variable(
        name="EDU_DB_POOL_TIMEOUT", default="30", help="seconds to wait for a pooled connection"
    ),
    Variable(
        name="EDU_DB_POOL_PRE_PING",
        default="true",
        help="test connections on checkout (recovers after a server restart)",
    ),
    Variable(
        name="EDU_DB_STATEMENT_CACHE_SIZE",
        default=None,
        help="asyncpg prepared-statement cache size; 0 for PgBouncer in transaction mode",
    ),
    Variable(
        name="EDU_DB_CONNECT_TIMEOUT",
        default="10",
        help="seconds to establish a database connection",
    ),
    Variable(
        name="EDU_DB_COMMAND_TIMEOUT",
        default="30",
        help="seconds a PostgreSQL command may wait for the server's answer",
    ),
    Variable(name="EDU_DB_ECHO", default="false", help="log every SQL statement (troubleshooting)"),
    Variable(
        name="EDU_REDIS_URL",
        default=None,
        help="Redis for the cache (`redis://host:6379/0`, `rediss://...`, cluster: `redis+cluster://host:port`); unset: in-memory cache",
    ),
    Variable(
        name="EDU_CACHE_ENABLED",
        default="true",
        help="read-through caching of user by id, content by slug and statistics",
    ),
    Variable(name="EDU_CACHE_TTL_USER", default="300", help="seconds a cached user lives"),
    Variable(
        name="EDU_CACHE_TTL_CONTENT", default="300", help="seconds cached content-by-slug lives"
    ),
    Variable(name="EDU_CACHE_TTL_STATS", default="60", help="seconds cached statistics live"),
    Variable(
        name="EDU_REDIS_CONNECT_TIMEOUT_MS",
        default="100",
        help="Redis connect timeout (fail open beyond it)",
    ),
    Variable(
        name="EDU_REDIS_COMMAND_TIMEOUT_MS",
        default="50",
        help="Redis command timeout (fail open beyond it)",
    ),
    Variable(name="EDU_SESSION_TTL_SECONDS", default="604800", help="login session lifetime"),
    Variable(
        name="EDU_VERIFICATION_TTL_SECONDS",
        default="172800",
        help="email verification token lifetime",
    ),
    Variable(name="EDU_RESET_TTL_SECONDS", default="3600", help="password reset token lifetime"),
    Variable(
        name="EDU_LOCKOUT_MAX_FAILURES",
        default="5",
        help="failed logins in a row that lock an account",
    ),
    Variable(
        name="EDU_LOCKOUT_SECONDS", default="900", help="how long a locked account stays locked"
    ),
    Variable(
        name="EDU_REQUIRE_VERIFIED_EMAIL",
        default="true",
        help="refuse sign-in until the email is verified",
    ),
    Variable(name="EDU_PASSWORD_MIN_LENGTH", default="8", help="shortest accepted password"),
    Variable(name="EDU_ARGON2_TIME_COST", default="3", help="argon2id iterations"),
    Variable(name="EDU_ARGON2_MEMORY_KIB", default="65536", help="argon2id memory in KiB"),
    Variable(name="EDU_ARGON2_PARALLELISM", default="4", help="argon2id lanes"),
    Variable(
        name="EDU_HASH_THREADS",
        default="2",
        help="threads that hash and verify passwords off the event loop (at most this many argon2id hashes, and their memory, at once)",
    ),
)
_KNOWN = {v.name: v for v in VARIABLES}


@frozen(kw_only=True)
class Settings:
    """Typed settings. Build with `Settings.from_env()` or `Settings.from_mapping({...})`."""

    database_url: str = field(repr=redact_url)
    migration_database_url: str = field(repr=redact_url)
    database_app_role: str
    rls_key: str | None = field(repr=lambda key: "None" if key is None else "'***'")
    db_pool_size: int
    db_max_overflow: int
    db_pool_timeout: float
    db_pool_pre_ping: bool
    db_statement_cache_size: int | None
    db_connect_timeout: float
    db_command_timeout: float
    db_echo: bool
    redis_url: str | None = field(repr=lambda url: "None" if url is None else redact_url(url))
    cache_enabled: bool
    cache_ttls: Mapping[str, float]
    redis_connect_timeout_ms: float
    redis_command_timeout_ms: float
    policy: SecurityPolicy
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int
    hash_threads: int

    @property
    def uses_memory_database(self) -> bool:
        return self.database_url == MEMORY_URL

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        return cls.from_mapping({k: v for k, v in source.items() if k.startswith("EDU_")})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from `EDU_*` keys; unknown `EDU_*` keys are refused (typos fail loudly)."""
        ignored = {
            "EDU_REQUIRE_SERVICES",
            "EDU_TEST_POSTGRES_URL",
            "EDU_TEST_REDIS_URL",
            "EDU_BOOTSTRAP_KEY",
            "EDU_ADMIN_PASSWORD",
            "EDU_MAX_BODY_BYTES",
        }
        unknown = sorted(k for k in values if k not in _KNOWN and k not in ignored)
        if unknown:
            raise ConfigurationError(f"unknown setting {unknown[0]}; known: {', '.join(_KNOWN)}")
        env = _Reader(values)
        url = env.text("EDU_DATABASE_URL")
        _check_database_url(url)
        policy_values = {
            "session_ttl": timedelta(seconds=env.number("EDU_SESSION_TTL_SECONDS", int, 1)),
            "verification_ttl": timedelta(
                seconds=env.number("EDU_VERIFICATION_TTL_SECONDS", int, 1)
            ),
            "reset_ttl": timedelta(seconds=env.number("EDU_RESET_TTL_SECONDS", int, 1)),
            "max_failed_logins": env.number("EDU_LOCKOUT_MAX_FAILURES", int, 1),
            "lockout": timedelta(seconds=env.number("EDU_LOCKOUT_SECONDS", int, 1)),
            "require_verified_email": env.flag("EDU_REQUIRE_VERIFIED_EMAIL"),
            "password_min_length": env.number("EDU_PASSWORD_MIN_LENGTH", int, 1),
        }
        return cls(
            database_url=url,
            migration_database_url=env.optional("EDU_MIGRATION_DATABASE_URL") or url,
            database_app_role=env.text("EDU_DATABASE_APP_ROLE"),
            rls_key=_rls_key(env.optional("EDU_RLS_KEY"), postgres=url.startswith("postgresql")),
            db_pool_size=env.number("EDU_DB_POOL_SIZE", int, 1),
            db_max_overflow=env.number("EDU_DB_MAX_OVERFLOW", int, 0),
            db_pool_timeout=env.number("EDU_DB_POOL_TIMEOUT", float, 0.001),
            db_pool_pre_ping=env.flag("EDU_DB_POOL_PRE_PING"),
            db_statement_cache_size=env.optional_number("EDU_DB_STATEMENT_CACHE_SIZE", int, 0),
            db_connect_timeout=env.number("EDU_DB_CONNECT_TIMEOUT", float, 0.001),
            db_command_timeout=env.number("EDU_DB_COMMAND_TIMEOUT", float, 0.001),
            db_echo=env.flag("EDU_DB_ECHO"),
            redis_url=_redis_url(env.optional("EDU_REDIS_URL")),
            cache_enabled=env.flag("EDU_CACHE_ENABLED"),
            cache_ttls=_cache_ttls(env),
            redis_connect_timeout_ms=env.number("EDU_REDIS_CONNECT_TIMEOUT_MS", float, 1),
            redis_command_timeout_ms=env.number("EDU_REDIS_COMMAND_TIMEOUT_MS", float, 1),
            policy=SecurityPolicy(**policy_values),  # type: ignore[arg-type]
            argon2_time_cost=env.number("EDU_ARGON2_TIME_COST", int, 1),
            argon2_memory_kib=env.number("EDU_ARGON2_MEMORY_KIB", int, 8),
            argon2_parallelism=env.number("EDU_ARGON2_PARALLELISM", int, 1),
            hash_threads=env.number("EDU_HASH_THREADS", int, 1),
        )


class _Reader:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def _raw(self, name: str) -> str | None:
        value = self._values.get(name, _KNOWN[name].default)
        if value is None:
            return None
        text = str(value).strip()
        return text or None

    def text(self, name: str) -> str:
        value = self._raw(name)
        if value is None:
            raise ConfigurationError(f"{name} is required: {_KNOWN[name].help}")
        return value

    def optional(self, name: str) -> str | None:
        return self._raw(name)

    def flag(self, name: str) -> bool:
        value = self.text(name).lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{name} must be true or false, not {value!r}")

    def number(self, name: str, kind: Callable[[str], T], minimum: float) -> T:
        raw = self.text(name)
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigurationError(f"{name} must be a finite number, not {raw}")
        if value < minimum:  # type: ignore[operator]
            raise ConfigurationError(f"{name} must be at least {minimum}, not {raw}")
        return value

    def optional_number(self, name: str, kind: Callable[[str], T], minimum: float) -> T | None:
        return None if self._raw(name) is None else self.number(name, kind, minimum)


#: Cache generations live a day; an entry must expire well before its generation can.
MAX_CACHE_TTL = 43_200.0


def _cache_ttls(env: _Reader) -> dict[str, float]:
    ttls = {}
    for namespace, name in (
        ("user", "EDU_CACHE_TTL_USER"),
        ("content_slug", "EDU_CACHE_TTL_CONTENT"),
        ("stats", "EDU_CACHE_TTL_STATS"),
    ):
        ttl = env.number(name, float, 0.001)
        if ttl > MAX_CACHE_TTL:
            raise ConfigurationError(f"{name} must be at most {MAX_CACHE_TTL:.0f} seconds")
        ttls[namespace] = ttl
    return ttls


def _check_database_url(url: str) -> None:
    if url == MEMORY_URL:
        return
    if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ConfigurationError(
            "EDU_DATABASE_URL must start with postgresql+asyncpg://, sqlite+aiosqlite:// "
            f"or be {MEMORY_URL}"
        )


def _rls_key(key: str | None, *, postgres: bool) -> str | None:
    """Required with PostgreSQL (no unsigned mode); never echoed in an error."""
    if key is None:
        if postgres:
            raise ConfigurationError(
                "EDU_RLS_KEY is required with PostgreSQL: row-level security only trusts a"
                " tenant signed with it (e.g. `openssl rand -hex 32`; set the same value for"
                " the application and `edu migrate`)"
            )
        return None
    if len(key) < MIN_RLS_KEY_LENGTH:
        raise ConfigurationError(
            f"EDU_RLS_KEY must be at least {MIN_RLS_KEY_LENGTH} characters"
            " (e.g. `openssl rand -hex 32`)"
        )
    return key


def _redis_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(
        ("redis://", "rediss://", "redis+cluster://", "rediss+cluster://", "unix://")
    ):
        raise ConfigurationError(
            "EDU_REDIS_URL must be a redis://, rediss:// or redis+cluster:// URL"
        )
    return url
