"""Every domain error has its HTTP status and one body shape; bad input is never a 500."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from fastapi import Request

from edu_domain import (
    AccountLocked,
    AlreadyExists,
    AuthenticationFailed,
    ConcurrencyConflict,
    DomainError,
    InvalidState,
    InvalidToken,
    NotFound,
    PermissionDenied,
    RetryableError,
    TenantViolation,
    UnavailableError,
    ValidationError,
)
from tests.e2e.api import PASSWORD, Api, Member

ERRORS: dict[str, tuple[DomainError, int, str]] = {
    "validation": (ValidationError("email", "must be an email address"), 422, "validation"),
    "not_found": (NotFound("User", "x"), 404, "not_found"),
    "already_exists": (AlreadyExists("User", "email"), 409, "already_exists"),
    "conflict": (ConcurrencyConflict("User", "x"), 409, "conflict"),
    "auth_failed": (AuthenticationFailed(), 401, "authentication_failed"),
    "bearer_token": (InvalidToken("session"), 401, "invalid_token"),
    "mail_token": (InvalidToken("password reset"), 400, "invalid_token"),
    "denied": (PermissionDenied("no"), 403, "permission_denied"),
    "tenant": (TenantViolation("organization mismatch"), 404, "not_found"),
    "state": (InvalidState("already archived"), 409, "invalid_state"),
    "retryable": (RetryableError("deadlock"), 503, "retryable"),
    "unavailable": (UnavailableError("database down"), 503, "unavailable"),
    "other": (DomainError("new kind"), 400, "domain_error"),
}


@pytest.fixture
def raising(api: Api) -> Api:
    """The app with one extra route that raises the named domain error."""

    async def boom(name: str, request: Request) -> None:
        if name == "locked":
            raise AccountLocked(api.clock.now() + timedelta(seconds=90))
        raise ERRORS[name][0]

    api.app.add_api_route("/_raise/{name}", boom, methods=["GET", "PATCH"])
    return api


@pytest.mark.parametrize("name", sorted(ERRORS))
async def test_each_domain_error_has_its_status(raising: Api, name: str) -> None:
    _, status, code = ERRORS[name]
    response = await raising.client.get(f"/_raise/{name}")
    assert response.status_code == status
    body = response.json()
    assert body["error"] == code and isinstance(body["message"], str)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if status == 503 and name == "retryable":
        assert response.headers["Retry-After"] == "1"
    if name == "tenant":
        assert "organization" not in response.text


async def test_field_errors_name_the_field(raising: Api) -> None:
    assert (await raising.client.get("/_raise/validation")).json()["field"] == "email"
    assert (await raising.client.get("/_raise/already_exists")).json()["field"] == "email"


async def test_a_conflict_on_a_conditional_request_is_412(raising: Api) -> None:
    response = await raising.client.patch("/_raise/conflict", headers={"If-Match": '"3"'})
    assert response.status_code == 412


async def test_lockout_is_423_with_retry_after(raising: Api) -> None:
    response = await raising.client.get("/_raise/locked")
    assert response.status_code == 423 and response.headers["Retry-After"] == "90"


async def test_repeated_wrong_passwords_lock_the_account(api: Api, admin: Member) -> None:
    attempt = {"organization": "springfield", "login": "admin", "password": "wrong password"}
    statuses = [(await api.client.post("/auth/login", json=attempt)).status_code for _ in range(3)]
    assert statuses == [401, 401, 423]
    right = {**attempt, "password": PASSWORD}
    locked = await api.client.post("/auth/login", json=right)
    assert locked.status_code == 423
    assert int(locked.headers["Retry-After"]) == 600
    api.clock.advance(minutes=11)
    assert (await api.client.post("/auth/login", json=right)).status_code == 200


async def test_unknown_organization_or_login_is_401(api: Api, admin: Member) -> None:
    for org, login in (("nowhere", "admin"), ("springfield", "nobody"), ("springfield", "a\x00")):
        response = await api.client.post(
            "/auth/login", json={"organization": org, "login": login, "password": PASSWORD}
        )
        assert response.status_code == 401 and response.json()["error"] == "authentication_failed"


async def test_an_organization_that_is_no_slug_is_422(api: Api) -> None:
    response = await api.client.post(
        "/auth/login", json={"organization": "a\x00", "login": "admin", "password": PASSWORD}
    )
    assert response.status_code == 422 and response.json()["field"] == "organization"


async def test_duplicates_are_409_naming_the_field(api: Api, admin: Member) -> None:
    await api.register(admin, "bart")
    same_name = {"email": "other@example.org", "username": "BART", "password": PASSWORD}
    response = await api.client.post("/users", headers=admin.auth, json=same_name)
    assert response.status_code == 409 and response.json()["field"] == "username"
    same_mail = {"email": "Bart@springfield.example.org", "username": "bart2", "password": PASSWORD}
    response = await api.client.post("/users", headers=admin.auth, json=same_mail)
    assert response.status_code == 409 and response.json()["field"] == "email"
    taken_org = await api.client.post(
        "/organizations",
        headers={"X-Bootstrap-Key": "e2e-bootstrap-key"},
        json={
            "name": "Again",
            "slug": "springfield",
            "admin": {"email": "a@b.org", "username": "adm", "password": PASSWORD},
        },
    )
    assert taken_org.status_code == 409 and taken_org.json()["field"] == "slug"


async def test_a_refused_first_admin_leaves_no_organization_behind(api: Api) -> None:
    body = {
        "name": "Ogdenville",
        "slug": "ogdenville",
        "admin": {"email": "admin@og.example.org", "username": "admin", "password": "short"},
    }
    headers = {"X-Bootstrap-Key": "e2e-bootstrap-key"}
    refused = await api.client.post("/organizations", headers=headers, json=body)
    assert refused.status_code == 422 and refused.json()["field"] == "password"
    body["admin"]["password"] = PASSWORD  # type: ignore[index]
    assert (await api.client.post("/organizations", headers=headers, json=body)).status_code == 201


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/users", {"skip": -1}),
        ("/users", {"limit": 0}),
        ("/users", {"limit": 10**30}),
        ("/users", {"skip": "many"}),
        ("/users", {"role": "emperor"}),
        ("/users", {"cursor": "%%%"}),
        ("/content", {"tags": "a\x00b"}),
        ("/content", {"tags": ["t"] * 21}),
        ("/content", {"limit": 101}),
        ("/content", {"q": "a\x00b"}),
        ("/content/by-slug/" + "x" * 500, {}),
        ("/content/by-slug/Not A Slug", {}),
    ],
)
async def test_bad_paths_and_query_parameters_are_422(
    api: Api, admin: Member, path: str, params: dict[str, Any]
) -> None:
    response = await api.client.get(path, headers=admin.auth, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation"


async def test_unknown_ids_are_404(api: Api, admin: Member) -> None:
    """Ids are UUIDs: a path with anything else names no resource."""
    for path in (
        f"/users/{uuid4()}",
        f"/content/{uuid4()}",
        "/content/by-slug/no-such-slug",
        "/users/not-a-uuid",
        "/users/" + "1" * 5000,
        "/content/%00",
    ):
        response = await api.client.get(path, headers=admin.auth)
        assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"email": 5, "username": "ok-name", "password": PASSWORD},
        {"email": "a@b.org", "username": "ok-name", "password": PASSWORD, "extra": 1},
        {"email": "a@b.org", "username": "ok\x00name", "password": PASSWORD},
        {"email": "a@b.org", "username": "ok-name", "password": "pass\x00word!"},
        {"email": "a@b.org", "username": "ok-name", "password": PASSWORD, "skills": "x"},
        {"email": "a@b.org", "username": "ok-name", "password": PASSWORD, "role": "king"},
        {"email": "a@b.org", "username": "ok-name", "password": PASSWORD, "bio": "x" * 3000},
        ["not", "an", "object"],
        "just a string",
        None,
    ],
)
async def test_bad_bodies_are_422(api: Api, admin: Member, body: object) -> None:
    response = await api.client.post("/users", headers=admin.auth, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation"


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"\xff\xfe\x00",
        b'{"email": "\\ud800@example.org", "username": "abc", "password": "long enough pw"}',
        b"[" * 200_000,
        b'{"title": "x", "metadata": {"n": NaN}}',
        b'{"title": "x", "metadata": {"n": 1e400}}',
        b'{"title": "x", "metadata": {"n": 99999999999999999999999}}',
    ],
)
async def test_malformed_json_is_422(api: Api, admin: Member, raw: bytes) -> None:
    headers = {**admin.auth, "Content-Type": "application/json"}
    for path in ("/users", "/content"):
        response = await api.client.post(path, headers=headers, content=raw)
        assert response.status_code == 422, (path, raw[:40], response.text)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_without_json_content_type_is_415(
    api: Api, admin: Member, content_type: str
) -> None:
    response = await api.client.post(
        "/content", headers={**admin.auth, "Content-Type": content_type}, content=b'{"title": "x"}'
    )
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"


async def test_a_json_suffix_content_type_is_read_as_json(api: Api, admin: Member) -> None:
    headers = {**admin.auth, "Content-Type": "application/merge-patch+json"}
    response = await api.client.post("/content", headers=headers, content=b'{"title": "Merge"}')
    assert response.status_code == 201


async def test_huge_bodies_are_413(api: Api, admin: Member) -> None:
    body = {"title": "Big", "body": "x" * (2 * 1024 * 1024)}
    response = await api.client.post("/content", headers=admin.auth, json=body)
    assert response.status_code == 413  # refused by the framework before the body is read


async def test_errors_never_echo_secrets_or_hashes(api: Api, admin: Member) -> None:
    user = await api.register(admin, "bart")
    assert "hashed_password" not in user
    read = await api.client.get(f"/users/{user['id']}", headers=admin.auth)
    assert "hash" not in read.text and "fast$" not in read.text
    wrong = await api.client.post(
        "/auth/password",
        headers=admin.auth,
        json={"current_password": "my secret guess", "new_password": "another secret!"},
    )
    assert "secret" not in wrong.text


async def test_framework_errors_share_the_body_shape(api: Api) -> None:
    missing = await api.client.get("/no/such/route")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong_method = await api.client.put("/health")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["Allow"]
