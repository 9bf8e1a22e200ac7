"""OpenTelemetry: spans per use case, unit of work, SQL statement and cache operation, and the
metrics, read back through the SDK's in-memory exporters; nothing at all when it is off."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest
from dependency_injector import providers
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from edu_domain import AccountLocked, AuthenticationFailed
from edu_domain.services import NewUser, Scope
from edu_infra.container import Container, build_container, migrate_schema, shutdown
from edu_infra.memory.fakes import RecordingNotifier
from edu_infra.telemetry import Telemetry
from tests.sql_harness import RLS_KEY, PostgresDatabase, fresh_sqlite_url

EMAIL, PASSWORD = "otel.user@example.org", "a secret password 1"


class Recorded:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.telemetry = Telemetry(tracer_provider, MeterProvider(metric_readers=[self.reader]))

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def metrics(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


async def _flow(container: Container) -> tuple[str, list[str]]:
    """A day of edu-core: sign-up, a cached read twice, a lockout. Returns org id, secrets."""
    notifier = RecordingNotifier()
    container.notifier.override(providers.Object(notifier))
    core = container.core()
    org = await core.organizations.create("Observed School")
    scope = Scope.system(org.id)
    account = await core.users.register(
        scope, NewUser(email=EMAIL, username="observed", password=PASSWORD)
    )
    token = notifier.last("verify").token
    await core.verification.verify_email(scope, token)
    await core.users.get(scope, account.user.id)
    await core.users.get(scope, account.user.id)  # the second read is a cache hit
    for _ in range(2):
        with pytest.raises((AuthenticationFailed, AccountLocked)):
            await core.auth.authenticate(scope, EMAIL, "wrong password!!")
    return str(org.id), [EMAIL, PASSWORD, token, token.split(".")[-1], RLS_KEY]


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def _traced_container(settings: dict[str, str], recorded: Recorded) -> Container:
    container = build_container(
        {
            "EDU_OTEL_ENABLED": "true",
            "EDU_LOCKOUT_MAX_FAILURES": "2",
            "EDU_ARGON2_MEMORY_KIB": "1024",
            **settings,
        }
    )
    container.telemetry.override(providers.Object(recorded.telemetry))
    await migrate_schema(container)
    return container


def _check(recorded: Recorded, org_id: str, secrets: list[str], sql_path: str) -> None:
    spans = recorded.finished()
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    register = by_name["edu.users.register"][0]
    assert _attributes(register)["edu.organization_id"] == org_id
    uows = by_name["edu.uow"]
    ids = {s.context.span_id: s for s in spans}
    assert any(u.parent is not None and u.parent.span_id == register.context.span_id for u in uows)
    assert all(_attributes(u).get("edu.organization_id") in (org_id, None) for u in uows)
    statements = [s for s in spans if "db.query.text" in _attributes(s)]
    assert {_attributes(s)["edu.sql.path"] for s in statements} >= {sql_path}
    inside_uow = [s for s in statements if s.parent and ids.get(s.parent.span_id) in uows]
    assert inside_uow, "SQL spans nest under their unit of work"
    hits = [_attributes(s).get("edu.cache.hit") for s in by_name["edu.cache.get_versioned"]]
    assert True in hits and False in hits
    failed = by_name["edu.auth.authenticate"]
    assert all(s.status.status_code.name == "ERROR" for s in failed)

    for span in spans:  # never an email, password, token, key or bound parameter
        for name, value in _attributes(span).items():
            assert not any(secret in str(value) for secret in secrets), (span.name, name)
        assert not span.events, "exceptions are not recorded (their messages may quote input)"

    metrics = recorded.metrics()
    assert sum(p.value for p in metrics["edu.auth.failed_logins"]) == 2
    assert sum(p.value for p in metrics["edu.auth.lockouts"]) == 1
    assert sum(p.value for p in metrics["edu.cache.hits"]) >= 1
    assert sum(p.value for p in metrics["edu.cache.misses"]) >= 1
    assert "edu.cache.errors" in metrics and "edu.db.pool.in_use" in metrics
    assert sum(p.count for p in metrics["edu.uow.duration"]) == len(uows)


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


async def test_sqlite_use_cases_units_of_work_sql_and_cache_are_observed(
    recorded: Recorded,
) -> None:
    container = await _traced_container({"EDU_DATABASE_URL": await fresh_sqlite_url()}, recorded)
    try:
        org_id, secrets = await _flow(container)
    finally:
        await shutdown(container)
    _check(recorded, org_id, secrets, "orm")


@pytest.mark.postgres
@pytest.mark.redis
async def test_postgres_driver_path_statements_are_observed(
    recorded: Recorded, pg: PostgresDatabase, redis_url: str
) -> None:
    settings = {
        "EDU_DATABASE_URL": pg.app_url,
        "EDU_MIGRATION_DATABASE_URL": pg.owner_url,
        "EDU_RLS_KEY": RLS_KEY,
        "EDU_REDIS_URL": redis_url,
    }
    container = await _traced_container(settings, recorded)
    try:
        org_id, secrets = await _flow(container)
    finally:
        await shutdown(container)
    _check(recorded, org_id, secrets, "driver")
    texts = [
        _attributes(s)["db.query.text"]
        for s in recorded.finished()
        if "db.query.text" in _attributes(s)
    ]
    assert any("BEGIN" in t.upper() for t in texts), "the driver path's BEGIN + settings"


async def test_with_telemetry_off_nothing_is_wrapped_or_even_imported() -> None:
    code = (
        "import asyncio, sys\n"
        "from edu_infra.container import build_container, shutdown\n"
        "from edu_domain.services import Scope\n"
        "async def main():\n"
        "    c = build_container({'EDU_DATABASE_URL': 'memory://'})\n"
        "    core = c.core()\n"
        "    org = await core.organizations.create('Quiet School')\n"
        "    await core.users.count(Scope.system(org.id))\n"
        "    assert c.telemetry() is None\n"
        "    assert type(c.uow_factory()).__name__ == 'InMemoryUnitOfWorkFactory'\n"
        "    assert 'count' not in vars(core.users)\n"
        "    await shutdown(c)\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith('edu_infra.telemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDU_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert out.decode().strip() == "[]"


async def test_reject_counts_as_a_failed_login() -> None:
    """`auth.reject` (a sign-in naming no known organization) is a refused sign-in too."""
    recorded = Recorded()
    container = await _traced_container({"EDU_DATABASE_URL": "memory://"}, recorded)
    try:
        with pytest.raises(AuthenticationFailed):
            await container.core().auth.reject("a guessed password")
    finally:
        await shutdown(container)
    points = recorded.metrics()["edu.auth.failed_logins"]
    assert [(p.value, dict(p.attributes)) for p in points] == [(1, {"edu.reason": "credentials"})]
