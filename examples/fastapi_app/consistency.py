"""Read-your-writes across requests: edu-core's consistency token in the `Edu-Consistency`
header, both ways.

Each request runs in its own call chain (`edu_infra.consistency.read_your_writes`), started
from the token the client sent; a request whose chain holds a token (it committed, or was
given one) answers with it. A client that sends the last token it received back with its
next request never reads older data than it wrote, even when its reads are served by a read
replica. Without read replicas there is no token and the header is never set.

A malformed token is a 422 naming the header, in the service's error body. A well-formed token carries no
authority: a forged one can only make its own reads wait (at most
EDU_DATABASE_REPLICA_WAIT_MS) and go to the primary.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edu_domain import ValidationError
from edu_infra.consistency import ConsistencyToken, read_your_writes
from examples.fastapi_app.errors import error_response

HEADER = "Edu-Consistency"
_RAW = HEADER.lower().encode()


class ReadYourWritesHeader:
    """ASGI middleware: one call chain per request, its token in and out (`HEADER`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = [v for k, v in scope.get("headers", ()) if k == _RAW]
        try:
            token = ConsistencyToken.parse(sent[-1].decode("latin-1")) if sent else None
        except ValidationError as error:
            response = error_response(422, "validation", error.message, field=HEADER)
            await response(scope, receive, send)
            return
        with read_your_writes(token) as chain:

            async def with_token(message: Message) -> None:
                if message["type"] == "http.response.start" and chain.token is not None:
                    headers = [(k, v) for k, v in message.get("headers", []) if k != _RAW]
                    headers.append((_RAW, str(chain.token).encode()))
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, with_token)


__all__ = ["HEADER", "ReadYourWritesHeader"]
