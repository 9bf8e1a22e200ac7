"""Secrets: argon2id hashes (bcrypt still accepted and upgraded), random single-use tokens
kept only as hashes and compared in constant time, a configurable lockout, and no password,
hash or token in any log line, repr or error message."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
import secrets as secrets_module
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import attrs
import bcrypt
import pytest
from dependency_injector import providers
from sqlalchemy import text

from edu_domain.errors import (
    AccountLocked,
    AuthenticationFailed,
    DomainError,
    InvalidToken,
    ValidationError,
)
from edu_domain.model import LoginSession, User
from edu_domain.model.events import EmailVerificationRequested, PasswordResetRequested
from edu_domain.model.session import UserToken
from edu_domain.services import EduCore, NewUser, Scope, tokens
from edu_infra.container import build_container, shutdown
from edu_infra.memory import FastHasher, ManualClock, RecordingNotifier
from edu_infra.security import Argon2PasswordHasher
from edu_infra.system import SecretTokenGenerator
from tests.reliability.conftest import STACKS, Stack

#: sqlalchemy at what echo=True shows (DEBUG would dump result rows); first, because
#: caplog.set_level also sets its handler's level, and the DEBUG loggers need it at DEBUG
LOGGERS = {
    "sqlalchemy": logging.INFO,
    "edu_domain": logging.DEBUG,
    "edu_infra": logging.DEBUG,
    "examples": logging.DEBUG,
}


def cheap_argon2() -> Argon2PasswordHasher:
    return Argon2PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@asynccontextmanager
async def real_secrets(name: str) -> AsyncIterator[Stack]:
    """A stack with the production hasher (cheap parameters) and token generator."""
    async with STACKS[name]() as stack:
        deps = attrs.evolve(stack.core.deps, hasher=cheap_argon2(), tokens=SecretTokenGenerator())
        stack.core = EduCore(deps)
        yield stack


def capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    for logger, level in LOGGERS.items():
        caplog.set_level(level, logger=logger)
    assert caplog.handler.level == logging.DEBUG


@attrs.define
class Secrets:
    """Everything that must never be seen: raw passwords, tokens, their secret parts, hashes."""

    raw: list[str] = attrs.field(factory=list)
    hashes: list[str] = attrs.field(factory=list)

    def token(self, token: str) -> str:
        self.raw.append(token)
        self.raw.append(token.rsplit(".", 1)[-1])
        return token

    def password(self, password: str) -> str:
        self.raw.append(password)
        return password

    def found_in(self, text: str) -> list[str]:
        return [s for s in [*self.raw, *self.hashes] if s in text]


class Exploding:
    """A subscriber that fails with the events in its message: logged with a traceback."""

    async def publish(self, events: Any) -> None:
        raise RuntimeError(f"cannot handle {events!r}")


def _mail_tokens(stack: Stack, kind: type[Any]) -> list[str]:
    return [e.token for e in stack.events.events if isinstance(e, kind)]


async def full_flow(stack: Stack, secrets: Secrets) -> list[str]:
    """Every secret-bearing use case, happy and unhappy; returns what the caller was shown
    (reprs and error messages) for inspection."""
    core = stack.core
    shown: list[str] = []
    stack.factory.publisher.subscribe(Exploding())  # type: ignore[attr-defined]

    def show(value: object) -> None:
        shown.extend([repr(value), str(value)])

    org, admin = await core.organizations.bootstrap(
        "Secret School",
        NewUser(
            email="admin@example.org",
            username="admin",
            password=secrets.password("admin-pass-Quetzal-1"),
        ),
    )
    show(admin)
    scope = Scope(org.id, admin.user.id)
    account = await core.users.register(
        scope,
        NewUser(
            email="kid@example.org",
            username="kid",
            password=secrets.password("kid-pass-Axolotl-2"),
        ),
    )
    show(account)
    (verify,) = _mail_tokens(stack, EmailVerificationRequested)
    secrets.token(verify)
    show(stack.events.events)
    show(await core.verification.verify_email(scope, verify))
    with pytest.raises(InvalidToken) as used:
        await core.verification.verify_email(scope, verify)  # single use
    show(used.value)

    login = await core.auth.authenticate(Scope.system(org.id), "kid", "kid-pass-Axolotl-2")
    secrets.token(login.token)
    show(login)
    show(await core.auth.resolve(login.token))
    with pytest.raises(AuthenticationFailed) as wrong:
        await core.auth.authenticate(
            Scope.system(org.id), "kid", secrets.password("not-it-Pangolin")
        )
    show(wrong.value)
    with pytest.raises(InvalidToken) as forged:
        await core.auth.resolve(login.token[:-1] + ("A" if login.token[-1] != "A" else "B"))
    show(forged.value)

    await core.auth.request_password_reset(Scope.system(org.id), "kid@example.org")
    (reset,) = _mail_tokens(stack, PasswordResetRequested)
    secrets.token(reset)
    await core.auth.reset_password(
        Scope.system(org.id), reset, secrets.password("reset-pass-Narwhal-3")
    )
    with pytest.raises(InvalidToken) as revoked:
        await core.auth.resolve(login.token)  # the reset revoked every session
    show(revoked.value)
    with pytest.raises(InvalidToken) as reused:
        await core.auth.reset_password(Scope.system(org.id), reset, "another-pass-Ibis-9")
    show(reused.value)

    second = await core.auth.authenticate(
        Scope.system(org.id), "kid@example.org", "reset-pass-Narwhal-3"
    )
    secrets.token(second.token)
    assert await core.auth.logout(second.token) is True
    with pytest.raises(InvalidToken):
        await core.auth.resolve(second.token)
    await core.auth.change_password(
        Scope(org.id, account.user.id),
        account.user.id,
        "reset-pass-Narwhal-3",
        secrets.password("changed-pass-Okapi-4"),
    )
    with pytest.raises(ValidationError) as too_long:
        await core.users.register(
            scope,
            NewUser(
                email="long@example.org",
                username="long",
                password=secrets.password("Marmoset-" * 40),
            ),
        )
    show(too_long.value)
    with pytest.raises(ValidationError) as with_nul:
        await core.auth.change_password(
            Scope(org.id, account.user.id),
            account.user.id,
            "changed-pass-Okapi-4",
            secrets.password("nul\x00-Wombat-5"),
        )
    show(with_nul.value)
    show(stack.notifier.sent)
    return shown


async def stored_hashes(stack: Stack) -> list[str]:
    """Every stored password hash and token hash."""
    if stack.store is not None:
        rows = stack.store.rows
        hashes = [r["hashed_password"] for r in rows(User).values()]
        for cls in (LoginSession, UserToken):
            hashes += [r["token_hash"] for r in rows(cls).values()]
        return hashes
    async with stack.factory.unscoped() as uow:
        session = uow.session  # type: ignore[attr-defined]
        hashes = [r[0] for r in await session.execute(text("SELECT hashed_password FROM users"))]
        for table in ("login_sessions", "user_tokens"):
            hashes += [r[0] for r in await session.execute(text(f"SELECT token_hash FROM {table}"))]
        return hashes


@pytest.mark.parametrize("name", ["memory", "sqlite"])
async def test_no_secret_is_stored_logged_shown_or_echoed(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    capture_logs(caplog)
    secrets = Secrets()
    async with real_secrets(name) as stack:
        shown = await full_flow(stack, secrets)
        rows = repr(await stack.snapshot())
        secrets.hashes = await stored_hashes(stack)
    assert len(secrets.hashes) >= 6
    assert secrets.found_in(rows) == [] or set(secrets.found_in(rows)) <= set(secrets.hashes)
    assert [s for s in secrets.raw if s in rows] == [], "raw secrets stored"
    assert secrets.found_in(caplog.text) == [], "secrets in the logs"
    assert secrets.found_in("\n".join(shown)) == [], "secrets in reprs or error messages"
    assert caplog.records, "the flows logged something (the capture works)"
    assert any(r.exc_info for r in caplog.records), "a failing subscriber's traceback was logged"


async def test_tokens_are_stored_as_sha256_of_a_256_bit_secret_from_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[str] = []
    real = secrets_module.token_urlsafe

    def recording(nbytes: int | None = None) -> str:
        value = str(real(nbytes))
        drawn.append(value)
        return value

    monkeypatch.setattr("edu_infra.system.secrets.token_urlsafe", recording)
    generator = SecretTokenGenerator()
    many = {generator.new_secret() for _ in range(2_000)}
    assert len(many) == 2_000 and len(drawn) == 2_000
    assert min(len(s) for s in many) >= 43  # 32 bytes, URL-safe base64
    async with real_secrets("memory") as stack:
        drawn.clear()
        await full_flow(stack, Secrets())
        hashes = await stored_hashes(stack)
    token_hashes = [h for h in hashes if not h.startswith("$")]
    assert {hashlib.sha256(s.encode()).hexdigest() for s in drawn} == set(token_hashes)


async def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("edu_domain.services.tokens.hmac.compare_digest", recording)
    async with real_secrets("memory") as stack:
        await full_flow(stack, Secrets())
    assert len(compared) >= 5  # verify, resolve (x4), reset (x2), logout
    source = inspect.getsource(tokens)
    assert "hmac.compare_digest(hash_secret(secret), stored_hash)" in source
    services = "\n".join(
        inspect.getsource(m)
        for m in (
            __import__("edu_domain.services.auth", fromlist=["x"]),
            __import__("edu_domain.services.verification", fromlist=["x"]),
        )
    )
    assert "token_hash ==" not in services and "== stored.token_hash" not in services


def _bcrypt(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


async def test_passwords_are_argon2id_and_bcrypt_hashes_verify_and_are_upgraded() -> None:
    hasher = cheap_argon2()
    fresh = hasher.hash("some password")
    assert fresh.startswith("$argon2id$") and hasher.verify("some password", fresh)
    assert not hasher.needs_rehash(fresh)
    assert Argon2PasswordHasher(time_cost=2, memory_cost=8, parallelism=1).needs_rehash(fresh)
    assert hasher.verify("x", "not a hash") is False and hasher.verify("x", "") is False
    async with real_secrets("memory") as stack:
        org = await stack.org()
        legacy = _bcrypt("legacy password 1")
        assert hasher.verify("legacy password 1", legacy) and hasher.needs_rehash(legacy)
        account = await stack.core.users.register(
            Scope.system(org.id),
            NewUser(
                email="old@example.org",
                username="old",
                hashed_password=legacy,
                status="active",
                email_verified=True,
            ),
        )
        with pytest.raises(AuthenticationFailed):
            await stack.core.auth.authenticate(Scope.system(org.id), "old", "wrong password 1")
        async with stack.factory(tenant=org.id) as uow:
            assert (await uow.require(User, account.user.id)).hashed_password == legacy
        await stack.core.auth.authenticate(Scope.system(org.id), "old", "legacy password 1")
        async with stack.factory(tenant=org.id) as uow:
            upgraded = (await uow.require(User, account.user.id)).hashed_password
        assert upgraded.startswith("$argon2id$") and not hasher.needs_rehash(upgraded)
        await stack.core.auth.authenticate(
            Scope.system(org.id), "old@example.org", "legacy password 1"
        )


async def test_lockout_follows_the_container_settings() -> None:
    container = build_container(
        {
            "EDU_DATABASE_URL": "memory://",
            "EDU_LOCKOUT_MAX_FAILURES": "3",
            "EDU_LOCKOUT_SECONDS": "120",
        }
    )
    clock = ManualClock()
    container.clock.override(providers.Object(clock))
    container.hasher.override(providers.Object(FastHasher()))
    container.notifier.override(providers.Object(RecordingNotifier()))
    try:
        core: EduCore = container.core()
        org, _ = await core.organizations.bootstrap(
            "Locks", NewUser(email="a@example.org", username="admin", password="right password")
        )
        scope = Scope.system(org.id)
        for _ in range(2):
            with pytest.raises(AuthenticationFailed):
                await core.auth.authenticate(scope, "admin", "wrong password")
        with pytest.raises(AccountLocked) as locked:
            await core.auth.authenticate(scope, "admin", "wrong password")
        assert locked.value.until == clock.now() + timedelta(seconds=120)
        with pytest.raises(AccountLocked):
            await core.auth.authenticate(scope, "admin", "right password")
        clock.advance(seconds=119)
        with pytest.raises(AccountLocked):
            await core.auth.authenticate(scope, "admin", "right password")
        clock.advance(seconds=2)
        assert (await core.auth.authenticate(scope, "admin", "right password")).token
    finally:
        await shutdown(container)


def test_every_error_a_flow_raises_is_a_domain_error() -> None:
    for error in (AccountLocked, AuthenticationFailed, InvalidToken, ValidationError):
        assert issubclass(error, DomainError)


_: Callable[..., Any] = full_flow
