"""Shared test configuration: hypothesis profiles and the external-service gate.

PostgreSQL and Redis tests skip with a loud reason where the server is absent; with
EDU_REQUIRE_SERVICES=1 (set by .ci/run) a missing server fails the run instead.
EDU_TEST_OWN_REDIS=1 gives every test session its own throwaway `redis-server` instead of
EDU_TEST_REDIS_URL, for runs that go on in parallel (`make mutate`'s workers): the cache
tests flush the database they use.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=100,
    derandomize=False,
    print_blob=True,
)
# `make mutate`: the same examples for every mutant (a survivor must be reproducible), and no
# example database (what one mutant failed on must not steer the next one's run).
settings.register_profile(
    "mutation",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=60,
    derandomize=True,
    database=None,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

POSTGRES_URL = os.environ.get(
    "EDU_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def _worker_redis(url: str) -> str:
    """Each pytest-xdist worker flushes a Redis database of its own: gwN takes `db - N`."""
    base, _, db = url.rpartition("/")
    if not _WORKER or not db.isdigit():
        return url
    return f"{base}/{int(db) - _WORKER}"


REDIS_URL = _worker_redis(os.environ.get("EDU_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))


def services_required() -> bool:
    return os.environ.get("EDU_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1.0
        ):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> str:
    """Return the URL, or skip (fail under EDU_REQUIRE_SERVICES=1) when it is unreachable."""
    if _reachable(url, default_port):
        return url
    reason = f"{name} is not reachable at {url}: its tests cannot run"
    if services_required():
        pytest.fail(f"EDU_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {reason} (set EDU_REQUIRE_SERVICES=1 to fail instead)")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_service("PostgreSQL", POSTGRES_URL, 5432)


def own_redis() -> bool:
    return os.environ.get("EDU_TEST_OWN_REDIS", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not own_redis():
        yield require_service("Redis", REDIS_URL, 6379)
        return
    from tests.cache.servers import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("own-redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _sql_filters_built_anew_for_mutmut() -> None:
    """In `make mutate`'s stats run, every test builds the SQL adapter's global filters anew.

    mutmut runs a mutant only against the tests that called its function in that run; the
    adapter builds each filter (`guard.predicates`) once per process, so without this only the
    first test of each entity class would be linked to the guard's mutants.
    """
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        from edu_infra.sqlalchemy import session

        session._CRITERIA.clear()


def pytest_report_header() -> list[str]:
    """Say up front what the run uses and what it wipes."""
    from tests.sql_harness import APP_ROLE

    redis = (
        "EDU_TEST_OWN_REDIS=1 (each session starts its own redis-server)"
        if own_redis()
        else f"EDU_TEST_REDIS_URL={REDIS_URL} (this Redis database is FLUSHED by the cache tests)"
    )
    return [
        redis,
        f"EDU_TEST_POSTGRES_URL={POSTGRES_URL} (creates edu_* test databases and the role"
        f" {APP_ROLE}; all dropped at exit)",
    ]
