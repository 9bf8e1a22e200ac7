"""Issue 15's findings, each as a behaviour: one error envelope for the framework's own errors,
no echo of client input, the domain's text rules over HTTP, field visibility, and an OpenAPI
document that says what the service does."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edu_domain import ValidationError
from edu_domain.model import rules
from examples.fastapi_app.schemas import fields
from tests.e2e.api import Api, Member


def _envelope(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error and isinstance(body["message"], str)
    return body


async def test_a_body_over_the_limit_is_a_json_413_with_or_without_content_length(
    api: Api, admin: Member
) -> None:
    big = b'{"title": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    headers = {**admin.auth, "Content-Type": "application/json"}
    declared = await api.client.post("/content", headers=headers, content=big)
    _envelope(declared, 413, "content_too_large")

    async def chunks() -> Any:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await api.client.post("/content", headers=headers, content=chunks())
    _envelope(streamed, 413, "content_too_large")


@pytest.mark.parametrize("raw", [b'{"title":"x"', b'{"title": }', b"{,}"])
async def test_malformed_json_names_the_body(api: Api, admin: Member, raw: bytes) -> None:
    headers = {**admin.auth, "Content-Type": "application/json"}
    response = await api.client.post("/content", headers=headers, content=raw)
    assert _envelope(response, 422, "validation")["field"] == "body"


async def test_a_nul_in_the_search_text_names_q(api: Api, admin: Member) -> None:
    response = await api.client.get("/content", headers=admin.auth, params={"q": "a\x00"})
    assert _envelope(response, 422, "validation")["field"] == "q"


async def test_unknown_query_parameters_are_refused_by_name(api: Api, admin: Member) -> None:
    response = await api.client.get("/users", headers=admin.auth, params={"limt": "5"})
    body = _envelope(response, 422, "validation")
    assert body["field"] == "limt"
    hostile = await api.client.get("/users", headers=admin.auth, params={"<script>": "1"})
    assert "<script>" not in hostile.text
    assert _envelope(hostile, 422, "validation")["field"] == "(unnamed)"
    assert (await api.client.get("/health", params={"verbose": "1"})).status_code == 422


async def test_body_typos_and_bad_values_are_not_echoed(api: Api, admin: Member) -> None:
    typo = await api.client.post(
        "/content", headers=admin.auth, json={"title": "ok", "<img src=x>": 1}
    )
    assert "<img" not in typo.text and _envelope(typo, 422, "validation")
    tag = await api.client.post(
        "/content", headers=admin.auth, json={"title": "ok", "tags": ["<b>bold</b>"]}
    )
    assert "bold" not in tag.text and _envelope(tag, 422, "validation")["field"] == "tags.0"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/content", {"GET", "HEAD", "POST"}),
        ("PUT", "/content", {"GET", "HEAD", "POST"}),
        ("GET", "/auth/sessions/revoke-all", {"POST"}),
        ("POST", "/users/0b7c7d4e-3f0a-4f57-9b1a-2a8d5c1e9f10", {"GET", "HEAD", "PATCH", "DELETE"}),
    ],
)
async def test_405_names_every_method_of_the_path(
    api: Api, method: str, path: str, allowed: set[str]
) -> None:
    response = await api.client.request(method, path)
    _envelope(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == allowed


async def test_a_password_reset_request_answers_json(api: Api, admin: Member) -> None:
    response = await api.client.post(
        "/auth/password-reset/request",
        json={"organization": "springfield", "email": "nobody@example.org"},
    )
    assert response.status_code == 202 and response.json() == {"status": "accepted"}


async def test_hard_deleting_an_author_is_a_conflict(api: Api, admin: Member) -> None:
    teacher = await api.member(admin, "edna", role="teacher")
    await api.draft(teacher, "Lesson one")
    response = await api.client.delete(
        f"/users/{teacher.id}", headers=admin.auth, params={"hard": "true"}
    )
    _envelope(response, 409, "invalid_state")
    assert (await api.client.get(f"/users/{teacher.id}", headers=admin.auth)).status_code == 200


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/content", "title", "invoice\u202egpj.exe"),
        ("/content", "title", "   "),
        ("/content", "title", "zero\u200bwidth"),
    ],
)
async def test_titles_refuse_invisible_and_blank_text(
    api: Api, admin: Member, path: str, field: str, value: str
) -> None:
    response = await api.client.post(path, headers=admin.auth, json={field: value})
    assert _envelope(response, 422, "validation")["field"] == field
    listed = await api.client.get("/content", headers=admin.auth)
    assert listed.json()["items"] == []


async def test_names_refuse_bidi_controls(api: Api, admin: Member) -> None:
    response = await api.client.patch(
        f"/users/{admin.id}", headers=admin.auth, json={"full_name": "Ada\u202eecalevol"}
    )
    assert _envelope(response, 422, "validation")["field"] == "full_name"


async def test_patch_fields_are_nullable_only_where_null_is_accepted(
    api: Api, admin: Member
) -> None:
    draft = await api.draft(admin, "Nullable?")
    refused = await api.client.patch(
        f"/content/{draft['id']}", headers=admin.auth, json={"title": None}
    )
    assert _envelope(refused, 422, "validation")["field"] == "title"
    cleared = await api.client.patch(
        f"/users/{admin.id}", headers=admin.auth, json={"full_name": None}
    )
    assert cleared.status_code == 200 and cleared.json()["full_name"] is None
    spec = (await api.client.get("/openapi.json")).json()["components"]["schemas"]
    nullable = {
        (model, name)
        for model in ("UserUpdate", "ProfileUpdate", "ContentUpdate")
        for name, prop in spec[model]["properties"].items()
        if any(branch.get("type") == "null" for branch in prop.get("anyOf", ()))
    }
    assert nullable == {
        ("UserUpdate", "full_name"),
        ("ProfileUpdate", "bio"),
        ("ProfileUpdate", "avatar_url"),
    }


@pytest.mark.parametrize("role", ["student", "parent"])
async def test_students_and_parents_see_names_not_contact_details(
    api: Api, admin: Member, role: str
) -> None:
    viewer = await api.member(admin, "viewer", role=role)
    listed = (await api.client.get("/users", headers=viewer.auth)).json()["items"]
    others = [u for u in listed if u["id"] != str(viewer.id)]
    assert others and all(u["email"] is None and u["last_login_at"] is None for u in others)
    assert all(u["username"] for u in others)
    own = next(u for u in listed if u["id"] == str(viewer.id))
    assert own["email"] == viewer.email
    single = (await api.client.get(f"/users/{admin.id}", headers=viewer.auth)).json()
    assert single["email"] is None and single["full_name"] == "The Admin"


async def test_teachers_see_contact_details(api: Api, admin: Member) -> None:
    teacher = await api.member(admin, "edna", role="teacher")
    single = (await api.client.get(f"/users/{admin.id}", headers=teacher.auth)).json()
    assert single["email"] == admin.email and single["last_login_at"] is not None


async def test_every_operation_documents_its_errors_with_the_shared_body(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert "422" in responses, (method, path)
            if any("SessionToken" in scheme for scheme in op.get("security", ())):
                assert "401" in responses, (method, path)
            if "requestBody" in op:
                assert {"413", "415"} <= set(responses), (method, path)
                body = op["requestBody"]["content"]["application/json"]["schema"]
                name = body["$ref"].rsplit("/", 1)[-1]
                assert spec["components"]["schemas"][name].get("examples"), name
            for status, answer in responses.items():
                if status.startswith(("4", "5")) and path != "/health/ready":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_password_bounds_come_from_the_running_policy(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()["components"]["schemas"]
    password = spec["UserCreate"]["properties"]["password"]
    policy = api.core.deps.policy
    assert (password["minLength"], password["maxLength"]) == (
        policy.password_min_length,
        policy.password_max_length,
    )


def _accepted(check: Any, value: str) -> bool:
    try:
        check(value)
    except ValidationError:
        return False
    return True


#: Each published pattern with its length bounds, and the domain rule it stands for.
FIELD_RULES = [
    (fields.EMAIL_PATTERN, 6, 254, lambda v: rules.check_email("e", rules.normalize_email(v))),
    (fields.USERNAME_PATTERN, 3, 32, lambda v: rules.check_username("u", v.lower())),
    (fields.TAG_PATTERN, 1, 40, lambda v: rules.check_tags("t", rules.normalize_tags([v]))),
    (fields.URL_PATTERN, 8, 2048, lambda v: rules.check_url("a", v)),
    (fields.LOCALE_PATTERN, 2, 35, lambda v: rules.check_locale("l", v)),
    (fields.SLUG_PATTERN, 1, 120, lambda v: rules.check_slug("s", v)),
]


@pytest.mark.parametrize(("pattern", "min_len", "max_len", "check"), FIELD_RULES)
@settings(max_examples=150)
@given(data=st.data())
def test_whatever_a_published_pattern_allows_the_domain_accepts(
    pattern: str, min_len: int, max_len: int, check: Any, data: st.DataObject
) -> None:
    value = data.draw(st.from_regex(re.compile(pattern.removesuffix("$") + r"\Z")))
    if min_len <= len(value) <= max_len:
        assert _accepted(check, value), value


def test_every_published_time_zone_is_one_the_domain_accepts() -> None:
    for zone in fields.time_zones():
        rules.check_timezone("timezone", zone)
