"""Entity rules: each bad value is a ValidationError naming its field."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edu_domain import ValidationError
from edu_domain.model import (
    EducationalContent,
    LoginSession,
    Organization,
    User,
    UserProfile,
    uuid7,
)
from edu_domain.model.rules import normalize_tags, slugify

ORG = uuid7()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def user(**overrides: object) -> User:
    fields: dict[str, object] = {
        "organization_id": ORG,
        "email": "a@example.org",
        "username": "abc",
        "hashed_password": "h",
    }
    fields.update(overrides)
    return User(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "plain"),
        ("email", "a@b"),
        ("email", "a@@example.org"),
        ("email", "a b@example.org"),
        ("email", "a@exa_mple.org"),
        ("email", "x" * 65 + "@example.org"),
        ("email", "a@" + "b" * 250 + ".org"),
        ("email", "a..b@example.org"),
        ("email", "a@example.123"),
        ("username", "ab"),
        ("username", "a" * 33),
        ("username", "-abc"),
        ("username", "ab c"),
        ("username", "abc\x00"),
        ("full_name", "x" * 201),
        ("full_name", "tab\there"),
        ("full_name", "\ud800"),
        ("role", "emperor"),
        ("status", 3),
        ("email_verified", "yes"),
        ("failed_login_count", -1),
        ("last_login_at", datetime(2026, 1, 1)),
        ("hashed_password", ""),
    ],
)
def test_user_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        user(**{field: value})
    assert error.value.field == field


def test_user_rejects_bad_values_on_assignment_too() -> None:
    u = user()
    with pytest.raises(ValidationError) as error:
        u.email = "broken"
    assert error.value.field == "email" and u.email == "a@example.org"


def test_email_and_username_are_stored_normalised() -> None:
    u = user(email="  John.Doe+Tag@Example.COM ", username=" JohnD ")
    assert (u.email, u.username) == ("john.doe+tag@example.com", "johnd")


def test_profile_rules() -> None:
    for field, value in (
        ("avatar_url", "javascript:alert(1)"),
        ("timezone", "Nowhere/City"),
        ("locale", "english!"),
        ("bio", "b" * 2001),
        ("skills", [f"s{i}" for i in range(51)]),
    ):
        with pytest.raises(ValidationError) as error:
            UserProfile(organization_id=ORG, user_id=uuid7(), **{field: value})  # type: ignore[arg-type]
        assert error.value.field == field
    ok = UserProfile(
        organization_id=ORG,
        user_id=uuid7(),
        bio="line\nbreak",
        timezone="Europe/Berlin",
        locale="pt-BR",
    )
    assert ok.bio == "line\nbreak"


def test_login_session_truncates_long_user_agents_and_checks_ips() -> None:
    s = LoginSession(
        organization_id=ORG,
        user_id=uuid7(),
        jti="j",
        token_hash="h",
        user_agent="u" * 900,
        ip_address="2001:db8::1",
        expires_at=NOW,
    )
    assert len(s.user_agent or "") == 512
    with pytest.raises(ValidationError):
        LoginSession(
            organization_id=ORG,
            user_id=uuid7(),
            jti="j",
            token_hash="h",
            ip_address="999.1.1.1",
            expires_at=NOW,
        )


def test_organization_and_content_rules() -> None:
    with pytest.raises(ValidationError):
        Organization(name="Ok", slug="-bad-")
    with pytest.raises(ValidationError):
        EducationalContent(
            organization_id=ORG, title="T", slug="t", author_id=uuid7(), metadata=[1]
        )  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        EducationalContent(
            organization_id=ORG, title="T", slug="t", author_id=uuid7(), metadata={1: "int key"}
        )
    with pytest.raises(ValidationError):
        EducationalContent(
            organization_id=ORG, title="T", slug="t", author_id=uuid7(), metadata={"big": 2**70}
        )
    c = EducationalContent(
        organization_id=ORG,
        title="T",
        slug="t",
        author_id=uuid7(),
        metadata={"a": [1, 2.5, None, True, {"b": "c"}]},
    )
    assert c.metadata["a"][4] == {"b": "c"}


def test_entities_compare_by_identity_and_events_are_transient() -> None:
    a, b = user(), user()
    assert a != b and a == a
    assert a.pull_events() == [] and not a.has_events()


@given(st.text(max_size=300))
def test_slugify_always_yields_a_valid_slug_or_nothing(text: str) -> None:
    slug = slugify(text)
    assert slug == "" or all(
        part and set(part) <= set(string.ascii_lowercase + string.digits)
        for part in slug.split("-")
    )
    assert len(slug) <= 120


@given(
    st.lists(st.text(alphabet=string.ascii_letters + " -", min_size=1, max_size=10), max_size=15)
)
def test_normalize_tags_is_idempotent_and_duplicate_free(tags: list[str]) -> None:
    once = normalize_tags(tags)
    assert isinstance(once, tuple)
    assert normalize_tags(list(once)) == once
    assert len(set(once)) == len(once)


@given(st.emails())
def test_generated_addresses_are_accepted_or_rejected_cleanly(address: str) -> None:
    try:
        u = user(email=address)
    except ValidationError as error:
        assert error.field == "email"
    else:
        assert u.email == address.strip().lower()
