"""Every `EDU_*` setting: name, default and meaning (the README's settings table shows them)."""

from __future__ import annotations

from attrs import frozen


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
    Variable(
        name="EDU_DATABASE_REPLICA_URLS",
        default=None,
        help="comma-separated URLs of PostgreSQL hot standbys of EDU_DATABASE_URL (same roles, same EDU_RLS_KEY), each with its own pool of the sizes below: read-only units of work and the read use cases read there (see *Read replicas*)",
    ),
    Variable(
        name="EDU_DATABASE_REPLICA_POLICY",
        default="round_robin",
        help="how a read picks among usable replicas: `round_robin` or `least_busy` (fewest connections in use)",
    ),
    Variable(
        name="EDU_DATABASE_REPLICA_MAX_LAG",
        default="5",
        help="seconds a replica may stay behind a position of the primary (or without a WAL receiver) before reads skip it",
    ),
    Variable(
        name="EDU_DATABASE_REPLICA_WAIT_MS",
        default="50",
        help="how long a read given a consistency token waits for a replica to replay it before reading the primary",
    ),
    Variable(
        name="EDU_DATABASE_REPLICA_RETRY",
        default="1",
        help="seconds a replica's last check stays good, and a replica found down, lagging or promoted stays skipped before it is tried again",
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
        name="EDU_SESSION_MAX_TTL_SECONDS",
        default="2592000",
        help="the longest session `record_login` opens with a caller-given `expires_at`",
    ),
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
        name="EDU_SMTP_HOST",
        default=None,
        help="mail server for the verification and reset mails (needs the `smtp` extra); unset: mails are only logged, without their token",
    ),
    Variable(name="EDU_SMTP_PORT", default="587", help="mail server port (465 for `tls`)"),
    Variable(
        name="EDU_SMTP_SECURITY",
        default="starttls",
        help="`starttls` (required upgrade), `tls` (TLS from the start) or `none` (a local relay only)",
    ),
    Variable(name="EDU_SMTP_USER", default=None, help="SMTP login (unset: no AUTH)"),
    Variable(
        name="EDU_SMTP_PASSWORD",
        default=None,
        help="SMTP password; never logged or shown in reprs",
    ),
    Variable(
        name="EDU_SMTP_SENDER",
        default=None,
        help="From address of the mails; required with EDU_SMTP_HOST",
    ),
    Variable(name="EDU_SMTP_TIMEOUT", default="10", help="seconds for each SMTP connection"),
    Variable(
        name="EDU_SMTP_ATTEMPTS",
        default="3",
        help="tries per mail when the server is down or answers 4xx (pause 0.5 s, doubling)",
    ),
    Variable(
        name="EDU_SMTP_CA_FILE",
        default=None,
        help="PEM file of the CA that signed the mail server's certificate (default: the system's)",
    ),
    Variable(
        name="EDU_MAIL_VERIFY_URL",
        default=None,
        help="link of the verification mail, required with EDU_SMTP_HOST: `{token}`, `{organization_id}`, `{user_id}` are filled in (format syntax: `{organization_id.hex}` works; a template that cannot be formatted is a configuration error)",
    ),
    Variable(
        name="EDU_MAIL_RESET_URL",
        default=None,
        help="link of the password reset mail, required with EDU_SMTP_HOST (same placeholders)",
    ),
    Variable(
        name="EDU_MAIL_TEMPLATE_DIR",
        default=None,
        help="folder whose `email_verification.{subject.txt,txt,html}` / `password_reset.*` files replace the default mail templates; needs EDU_SMTP_HOST, each is rendered once at start-up (a bad `$placeholder` is a configuration error)",
    ),
    Variable(
        name="EDU_OUTBOX_ENABLED",
        default="true",
        help="domain events (the mails too) are written to the outbox table in the transaction of the change and delivered at least once by a relay; `false`: published in-process after the commit, lost if the process dies in between",
    ),
    Variable(
        name="EDU_OUTBOX_INLINE",
        default="true",
        help="deliver a commit's events right after it, before the use case returns (the mail goes out as before the outbox); `false`: only the relay delivers them",
    ),
    Variable(
        name="EDU_OUTBOX_RELAY",
        default="true",
        help="run the relay loop (retries, leftovers of a crashed process) as a background task of this process; `false` where `edu relay` runs as a worker of its own",
    ),
    Variable(name="EDU_OUTBOX_BATCH_SIZE", default="20", help="events the relay claims per round"),
    Variable(
        name="EDU_OUTBOX_POLL_SECONDS",
        default="1",
        help="seconds the idle relay waits before looking for due events again",
    ),
    Variable(
        name="EDU_OUTBOX_LEASE_SECONDS",
        default="120",
        help="how long a claim keeps an event from other relays; a delivery is cut off after half of it, and a dead relay's events are claimed again after it",
    ),
    Variable(
        name="EDU_OUTBOX_MAX_ATTEMPTS",
        default="10",
        help="deliveries tried before an event is dead-lettered (`edu outbox dead` lists them, `edu outbox retry` requeues)",
    ),
    Variable(
        name="EDU_OUTBOX_BACKOFF_SECONDS",
        default="2",
        help="pause after the first failed delivery; it doubles with every attempt (with jitter: half to all of it)",
    ),
    Variable(
        name="EDU_OUTBOX_BACKOFF_MAX_SECONDS",
        default="600",
        help="longest pause between two attempts",
    ),
    Variable(
        name="EDU_OTEL_ENABLED",
        default="false",
        help="OpenTelemetry spans and metrics (needs the `otel` extra); they go to the providers your service configures",
    ),
    Variable(
        name="EDU_HASH_THREADS",
        default="2",
        help="threads that hash and verify passwords off the event loop (at most this many argon2id hashes, and their memory, at once)",
    ),
)


__all__ = ["VARIABLES", "Variable"]
