"""The outbox relay: delivers committed events at least once, retries, dead-letters.

Two ways in. When a unit of work that committed closes, it hands the relay the keys it
wrote (`deliver_committed`, on the committing tenant's own rows): the mail goes out before
the use case returns, as it did before the outbox. The loop (`start`, or `edu relay` as a
worker of its own) claims whatever else is due: deliveries that failed and wait for
their retry, and events whose process died between the commit and the delivery.

Every claim leases the rows to this relay and counts an attempt; a delivery that fails
(or takes longer than half the lease) is retried after an exponential backoff with
jitter; after `max_attempts` it is dead-lettered with its last error. Rows whose event
cannot be decoded, or that name another organization than their own, are dead-lettered
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from attrs import field, frozen

from edu_domain.errors import DomainError, ValidationError
from edu_domain.ports import Clock, Envelope, EnvelopePublisher, EventPublisher
from edu_infra.outbox.codec import UndeliverableEvent, decode_event
from edu_infra.outbox.seal import Sealer
from edu_infra.outbox.store import ClaimedEvent, Failure, OutboxStore

log = logging.getLogger("edu_infra.outbox")
_ERROR_MAX = 300


def _positive(_instance: object, attribute: object, value: float) -> None:
    if not value > 0:
        raise ValidationError(getattr(attribute, "name", "outbox"), "must be positive")


@frozen(kw_only=True)
class RelaySettings:
    """How the relay delivers (the `EDU_OUTBOX_*` settings).

    `inline`: deliver right after each commit (else only the loop delivers, woken by the
    commit when it runs in the same process). `lease`: how long a claim holds a row;
    a delivery is cut off after half of it.
    """

    inline: bool = True
    batch_size: int = field(default=20, validator=_positive)
    poll_interval: float = field(default=1.0, validator=_positive)
    lease: timedelta = field(default=timedelta(seconds=120))
    max_attempts: int = field(default=10, validator=_positive)
    backoff: float = field(default=2.0, validator=_positive)
    backoff_max: float = field(default=600.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.lease <= timedelta(0):
            raise ValidationError("lease", "must be positive")

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential in the attempts made, capped, with jitter (half to all of it)."""
        base = min(self.backoff_max, self.backoff * 2 ** min(attempts - 1, 32))
        return timedelta(seconds=base * (0.5 + random.random() / 2))  # noqa: S311


def _describe(error: BaseException) -> str:
    """A failure in one line for the row: a domain error's own words (adapters write them
    to be shown, without secrets), else the type only (a message may quote anything)."""
    if isinstance(error, TimeoutError):
        return "TimeoutError: the delivery took longer than half the lease"
    if isinstance(error, (DomainError, UndeliverableEvent)):
        text = str(error).strip().splitlines()
        line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
        return line[:_ERROR_MAX]
    return type(error).__name__


class OutboxRelay:
    """Delivers an adapter's outbox rows to a publisher. One per process is enough.

    `sealer`: the one the rows' secret fields were sealed with (`edu_infra.outbox.seal`).
    """

    def __init__(
        self,
        store: OutboxStore,
        publisher: EventPublisher,
        *,
        clock: Clock,
        settings: RelaySettings | None = None,
        owner: str | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        self.sealer = sealer
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.settings = settings or RelaySettings()
        self.owner = owner or f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False

    # ------------------------------------------------------------------ delivering

    async def deliver_committed(self, keys: Sequence[UUID], tenant: UUID | None) -> None:
        """Deliver the rows a commit just wrote; never raises (the loop retries them)."""
        try:
            await self._round(keys=list(keys), tenant=tenant, limit=len(keys))
        except Exception:
            log.warning("delivering committed events failed; the relay retries them", exc_info=True)

    async def run_once(self) -> int:
        """Claim and deliver one batch of due rows (all organizations); how many it held."""
        return await self._round(keys=None, tenant=None, limit=self.settings.batch_size)

    async def drain(self, *, rounds: int = 1_000) -> int:
        """Deliver until nothing is due (or `rounds` batches); how many rows were handled."""
        handled = 0
        for _ in range(rounds):
            done = await self.run_once()
            handled += done
            if done == 0:
                break
        return handled

    async def _round(self, *, keys: list[UUID] | None, tenant: UUID | None, limit: int) -> int:
        settings = self.settings
        claimed = await self.store.claim(
            owner=self.owner,
            now=self.clock.now(),
            lease=settings.lease,
            limit=limit,
            keys=keys,
            tenant=tenant,
        )
        if not claimed:
            return 0
        delivered: list[ClaimedEvent] = []
        failed: list[Failure] = []
        for message in claimed:
            error = await self._deliver(message)
            if error is None:
                delivered.append(message)
            else:
                failed.append(self._failure(message, error))
        await self.store.settle(owner=self.owner, delivered=delivered, failed=failed, tenant=tenant)
        return len(claimed)

    async def _deliver(self, message: ClaimedEvent) -> BaseException | None:
        try:
            event = decode_event(
                message.kind,
                message.payload,
                message.organization_id,
                sealer=self.sealer,
                place=f"{message.key}:{message.organization_id}",
            )
            envelope = Envelope(
                key=message.key,
                organization_id=message.organization_id,
                event=event,
                attempt=message.attempts,
            )
            timeout = self.settings.lease.total_seconds() / 2
            async with asyncio.timeout(timeout):
                if isinstance(self.publisher, EnvelopePublisher):
                    await self.publisher.deliver(envelope)
                else:
                    await self.publisher.publish([event])
        except Exception as error:
            return error
        return None

    def _failure(self, message: ClaimedEvent, error: BaseException) -> Failure:
        """The row's next state; one log line (a traceback only for an unexpected error:
        a domain error's message is written to be shown, without secrets)."""
        described = _describe(error)
        trace = not isinstance(error, (DomainError, UndeliverableEvent, TimeoutError))
        final = isinstance(error, UndeliverableEvent) and error.final
        if final or message.attempts >= self.settings.max_attempts:
            log.error(
                "outbox event %s (%s) is dead-lettered after attempt %d: %s",
                message.key,
                message.kind,
                message.attempts,
                described,
                exc_info=error if trace else None,
            )
            return Failure(
                key=message.key,
                organization_id=message.organization_id,
                error=described,
                retry_at=None,
            )
        retry_at = self.clock.now() + self.settings.retry_delay(message.attempts)
        log.warning(
            "outbox event %s (%s) attempt %d failed: %s; it waits in the outbox until %s",
            message.key,
            message.kind,
            message.attempts,
            described,
            retry_at.isoformat(),
            exc_info=error if trace else None,
        )
        return Failure(
            key=message.key,
            organization_id=message.organization_id,
            error=described,
            retry_at=retry_at,
        )

    # ------------------------------------------------------------------ the loop

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Run the loop in the background (in the running event loop) until `stop`."""
        if self.running:
            return
        self._stopping = False
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self.run(), name="edu-outbox-relay")

    def wake(self) -> None:
        """Look for due rows now instead of at the next poll (a commit wrote some)."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self, *, grace: float = 5.0) -> None:
        """Stop the loop: the batch in hand gets `grace` seconds, then it is cancelled
        (its rows are delivered again once their lease expires)."""
        task, self._task = self._task, None
        self._stopping = True
        self.wake()
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        """Deliver due rows until stopped; database outages are waited out, not raised."""
        if self._wake is None:
            self._wake = asyncio.Event()
        errors = 0
        while not self._stopping:
            try:
                handled = await self.run_once()
                errors = 0
            except Exception as error:
                errors += 1
                handled = 0
                log.warning("the outbox relay cannot reach the outbox: %s", _describe(error))
            if handled < self.settings.batch_size:
                await self._idle(self.settings.poll_interval * min(2**errors, 30))

    async def _idle(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()


__all__ = ["OutboxRelay", "RelaySettings"]
