"""Network faults on demand: a TCP proxy that can freeze, and a listener that never answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FreezableProxy:
    """Forwards 127.0.0.1:<port> to a target; `frozen` holds every byte (a hung network)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._thawed = asyncio.Event()
        self._thawed.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def frozen(self) -> bool:
        return not self._thawed.is_set()

    @frozen.setter
    def frozen(self, value: bool) -> None:
        if value:
            self._thawed.clear()
        else:
            self._thawed.set()

    def retarget(self, host: str, port: int) -> None:
        """Send new connections to another server and cut the current ones (a failover)."""
        self.target = (host, port)
        for writer in self._writers:
            with contextlib.suppress(OSError):
                writer.close()
        self._writers.clear()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await source.read(65_536):
                await self._thawed.wait()
                sink.write(data)
                await sink.drain()
        with contextlib.suppress(OSError):
            sink.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            with contextlib.suppress(OSError):
                writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)


@asynccontextmanager
async def freezable_proxy(host: str, port: int) -> AsyncIterator[FreezableProxy]:
    proxy = FreezableProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        proxy.frozen = False
        await proxy.close()


@asynccontextmanager
async def silent_listener() -> AsyncIterator[int]:
    """A port that accepts connections and never says a word (a black hole)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            with contextlib.suppress(OSError):
                writer.close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
