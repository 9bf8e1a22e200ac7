"""The `UnitOfWork` port's argument checks (`edu_domain.uow_checks`), each on its own: what
it accepts and returns, and for a bad argument the one `ValidationError` every adapter
raises, with the field it names and the message a caller sees. The contract suite
(`edu_infra.testing.uow_arguments`) proves every adapter calls them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

import pytest

from edu_domain.errors import ValidationError
from edu_domain.model import EducationalContent, Organization, User
from edu_domain.model.base import Entity
from edu_domain.query import F, Query
from edu_domain.uow_checks import (
    check_actor,
    check_batch_size,
    check_callback,
    check_entities,
    check_entity,
    check_entity_class,
    check_flag,
    check_group_fields,
    check_id,
    check_measures,
    check_query,
    check_read,
    check_tenant,
)

ORG = Organization(name="Springfield", slug="springfield")
USER = User(
    organization_id=ORG.id,
    username="ada",
    email="ada@example.org",
    hashed_password="fast$v2$1$00",
)
ADMINS = F("role").eq("admin")

BAD: dict[str, tuple[Callable[[], object], str, str]] = {
    "a class name": (
        lambda: check_entity_class("User"),
        "entity",
        "str is not a persisted entity class",
    ),
    "a class that is not persisted": (
        lambda: check_entity_class(Query),
        "entity",
        "Query is not a persisted entity class",
    ),
    "the entity base class": (
        lambda: check_entity_class(Entity),
        "entity",
        "Entity is not a persisted entity class",
    ),
    "a dict for an entity": (
        lambda: check_entity({"id": uuid4()}),
        "entity",
        "dict is not a persisted entity class",
    ),
    "a string for entities": (
        lambda: check_entities("users"),
        "entities",
        "must be a collection of entities",
    ),
    "a mapping for entities": (
        lambda: check_entities({USER.id: USER}),
        "entities",
        "must be a collection of entities",
    ),
    "one entity for entities": (
        lambda: check_entities(USER),
        "entities",
        "must be a collection of entities",
    ),
    "a stranger among entities": (
        lambda: check_entities([USER, 7]),
        "entity",
        "int is not a persisted entity class",
    ),
    "a UUID's text": (lambda: check_id(str(USER.id)), "id", "must be a UUID"),
    "a tenant's text": (
        lambda: check_tenant(str(ORG.id)),
        "tenant",
        "must be an organization id (UUID)",
    ),
    "an actor's name": (lambda: check_actor("ada"), "actor", "must be a user id (UUID) or None"),
    "a truthy flag": (lambda: check_flag("lock", 1), "lock", "must be True or False"),
    "a callback that is not callable": (
        lambda: check_callback(42),
        "callback",
        "must be an async callable",
    ),
    "SQL text for a query": (lambda: check_query("role = 'admin'"), "query", "must be a Query"),
    "a zero batch size": (lambda: check_batch_size(0), "batch_size", "must be a positive integer"),
    "a negative batch size": (
        lambda: check_batch_size(-5),
        "batch_size",
        "must be a positive integer",
    ),
    "True as a batch size": (
        lambda: check_batch_size(True),
        "batch_size",
        "must be a positive integer",
    ),
    "a float batch size": (
        lambda: check_batch_size(2.5),
        "batch_size",
        "must be a positive integer",
    ),
    "a field name as a string": (
        lambda: check_group_fields(User, "role"),
        "by",
        "name one or more fields to group by",
    ),
    "no field to group by": (
        lambda: check_group_fields(User, []),
        "by",
        "name one or more fields to group by",
    ),
    "a number for fields": (
        lambda: check_group_fields(User, 3),
        "by",
        "name one or more fields to group by",
    ),
    "an unknown field to group by": (
        lambda: check_group_fields(User, ["role", "shoe_size"]),
        "by",
        "User has no field 'shoe_size'",
    ),
    "a field that cannot be grouped": (
        lambda: check_group_fields(EducationalContent, ["tags"]),
        "by",
        "cannot group by tags field 'tags'",
    ),
    "measures as a list": (
        lambda: check_measures(User, [("admins", ADMINS)]),
        "measures",
        "must map names to filters",
    ),
    "an empty measure name": (
        lambda: check_measures(User, {"": ADMINS}),
        "measures",
        "measure names must be non-empty strings",
    ),
    "a measure name that is not a string": (
        lambda: check_measures(User, {7: ADMINS}),
        "measures",
        "measure names must be non-empty strings",
    ),
    "a measure on an unknown field": (
        lambda: check_measures(User, {"tall": F("height").gt(2)}),
        "filter",
        "User has no field 'height'",
    ),
    "a read with SQL text": (
        lambda: check_read(User, "role = 'admin'", False),
        "query",
        "must be a Query",
    ),
    "a read with a truthy include_deleted": (
        lambda: check_read(User, None, "yes"),
        "include_deleted",
        "must be True or False",
    ),
    "a read of a class name": (
        lambda: check_read("User", None, False),
        "entity",
        "str is not a persisted entity class",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_argument_is_one_validation_error_naming_it(case: str) -> None:
    check, field, message = BAD[case]
    with pytest.raises(ValidationError) as raised:
        check()
    assert (raised.value.field, raised.value.message) == (field, message)


def test_good_arguments_come_back_as_given() -> None:
    tenant, actor, query = uuid4(), uuid4(), Query()
    assert check_entity_class(User) is User
    assert check_entity(USER) is USER
    assert check_entities((USER, ORG)) == [USER, ORG]
    assert check_entities(iter([USER])) == [USER]
    assert check_id(USER.id) == USER.id
    assert check_tenant(tenant) == tenant
    assert check_actor(actor) == actor
    assert check_actor(None) is None
    assert check_flag("hard", False) is False
    assert check_flag("hard", True) is True
    check_callback(lambda: None)
    assert check_query(None) is None
    assert check_query(query) is query
    assert check_batch_size(1) == 1
    assert check_read(User, query, True) is User


def test_group_fields_and_measures_come_back_checked() -> None:
    assert check_group_fields(User, ["role", "status"]) == ("role", "status")
    assert check_group_fields(User, ("role",)) == ("role",)
    assert check_measures(User, None) == {}
    measures: Any = check_measures(User, {"admins": ADMINS, "all": F("id").ne(None)})
    assert list(measures) == ["admins", "all"]
