"""The FastAPI example keeps secrets out of its logs, its request models' reprs and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from edu_domain.model.events import EmailVerificationRequested, PasswordResetRequested
from edu_domain.services import Deps, EduCore, EventDispatcher
from edu_infra.memory import (
    FastHasher,
    InMemoryUnitOfWorkFactory,
    ManualClock,
    RecordingPublisher,
)
from edu_infra.system import SecretTokenGenerator, Uuid7Generator
from examples.fastapi_app import Settings, create_app
from examples.fastapi_app.wiring import LoggingNotifier
from tests.reliability.test_secrets import capture_logs

KEY = "reliability-bootstrap-key"
ADMIN_PASSWORD = "admin-pass-Capybara-1"
KID_PASSWORD = "kid-pass-Tapir-2"
NEW_PASSWORD = "new-pass-Quokka-3"


@pytest.fixture
async def app_parts() -> AsyncIterator[tuple[httpx.AsyncClient, RecordingPublisher]]:
    events = RecordingPublisher()
    clock = ManualClock()
    factory = InMemoryUnitOfWorkFactory(
        clock=clock, publisher=EventDispatcher(LoggingNotifier(), [events])
    )
    core = EduCore(
        Deps(
            uow=factory,
            clock=clock,
            ids=Uuid7Generator(),
            tokens=SecretTokenGenerator(),
            hasher=FastHasher(),
        )
    )
    app = create_app(core, settings=Settings(bootstrap_key=KEY))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edu.test") as client:
            yield client, events


async def test_the_example_app_never_logs_or_echoes_a_secret(
    app_parts: tuple[httpx.AsyncClient, RecordingPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: the example's dev notifier logged every mail token at DEBUG."""
    capture_logs(caplog)
    client, events = app_parts
    raw: list[str] = [ADMIN_PASSWORD, KID_PASSWORD, NEW_PASSWORD]
    bodies: list[str] = []

    async def call(method: str, url: str, **kwargs: object) -> httpx.Response:
        response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            bodies.append(response.text)
        return response

    admin = {"email": "admin@s.example.org", "username": "admin", "password": ADMIN_PASSWORD}
    created = await call(
        "POST",
        "/organizations",
        headers={"X-Bootstrap-Key": KEY},
        json={"name": "S", "slug": "s", "admin": admin},
    )
    assert created.status_code == 201
    login = {"organization": "s", "login": "admin", "password": ADMIN_PASSWORD}
    admin_token = (await call("POST", "/auth/login", json=login)).json()["token"]
    raw += [admin_token, admin_token.rsplit(".", 1)[-1]]
    auth = {"Authorization": f"Bearer {admin_token}"}
    kid = {"email": "kid@s.example.org", "username": "kid", "password": KID_PASSWORD}
    assert (await call("POST", "/users", headers=auth, json=kid)).status_code == 201
    (verify,) = [e.token for e in events.events if isinstance(e, EmailVerificationRequested)]
    raw += [verify, verify.rsplit(".", 1)[-1]]
    token_body = {"organization": "s", "token": verify}
    assert (await call("POST", "/auth/verify-email", json=token_body)).status_code == 204
    assert (await call("POST", "/auth/verify-email", json=token_body)).status_code == 400
    bad_login = {"organization": "s", "login": "kid", "password": KID_PASSWORD + "x"}
    assert (await call("POST", "/auth/login", json=bad_login)).status_code == 401
    reset_request = {"organization": "s", "email": "kid@s.example.org"}
    assert (await call("POST", "/auth/password-reset/request", json=reset_request)).status_code
    (reset,) = [e.token for e in events.events if isinstance(e, PasswordResetRequested)]
    raw += [reset, reset.rsplit(".", 1)[-1]]
    confirm = {"organization": "s", "token": reset, "new_password": NEW_PASSWORD}
    assert (await call("POST", "/auth/password-reset/confirm", json=confirm)).status_code == 204
    assert (await call("POST", "/auth/password-reset/confirm", json=confirm)).status_code == 400
    too_long = {**kid, "username": "kid2", "email": "k2@s.example.org", "password": "Yak!" * 100}
    raw.append(too_long["password"])
    assert (await call("POST", "/users", headers=auth, json=too_long)).status_code == 422
    wrong_type = {**kid, "username": "kid3", "password": ["Ocelot-secret"]}
    raw.append("Ocelot-secret")
    assert (await call("POST", "/users", headers=auth, json=wrong_type)).status_code == 422
    assert any(r.name.startswith("examples") for r in caplog.records), "the mails were logged"
    assert [s for s in raw if s in caplog.text] == [], "secrets in the logs"
    assert [s for s in raw if s in "\n".join(bodies)] == [], "secrets echoed in error bodies"


async def test_the_dev_notifier_reveals_mail_tokens_only_when_asked_to(
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_logs(caplog)
    when = ManualClock().now()
    await LoggingNotifier().send_password_reset("a@example.org", "id.Secret-Tok", when)
    assert "Secret-Tok" not in caplog.text and "a@example.org" in caplog.text
    await LoggingNotifier(reveal_tokens=True).send_password_reset("a@example.org", "id.Tok2", when)
    assert "DEVELOPMENT ONLY" in caplog.text and "id.Tok2" in caplog.text
