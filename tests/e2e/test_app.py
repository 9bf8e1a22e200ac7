"""The app factory, its lifespan, health probes and the OpenAPI documents."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from attrs import evolve

from edu_domain.caching import NoReadCache
from edu_domain.services import EduCore
from examples.fastapi_app import Settings, create_app
from tests.e2e.api import Api
from tests.e2e.stack import memory_core


async def test_importing_main_builds_no_core() -> None:
    main = importlib.import_module("examples.fastapi_app.main")
    assert getattr(main.app.state, "core", None) is None


async def test_the_lifespan_builds_and_closes_the_core_and_runs_the_hooks() -> None:
    calls: list[str] = []

    @asynccontextmanager
    async def factory() -> AsyncIterator[EduCore]:
        async with memory_core() as parts:
            calls.append("open")
            yield parts.core
            calls.append("close")

    async def started(core: EduCore) -> None:
        calls.append("startup")

    async def stopping(core: EduCore) -> None:
        calls.append("shutdown")

    app = create_app(
        core_factory=factory,
        settings=Settings(bootstrap_key="k" * 16),
        on_startup=[started],
        on_shutdown=[stopping],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edu.test") as client:
        assert (await client.get("/health/ready")).status_code == 503
        async with app.router.lifespan_context(app):
            assert (await client.get("/health/ready")).json() == {"status": "ok", "checks": {}}
        assert (
            await client.get("/users", headers={"Authorization": "Bearer x"})
        ).status_code == 503
    assert calls == ["open", "startup", "shutdown", "close"]


async def test_liveness(api: Api) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


class _Cache:
    def __init__(self, healthy: bool) -> None:
        self.healthy = healthy

    async def health_check(self) -> bool:
        return self.healthy


class _ReadThrough(NoReadCache):
    """A read cache wrapping a cache with a health check, like `ReadThroughCache`."""

    def __init__(self, cache: _Cache) -> None:
        self.cache = cache


@pytest.mark.parametrize(("healthy", "status"), [(True, 200), (False, 503)])
async def test_readiness_asks_the_adapters_health_checks(
    api: Api, healthy: bool, status: int
) -> None:
    core = EduCore(evolve(api.core.deps, reads=_ReadThrough(_Cache(healthy))))
    app = create_app(core, settings=Settings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.get("/health/ready")
    assert response.status_code == status
    assert response.json()["checks"]["cache"] is healthy
    assert all(response.json()["checks"].values()) is healthy


async def test_openapi_documents_every_route_with_tags_and_summaries(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    operations = [op for path in spec["paths"].values() for op in path.values()]
    assert len(operations) >= 30
    assert all(op.get("tags") and op.get("summary") for op in operations)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["SessionToken"]["scheme"] == "bearer"
    assert schemes["BootstrapKey"]["name"] == "X-Bootstrap-Key"
    properties = str(spec["components"]["schemas"])
    assert "hashed_password" not in properties and "token_hash" not in properties
    assert (await api.client.get("/docs")).status_code == 200


def test_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"EDU_BOOTSTRAP_KEY": "operator-secret"})
    assert settings.bootstrap_key == "operator-secret" and not settings.uses_example_bootstrap_key
    assert Settings.from_env({}).uses_example_bootstrap_key


@pytest.mark.parametrize("value", ["12", "nope"])
def test_a_bad_body_limit_fails_at_start_up(value: str) -> None:
    with pytest.raises(ValueError, match="EDU_MAX_BODY_BYTES"):
        Settings.from_env({"EDU_MAX_BODY_BYTES": value})
