"""Review 16: the example service over HTTP (memory and SQLite cores): contact details of
others through every read path, 403 against 404 across organizations, and the invariants
as an HTTP caller meets them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.api import PASSWORD, Api, Member, running_api
from tests.e2e.stack import CORE_FACTORIES

HIDDEN = ("email", "email_verified_at", "last_login_at")


@pytest.fixture(params=["memory", "sqlite"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    async with running_api(CORE_FACTORIES[request.param]) as running:
        yield running


async def seen(api: Api, who: Member, user: uuid.UUID) -> dict[str, Any]:
    response = await api.client.get(f"/users/{user}", headers=who.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return {**body, "etag": response.headers.get("etag")}


async def test_a_sign_in_does_not_show_through_to_who_may_not_see_it(api: Api) -> None:
    admin = await api.bootstrap("springfield")
    bart = await api.member(admin, "bart")
    before = await seen(api, bart, admin.id)
    assert before["last_login_at"] is None  # hidden, as the table says
    api.clock.advance(hours=5)
    await api.login("springfield", "admin")
    own = await seen(api, admin, admin.id)
    after = await seen(api, bart, admin.id)
    assert after["updated_at"] != own["last_login_at"], "the hidden time, under another name"
    assert after == before  # nothing a student sees moved because the admin signed in


async def test_a_failed_sign_in_does_not_show_to_other_members(api: Api) -> None:
    admin = await api.bootstrap("springfield")
    bart = await api.member(admin, "bart")
    before = await seen(api, bart, admin.id)
    api.clock.advance(minutes=1)
    bad = {"organization": "springfield", "login": "admin", "password": "wrong password!"}
    assert (await api.client.post("/auth/login", json=bad)).status_code == 401
    assert await seen(api, bart, admin.id) == before


async def every_read(api: Api, who: Member, others: list[uuid.UUID]) -> list[httpx.Response]:
    client, auth = api.client, who.auth
    reads = [await client.get("/users", headers=auth, params={"limit": 1})]
    cursor = reads[0].json()["next_cursor"]
    while cursor:
        reads.append(await client.get("/users", headers=auth, params={"cursor": cursor}))
        cursor = reads[-1].json()["next_cursor"]
    for params in ({"role": "admin"}, {"status": "active"}, {"status": "pending"}):
        reads.append(await client.get("/users", headers=auth, params=params))
    for user in others:
        reads += [
            await client.get(f"/users/{user}", headers=auth),
            await client.get(f"/users/{user}/profile", headers=auth),
            await client.patch(f"/users/{user}", headers=auth, json={"full_name": "X"}),
            await client.patch(f"/users/{user}", headers={**auth, "If-Match": '"1"'}, json={}),
            await client.post(f"/users/{user}/verify", headers=auth),
            await client.post(f"/users/{user}/restore", headers=auth),
            await client.delete(f"/users/{user}", headers=auth),
        ]
    reads += [
        await client.get("/content", headers=auth),
        await client.get("/auth/sessions", headers=auth),
        await client.get("/organizations/current", headers=auth),
        await client.get("/organizations/current/statistics", headers=auth),
        await client.patch(f"/users/{who.id}", headers=auth, json={"full_name": "Me"}),
    ]
    return reads


async def test_students_and_parents_see_no_one_elses_contact_details(api: Api) -> None:
    admin = await api.bootstrap("springfield")
    teacher = await api.member(admin, "edna", "teacher")
    pending = await api.register(admin, "milhouse")  # not verified
    await api.draft(teacher, "Fractions")
    others = [admin.id, teacher.id, uuid.UUID(pending["id"])]
    foreign = [admin.email, teacher.email, pending["email"]]
    for role in ("student", "parent"):
        who = await api.member(admin, f"{role}x", role)
        for response in await every_read(api, who, others):
            text = response.text + str(dict(response.headers))
            assert not any(email in text for email in foreign), (role, response.request.url, text)
            if response.status_code == 200 and "items" in response.json():
                for user in response.json().get("items", []):
                    if user.get("id") != str(who.id) and "username" in user:
                        assert all(user[f] is None for f in HIDDEN), user


ID_ROUTES = [
    ("GET", "/users/{u}"),
    ("PATCH", "/users/{u}"),
    ("DELETE", "/users/{u}"),
    ("DELETE", "/users/{u}?hard=true"),
    ("POST", "/users/{u}/restore"),
    ("POST", "/users/{u}/verify"),
    ("GET", "/users/{u}/profile"),
    ("PATCH", "/users/{u}/profile"),
    ("GET", "/content/{c}"),
    ("PATCH", "/content/{c}"),
    ("POST", "/content/{c}/publish"),
    ("POST", "/content/{c}/archive"),
    ("DELETE", "/content/{c}"),
    ("DELETE", "/content/{c}?hard=true"),
    ("GET", "/content/by-slug/{slug}"),
    ("DELETE", "/auth/sessions/{s}"),
]


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres+redis", marks=pytest.mark.postgres)]
)
async def cached_api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    """Also the production container (PostgreSQL and the Redis read cache)."""
    async with running_api(CORE_FACTORIES[request.param]) as running:
        yield running


async def test_another_organizations_ids_answer_like_ids_that_do_not_exist(
    cached_api: Api,
) -> None:
    """Org A's members (admin and student) on org B's user, content, slug and session: the
    very answer an unknown id gets, so nothing tells them B's ids exist."""
    api = cached_api
    a, b = await api.bootstrap("springfield"), await api.bootstrap("shelbyville")
    a_student = await api.member(a, "bart")
    b_teacher = await api.member(b, "hoover", "teacher")
    b_draft = await api.draft(b_teacher, "Secret plans")
    b_session = (await api.client.get("/auth/sessions", headers=b_teacher.auth)).json()[0]["id"]
    real = {"u": b_teacher.id, "c": b_draft["id"], "slug": b_draft["slug"], "s": b_session}
    fake = {"u": uuid.uuid4(), "c": uuid.uuid4(), "slug": "no-such-slug", "s": uuid.uuid4()}
    bodies: dict[str, Any] = {"PATCH": {"full_name": "X"}}
    for caller in (a, a_student):
        for method, path in ID_ROUTES:
            body = {"title": "X"} if "/content" in path and method == "PATCH" else None
            body = body or bodies.get(method)
            answers = [
                await api.client.request(method, path.format(**ids), headers=caller.auth, json=body)
                for ids in (real, fake)
            ]
            shape = [(r.status_code, r.json().get("error") if r.content else None) for r in answers]
            assert shape[0] == shape[1], (caller.username, method, path, shape)
            assert "hoover" not in answers[0].text and "Secret" not in answers[0].text


async def test_escalation_and_the_last_admin_over_http(api: Api) -> None:
    admin = await api.bootstrap("springfield")
    staff = await api.member(admin, "sam", "staff")
    teacher = await api.member(admin, "edna", "teacher")
    c = api.client

    def new(name: str, role: str) -> dict[str, str]:
        return {"email": f"{name}@x.org", "username": name, "password": PASSWORD, "role": role}

    for who, method, path, body, status in [
        (staff, "POST", "/users", new("stf", "staff"), 403),
        (staff, "POST", "/users", new("adm", "admin"), 403),
        (staff, "PATCH", f"/users/{staff.id}", {"role": "admin"}, 403),
        (staff, "PATCH", f"/users/{teacher.id}", {"role": "staff"}, 403),
        (staff, "PATCH", f"/users/{admin.id}", {"status": "suspended"}, 403),
        (staff, "DELETE", f"/users/{admin.id}", None, 403),
        (teacher, "PATCH", f"/users/{teacher.id}", {"role": "admin"}, 403),
        (teacher, "PATCH", f"/users/{teacher.id}", {"status": "active"}, 403),
        (admin, "PATCH", f"/users/{admin.id}", {"role": "teacher"}, 409),
        (admin, "PATCH", f"/users/{admin.id}", {"status": "deactivated"}, 409),
        (admin, "PATCH", f"/users/{admin.id}", {"status": "pending"}, 422),
        (admin, "DELETE", f"/users/{admin.id}", None, 409),
        (admin, "DELETE", f"/users/{admin.id}?hard=true", None, 409),
    ]:
        response = await c.request(method, path, headers=who.auth, json=body)
        assert response.status_code == status, (who.username, method, path, response.text)
    me = await seen(api, admin, admin.id)
    assert (me["role"], me["status"], me["deleted_at"]) == ("admin", "active", None)
