"""Single flight: concurrent misses of one key in this process run one load, not one each.

`ReadThroughCache` runs every load through `Flights.run`. A flight is keyed by its key and
a local epoch that every invalidation bumps, so a read that starts after an invalidation
never joins a load that started before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["Flights", "LeaderCancelled"]

T = TypeVar("T")

_STRAGGLER_WINDOW = 1.0  # seconds


class LeaderCancelled(Exception):
    """The load a caller was waiting for was cancelled (not the caller itself)."""


class Flights:
    """The loads running in this process, and the keys whose load stored a value lately."""

    def __init__(self) -> None:
        self._flights: dict[tuple[str, int], asyncio.Future[Any]] = {}
        self._landed: dict[tuple[str, int], float] = {}
        self._epoch = 0

    def bump(self) -> None:
        """An invalidation happened: later reads must not join the loads running now."""
        self._epoch += 1

    async def run(
        self,
        flight_key: str,
        lead: Callable[[bool], Awaitable[tuple[T, Any]]],
        follow: Callable[[Any], Awaitable[T]],
        *,
        lands: bool,
    ) -> T:
        """Run `lead` once for concurrent callers of one key; the others get `follow(data)`.

        `lead(landed_lately)` loads and returns (value, data); `landed_lately` says that a
        load of this key stored its value moments ago. Joiners get the leader's data, or its
        exception; `LeaderCancelled` if the leader was cancelled. `lands`: a successful
        load stored its value (so stragglers are told to look in the cache again).
        """
        token = (flight_key, self._epoch)
        flight = self._flights.get(token)
        if flight is not None:
            try:
                data = await asyncio.shield(flight)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if flight.cancelled() and not (current and current.cancelling()):
                    raise LeaderCancelled from None
                raise
            return await follow(data)

        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._flights[token] = future
        try:
            value, data = await lead(self._landed_lately(token))
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        except BaseException:  # cancelled (or the process is stopping): waiters look again
            future.cancel()
            raise
        else:
            future.set_result(data)
            if lands:
                self._land(token)
            return value
        finally:
            if self._flights.get(token) is future:
                del self._flights[token]

    def _landed_lately(self, token: tuple[str, int]) -> bool:
        landed = self._landed.get(token)
        return landed is not None and time.monotonic() - landed < _STRAGGLER_WINDOW

    def _land(self, token: tuple[str, int]) -> None:
        """Remember that a load of `token` just stored its value, for stragglers.

        A caller that missed just before the store but looked for the flight just after it
        ended would load again; it checks the cache once more instead.
        """
        now = time.monotonic()
        if len(self._landed) >= 1024:
            self._landed = {t: at for t, at in self._landed.items() if now - at < _STRAGGLER_WINDOW}
        self._landed[token] = now
