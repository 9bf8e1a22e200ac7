"""The JSON codec: entities round-trip to equal, detached objects; garbage never decodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import edu_infra
from edu_domain.model import (
    ContentStatus,
    ContentType,
    DifficultyLevel,
    EducationalContent,
    LoginSession,
    Organization,
    OrganizationStatus,
    User,
    UserProfile,
    UserRole,
    UserStatus,
)
from edu_domain.services.views import UserAccount, UserStatistics
from edu_infra.codec import CodecError, dumps, from_json, loads, to_json

ORG = uuid4()
NOW = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def round_trip(value: Any, type_: Any) -> Any:
    return from_json(loads(dumps(to_json(value, type_))), type_)


def fields_of(value: Any) -> dict[str, Any]:
    return attrs.asdict(value, recurse=True)


def a_user(**overrides: Any) -> User:
    values: dict[str, Any] = {
        "organization_id": ORG,
        "email": "Ada@Example.org",
        "username": "ada",
        "hashed_password": "fast$v2$1$abc",
        "full_name": "Ada Lovelace",
        "role": UserRole.TEACHER,
        "status": UserStatus.ACTIVE,
        "email_verified": True,
        "email_verified_at": NOW,
        "created_at": NOW - timedelta(days=3),
        "created_by": uuid4(),
        "version": 4,
    }
    values.update(overrides)
    return User(**values)


def a_content(**overrides: Any) -> EducationalContent:
    values: dict[str, Any] = {
        "organization_id": ORG,
        "title": "Fractions",
        "slug": "fractions",
        "body": "Halves and quarters",
        "content_type": ContentType.QUIZ,
        "difficulty": DifficultyLevel.ADVANCED,
        "status": ContentStatus.PUBLISHED,
        "tags": ("math", "grade-5"),
        "metadata": {"minutes": 15, "sources": ["book"], "extra": {"a": None, "b": 1.5}},
        "author_id": uuid4(),
        "published_at": NOW,
    }
    values.update(overrides)
    return EducationalContent(**values)


def test_user_round_trips_to_an_equal_detached_object() -> None:
    user = a_user()
    copy = round_trip(user, User)
    assert copy is not user
    assert isinstance(copy, User)
    assert fields_of(copy) == fields_of(user)
    assert copy.role is UserRole.TEACHER
    assert isinstance(copy.id, UUID)
    assert copy.email_verified_at == NOW and copy.email_verified_at.utcoffset() == timedelta(0)


def test_content_round_trips_with_tuples_enums_and_metadata() -> None:
    content = a_content()
    copy = round_trip(content, EducationalContent)
    assert fields_of(copy) == fields_of(content)
    assert copy.tags == ("math", "grade-5")
    assert copy.content_type is ContentType.QUIZ


def test_pending_domain_events_are_not_encoded() -> None:
    content = a_content(status=ContentStatus.DRAFT, published_at=None)
    content.publish(NOW)
    copy = round_trip(content, EducationalContent)
    assert copy.has_events() is False
    assert content.has_events() is True


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        (Organization(name="School", slug="school", status=OrganizationStatus.SUSPENDED), None),
        (
            LoginSession(
                organization_id=ORG,
                user_id=uuid4(),
                jti="j1",
                token_hash="h",
                ip_address="10.0.0.1",
                expires_at=NOW,
            ),
            None,
        ),
        (UserProfile(organization_id=ORG, user_id=uuid4(), skills=("Python", "SQL")), None),
        (
            UserStatistics(
                total=3,
                by_role={"student": 2, "teacher": 1},
                by_status={"active": 3},
                verified=2,
                unverified=1,
                active_sessions=1,
                new_last_30_days=3,
            ),
            None,
        ),
        (UserAccount(a_user(), None), None),
        (UserAccount(a_user(), UserProfile(organization_id=ORG, user_id=uuid4())), None),
    ],
)
def test_other_cached_values_round_trip(value: Any, type_: Any) -> None:
    kind = type_ or type(value)
    assert fields_of(round_trip(value, kind)) == fields_of(value)


def test_json_shape_is_plain_and_readable() -> None:
    data = loads(dumps(to_json(a_content(), EducationalContent)))
    assert data["content_type"] == "quiz"
    assert data["tags"] == ["math", "grade-5"]
    assert data["organization_id"] == str(ORG)
    assert data["published_at"] == "2026-03-01T12:30:15.123456+00:00"


def test_keeps_the_offset_of_aware_datetimes() -> None:
    cet = datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=1)))
    copy = round_trip(a_user(last_login_at=cet), User)
    assert copy.last_login_at == cet
    assert copy.last_login_at.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    "raw", [b"", b"\xff\xfe", b"{", b"{'a': 1}", b"NaN", b"\x80\x04\x95\x05\x00\x00\x00"]
)
def test_garbage_bytes_do_not_decode(raw: bytes) -> None:
    with pytest.raises(CodecError):
        loads(raw)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"email": "a@b.org"},
        [],
        "user",
        {**to_json(a_user(), User), "id": "not-a-uuid"},
        {**to_json(a_user(), User), "role": "emperor"},
        {**to_json(a_user(), User), "created_at": 12},
        {**to_json(a_user(), User), "email": "not an email"},
    ],
)
def test_data_that_does_not_fit_the_type_is_a_codec_error(data: Any) -> None:
    with pytest.raises(CodecError):
        from_json(data, User)


def test_objects_that_are_not_json_do_not_encode() -> None:
    with pytest.raises(CodecError):
        dumps({"x": object()})
    with pytest.raises(CodecError):
        dumps(2**70)


def test_no_pickle_anywhere_in_the_adapters() -> None:
    root = Path(edu_infra.__file__).parent
    sources = [root / "codec.py", root / "memory" / "cache.py"]
    sources += sorted((root / "redis").glob("*.py")) + sorted((root / "caching").glob("*.py"))
    assert len(sources) > 8
    for source in sources:
        text = source.read_text()
        for word in ("import pickle", "pickle.", "import marshal", "eval(", "exec("):
            assert word not in text, f"{word} in {source}"


# -- property: any valid entity round-trips ----------------------------------------------

aware_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), UTC]),
)
words = st.from_regex(r"[a-z][a-z0-9]{2,10}", fullmatch=True)
names = (
    st.text(
        alphabet=st.characters(codec="utf-8", categories=["L", "N", "Zs"]), min_size=1, max_size=40
    )
    .map(str.strip)
    .filter(bool)
)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | words
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(words, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def users(draw: st.DrawFn) -> User:
    return User(
        id=draw(st.uuids()),
        organization_id=draw(st.uuids()),
        email=draw(words) + "@" + draw(words) + ".org",
        username=draw(words),
        hashed_password=draw(words),
        full_name=draw(st.none() | names),
        role=draw(st.sampled_from(UserRole)),
        status=draw(st.sampled_from(UserStatus)),
        email_verified=draw(st.booleans()),
        email_verified_at=draw(st.none() | aware_datetimes),
        last_login_at=draw(st.none() | aware_datetimes),
        failed_login_count=draw(st.integers(0, 10_000)),
        locked_until=draw(st.none() | aware_datetimes),
        created_at=draw(st.none() | aware_datetimes),
        updated_by=draw(st.none() | st.uuids()),
        version=draw(st.integers(0, 2**31)),
    )


@st.composite
def contents(draw: st.DrawFn) -> EducationalContent:
    return EducationalContent(
        organization_id=draw(st.uuids()),
        title=draw(names),
        slug="-".join(draw(st.lists(words, min_size=1, max_size=3))),
        body=draw(st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), max_size=200)),
        content_type=draw(st.sampled_from(ContentType)),
        difficulty=draw(st.sampled_from(DifficultyLevel)),
        status=draw(st.sampled_from(ContentStatus)),
        tags=tuple(draw(st.lists(words, max_size=5, unique=True))),
        metadata=draw(st.dictionaries(words, json_values, max_size=4)),
        author_id=draw(st.uuids()),
        published_at=draw(st.none() | aware_datetimes),
    )


@given(users())
def test_any_user_round_trips(user: User) -> None:
    assert fields_of(round_trip(user, User)) == fields_of(user)


@given(contents())
def test_any_content_round_trips(content: EducationalContent) -> None:
    assert fields_of(round_trip(content, EducationalContent)) == fields_of(content)
