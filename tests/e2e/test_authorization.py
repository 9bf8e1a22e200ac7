"""Who may do what: 401 without a valid session, 403 for the wrong role or someone else."""

from __future__ import annotations

import pytest

from tests.e2e.api import Api, Member, bearer


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/content"),
        ("POST", "/content"),
        ("GET", "/auth/sessions"),
        ("POST", "/auth/logout"),
        ("GET", "/organizations/current/statistics"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
        {"Authorization": "Bearer " + "a" * 32 + ".b.c"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
async def test_requests_without_a_valid_session_are_401(
    api: Api, admin: Member, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await api.client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    sent = headers.get("Authorization", "")
    if sent.startswith("Bearer "):  # RFC 6750 3.1: an error code only for Bearer credentials
        assert response.json()["error"] == "invalid_token" and 'error="invalid_token"' in challenge
    else:
        assert response.json()["error"] == "not_authenticated" and "error=" not in challenge


async def test_a_tenant_header_from_the_client_is_ignored(api: Api, admin: Member) -> None:
    other = await api.bootstrap("shelbyville")
    org = (await api.client.get("/organizations/current", headers=admin.auth)).json()["id"]
    response = await api.client.get(
        "/users", headers={**other.auth, "X-Organization-Id": org, "X-Tenant-Id": org}
    )
    assert {u["email"] for u in response.json()["items"]} == {other.email}


async def test_only_admins_manage_users(api: Api, admin: Member) -> None:
    teacher = await api.member(admin, "edna", "teacher")
    bart = await api.member(admin, "bart")
    new_user = {"email": "x@example.org", "username": "xavier", "password": "long enough pw"}
    for method, path, body in (
        ("POST", "/users", new_user),
        ("DELETE", f"/users/{bart.id}", None),
        ("POST", f"/users/{bart.id}/restore", None),
        ("POST", f"/users/{bart.id}/verify", None),
        ("PATCH", f"/users/{bart.id}", {"full_name": "Not yours"}),
        ("PATCH", f"/users/{bart.id}/profile", {"bio": "Not yours"}),
        ("PATCH", f"/users/{teacher.id}", {"role": "admin"}),
        ("PATCH", f"/users/{teacher.id}", {"email": "new@example.org"}),
        ("GET", "/organizations/current/statistics", None),
    ):
        response = await api.client.request(method, path, headers=teacher.auth, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "permission_denied"


async def test_members_read_their_organization(api: Api, admin: Member) -> None:
    bart = await api.member(admin, "bart")
    assert (await api.client.get(f"/users/{admin.id}", headers=bart.auth)).status_code == 200
    assert (await api.client.get("/users", headers=bart.auth)).status_code == 200
    assert (
        await api.client.get(f"/users/{admin.id}/profile", headers=bart.auth)
    ).status_code == 200


async def test_admins_cannot_delete_themselves(api: Api, admin: Member) -> None:
    response = await api.client.delete(f"/users/{admin.id}", headers=admin.auth)
    assert response.status_code == 409


async def test_content_is_changed_by_its_author_staff_or_admins(api: Api, admin: Member) -> None:
    edna = await api.member(admin, "edna", "teacher")
    dewey = await api.member(admin, "dewey", "teacher")
    staff = await api.member(admin, "willie", "staff")
    lesson = await api.draft(edna, "Edna's lesson")
    url = f"/content/{lesson['id']}"
    for method, path, body in (
        ("PATCH", url, {"title": "Mine now"}),
        ("POST", f"{url}/publish", None),
        ("POST", f"{url}/archive", None),
        ("DELETE", url, None),
    ):
        response = await api.client.request(method, path, headers=dewey.auth, json=body)
        assert response.status_code == 403, (method, path)
    assert (await api.client.get(url, headers=dewey.auth)).status_code == 200
    assert (
        await api.client.patch(url, headers=staff.auth, json={"title": "Fixed"})
    ).status_code == 200
    assert (await api.client.post(f"{url}/publish", headers=admin.auth)).status_code == 200
    hard = await api.client.delete(f"{url}?hard=true", headers=edna.auth)
    assert hard.status_code == 403


async def test_parents_cannot_create_content(api: Api, admin: Member) -> None:
    parent = await api.member(admin, "marge", "parent")
    response = await api.client.post("/content", headers=parent.auth, json={"title": "Hi"})
    assert response.status_code == 403


async def test_suspended_users_lose_their_sessions(api: Api, admin: Member) -> None:
    bart = await api.member(admin, "bart")
    suspend = await api.client.patch(
        f"/users/{bart.id}", headers=admin.auth, json={"status": "suspended"}
    )
    assert suspend.status_code == 200
    assert (await api.client.get("/users", headers=bart.auth)).status_code == 401
    login = await api.client.post(
        "/auth/login",
        json={"organization": "springfield", "login": "bart", "password": "correct horse battery"},
    )
    assert login.status_code == 403


async def test_bootstrap_needs_the_operator_key(api: Api) -> None:
    body = {
        "name": "Capital City",
        "admin": {"email": "a@cc.example.org", "username": "admin", "password": "long enough pw"},
    }
    for headers in ({}, {"X-Bootstrap-Key": "guess"}, bearer("x")):
        response = await api.client.post("/organizations", headers=headers, json=body)
        assert response.status_code == 403


async def test_staff_manage_the_roles_below_theirs(api: Api, admin: Member) -> None:
    staff = await api.member(admin, "willie", "staff")
    teacher = await api.register(staff, "edna", "teacher")
    assert teacher["role"] == "teacher"
    for role in ("staff", "admin"):
        body = {"email": f"{role}@x.example.org", "username": role, "password": "long enough pw"}
        response = await api.client.post("/users", headers=staff.auth, json={**body, "role": role})
        assert response.status_code == 403 and response.json()["error"] == "permission_denied"
    promote = await api.client.patch(
        f"/users/{teacher['id']}", headers=staff.auth, json={"role": "admin"}
    )
    assert promote.status_code == 403
    stats = await api.client.get("/organizations/current/statistics", headers=staff.auth)
    assert stats.status_code == 200 and stats.json()["users"]["by_role"]["teacher"] == 1


async def test_the_last_administrator_cannot_step_down(api: Api, admin: Member) -> None:
    url = f"/users/{admin.id}"
    for change in ({"role": "teacher"}, {"status": "suspended"}):
        response = await api.client.patch(url, headers=admin.auth, json=change)
        assert response.status_code == 409 and response.json()["error"] == "invalid_state"
        assert "administrator" in response.json()["message"]
    deputy = await api.member(admin, "deputy", "admin")
    assert (await api.client.patch(url, headers=deputy.auth, json={"role": "teacher"})).is_success
    me = (await api.client.get(url, headers=admin.auth)).json()  # a teacher now, still signed in
    assert me["role"] == "teacher"
