"""Opaque tokens handed to users, and the hashes we keep of them.

A token is `<public id>.<secret>`: the id finds the row, the secret is compared in constant
time against its stored SHA-256. The raw secret is never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

from edu_domain.errors import InvalidToken

MAX_TOKEN_LENGTH = 512


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def make_token(*parts: str) -> str:
    return ".".join(parts)


def split_token(token: object, purpose: str, parts: int) -> list[str]:
    """Split a token into its parts, or InvalidToken for anything malformed."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken(purpose)
    pieces = token.split(".")
    if len(pieces) != parts or not all(pieces):
        raise InvalidToken(purpose)
    return pieces


def parse_uuid(text: str, purpose: str) -> UUID:
    if len(text) != 32:
        raise InvalidToken(purpose)
    try:
        return UUID(hex=text)
    except ValueError:
        raise InvalidToken(purpose) from None
