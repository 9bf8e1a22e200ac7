"""OpenTelemetry says where each read went: the unit of work's span (`edu.db.target`,
`edu.db.route`), the statement spans (`edu.db.server`) and the `edu.db.reads` counter."""

from __future__ import annotations

from typing import Any

import pytest
from dependency_injector import providers
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from edu_domain.services import NewUser, Scope
from edu_infra.container import build_container, shutdown
from edu_infra.telemetry import Telemetry
from tests.replica.cluster import Cluster
from tests.replica.support import APP, migrate
from tests.sql_harness import RLS_KEY

pytestmark = pytest.mark.postgres

DATABASE = "edu_otel"


async def test_spans_and_metrics_say_where_each_read_went(cluster: Cluster) -> None:
    await migrate(cluster, DATABASE)
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(tracer_provider, MeterProvider(metric_readers=[reader]))
    container = build_container(
        {
            "EDU_DATABASE_URL": cluster.url(cluster.primary_port, DATABASE, APP),
            "EDU_DATABASE_APP_ROLE": APP,
            "EDU_RLS_KEY": RLS_KEY,
            "EDU_DATABASE_REPLICA_URLS": cluster.url(cluster.standby_port, DATABASE, APP),
            "EDU_DATABASE_REPLICA_WAIT_MS": "5000",
            "EDU_CACHE_ENABLED": "false",
            "EDU_OTEL_ENABLED": "true",
            "EDU_ARGON2_TIME_COST": "1",
            "EDU_ARGON2_MEMORY_KIB": "8",
            "EDU_ARGON2_PARALLELISM": "1",
        }
    )
    container.telemetry.override(providers.Object(telemetry))
    try:
        core = container.core()
        org = await core.organizations.create("Traced School")
        account = await core.users.register(
            Scope.system(org.id), NewUser(email="tia@ex.org", username="tia", password="pw-123456")
        )
        await core.users.get(Scope.system(org.id), account.user.id)
    finally:
        await shutdown(container)
    finished = spans.get_finished_spans()
    units = [dict(s.attributes or {}) for s in finished if s.name == "edu.uow"]
    read_only = [u for u in units if u["edu.uow.read_only"]]
    assert len(read_only) == 1
    assert read_only[0]["edu.db.target"] == "replica-1"
    assert read_only[0]["edu.db.route"] in ("replica", "waited")
    assert all("edu.db.target" not in u for u in units if not u["edu.uow.read_only"])
    servers = {(s.attributes or {}).get("edu.db.server") for s in finished if s.name == "SELECT"}
    assert servers == {"primary", "replica-1"}
    data = reader.get_metrics_data()
    assert data is not None
    points: list[Any] = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "edu.db.reads"
        for point in metric.data.data_points
    ]
    assert [(p.attributes["edu.db.target"], p.value) for p in points] == [("replica-1", 1)]
