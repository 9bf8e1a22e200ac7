"""Password hashing runs off the event loop, and sign-in timing does not tell who exists.

Both are bounded-latency / timing tests that issue 14 asks for, so they measure wall-clock
time, with generous bounds: argon2id is configured at 16 MiB (about 25 ms a verify on the
CI machine) so the runs stay short. Each test also measures the effect it guards against
(a hasher that blocks the loop; an unknown login that skips the verify) and requires that it
would fail the same bound, so the test can fail. The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable
from uuid import uuid4

import pytest

from edu_domain import AuthenticationFailed
from edu_domain.services import Deps, EduCore, NewUser, Scope, SecurityPolicy
from edu_infra.memory import InMemoryUnitOfWorkFactory
from edu_infra.memory.fakes import ManualClock, SequentialTokens
from edu_infra.security import Argon2PasswordHasher
from edu_infra.system import Uuid7Generator

PASSWORD = "correct horse battery"
#: The bound on how late a 5 ms timer may fire while logins hash (generous: about 8 hashes).
MAX_LATENESS = 0.200
BURST = 32

pytestmark = pytest.mark.slow


class BlockingHasher:
    """The same argon2id, called on the event loop (what edu-core did before)."""

    def __init__(self, inner: Argon2PasswordHasher) -> None:
        self._inner = inner

    def hash(self, password: str) -> str:
        return self._inner.hash(password)

    def verify(self, password: str, hashed: str) -> bool:
        return self._inner.verify(password, hashed)

    def needs_rehash(self, hashed: str) -> bool:
        return self._inner.needs_rehash(hashed)


def _argon2() -> Argon2PasswordHasher:
    return Argon2PasswordHasher(time_cost=2, memory_cost=16_384, parallelism=1, max_threads=2)


async def _core(hasher: object) -> tuple[EduCore, Scope]:
    core = EduCore(
        Deps(
            uow=InMemoryUnitOfWorkFactory(),
            clock=ManualClock(),
            ids=Uuid7Generator(),
            tokens=SequentialTokens(),
            hasher=hasher,  # type: ignore[arg-type]
            policy=SecurityPolicy(max_failed_logins=10_000),
        )
    )
    org, _ = await core.organizations.bootstrap(
        "Timing School", NewUser(email="known@example.org", username="known", password=PASSWORD)
    )
    return core, Scope.system(org.id)


async def _wrong_password(core: EduCore, scope: Scope) -> None:
    with pytest.raises(AuthenticationFailed):
        await core.auth.authenticate(scope, "known", "wrong password!")


async def _max_lateness_during_burst(core: EduCore, scope: Scope) -> float:
    """How late a 5 ms timer fires, at worst, while BURST wrong-password logins run."""
    done = asyncio.Event()
    worst = 0.0

    async def probe() -> None:
        nonlocal worst
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - started - 0.005)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.02)  # the probe is running before the burst starts
    await asyncio.gather(*(_wrong_password(core, scope) for _ in range(BURST)))
    done.set()
    await prober
    return worst


async def test_a_burst_of_logins_does_not_stall_other_coroutines() -> None:
    hasher = _argon2()
    try:
        offloaded = await _max_lateness_during_burst(*await _core(hasher))
        blocking = await _max_lateness_during_burst(*await _core(BlockingHasher(_argon2())))
    finally:
        await hasher.aclose()
    print(
        f"\n{BURST} concurrent logins: a 5 ms timer fired at worst {offloaded * 1000:.1f} ms late"
        f" with hashing in the thread pool, {blocking * 1000:.1f} ms late on the event loop"
    )
    assert blocking > MAX_LATENESS, "the burst is too small to show a blocked loop"
    assert offloaded < MAX_LATENESS


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    with contextlib.suppress(AuthenticationFailed):
        await call()
    return time.perf_counter() - started


async def test_an_unknown_organization_or_login_costs_what_a_known_one_does() -> None:
    hasher = _argon2()
    core, scope = await _core(hasher)
    stranger = Scope.system(uuid4())
    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "known login, wrong password": lambda: core.auth.authenticate(scope, "known", "nope-nope"),
        "unknown login": lambda: core.auth.authenticate(scope, "nobody", "nope-nope"),
        "unknown organization": lambda: core.auth.authenticate(stranger, "known", "nope-nope"),
        "organization not found (reject)": lambda: core.auth.reject("nope-nope"),
        # control: a malformed login is refused before any lookup or verify
        "malformed login (control)": lambda: core.auth.authenticate(scope, "x" * 300, "nope"),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for call in cases.values():  # warm up (the dummy hash is made on first use)
            await _timed(call)
        for _ in range(15):
            for name, call in cases.items():  # interleaved, so load affects all alike
                samples[name].append(await _timed(call))
    finally:
        await hasher.aclose()
    medians = {name: statistics.median(times) for name, times in samples.items()}
    print()
    for name, median in medians.items():
        print(f"{name:34} median {median * 1000:6.2f} ms")
    known = medians["known login, wrong password"]
    assert medians["malformed login (control)"] < 0.5 * known, "the control shows no gap"
    for name in ("unknown login", "unknown organization", "organization not found (reject)"):
        assert 0.5 * known < medians[name] < 2.0 * known, name
