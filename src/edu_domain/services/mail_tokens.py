"""Single-use tokens sent by mail (verification, password reset): issue and consume.

The raw token (`<token id hex>.<secret>`) goes only into the mail event; the store keeps the
secret's SHA-256. Consuming checks purpose, expiry, prior use and the secret in constant time,
and says only "invalid token" whatever was wrong.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from edu_domain.errors import InvalidToken
from edu_domain.model.organization import Organization
from edu_domain.model.session import TokenPurpose, UserToken
from edu_domain.model.user import User
from edu_domain.ports import UnitOfWork
from edu_domain.query import Query
from edu_domain.services.acting import check_open
from edu_domain.services.deps import Deps
from edu_domain.services.tokens import (
    hash_secret,
    make_token,
    parse_uuid,
    secret_matches,
    split_token,
)

LABELS = {
    TokenPurpose.EMAIL_VERIFICATION: "email verification",
    TokenPurpose.PASSWORD_RESET: "password reset",
}


async def issue_mail_token(
    uow: UnitOfWork, deps: Deps, user: User, purpose: TokenPurpose, ttl: timedelta
) -> tuple[str, datetime]:
    """Store a new token for `user` (hash only); returns the raw token and its expiry."""
    secret = deps.tokens.new_secret()
    token = UserToken(
        id=deps.ids.new_id(),
        organization_id=user.organization_id,
        user_id=user.id,
        purpose=purpose,
        token_hash=hash_secret(secret),
        expires_at=deps.clock.now() + ttl,
    )
    await uow.add(token)
    return make_token(token.id.hex, secret), token.expires_at


async def consume_mail_token(
    uow: UnitOfWork, token: object, purpose: TokenPurpose, now: datetime
) -> User:
    """Mark a valid token used and return its user; anything else is InvalidToken."""
    label = LABELS[purpose]
    token_id_hex, secret = split_token(token, label, 2)
    stored = await uow.get(UserToken, parse_uuid(token_id_hex, label))
    if (
        stored is None
        or stored.purpose is not purpose
        or not stored.is_usable(now)
        or not secret_matches(secret, stored.token_hash)
    ):
        raise InvalidToken(label)
    user = await uow.get(User, stored.user_id)
    if user is None:
        raise InvalidToken(label)
    check_open(await uow.get(Organization, user.organization_id))
    stored.use(now)
    return user


async def void_mail_tokens(
    uow: UnitOfWork, user_id: UUID, now: datetime, *purposes: TokenPurpose
) -> None:
    """Mark the user's unused tokens of `purposes` (default: all) used: a new password ends
    the reset links, a new address every link mailed to the old one."""
    unused = Query.where(user_id=user_id, used_at=None)
    for token in (await uow.find(UserToken, unused)).items:
        if not purposes or token.purpose in purposes:
            token.use(now)
