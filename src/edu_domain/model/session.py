"""Login sessions and the single-use tokens a user receives by mail."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from attrs import define, field

from edu_domain.errors import ValidationError
from edu_domain.model import rules
from edu_domain.model.base import (
    Reference,
    TenantEntity,
    UniqueKey,
    check_uuid,
    enum_of,
    nullable,
    rule,
    to_enum,
)
from edu_domain.model.user import User

#: A session id (JWT `jti`): URL- and token-safe characters (no `.`, the token's separator).
JTI_PATTERN = re.compile(r"[A-Za-z0-9_~+/=:-]{1,64}")


def check_jti(field: str, value: object) -> str:
    if not isinstance(value, str) or not JTI_PATTERN.fullmatch(value):
        raise ValidationError(field, "must be 1 to 64 letters, digits or _~+/=:-")
    return value


@define(slots=False, eq=False, kw_only=True)
class LoginSession(TenantEntity):
    """One signed-in device. The session token is stored only as a hash."""

    __unique__: ClassVar[tuple[UniqueKey, ...]] = (
        UniqueKey(fields=("organization_id", "jti"), reported_as="jti"),
    )
    __references__: ClassVar[tuple[Reference, ...]] = (
        Reference(field="user_id", target=User, on_delete="cascade"),
    )

    user_id: UUID = field(validator=rule(check_uuid))
    jti: str = field(validator=rule(check_jti))
    token_hash: str = field(repr=False, validator=rule(rules.check_text, max_len=128))
    ip_address: str | None = field(default=None, validator=nullable(rules.check_ip))
    user_agent: str | None = field(
        default=None,
        converter=rules.truncate_user_agent,
        validator=nullable(rules.check_text, max_len=rules.USER_AGENT_MAX),
    )
    expires_at: datetime = field(validator=rule(rules.check_aware))
    revoked_at: datetime | None = field(default=None, validator=nullable(rules.check_aware))

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now and self.deleted_at is None

    def revoke(self, now: datetime) -> bool:
        """Returns False when it was already revoked."""
        if self.revoked_at is not None:
            return False
        self.revoked_at = now
        return True


class TokenPurpose(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret


def _to_tokenpurpose(value: object) -> object:
    return to_enum(TokenPurpose)(value)


@define(slots=False, eq=False, kw_only=True)
class UserToken(TenantEntity):
    """A single-use, expiring token sent by mail. Only its hash is stored."""

    __references__: ClassVar[tuple[Reference, ...]] = (
        Reference(field="user_id", target=User, on_delete="cascade"),
    )

    user_id: UUID = field(validator=rule(check_uuid))
    purpose: TokenPurpose = field(converter=_to_tokenpurpose, validator=enum_of(TokenPurpose))
    token_hash: str = field(repr=False, validator=rule(rules.check_text, max_len=128))
    expires_at: datetime = field(validator=rule(rules.check_aware))
    used_at: datetime | None = field(default=None, validator=nullable(rules.check_aware))

    def is_usable(self, now: datetime) -> bool:
        return self.used_at is None and self.expires_at > now and self.deleted_at is None

    def use(self, now: datetime) -> None:
        self.used_at = now
