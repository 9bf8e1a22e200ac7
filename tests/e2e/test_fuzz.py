"""Random bodies never make the service fail: every answer is a deliberate status."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.api import Api, running_api
from tests.e2e.stack import CoreFactory

ALLOWED = {200, 201, 401, 403, 404, 409, 412, 422}

_nasty_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(["\x00", "\x7f", "\n", "a", "@", ".", "-", "é", "\u202e"])),
    st.sampled_from(["", " ", "a@b.org", "UTC", "lesson", "x" * 300, "\x00", "a\x00b"]),
)
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    _nasty_text,
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_nasty_text, inner, max_size=4),
    max_leaves=12,
)
_user_fields = ["email", "username", "password", "full_name", "role", "skills", "timezone", "bio"]
_content_fields = ["title", "slug", "body", "content_type", "difficulty", "tags", "metadata"]


def _objects(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.one_of(st.sampled_from(fields), _nasty_text)
    return st.dictionaries(keys, _json_values, max_size=6)


_raw_bodies = st.one_of(
    st.binary(max_size=200),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b'{"title": "\\ud800"}',
            b'{"email": "\\udfff"}',
            b'"\\ud800"',
            b'{"title": "x", "metadata": {"n": Infinity}}',
            b'{"title": NaN}',
            b"{}",
        ]
    ),
)


def _bodies(fields: list[str]) -> st.SearchStrategy[tuple[str, Any]]:
    return st.one_of(
        _objects(fields).map(lambda body: ("json", body)),
        _json_values.map(lambda body: ("json", body)),
        _raw_bodies.map(lambda raw: ("raw", raw)),
    )


async def _send(
    api: Api, method: str, url: str, headers: dict[str, str], body: tuple[str, Any]
) -> int:
    kind, value = body
    if kind == "json":
        response = await api.client.request(method, url, headers=headers, json=value)
    else:
        raw_headers = {**headers, "Content-Type": "application/json"}
        response = await api.client.request(method, url, headers=raw_headers, content=value)
    assert response.headers["content-type"].startswith("application/json")
    return response.status_code


def test_random_bodies_never_cause_a_server_error(core_factory: CoreFactory) -> None:
    """One app per test, driven from a private event loop so hypothesis can call it per
    example (hypothesis cannot drive async fixtures)."""
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        api = runner.run(stack.enter_async_context(running_api(core_factory)))
        try:
            admin = runner.run(api.bootstrap("fuzzville"))
            draft = runner.run(api.draft(admin, "Fuzz target"))
            content_url = f"/content/{draft['id']}"

            @settings(suppress_health_check=[HealthCheck.too_slow])
            @given(
                user_body=_bodies(_user_fields),
                content_body=_bodies(_content_fields),
                if_match=st.none() | st.sampled_from(['"1"', '"999"', "*", "junk", 'W/"1"']),
            )
            def check(
                user_body: tuple[str, Any], content_body: tuple[str, Any], if_match: str | None
            ) -> None:
                created = runner.run(_send(api, "POST", "/users", admin.auth, user_body))
                assert created in ALLOWED
                headers = admin.auth | ({"If-Match": if_match} if if_match else {})
                patched = runner.run(_send(api, "PATCH", content_url, headers, content_body))
                assert patched in ALLOWED

            check()
        finally:
            runner.run(stack.aclose())
