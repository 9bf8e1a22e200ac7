"""End-to-end fixtures: the example app over each kind of core in `CORE_FACTORIES`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.api import Api, Member, running_api
from tests.e2e.stack import CORE_FACTORIES, CoreFactory

#: Which cores each test module runs on. Flows and tenancy run everywhere; the exhaustive
#: authorization matrix and the fuzzer test the HTTP layer, which is the same on every core,
#: so they stay on the fast ones to keep `make test` within its time budget.
BACKENDS_BY_MODULE = {
    "test_authorization": ("memory", "sqlite"),
    "test_fuzz": ("memory", "sqlite"),
    "test_app": ("memory", "sqlite", "postgres+redis"),
    "test_error_mapping": ("memory", "sqlite"),
    "test_http_contract": ("memory", "sqlite"),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "core_factory" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        names = BACKENDS_BY_MODULE.get(module, tuple(sorted(CORE_FACTORIES)))
        metafunc.parametrize("core_factory", [CORE_FACTORIES[n] for n in names], ids=names)


@pytest.fixture
async def api(core_factory: CoreFactory) -> AsyncIterator[Api]:
    async with running_api(core_factory) as running:
        yield running


@pytest.fixture
async def admin(api: Api) -> Member:
    return await api.bootstrap("springfield")
