"""Password rules checked before anything is hashed, and the one way use cases hash."""

from __future__ import annotations

from typing import TypeGuard

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


#: What `isinstance(h, OffloadingPasswordHasher)` looks up (a runtime protocol: each member
#: present and not None), without the protocol machinery's ~40 µs per check.
OFFLOADING_MEMBERS = ("hash", "verify", "needs_rehash", "hash_async", "verify_async")


def offloads(hasher: PasswordHasher) -> TypeGuard[OffloadingPasswordHasher]:
    """True when `hasher` is an `OffloadingPasswordHasher`."""
    return all(getattr(hasher, name, None) is not None for name in OFFLOADING_MEMBERS)


async def hash_password(hasher: PasswordHasher, password: str) -> str:
    """Hash off the event loop when the hasher can (argon2 takes tens of milliseconds)."""
    if offloads(hasher):
        return await hasher.hash_async(password)
    return hasher.hash(password)


async def verify_password(hasher: PasswordHasher, password: str, hashed: str) -> bool:
    """Verify off the event loop when the hasher can."""
    if offloads(hasher):
        return await hasher.verify_async(password, hashed)
    return hasher.verify(password, hashed)
