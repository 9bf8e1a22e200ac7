"""The schema's rules, checked by walking the metadata (no server needed)."""

from __future__ import annotations

import subprocess
import sys
import typing

import attrs
import pytest
from sqlalchemy import ForeignKeyConstraint, Index, PrimaryKeyConstraint, String

from edu_domain.model import ENTITY_TYPES
from edu_domain.query import describe
from edu_infra.sqlalchemy.tables import TABLES, TENANT_TABLES, metadata


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_every_key_of_a_tenant_table_starts_with_organization_id(table: typing.Any) -> None:
    keys: list[tuple[str, list[str]]] = []
    for constraint in table.constraints:
        if isinstance(constraint, PrimaryKeyConstraint):
            keys.append((str(constraint.name), [c.name for c in constraint.columns]))
    for index in table.indexes:
        if index.unique and index.name != f"uq_{table.name}_id":  # not created on Citus
            keys.append((str(index.name), [c.name for c in index.columns]))
    assert keys, f"{table.name} has no keys"
    for name, columns in keys:
        assert "organization_id" in columns, f"{name} lacks organization_id (Citus rule)"


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_references_never_cross_tenants(table: typing.Any) -> None:
    for fk in table.constraints:
        if isinstance(fk, ForeignKeyConstraint) and fk.referred_table.name != "organizations":
            assert fk.column_keys[0] == "organization_id"
            referred = [element.column.name for element in fk.elements]
            assert referred == ["organization_id", "id"]


def test_uniqueness_ignores_soft_deleted_rows() -> None:
    ids = {f"uq_{t.name}_id" for t in TENANT_TABLES}  # an id stays taken when soft-deleted
    unique = [
        i for t in metadata.tables.values() for i in t.indexes if i.unique and i.name not in ids
    ]
    assert len(unique) == 6
    for index in unique:
        assert isinstance(index, Index)
        where = index.dialect_options["postgresql"]["where"]
        assert str(where) == "deleted_at IS NULL", index.name
        assert str(index.dialect_options["sqlite"]["where"]) == "deleted_at IS NULL"


@pytest.mark.parametrize("cls", ENTITY_TYPES, ids=lambda c: c.__name__)
def test_every_entity_field_has_a_column_of_matching_nullability(cls: typing.Any) -> None:
    table = TABLES[cls]
    fields = describe(cls)
    for field in attrs.fields(cls):
        column = table.c[field.name]
        audit = field.name in ("created_at", "updated_at")
        assert column.nullable == (fields[field.name].nullable and not audit), field.name
    assert {c.name for c in table.columns} - {f.name for f in attrs.fields(cls)} <= {
        "organization_id"
    }


def test_text_columns_are_bounded_except_the_body() -> None:
    unbounded = [
        f"{t.name}.{c.name}"
        for t in metadata.tables.values()
        for c in t.columns
        if isinstance(c.type, String) and c.type.length is None
    ]
    assert unbounded == ["educational_contents.body"]


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def test_importing_the_domain_loads_no_sqlalchemy_and_maps_nothing() -> None:
    out = _run(
        "import sys, edu_domain, edu_domain.model, edu_domain.services;"
        "print('sqlalchemy' in sys.modules, hasattr(edu_domain.model.User, '__mapper__'))"
    )
    assert out == "False False"


def test_start_mappers_is_idempotent_and_clear_mappers_restores_plain_classes() -> None:
    out = _run(
        "from edu_infra.sqlalchemy import start_mappers, clear_mappers\n"
        "from edu_domain.model import User\n"
        "start_mappers(); start_mappers()\n"
        "mapped = hasattr(User, '__mapper__')\n"
        "clear_mappers()\n"
        "print(mapped, hasattr(User, '__mapper__'))\n"
    )
    assert out == "True False"


@pytest.mark.parametrize("bad", ["not a dict", ["a", "list"], 42])
def test_mapped_entities_still_reject_bad_metadata_with_a_domain_error(bad: object) -> None:
    from uuid import uuid4

    from edu_domain.errors import ValidationError
    from edu_domain.model import EducationalContent
    from edu_infra.sqlalchemy import start_mappers

    start_mappers()
    with pytest.raises(ValidationError):
        EducationalContent(
            organization_id=uuid4(),
            author_id=uuid4(),
            title="T",
            slug="t",
            metadata=bad,  # type: ignore[arg-type]
        )
    content = EducationalContent(organization_id=uuid4(), author_id=uuid4(), title="T", slug="t")
    with pytest.raises(ValidationError):
        content.metadata = bad  # type: ignore[assignment]
    assert content.metadata == {}
