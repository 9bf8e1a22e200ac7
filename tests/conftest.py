"""Shared test configuration: hypothesis profiles and the external-service gate.

PostgreSQL and Redis tests skip with a loud reason where the server is absent; with
EDU_REQUIRE_SERVICES=1 (set by .ci/run) a missing server fails the run instead.
"""

from __future__ import annotations

import os
import socket
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


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("Redis", REDIS_URL, 6379)


def pytest_report_header() -> list[str]:
    """Say up front what the run uses and what it wipes."""
    from tests.sql_harness import APP_ROLE

    return [
        f"EDU_TEST_REDIS_URL={REDIS_URL} (this Redis database is FLUSHED by the cache tests)",
        f"EDU_TEST_POSTGRES_URL={POSTGRES_URL} (creates edu_* test databases and the role"
        f" {APP_ROLE}; all dropped at exit)",
    ]
