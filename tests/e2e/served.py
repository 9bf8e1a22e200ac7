"""The example app served over real HTTP (uvicorn on a free 127.0.0.1 port, in a thread), for
clients that are other processes: schemathesis and a headless browser.

The served organizations: `demo-school` exactly as the docs' examples name it (so "Try it out"
works as a visitor would use it) and `fuzzville` for the fuzzer. A fuzzer signed in as one
account soon renames, re-mails, demotes or suspends it, and then cannot sign in again; so
`POST /_test/fuzz-token` (served here only, not in the schema) makes a fresh verified
administrator of fuzzville and answers a session token of theirs.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from attrs import frozen
from fastapi import Request

from edu_domain.model import UserRole
from edu_domain.services import EduCore, NewUser, Scope
from examples.fastapi_app import Settings, create_app
from tests.e2e.stack import BOOTSTRAP_KEY, MAX_BODY_BYTES, CoreFactory

DEMO_ORG, DEMO_LOGIN, DEMO_PASSWORD = "demo-school", "admin", "correct horse battery"
FUZZ_ORG, FUZZ_LOGIN, FUZZ_PASSWORD = "fuzzville", "fuzz-admin", "fuzzing is believing 42"
FUZZ_TOKEN_PATH = "/_test/fuzz-token"
_fuzzers = itertools.count(1)


@frozen
class Served:
    base_url: str
    bootstrap_key: str = BOOTSTRAP_KEY


async def _fuzz_token(request: Request) -> dict[str, str]:
    core: EduCore = request.app.state.core
    org = await core.organizations.get_by_slug(FUZZ_ORG)
    username = f"fuzzer-{next(_fuzzers)}"
    await core.users.register(
        Scope.system(org.id),
        NewUser(
            email=f"{username}@{FUZZ_ORG}.example.org",
            username=username,
            password=FUZZ_PASSWORD,
            role=UserRole.ADMIN,
            email_verified=True,
        ),
    )
    result = await core.auth.authenticate(Scope.system(org.id), username, FUZZ_PASSWORD)
    return {"token": result.token}


async def _seed(core: EduCore) -> None:
    for org, login, password in (
        (DEMO_ORG, DEMO_LOGIN, DEMO_PASSWORD),
        (FUZZ_ORG, FUZZ_LOGIN, FUZZ_PASSWORD),
    ):
        await core.organizations.bootstrap(
            org.replace("-", " ").title(),
            NewUser(email=f"{login}@{org}.example.org", username=login, password=password),
            slug=org,
        )


@contextmanager
def serve(core_factory: CoreFactory) -> Iterator[Served]:
    """The app over a fresh core from `core_factory`, seeded, until the block ends."""

    @asynccontextmanager
    async def core() -> AsyncIterator[EduCore]:
        async with core_factory() as parts:
            yield parts.core

    app = create_app(
        core_factory=core,
        settings=Settings(bootstrap_key=BOOTSTRAP_KEY, max_body_bytes=MAX_BODY_BYTES),
        on_startup=[_seed],
    )
    app.add_api_route(FUZZ_TOKEN_PATH, _fuzz_token, methods=["POST"], include_in_schema=False)
    # uvicorn binds the port itself: a socket handed to it misses TCP_NODELAY, and every
    # answer on a kept-alive connection then waits 40 ms for a delayed ACK.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the example app did not start")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
