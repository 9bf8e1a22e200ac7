"""Tenant isolation over HTTP: another organization's ids are indistinguishable from
missing ones (always 404), and lists never include another organization's rows."""

from __future__ import annotations

import pytest

from tests.e2e.api import Api, Member


@pytest.fixture
async def other(api: Api) -> Member:
    return await api.bootstrap("shelbyville")


async def test_another_tenants_users_are_not_found(api: Api, admin: Member, other: Member) -> None:
    bart = await api.member(admin, "bart")
    for method, path, body in (
        ("GET", f"/users/{bart.id}", None),
        ("PATCH", f"/users/{bart.id}", {"full_name": "Hacked"}),
        ("DELETE", f"/users/{bart.id}", None),
        ("POST", f"/users/{bart.id}/restore", None),
        ("POST", f"/users/{bart.id}/verify", None),
        ("GET", f"/users/{bart.id}/profile", None),
        ("PATCH", f"/users/{bart.id}/profile", {"bio": "Hacked"}),
    ):
        response = await api.client.request(method, path, headers=other.auth, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "not_found"
    unchanged = await api.client.get(f"/users/{bart.id}", headers=admin.auth)
    assert unchanged.json()["full_name"] == "Bart" and unchanged.json()["deleted_at"] is None


async def test_another_tenants_content_is_not_found(api: Api, admin: Member, other: Member) -> None:
    lesson = await api.draft(admin, "Secret plans", tags=["shared"])
    url = f"/content/{lesson['id']}"
    for method, path, body in (
        ("GET", url, None),
        ("PATCH", url, {"title": "Hacked"}),
        ("POST", f"{url}/publish", None),
        ("POST", f"{url}/archive", None),
        ("DELETE", url, None),
        ("GET", "/content/by-slug/secret-plans", None),
    ):
        response = await api.client.request(method, path, headers=other.auth, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert (await api.client.get(url, headers=admin.auth)).json()["status"] == "draft"


async def test_lists_show_only_the_callers_organization(
    api: Api, admin: Member, other: Member
) -> None:
    await api.register(admin, "bart")
    await api.draft(admin, "Springfield lesson", tags=["shared"])
    await api.draft(other, "Shelbyville lesson", tags=["shared"])

    users = (await api.client.get("/users", headers=other.auth)).json()["items"]
    assert {u["username"] for u in users} == {"admin"}
    assert {u["organization_id"] for u in users} == {users[0]["organization_id"]}
    content = (await api.client.get("/content?tags=shared", headers=other.auth)).json()["items"]
    assert [c["title"] for c in content] == ["Shelbyville lesson"]
    stats = (await api.client.get("/organizations/current/statistics", headers=other.auth)).json()
    assert stats["users"]["total"] == 1 and stats["content"]["total"] == 1


async def test_sessions_of_another_tenant_cannot_be_revoked(
    api: Api, admin: Member, other: Member
) -> None:
    sessions = (await api.client.get("/auth/sessions", headers=admin.auth)).json()
    response = await api.client.delete(f"/auth/sessions/{sessions[0]['id']}", headers=other.auth)
    assert response.status_code == 404
    assert (await api.client.get("/auth/sessions", headers=admin.auth)).status_code == 200


async def test_sign_in_and_mail_tokens_are_bound_to_their_organization(
    api: Api, admin: Member, other: Member
) -> None:
    bart = await api.register(admin, "bart")
    wrong_org = await api.client.post(
        "/auth/login", json={"organization": "shelbyville", "login": "bart", "password": "x" * 12}
    )
    assert wrong_org.status_code == 401
    token = api.notifier.last("verify", bart["email"]).token
    elsewhere = await api.client.post(
        "/auth/verify-email", json={"organization": "shelbyville", "token": token}
    )
    assert elsewhere.status_code == 400
    assert (await api.verify_by_mail("springfield", bart["email"])).status_code == 204


async def test_a_forged_token_naming_another_organization_is_refused(
    api: Api, admin: Member, other: Member
) -> None:
    _, jti, secret = admin.token.split(".")
    other_org = (await api.client.get("/organizations/current", headers=other.auth)).json()["id"]
    forged = ".".join((other_org.replace("-", ""), jti, secret))
    response = await api.client.get("/users", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
