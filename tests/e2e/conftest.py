"""End-to-end fixtures: the example app over each kind of core in `CORE_FACTORIES`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.api import Api, Member, running_api
from tests.e2e.stack import CORE_FACTORIES, CoreFactory


@pytest.fixture(params=sorted(CORE_FACTORIES))
def core_factory(request: pytest.FixtureRequest) -> CoreFactory:
    """Which core the app embeds; every e2e test runs once per kind."""
    factory: CoreFactory = CORE_FACTORIES[request.param]
    return factory


@pytest.fixture
async def api(core_factory: CoreFactory) -> AsyncIterator[Api]:
    async with running_api(core_factory) as running:
        yield running


@pytest.fixture
async def admin(api: Api) -> Member:
    return await api.bootstrap("springfield")
