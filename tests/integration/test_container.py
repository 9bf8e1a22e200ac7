"""The container builds the memory, SQLite and PostgreSQL + Redis profiles from one config."""

from __future__ import annotations

from pathlib import Path

import pytest
from dependency_injector import providers

from edu_domain.services import NewUser, Scope
from edu_infra.caching import ReadThroughCache
from edu_infra.container import build_container, describe, migrate_schema, open_core, shutdown
from edu_infra.memory import InMemoryUnitOfWorkFactory
from edu_infra.memory.cache import InMemoryCache
from edu_infra.memory.fakes import FastHasher, RecordingNotifier
from edu_infra.settings import ConfigurationError, Settings

FAST = {"EDU_ARGON2_TIME_COST": "1", "EDU_ARGON2_MEMORY_KIB": "8", "EDU_ARGON2_PARALLELISM": "1"}
RLS_KEY = "rls-key-secret-" + "7" * 32


async def exercise(core_settings: dict[str, str]) -> tuple[str, int]:
    """Register, verify by mail, log in, read through the cache: the main flow end to end."""
    notifier = RecordingNotifier()
    async with open_core({**FAST, **core_settings}, notifier=notifier, migrate=True) as (
        core,
        where,
    ):
        org = await core.organizations.create("Container School")
        scope = Scope.system(org.id)
        account = await core.users.register(
            scope, NewUser(email="c@example.org", username="cont", password="long enough 1")
        )
        await core.verification.verify_email(scope, notifier.last("verify").token)
        await core.auth.authenticate(scope, "cont", "long enough 1")
        assert (await core.users.get(scope, account.user.id)).email_verified
        await core.users.update(scope, account.user.id, {"full_name": "Changed"})
        assert (await core.users.get(scope, account.user.id)).full_name == "Changed"
        stats = await core.users.statistics(scope)
        return where, stats.active_sessions


async def test_memory_profile() -> None:
    where, sessions = await exercise({"EDU_DATABASE_URL": "memory://"})
    assert where == "in-memory store + in-memory cache"
    assert sessions == 1


async def test_sqlite_profile_is_the_default_and_migrates_on_the_fly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'edu.db'}"
    where, sessions = await exercise({"EDU_DATABASE_URL": url})
    assert where.startswith("sqlite+aiosqlite:///") and where.endswith("+ in-memory cache")
    assert sessions == 1
    assert (tmp_path / "edu.db").exists()
    assert Settings.from_mapping({}).database_url == "sqlite+aiosqlite:///./edu.db"


@pytest.fixture
async def pg_app_database(postgres_url: str) -> dict[str, str]:
    """Settings for the session's migrated PostgreSQL test database (app role + owner)."""
    from tests.sql_harness import APP_ROLE, RLS_KEY, postgres_database

    database = await postgres_database(postgres_url)
    await database.truncate()
    return {
        "EDU_DATABASE_URL": database.app_url,
        "EDU_MIGRATION_DATABASE_URL": database.owner_url,
        "EDU_DATABASE_APP_ROLE": APP_ROLE,
        "EDU_RLS_KEY": RLS_KEY,
    }


async def test_postgres_and_redis_profile(
    postgres_url: str, redis_url: str, pg_app_database: dict[str, str]
) -> None:
    where, sessions = await exercise({**pg_app_database, "EDU_REDIS_URL": redis_url})
    assert where.startswith("postgresql+asyncpg://") and "Redis redis://" in where
    assert sessions == 1


async def test_adapters_are_swapped_with_override() -> None:
    container = build_container({"EDU_DATABASE_URL": "memory://"})
    fake = FastHasher()
    container.hasher.override(providers.Object(fake))
    try:
        core = container.core()
        assert core.deps.hasher is fake
        assert isinstance(core.deps.uow, InMemoryUnitOfWorkFactory)
        assert isinstance(container.cache(), InMemoryCache)
        assert isinstance(core.deps.reads, ReadThroughCache)
    finally:
        await shutdown(container)


async def test_uow_factory_is_shared_but_units_of_work_are_not() -> None:
    container = build_container({"EDU_DATABASE_URL": "memory://"})
    factory = container.uow_factory()
    assert factory is container.uow_factory()
    org_id = container.ids().new_id()
    assert factory(tenant=org_id) is not factory(tenant=org_id)
    await migrate_schema(container)
    assert describe(container.settings()) == "in-memory store + in-memory cache"


@pytest.mark.parametrize(("connect_ms", "command_ms", "fence"), [(100, 50, 0.5), (1000, 500, 3.2)])
async def test_the_outage_fence_outlasts_a_writers_retry_and_shutdown_stops_it(
    connect_ms: int, command_ms: int, fence: float
) -> None:
    """Another writer delivers within its retry interval plus one operation deadline."""
    container = build_container(
        {
            "EDU_DATABASE_URL": "memory://",
            "EDU_REDIS_URL": "redis://127.0.0.1:1/0",  # never contacted here
            "EDU_REDIS_CONNECT_TIMEOUT_MS": str(connect_ms),
            "EDU_REDIS_COMMAND_TIMEOUT_MS": str(command_ms),
        }
    )
    reads = container.reads()
    assert isinstance(reads, ReadThroughCache)
    assert reads.outage_fence == pytest.approx(fence)
    assert reads.aclose in container.closables()
    await shutdown(container)


def test_cache_can_be_switched_off() -> None:
    container = build_container({"EDU_DATABASE_URL": "memory://", "EDU_CACHE_ENABLED": "false"})
    assert type(container.reads()).__name__ == "NoReadCache"
    assert container.listeners() == []


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"EDU_DB_POOL_SIZE": "many"}, "EDU_DB_POOL_SIZE"),
        ({"EDU_DB_POOL_SIZE": "0"}, "EDU_DB_POOL_SIZE"),
        ({"EDU_DATABASE_URL": "mysql://x"}, "EDU_DATABASE_URL"),
        ({"EDU_DATABASE_URL": ""}, "EDU_DATABASE_URL"),
        ({"EDU_REDIS_URL": "http://cache"}, "EDU_REDIS_URL"),
        ({"EDU_CACHE_ENABLED": "maybe"}, "EDU_CACHE_ENABLED"),
        ({"EDU_LOCKOUT_SECONDS": "-5"}, "EDU_LOCKOUT_SECONDS"),
        ({"EDU_SESSION_MAX_TTL_SECONDS": "60"}, "EDU_SESSION_MAX_TTL_SECONDS"),
        ({"EDU_DATABSE_URL": "typo"}, "EDU_DATABSE_URL"),
    ],
)
def test_bad_settings_fail_at_start_up_naming_the_variable(
    settings: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigurationError, match=names):
        Settings.from_mapping(settings)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDU_LOCKOUT_MAX_FAILURES", "7")
    monkeypatch.setenv("EDU_REDIS_URL", "redis+cluster://127.0.0.1:7000")
    settings = Settings.from_env()
    assert settings.policy.max_failed_logins == 7
    assert settings.redis_url == "redis+cluster://127.0.0.1:7000"
    postgres = {"EDU_DATABASE_URL": "postgresql+asyncpg://u:secret@h/db", "EDU_RLS_KEY": RLS_KEY}
    assert describe(Settings.from_mapping(postgres)).startswith("postgresql+asyncpg://u@h/db")


def test_settings_repr_hides_passwords() -> None:
    settings = Settings.from_mapping(
        {
            "EDU_DATABASE_URL": "postgresql+asyncpg://app:db-secret@h/db",
            "EDU_REDIS_URL": "redis://:redis-secret@cache:6379/0",
            "EDU_RLS_KEY": RLS_KEY,
        }
    )
    text = repr(settings)
    assert "db-secret" not in text and "redis-secret" not in text and RLS_KEY not in text
    assert "postgresql+asyncpg://app@h/db" in text
    assert settings.rls_key == RLS_KEY


def test_postgres_without_an_rls_key_fails_at_start_up_naming_the_variable() -> None:
    """No unsigned mode: without the key, row-level security would show no row at all."""
    url = "postgresql+asyncpg://app@h/db"
    for missing in ({}, {"EDU_RLS_KEY": ""}, {"EDU_RLS_KEY": "   "}):
        with pytest.raises(ConfigurationError, match="EDU_RLS_KEY is required"):
            Settings.from_mapping({"EDU_DATABASE_URL": url, **missing})
    with pytest.raises(ConfigurationError, match="EDU_RLS_KEY") as short:
        Settings.from_mapping({"EDU_DATABASE_URL": url, "EDU_RLS_KEY": "too-short-secret"})
    assert "too-short-secret" not in str(short.value)
    with pytest.raises(ConfigurationError, match="EDU_RLS_KEY is required"):
        build_container({"EDU_DATABASE_URL": url})


def test_the_rls_key_is_optional_without_postgresql() -> None:
    assert Settings.from_mapping({"EDU_DATABASE_URL": "memory://"}).rls_key is None
    assert Settings.from_mapping({}).rls_key is None
    assert Settings.from_mapping({"EDU_RLS_KEY": RLS_KEY}).rls_key == RLS_KEY


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EDU_DB_POOL_TIMEOUT", "nan"),
        ("EDU_DB_POOL_TIMEOUT", "inf"),
        ("EDU_CACHE_TTL_USER", "inf"),
        ("EDU_CACHE_TTL_STATS", "50000"),
    ],
)
def test_non_finite_or_too_long_values_are_configuration_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_mapping({name: value})


async def test_shutdown_runs_every_closer_even_when_one_fails() -> None:
    container = build_container({"EDU_DATABASE_URL": "memory://"})
    closed: list[str] = []

    async def good() -> None:
        closed.append("good")

    async def bad() -> None:
        raise RuntimeError("boom")

    container.closables().extend([good, bad])
    with pytest.raises(RuntimeError):
        await shutdown(container)
    assert closed == ["good"]
    assert container.closables() == []
