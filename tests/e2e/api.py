"""A thin test client: the HTTP calls the flows repeat, with the mails they trigger."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
from attrs import define
from fastapi import FastAPI

from edu_domain.services import EduCore
from edu_infra.memory import ManualClock, RecordingNotifier
from tests.e2e.stack import BOOTSTRAP_KEY, CoreFactory, app_under_test

PASSWORD = "correct horse battery"
_serial = itertools.count(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@define
class Member:
    """A signed-in user of one organization, as a client sees them."""

    org_slug: str
    id: UUID
    username: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


@define
class Api:
    client: httpx.AsyncClient
    app: FastAPI
    core: EduCore
    notifier: RecordingNotifier
    clock: ManualClock

    async def bootstrap(self, slug: str | None = None) -> Member:
        """A new organization and its administrator, signed in."""
        slug = slug or f"school-{next(_serial)}"
        response = await self.client.post(
            "/organizations",
            headers={"X-Bootstrap-Key": BOOTSTRAP_KEY},
            json={
                "name": slug.title(),
                "slug": slug,
                "admin": {
                    "email": f"admin@{slug}.example.org",
                    "username": "admin",
                    "password": PASSWORD,
                    "full_name": "The Admin",
                },
            },
        )
        assert response.status_code == 201, response.text
        admin = response.json()["admin"]["user"]
        token = await self.login(slug, "admin")
        return Member(slug, UUID(admin["id"]), "admin", admin["email"], token)

    async def login(
        self, org_slug: str, login: str, password: str = PASSWORD, **headers: str
    ) -> str:
        response = await self.client.post(
            "/auth/login",
            json={"organization": org_slug, "login": login, "password": password},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def register(self, admin: Member, username: str, role: str = "student") -> dict[str, Any]:
        """A user registered by `admin` (not yet verified); returns the user JSON."""
        response = await self.client.post(
            "/users",
            headers=admin.auth,
            json={
                "email": f"{username}@{admin.org_slug}.example.org",
                "username": username,
                "password": PASSWORD,
                "full_name": username.title(),
                "role": role,
            },
        )
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()["user"]
        return user

    async def verify_by_mail(self, org_slug: str, email: str) -> httpx.Response:
        token = self.notifier.last("verify", email).token
        return await self.client.post(
            "/auth/verify-email", json={"organization": org_slug, "token": token}
        )

    async def member(self, admin: Member, username: str, role: str = "student") -> Member:
        """A registered, mail-verified and signed-in user of `admin`'s organization."""
        user = await self.register(admin, username, role)
        assert (await self.verify_by_mail(admin.org_slug, user["email"])).status_code == 204
        token = await self.login(admin.org_slug, username)
        return Member(admin.org_slug, UUID(user["id"]), username, user["email"], token)

    async def draft(self, author: Member, title: str, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/content", headers=author.auth, json={"title": title, "body": "Text.", **fields}
        )
        assert response.status_code == 201, response.text
        content: dict[str, Any] = response.json()
        return content


@asynccontextmanager
async def running_api(core_factory: CoreFactory) -> AsyncIterator[Api]:
    async with app_under_test(core_factory) as (app, core, notifier, clock):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edu.test") as client:
            yield Api(client, app, core, notifier, clock)
