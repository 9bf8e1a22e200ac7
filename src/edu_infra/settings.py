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

from edu_domain.errors import ValidationError
from edu_domain.services import SecurityPolicy
from edu_infra.mail.config import SmtpSecurity, SmtpSettings
from edu_infra.mail.templates import LinkTemplates, MailTemplates
from edu_infra.outbox.relay import RelaySettings
from edu_infra.variables import VARIABLES

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


_KNOWN = {v.name: v for v in VARIABLES}


@frozen(kw_only=True)
class Settings:
    """Typed settings. Build with `Settings.from_env()` or `Settings.from_mapping({...})`."""

    database_url: str = field(repr=redact_url)
    migration_database_url: str = field(repr=redact_url)
    #: The variable `migration_database_url` came from (named in `edu migrate`'s errors).
    migration_url_setting: str = "EDU_DATABASE_URL"
    database_app_role: str
    database_replica_urls: tuple[str, ...] = field(
        default=(), repr=lambda urls: repr(tuple(map(redact_url, urls)))
    )
    database_replica_policy: str = "round_robin"
    database_replica_max_lag: float = 5.0
    database_replica_wait: float = 0.05
    database_replica_retry: float = 1.0
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
    otel_enabled: bool = False
    #: None: the outbox is off (events are published in-process after the commit)
    outbox: RelaySettings | None = RelaySettings()  # noqa: RUF009 (a frozen value)
    outbox_relay_in_process: bool = True
    smtp: SmtpSettings | None = None
    mail_links: LinkTemplates | None = None
    mail_template_dir: str | None = None

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
            "session_max_ttl": timedelta(seconds=env.number("EDU_SESSION_MAX_TTL_SECONDS", int, 1)),
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
            migration_database_url=_migration_url(env, url),
            migration_url_setting=(
                "EDU_MIGRATION_DATABASE_URL"
                if env.optional("EDU_MIGRATION_DATABASE_URL")
                else "EDU_DATABASE_URL"
            ),
            database_app_role=env.text("EDU_DATABASE_APP_ROLE"),
            **_replicas(env, url),
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
            policy=_policy(policy_values),
            argon2_time_cost=env.number("EDU_ARGON2_TIME_COST", int, 1),
            argon2_memory_kib=env.number("EDU_ARGON2_MEMORY_KIB", int, 8),
            argon2_parallelism=env.number("EDU_ARGON2_PARALLELISM", int, 1),
            hash_threads=env.number("EDU_HASH_THREADS", int, 1),
            otel_enabled=env.flag("EDU_OTEL_ENABLED"),
            outbox=_outbox(env),
            outbox_relay_in_process=env.flag("EDU_OUTBOX_RELAY"),
            **_mail(env),
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


_POLICY_VARIABLES = {
    "session_max_ttl": "EDU_SESSION_MAX_TTL_SECONDS",
    "session_ttl": "EDU_SESSION_TTL_SECONDS",
}


def _policy(values: Mapping[str, Any]) -> SecurityPolicy:
    """The security policy; a rule between two settings names the variable."""
    try:
        return SecurityPolicy(**values)
    except ValidationError as error:
        name = _POLICY_VARIABLES.get(error.field, error.field)
        raise ConfigurationError(f"{name} {error.message}") from None


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


def _check_database_url(url: str, name: str = "EDU_DATABASE_URL") -> None:
    if url == MEMORY_URL and name == "EDU_DATABASE_URL":
        return
    if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ConfigurationError(
            f"{name} must start with postgresql+asyncpg://, sqlite+aiosqlite:// or be {MEMORY_URL}"
        )
    try:
        from sqlalchemy.engine import make_url
    except ModuleNotFoundError:  # a bare install: the missing extra is reported instead
        return
    try:
        port = make_url(url).port
    except Exception as error:  # SQLAlchemy refuses it: say so, never a traceback
        raise ConfigurationError(
            f"{name} is not a valid database URL ({redact_url(url)}): {error}"
        ) from None
    if port is not None and not 0 < port < 65536:
        raise ConfigurationError(f"{name} has port {port}: it must be 1 to 65535")


def _replicas(env: _Reader, url: str) -> dict[str, Any]:
    """EDU_DATABASE_REPLICA_*: hot standbys of a PostgreSQL primary, and how reads use them."""
    urls = tuple(u.strip() for u in (env.optional("EDU_DATABASE_REPLICA_URLS") or "").split(","))
    urls = tuple(u for u in urls if u)
    if urls and not url.startswith("postgresql"):
        raise ConfigurationError(
            "EDU_DATABASE_REPLICA_URLS needs a PostgreSQL EDU_DATABASE_URL (replicas are its"
            " hot standbys)"
        )
    for replica in urls:
        if not replica.startswith("postgresql+asyncpg://"):
            raise ConfigurationError(
                "EDU_DATABASE_REPLICA_URLS: every replica must be a postgresql+asyncpg:// URL"
            )
        _check_database_url(replica, "EDU_DATABASE_REPLICA_URLS")
    policy = env.text("EDU_DATABASE_REPLICA_POLICY").lower()
    if policy not in ("round_robin", "least_busy"):
        raise ConfigurationError(
            f"EDU_DATABASE_REPLICA_POLICY must be round_robin or least_busy, not {policy!r}"
        )
    return {
        "database_replica_urls": urls,
        "database_replica_policy": policy,
        "database_replica_max_lag": env.number("EDU_DATABASE_REPLICA_MAX_LAG", float, 0),
        "database_replica_wait": env.number("EDU_DATABASE_REPLICA_WAIT_MS", float, 0) / 1000,
        "database_replica_retry": env.number("EDU_DATABASE_REPLICA_RETRY", float, 0.001),
    }


def _migration_url(env: _Reader, url: str) -> str:
    own = env.optional("EDU_MIGRATION_DATABASE_URL")
    if own is None:
        return url
    _check_database_url(own, "EDU_MIGRATION_DATABASE_URL")
    return own


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


def _outbox(env: _Reader) -> RelaySettings | None:
    if not env.flag("EDU_OUTBOX_ENABLED"):
        return None
    return RelaySettings(
        inline=env.flag("EDU_OUTBOX_INLINE"),
        batch_size=env.number("EDU_OUTBOX_BATCH_SIZE", int, 1),
        poll_interval=env.number("EDU_OUTBOX_POLL_SECONDS", float, 0.01),
        lease=timedelta(seconds=env.number("EDU_OUTBOX_LEASE_SECONDS", float, 1)),
        max_attempts=env.number("EDU_OUTBOX_MAX_ATTEMPTS", int, 1),
        backoff=env.number("EDU_OUTBOX_BACKOFF_SECONDS", float, 0.001),
        backoff_max=env.number("EDU_OUTBOX_BACKOFF_MAX_SECONDS", float, 0.001),
    )


def _redis_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(
        ("redis://", "rediss://", "redis+cluster://", "rediss+cluster://", "unix://")
    ):
        raise ConfigurationError(
            "EDU_REDIS_URL must be a redis://, rediss:// or redis+cluster:// URL"
        )
    return url


def _mail(env: _Reader) -> dict[str, Any]:
    """SMTP settings when EDU_SMTP_HOST is set (then the sender and both links are required)."""
    host = env.optional("EDU_SMTP_HOST")
    template_dir = env.optional("EDU_MAIL_TEMPLATE_DIR")
    if host is None:
        if template_dir is not None:
            raise ConfigurationError(
                "EDU_MAIL_TEMPLATE_DIR is set but EDU_SMTP_HOST is not: only the SMTP notifier"
                " sends those templates; set EDU_SMTP_HOST or unset EDU_MAIL_TEMPLATE_DIR"
            )
        return {}
    if template_dir is not None:
        try:
            MailTemplates.from_directory(template_dir)
        except ValueError as error:
            raise ConfigurationError(f"EDU_MAIL_TEMPLATE_DIR: {error}") from None
    security = env.text("EDU_SMTP_SECURITY").lower()
    if security not in set(SmtpSecurity):
        raise ConfigurationError(
            f"EDU_SMTP_SECURITY must be starttls, tls or none, not {security!r}"
        )
    try:
        links = LinkTemplates(env.text("EDU_MAIL_VERIFY_URL"), env.text("EDU_MAIL_RESET_URL"))
    except ValueError as error:
        raise ConfigurationError(f"EDU_MAIL_VERIFY_URL / EDU_MAIL_RESET_URL: {error}") from None
    try:
        smtp = _smtp_settings(env, host, SmtpSecurity(security))
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    return {"smtp": smtp, "mail_links": links, "mail_template_dir": template_dir}


def _smtp_settings(env: _Reader, host: str, security: SmtpSecurity) -> SmtpSettings:
    return SmtpSettings(
        host=host,
        port=env.number("EDU_SMTP_PORT", int, 1),
        security=security,
        user=env.optional("EDU_SMTP_USER"),
        password=env.optional("EDU_SMTP_PASSWORD"),
        sender=env.text("EDU_SMTP_SENDER"),
        timeout=env.number("EDU_SMTP_TIMEOUT", float, 0.001),
        attempts=env.number("EDU_SMTP_ATTEMPTS", int, 1),
        ca_file=env.optional("EDU_SMTP_CA_FILE"),
    )
