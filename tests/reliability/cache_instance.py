"""One application instance in its own OS process, driven over stdin/stdout (JSON lines).

Run as `python -m tests.reliability.cache_instance` with the instance's EDU_* variables in
the environment. It builds the production container (as a deployed app would), prints
`{"ready": true}`, then answers one request per line:

    {"op": "get", "org": <uuid>, "user": <uuid>}                  -> {"name": <full name>}
    {"op": "rename", "org": <uuid>, "user": <uuid>, "name": <s>}  -> {"name": <full name>}
    {"op": "pending"}                  -> {"pending": <invalidations not yet delivered>}
    {"op": "stop"}                     -> {"stopped": true}, then the process exits

A request that raises answers {"error": "<type>: <message>"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from uuid import UUID

from edu_domain.services import EduCore, Scope
from edu_infra.caching import ReadThroughCache
from edu_infra.container import Container, build_container, shutdown


async def _answer(container: Container, request: dict[str, Any]) -> dict[str, Any]:
    core: EduCore = container.core()
    op = request["op"]
    if op == "pending":
        reads = container.reads()
        assert isinstance(reads, ReadThroughCache)
        return {"pending": reads.pending_invalidations}
    scope = Scope.system(UUID(request["org"]))
    user = UUID(request["user"])
    if op == "get":
        return {"name": (await core.users.get(scope, user)).full_name}
    if op == "rename":
        changed = await core.users.update(scope, user, {"full_name": request["name"]})
        return {"name": changed.full_name}
    raise ValueError(f"unknown op {op!r}")


async def serve() -> None:
    container = build_container()  # from the EDU_* environment, as a deployment would
    container.core()  # build everything before saying ready
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    say({"ready": True})
    try:
        while line := await reader.readline():
            request = json.loads(line)
            if request["op"] == "stop":
                break
            try:
                say(await _answer(container, request))
            except Exception as error:  # reported to the test, which fails on it
                say({"error": f"{type(error).__name__}: {error}"})
    finally:
        await shutdown(container)
    say({"stopped": True})


if __name__ == "__main__":
    asyncio.run(serve())
