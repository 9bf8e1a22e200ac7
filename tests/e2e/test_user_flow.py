"""The user flow over HTTP: bootstrap, registration, verification, sign-in, sessions,
passwords, and the user endpoints of the old quick reference."""

from __future__ import annotations

from datetime import timedelta

from tests.e2e.api import PASSWORD, Api, Member, bearer


async def test_bootstrap_creates_a_verified_admin_who_can_sign_in(api: Api) -> None:
    admin = await api.bootstrap("shelbyville")
    response = await api.client.get(f"/users/{admin.id}", headers=admin.auth)
    assert response.status_code == 200
    user = response.json()
    assert (user["role"], user["status"], user["email_verified"]) == ("admin", "active", True)
    assert response.headers["ETag"] == f'"{user["version"]}"'
    current = await api.client.get("/organizations/current", headers=admin.auth)
    assert current.json()["slug"] == "shelbyville"


async def test_registered_users_verify_by_mail_then_sign_in(api: Api, admin: Member) -> None:
    teacher = await api.register(admin, "edna", "teacher")
    student = await api.register(admin, "bart", "student")
    assert (teacher["status"], teacher["email_verified"]) == ("pending", False)

    refused = await api.client.post(
        "/auth/login", json={"organization": "springfield", "login": "bart", "password": PASSWORD}
    )
    assert refused.status_code == 403  # not verified yet

    for user in (teacher, student):
        assert (await api.verify_by_mail("springfield", user["email"])).status_code == 204
    again = await api.verify_by_mail("springfield", student["email"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"

    token = await api.login("springfield", "BART@springfield.example.org")
    me = await api.client.get(f"/users/{student['id']}", headers=bearer(token))
    assert me.json()["status"] == "active" and me.json()["email_verified"] is True


async def test_admin_can_mark_a_user_verified(api: Api, admin: Member) -> None:
    user = await api.register(admin, "lisa")
    response = await api.client.post(f"/users/{user['id']}/verify", headers=admin.auth)
    assert response.status_code == 200 and response.json()["email_verified"] is True
    await api.login("springfield", "lisa")


async def test_sessions_record_client_details_and_can_be_revoked(api: Api, admin: Member) -> None:
    first = await api.login("springfield", "admin", **{"User-Agent": "Browser/1.0"})
    second = await api.login("springfield", "admin")
    listed = await api.client.get("/auth/sessions", headers=bearer(first))
    assert listed.status_code == 200
    sessions = listed.json()
    assert len(sessions) == 3  # the fixture's own, plus two
    mine = next(s for s in sessions if s["current"])
    assert mine["user_agent"] == "Browser/1.0" and mine["ip_address"] == "127.0.0.1"
    assert not any("token" in key or "jti" in key for key in mine)

    other = next(s for s in sessions if not s["current"] and s["id"] != mine["id"])
    assert (
        await api.client.delete(f"/auth/sessions/{other['id']}", headers=bearer(first))
    ).status_code == 204
    assert (
        await api.client.delete(f"/auth/sessions/{other['id']}", headers=bearer(first))
    ).status_code == 404
    remaining = await api.client.get("/auth/sessions", headers=bearer(first))
    assert len(remaining.json()) == 2

    revoked = await api.client.post("/auth/sessions/revoke-all", headers=bearer(first))
    assert revoked.status_code == 200 and revoked.json() == {"revoked": 2}
    for token in (first, second, admin.token):
        assert (await api.client.get("/auth/sessions", headers=bearer(token))).status_code == 401


async def test_logout_ends_only_that_session(api: Api, admin: Member) -> None:
    other = await api.login("springfield", "admin")
    assert (await api.client.post("/auth/logout", headers=admin.auth)).status_code == 204
    gone = await api.client.get("/auth/sessions", headers=admin.auth)
    assert gone.status_code == 401 and "Bearer" in gone.headers["WWW-Authenticate"]
    assert (await api.client.get("/auth/sessions", headers=bearer(other))).status_code == 200


async def test_sessions_expire_with_the_clock(api: Api, admin: Member) -> None:
    api.clock.advance(api.core.deps.policy.session_ttl + timedelta(seconds=1))
    assert (await api.client.get("/auth/sessions", headers=admin.auth)).status_code == 401


async def test_password_change_signs_out_everywhere(api: Api, admin: Member) -> None:
    wrong = await api.client.post(
        "/auth/password",
        headers=admin.auth,
        json={"current_password": "not it at all", "new_password": "a brand new secret"},
    )
    assert wrong.status_code == 403 and wrong.json()["error"] == "permission_denied"
    changed = await api.client.post(
        "/auth/password",
        headers=admin.auth,
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
    )
    assert changed.status_code == 200 and changed.json() == {"revoked": 1}
    assert (await api.client.get("/auth/sessions", headers=admin.auth)).status_code == 401
    await api.login("springfield", "admin", "a brand new secret")


async def test_password_reset_by_mail(api: Api, admin: Member) -> None:
    unknown = await api.client.post(
        "/auth/password-reset/request",
        json={"organization": "springfield", "email": "nobody@example.org"},
    )
    known = await api.client.post(
        "/auth/password-reset/request",
        json={"organization": "springfield", "email": admin.email},
    )
    no_org = await api.client.post(
        "/auth/password-reset/request", json={"organization": "nowhere", "email": admin.email}
    )
    assert unknown.status_code == known.status_code == no_org.status_code == 202
    token = api.notifier.last("reset", admin.email).token

    confirm = {"organization": "springfield", "token": token, "new_password": "reset secret!"}
    assert (await api.client.post("/auth/password-reset/confirm", json=confirm)).status_code == 204
    reused = await api.client.post("/auth/password-reset/confirm", json=confirm)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_token"
    await api.login("springfield", "admin", "reset secret!")
    assert (await api.client.get("/auth/sessions", headers=admin.auth)).status_code == 401


async def test_get_and_patch_users_with_etags(api: Api, admin: Member) -> None:
    user = await api.register(admin, "milhouse")
    url = f"/users/{user['id']}"
    read = await api.client.get(url, headers=admin.auth)
    tag = read.headers["ETag"]

    patched = await api.client.patch(
        url,
        headers={**admin.auth, "If-Match": tag},
        json={"full_name": "Milhouse Van Houten", "role": "teacher"},
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["full_name"], body["role"]) == ("Milhouse Van Houten", "teacher")
    assert patched.headers["ETag"] == f'"{body["version"]}"' != tag

    stale = await api.client.patch(
        url, headers={**admin.auth, "If-Match": tag}, json={"full_name": "X"}
    )
    assert stale.status_code == 412 and stale.json()["error"] == "precondition_failed"
    garbage = await api.client.patch(url, headers={**admin.auth, "If-Match": "nonsense"}, json={})
    assert garbage.status_code == 412
    anything = await api.client.patch(
        url, headers={**admin.auth, "If-Match": "*"}, json={"full_name": "Y"}
    )
    assert anything.status_code == 200
    assert (await api.client.get(url, headers=admin.auth)).json()["full_name"] == "Y"


async def test_users_edit_their_own_name_and_profile(api: Api, admin: Member) -> None:
    bart = await api.member(admin, "bart")
    url = f"/users/{bart.id}"
    assert (
        await api.client.patch(url, headers=bart.auth, json={"full_name": "El Barto"})
    ).status_code == 200
    profile = await api.client.patch(
        f"{url}/profile", headers=bart.auth, json={"bio": "Skater.", "skills": ["skateboard"]}
    )
    assert profile.status_code == 200
    assert (profile.json()["bio"], profile.json()["skills"]) == ("Skater.", ["skateboard"])
    read = await api.client.get(f"{url}/profile", headers=admin.auth)
    assert read.json()["bio"] == "Skater."
    bad = await api.client.patch(
        f"{url}/profile", headers=bart.auth, json={"timezone": "Mars/Base"}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "timezone"


async def test_soft_delete_revokes_sessions_and_restore_brings_the_user_back(
    api: Api, admin: Member
) -> None:
    bart = await api.member(admin, "bart")
    url = f"/users/{bart.id}"
    assert (await api.client.delete(url, headers=admin.auth)).status_code == 204
    assert (await api.client.get(url, headers=admin.auth)).status_code == 404
    assert (await api.client.get("/auth/sessions", headers=bart.auth)).status_code == 401
    assert (await api.client.delete(url, headers=admin.auth)).status_code == 404

    restored = await api.client.post(f"{url}/restore", headers=admin.auth)
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    await api.login("springfield", "bart")

    assert (await api.client.delete(f"{url}?hard=true", headers=admin.auth)).status_code == 204
    assert (await api.client.post(f"{url}/restore", headers=admin.auth)).status_code == 404


async def test_list_users_filters_and_pages(api: Api, admin: Member) -> None:
    for name in ("ann", "ben", "cat", "dan"):
        api.clock.advance(seconds=1)  # listed by creation time
        await api.register(admin, name, "teacher" if name in ("ann", "cat") else "student")
    teachers = await api.client.get("/users", headers=admin.auth, params={"role": "teacher"})
    assert [u["username"] for u in teachers.json()["items"]] == ["ann", "cat"]
    pending = await api.client.get("/users", headers=admin.auth, params={"status": "pending"})
    assert len(pending.json()["items"]) == 4

    first = await api.client.get("/users", headers=admin.auth, params={"limit": 2})
    second = await api.client.get("/users", headers=admin.auth, params={"limit": 2, "skip": 2})
    by_offset = [u["username"] for u in first.json()["items"] + second.json()["items"]]
    assert by_offset == ["admin", "ann", "ben", "cat"]

    walked: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/users", headers=admin.auth, params=params)).json()
        walked += [u["username"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == ["admin", "ann", "ben", "cat", "dan"]


async def test_statistics_count_users_sessions_and_content(api: Api, admin: Member) -> None:
    teacher = await api.member(admin, "edna", "teacher")
    await api.register(admin, "bart")
    lesson = await api.draft(teacher, "Fractions")
    await api.client.post(f"/content/{lesson['id']}/publish", headers=teacher.auth)
    await api.draft(teacher, "Decimals")

    response = await api.client.get("/organizations/current/statistics", headers=admin.auth)
    assert response.status_code == 200
    stats = response.json()
    assert stats["users"]["total"] == 3 and stats["users"]["verified"] == 2
    assert stats["users"]["by_role"] == {"admin": 1, "teacher": 1, "student": 1}
    assert stats["users"]["active_sessions"] == 2
    assert stats["content"] == {
        "total": 2,
        "by_status": {"draft": 1, "published": 1, "archived": 0},
    }
    assert (
        await api.client.get("/organizations/current/statistics", headers=teacher.auth)
    ).status_code == 403
