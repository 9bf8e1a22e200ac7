"""Cached values are decoded once per distinct content; every reader gets its own copy."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import attrs
import pytest
from attrs import define, field
from sqlalchemy.orm.base import instance_state

from edu_domain.caching import CacheKey
from edu_domain.errors import ValidationError
from edu_domain.model import EducationalContent, User
from edu_infra.caching import ReadThroughCache
from edu_infra.caching.decoded import DecodedValues
from edu_infra.codec import CodecError, dumps, loads, to_json
from edu_infra.memory.cache import InMemoryCache
from edu_infra.sqlalchemy.mapping import start_mappers
from tests.cache.conftest import CacheHarness

T1 = UUID("00000000-0000-0000-0000-0000000000a1")


def a_user(name: str = "Ada") -> User:
    return User(
        organization_id=T1, email="ada@example.org", username="ada", hashed_password="h",
        full_name=name,
    )  # fmt: skip


def a_content() -> EducationalContent:
    return EducationalContent(
        organization_id=T1, author_id=T1, title="Fractions", slug="fractions",
        tags=("math",), metadata={"level": {"grade": 3}, "links": ["a"]},
    )  # fmt: skip


def key_of(entity: Any, namespace: str = "user") -> CacheKey:
    return CacheKey(namespace, T1, (str(entity.id),))


class Loader:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        return self.value


def test_each_decode_is_a_new_object_equal_to_the_data() -> None:
    decoded = DecodedValues()
    data = loads(dumps(to_json(a_user(), User)))
    first, second = decoded.decode(data, User), decoded.decode(data, User)
    assert first is not second
    assert to_json(first, User) == to_json(second, User) == data
    assert len(decoded) == 1, "one template for one content"


def test_mutable_fields_are_never_shared_between_copies() -> None:
    decoded = DecodedValues()
    data = loads(dumps(to_json(a_content(), EducationalContent)))
    first = decoded.decode(data, EducationalContent)
    first.metadata["level"]["grade"] = 9
    first.metadata["links"].append("b")
    second = decoded.decode(data, EducationalContent)
    assert second.metadata == {"level": {"grade": 3}, "links": ["a"]}
    assert second.metadata is not first.metadata


def test_content_that_does_not_validate_is_refused_every_time_and_never_kept() -> None:
    decoded = DecodedValues()
    good = loads(dumps(to_json(a_user(), User)))
    decoded.decode(good, User)
    bad = {**good, "email": "not an address"}
    for _ in range(2):
        with pytest.raises(CodecError):
            decoded.decode(bad, User)
    assert len(decoded) == 1


def test_the_oldest_templates_are_dropped_past_the_bound() -> None:
    decoded = DecodedValues(max_items=2)
    for name in ("A", "B", "C"):
        decoded.decode(loads(dumps(to_json(a_user(name), User))), User)
    assert len(decoded) == 2


def test_other_types_are_decoded_each_time() -> None:
    decoded = DecodedValues()
    assert decoded.decode({"a": [1]}, dict[str, list[int]]) == {"a": [1]}
    assert decoded.decode("x", str) == "x"
    assert len(decoded) == 0


@define(slots=False)
class Plain:
    """An attrs class nobody maps: copied without SQLAlchemy."""

    name: str = field(validator=attrs.validators.instance_of(str))
    items: list[int] = field(factory=list)


def test_an_unmapped_class_is_copied_with_its_own_containers() -> None:
    decoded = DecodedValues()
    first = decoded.decode({"name": "x", "items": [1]}, Plain)
    first.items.append(2)
    second = decoded.decode({"name": "x", "items": [1]}, Plain)
    assert type(second) is Plain and second.items == [1] and second.name == "x"


def test_a_copy_of_a_mapped_entity_is_transient_and_still_validates_changes() -> None:
    start_mappers()
    decoded = DecodedValues()
    data = loads(dumps(to_json(a_user(), User)))
    copy = decoded.decode(data, User)
    state = instance_state(copy)
    assert state.key is None and state.session_id is None, "transient, like a built User"
    copy.rename("Grace")
    assert copy.full_name == "Grace"
    with pytest.raises(ValidationError):
        copy.email = "not an address"
    assert decoded.decode(data, User).full_name == "Ada"


async def test_hits_never_hand_out_the_same_object_twice(harness: CacheHarness) -> None:
    reads = ReadThroughCache(harness.cache)
    content = a_content()
    load = Loader(content)
    key = key_of(content, "content_slug")
    await reads.fetch(key, load, EducationalContent)
    first = await reads.fetch(key, load, EducationalContent)
    first.metadata["level"]["grade"] = 7
    second = await reads.fetch(key, load, EducationalContent)
    assert load.calls == 1
    assert second is not first
    assert second.metadata == {"level": {"grade": 3}, "links": ["a"]}
    assert second.title == "Fractions"


async def test_a_value_another_instance_wrote_is_validated_before_it_is_served(
    harness: CacheHarness,
) -> None:
    """Same key, new bytes: the memo of the old bytes does not vouch for them."""
    reads = ReadThroughCache(harness.cache)
    user = a_user()
    load = Loader(user)
    key = key_of(user)
    await reads.fetch(key, load, User)
    await reads.fetch(key, load, User)  # decoded and remembered
    storage_key = reads.storage_key(key, await harness.generations(reads, key))
    foreign = {**to_json(user, User), "full_name": "Grace"}
    await harness.put_raw(storage_key, dumps(foreign))
    assert (await reads.fetch(key, load, User)).full_name == "Grace"
    await harness.put_raw(storage_key, dumps({**foreign, "email": "not an address"}))
    served = await reads.fetch(key, load, User)
    assert load.calls == 2, "the invalid value was refused and the loader ran"
    assert served is user


def test_remembered_keys_are_the_layout_and_stay_bounded() -> None:
    reads = ReadThroughCache(InMemoryCache())
    reads.key_memo = 2
    keys = [CacheKey("user", T1, (f"a:{i}",)) for i in range(3)]
    for key in keys:
        assert reads.read_keys(key) == reads.layout(key)
        assert reads.read_keys(key) is reads.read_keys(key), "built once"
    assert len(reads._built) <= 2
