"""The tenant: every other entity belongs to exactly one organization."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from attrs import define, field

from edu_domain.model import rules
from edu_domain.model.base import Entity, UniqueKey, enum_of, rule, to_enum


class OrganizationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ARCHIVED = "archived"


def _to_organizationstatus(value: object) -> object:
    return to_enum(OrganizationStatus)(value)


@define(slots=False, eq=False, kw_only=True)
class Organization(Entity):
    """A school, university or training company. Its own id is its tenant key."""

    __tenant_field__: ClassVar[str] = "id"
    __unique__: ClassVar[tuple[UniqueKey, ...]] = (UniqueKey(fields=("slug",), reported_as="slug"),)

    name: str = field(validator=rule(rules.check_display_text, max_len=rules.NAME_MAX))
    slug: str = field(validator=rule(rules.check_slug, max_len=63))
    status: OrganizationStatus = field(
        default=OrganizationStatus.ACTIVE,
        converter=_to_organizationstatus,
        validator=enum_of(OrganizationStatus),
    )

    @property
    def organization_id(self) -> UUID:
        """An organization is its own tenant."""
        return self.id

    def rename(self, name: str) -> None:
        self.name = name

    def suspend(self) -> None:
        self.status = OrganizationStatus.SUSPENDED

    def activate(self) -> None:
        self.status = OrganizationStatus.ACTIVE
