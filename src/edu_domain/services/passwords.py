"""Password rules checked before anything is hashed, and the one way use cases hash."""

from __future__ import annotations

from edu_domain.errors import ValidationError
from edu_domain.model.rules import check_clean
from edu_domain.ports import OffloadingPasswordHasher, PasswordHasher
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


async def hash_password(hasher: PasswordHasher, password: str) -> str:
    """Hash off the event loop when the hasher can (argon2 takes tens of milliseconds)."""
    if isinstance(hasher, OffloadingPasswordHasher):
        return await hasher.hash_async(password)
    return hasher.hash(password)


async def verify_password(hasher: PasswordHasher, password: str, hashed: str) -> bool:
    """Verify off the event loop when the hasher can."""
    if isinstance(hasher, OffloadingPasswordHasher):
        return await hasher.verify_async(password, hashed)
    return hasher.verify(password, hashed)
