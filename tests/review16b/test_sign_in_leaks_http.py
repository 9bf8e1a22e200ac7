"""Review 16b: sign-ins move a user's version, which is hidden from students and parents
(the a8ebd81 fix); a conditional PATCH must not give it back (memory, SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.api import Api, running_api
from tests.e2e.stack import CORE_FACTORIES


@pytest.fixture(params=["memory", "sqlite"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    async with running_api(CORE_FACTORIES[request.param]) as running:
        yield running


async def answers(api: Api, who_auth: dict[str, str], user: object) -> dict[int, int]:
    """The status of a refused PATCH for If-Match lists naming versions 1..6 (and 999)."""
    found = {}
    for version in range(1, 7):
        headers = {**who_auth, "If-Match": f'"{version}", "999"'}
        response = await api.client.patch(f"/users/{user}", headers=headers, json={"role": "admin"})
        found[version] = response.status_code
    return found


async def test_a_conditional_patch_does_not_tell_a_student_the_hidden_version(api: Api) -> None:
    admin = await api.bootstrap("springfield")
    bart = await api.member(admin, "bart")
    before = await answers(api, bart.auth, admin.id)
    await api.login("springfield", "admin")  # moves the admin's version
    after = await answers(api, bart.auth, admin.id)
    assert set(before.values()) == {403}, before
    assert before == after


async def test_a_plain_or_single_tag_patch_is_refused_alike(api: Api) -> None:
    """One tag, or none, goes to the use case, which refuses before comparing versions."""
    admin = await api.bootstrap("springfield")
    bart = await api.member(admin, "bart")
    for if_match in (None, '"1"', '"2"', '"3"', "*"):
        headers = bart.auth if if_match is None else {**bart.auth, "If-Match": if_match}
        response = await api.client.patch(
            f"/users/{admin.id}", headers=headers, json={"full_name": "X"}
        )
        assert response.status_code == 403, (if_match, response.text)
