"""Password rules checked before anything is hashed."""

from __future__ import annotations

from edu_domain.errors import ValidationError
from edu_domain.model.rules import check_clean
from edu_domain.services.context import SecurityPolicy


def check_password(password: object, policy: SecurityPolicy) -> str:
    """Long enough, bounded (hashing cost), valid Unicode without NUL. Never echoes it."""
    if not isinstance(password, str):
        raise ValidationError("password", "must be a string")
    if len(password) < policy.password_min_length:
        raise ValidationError(
            "password", f"too short (min {policy.password_min_length} characters)"
        )
    if len(password) > policy.password_max_length:
        raise ValidationError("password", f"too long (max {policy.password_max_length} characters)")
    check_clean("password", password, multiline=False)
    return password
