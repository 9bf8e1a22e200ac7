"""The FastAPI example under hostile requests on every route: hostile path segments, query
strings, headers and bodies, ids of another organization. Never a 500, always the JSON error
shape, a refused request writes nothing, and no request of one organization changes the
rows of another.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

import pytest
from attrs import define, field
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.api import Api, Member, running_api
from tests.e2e.stack import BOOTSTRAP_KEY, CORE_FACTORIES
from tests.reliability.conftest import changed_rows, snapshot_of
from tests.reliability.hostile import CURSORS, NASTY_TEXT, RANDOM_ID, anything, metadata, text

BUDGET = {"memory": 250, "sqlite": 100}
QUERY_KEYS = ["skip", "limit", "cursor", "role", "status", "tags", "type", "q", "hard"]
BODY_KEYS = [
    "email",
    "username",
    "password",
    "full_name",
    "role",
    "status",
    "title",
    "slug",
    "body",
    "tags",
    "metadata",
    "skills",
    "organization",
    "login",
    "token",
    "new_password",
    "current_password",
    "name",
    "admin",
]


@define
class Site:
    api: Api
    alpha: Member
    beta: Member
    ids: dict[str, str] = field(factory=dict)
    statuses: Counter[int] = field(factory=Counter)


def _segment(value: Any) -> str:
    """URL-quoted, capped below what the HTTP client itself refuses to send (64 KiB)."""
    return quote(str(value)[:3_000], safe="", errors="surrogatepass")


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return "none", None
    if kind == 1:
        raw = draw(
            st.one_of(
                st.binary(max_size=64),
                st.sampled_from(
                    [b'{"title": "\\ud800"}', b"[" * 5_000, b'{"a":NaN}', b"\xff\xfe", b"{}"]
                ),
            )
        )
        return "raw", raw
    keys = st.one_of(st.sampled_from(BODY_KEYS), st.sampled_from(NASTY_TEXT))
    values = st.one_of(json_values, metadata.filter(_jsonable), st.sampled_from(CURSORS))
    return "json", draw(st.dictionaries(keys, values, max_size=6) | json_values)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


@st.composite
def requests(draw: st.DrawFn, site: Site, routes: list[tuple[str, str]]) -> dict[str, Any]:
    method, path = draw(st.sampled_from(routes))
    for name in ("user_id", "content_id", "session_id", "slug"):
        placeholder = "{" + name + "}"
        if placeholder in path:
            ref = draw(st.sampled_from(sorted(site.ids)) | st.none())
            value = site.ids[ref] if ref is not None else draw(anything)
            path = path.replace(placeholder, _segment(value))
    params = draw(
        st.lists(
            st.tuples(
                st.sampled_from(QUERY_KEYS) | st.sampled_from(NASTY_TEXT),
                st.one_of(text, st.integers().map(str), st.sampled_from(CURSORS)),
            ),
            max_size=4,
        )
    )
    if params:
        path += "?" + "&".join(f"{_segment(k)}={_segment(v)}" for k, v in params)
    auth = draw(st.sampled_from(["alpha", "alpha", "alpha", "none", "garbage", "bootstrap"]))
    headers: dict[str, str] = {}
    if auth == "alpha":
        headers = dict(site.alpha.auth)
    elif auth == "garbage":
        headers = {"Authorization": draw(st.sampled_from(["Bearer ", "Bearer x.y.z", "Basic a"]))}
    elif auth == "bootstrap":
        headers = {"X-Bootstrap-Key": BOOTSTRAP_KEY}
    if_match = draw(st.none() | st.sampled_from(['"1"', '"999"', "*", 'W/"2"', "junk", '"-1"']))
    if if_match:
        headers["If-Match"] = if_match
    return {"method": method, "url": path, "headers": headers, "body": draw(bodies())}


def _routes(api: Api) -> list[tuple[str, str]]:
    """Every operation the app documents (its OpenAPI paths)."""
    paths = api.app.openapi()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


async def _stay_signed_in(site: Site) -> None:
    """Logout, revoke-all or a password change may have ended alpha's session: sign in again."""
    check = await site.api.client.get("/auth/sessions", headers=site.alpha.auth)
    if check.status_code == 401:
        site.alpha.token = await site.api.login("alpha", "admin")


async def _send(site: Site, request: dict[str, Any]) -> str | None:
    api = site.api
    factory = api.core.deps.uow
    before = await snapshot_of(factory)
    kind, body = request["body"]
    headers = dict(request["headers"])
    options: dict[str, Any] = {}
    if kind == "json":  # encoded here: lone surrogates travel as \ud800 escapes
        options["content"] = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif kind == "raw":
        options["content"] = body
        headers["Content-Type"] = "application/json"
    response = await api.client.request(
        request["method"], request["url"], headers=headers, **options
    )
    site.statuses[response.status_code] += 1
    what = f"{request['method']} {request['url'][:120]} -> {response.status_code}"
    if response.status_code >= 500:
        return f"{what}: {response.text[:300]}"
    if response.status_code != 204 and not 300 <= response.status_code < 400:
        if not response.headers.get("content-type", "").startswith("application/json"):
            return f"{what}: not JSON"
        if response.status_code >= 400 and "error" not in response.json():
            return f"{what}: not the error shape: {response.text[:200]}"
    after = await snapshot_of(factory)
    changed = changed_rows(before, after)
    login_failure = request["url"].startswith("/auth/login") and response.status_code in (401, 423)
    if response.status_code >= 400 and changed and not login_failure:
        return f"{what} wrote {changed[:2]}"
    marks = (str(site.ids["beta_org"]), site.ids["beta_org"].replace("-", ""))
    crossed = [row for row in changed if any(mark in row for mark in marks)]
    if crossed:
        return f"{what} changed the other organization's rows: {crossed[:2]}"
    await _stay_signed_in(site)
    return None


@pytest.mark.parametrize("name", ["memory", "sqlite"])
def test_hostile_requests_never_fail_the_server_or_cross_tenants(name: str) -> None:
    failures: list[str] = []
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        api = runner.run(stack.enter_async_context(running_api(CORE_FACTORIES[name])))
        try:
            alpha = runner.run(api.bootstrap("alpha"))
            beta = runner.run(api.bootstrap("beta"))
            beta_member = runner.run(api.member(beta, "bob"))
            site = Site(api, alpha, beta)
            mine = runner.run(api.draft(alpha, "Mine"))
            theirs = runner.run(api.draft(beta, "Theirs"))
            beta_org = runner.run(api.client.get("/organizations/current", headers=beta.auth))
            site.ids.update(
                alpha_admin=str(alpha.id),
                beta_admin=str(beta.id),
                beta_member=str(beta_member.id),
                mine=mine["id"],
                mine_slug=mine["slug"],
                theirs=theirs["id"],
                theirs_slug=theirs["slug"],
                beta_org=beta_org.json()["id"],
                random=str(RANDOM_ID),
            )
            routes = _routes(api)

            @settings(
                max_examples=BUDGET[name],
                suppress_health_check=list(HealthCheck),
                deadline=None,
                database=None,
            )
            @given(data=st.data())
            def check(data: st.DataObject) -> None:
                request = data.draw(requests(site, routes), label="request")
                problem = runner.run(_send(site, request))
                if problem:
                    failures.append(problem)
                assert not problem, problem

            check()
        finally:
            runner.run(stack.aclose())
    print(f"\nhostile requests on {name}: {dict(sorted(site.statuses.items()))}")
    assert failures == []
