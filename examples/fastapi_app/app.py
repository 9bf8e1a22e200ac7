"""The app factory: `create_app()` wires routes, error handlers and the core's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI

from edu_domain.services import EduCore
from examples.fastapi_app.consistency import ReadYourWritesHeader
from examples.fastapi_app.docs import install_docs
from examples.fastapi_app.errors import install_error_handlers, too_large
from examples.fastapi_app.guards import BodyLimit, HeadAsGet, reject_unknown_query_parameters
from examples.fastapi_app.openapi import install_openapi
from examples.fastapi_app.routes import auth, content, health, organizations, users
from examples.fastapi_app.settings import Settings
from examples.fastapi_app.wiring import default_core

log = logging.getLogger("examples.fastapi_app")

#: Runs with the started core: at start-up (e.g. seed data) or at shutdown (e.g. flush).
Hook = Callable[[EduCore], Awaitable[None]]
CoreFactory = Callable[[], AbstractAsyncContextManager[EduCore]]

DESCRIPTION = """
An example service embedding **edu-core**.

Sign in with `POST /auth/login` and send the returned token as
`Authorization: Bearer <token>`. The organization and the acting user of every request come
from that token only. Organizations are created by operators with `POST /organizations`
and the `X-Bootstrap-Key` header (env `EDU_BOOTSTRAP_KEY`).

Every error, the framework's own included, has one shape:
`{"error": code, "message": text, "field": name-or-absent}`. Query parameters a route does not
declare are refused (422), as are unknown body fields.

To try it here: **Authorize** with the `token` of `POST /auth/login`, then "Try it out".
"""

TAGS = [
    {"name": "organizations", "description": "Bootstrap (operators) and statistics."},
    {"name": "auth", "description": "Sign in and out, sessions, passwords, mail tokens."},
    {"name": "users", "description": "Users of the caller's organization."},
    {"name": "content", "description": "Educational content: draft, publish, archive, search."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(
    core: EduCore | None = None,
    *,
    core_factory: CoreFactory = default_core,
    settings: Settings | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
) -> FastAPI:
    """A FastAPI app over `core`, or over the one `core_factory` builds at start-up.

    Nothing is opened here: a given core is used as is (its owner closes it); otherwise the
    lifespan enters `core_factory()` and leaves it at shutdown, after the shutdown hooks.
    """
    settings = settings if settings is not None else Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            started = core if core is not None else await stack.enter_async_context(core_factory())
            app.state.core = started
            stack.callback(_forget_core, app)
            for hook in reversed(on_shutdown):
                stack.push_async_callback(hook, started)
            for hook in on_startup:
                await hook(started)
            if settings.uses_example_bootstrap_key:
                log.warning("EDU_BOOTSTRAP_KEY is not set: using the example key (local use only)")
            yield

    app = FastAPI(
        title="edu-core example service",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query_parameters)],
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, too_large=too_large)
    app.add_middleware(HeadAsGet)
    app.add_middleware(ReadYourWritesHeader)  # outermost: the whole request is one chain
    install_error_handlers(app)
    install_docs(app)
    install_openapi(app)
    for module in (organizations, auth, users, content, health):
        app.include_router(module.router)
    return app


def _forget_core(app: FastAPI) -> None:
    app.state.core = None
